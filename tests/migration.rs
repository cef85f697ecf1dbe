//! An index written before patient records belonged to one clinic (the schema up to migration
//! 0009, one patient row per Patient ID for all clinics) is brought up to date by the server
//! when it starts, on SQLite and PostgreSQL: every study stays findable, and each clinic has its
//! own copy of the patient record, other IDs included.

mod common;

use common::*;
use serde_json::Value;

/// Applies migrations up to `last` (copied from `migrations/`) to the database at `url`, then
/// runs `rows` there.
fn old_index(url: &str, last: u32, rows: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join("migrations")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let version: u32 = name[..4].parse().unwrap();
        if version <= last {
            std::fs::copy(&path, dir.path().join(&name)).unwrap();
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(url)
            .await
            .expect("open the old index");
        let migrator = sqlx::migrate::Migrator::new(dir.path()).await.unwrap();
        migrator.run(&pool).await.expect("old migrations");
        for sql in rows {
            sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        pool.close().await;
    });
}

const ROWS: &[&str] = &[
    "INSERT INTO patients (patient_id, issuer, name, name_search, birth_date, sex, other_ids,
       updated_at, maintained_by)
     VALUES ('MRN-1', '', 'Šalkauskas^Jonas', 'salkauskas^jonas', '19700101', 'M',
       'LT-77^^^VLK', 1, '')",
    "INSERT INTO patient_other_ids (patient_id, issuer, other_id, other_issuer)
     VALUES ('MRN-1', '', 'LT-77', 'VLK')",
    "INSERT INTO studies (study_uid, patient_id, issuer, study_date, study_time, accession_number,
       accession_issuer, study_id, description, referring_physician, modalities, clinic_id,
       num_series, num_instances, total_bytes, first_received_at, last_received_at,
       referring_search)
     VALUES ('2.25.11', 'MRN-1', '', '20250101', '100000', 'ACC-A', '', '1', 'Echo', '', 'US',
       'demo', 1, 1, 100, 1, 1, ''),
            ('2.25.22', 'MRN-1', '', '20250202', '100000', 'ACC-B', '', '1', 'Echo', '', 'US',
       'kaunas', 1, 1, 100, 1, 1, '')",
    "INSERT INTO series (series_uid, study_uid, modality, series_number, description,
       num_instances, first_received_at)
     VALUES ('2.25.11.1', '2.25.11', 'US', 1, '', 1, 1), ('2.25.22.1', '2.25.22', 'US', 1, '', 1, 1)",
    "INSERT INTO instances (object_key, sop_instance_uid, sop_class_uid, series_uid, study_uid,
       instance_number, number_of_frames, transfer_syntax, size_bytes, sha256, dataset_sha256,
       clinic_id, calling_ae, received_at, shadowed)
     VALUES ('k1', '2.25.11.1.1', '1.2.840.10008.5.1.4.1.1.6.1', '2.25.11.1', '2.25.11', 1, NULL,
       '1.2.840.10008.1.2.1', 100, 'x', 'x', 'demo', 'DEMO_CLINIC', 1, 0),
            ('k2', '2.25.22.1.1', '1.2.840.10008.5.1.4.1.1.6.1', '2.25.22.1', '2.25.22', 1, NULL,
       '1.2.840.10008.1.2.1', 100, 'y', 'y', 'kaunas', 'KAUNAS', 1, 0)",
];

fn migrated(db: Db) {
    let holder = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!(
            "sqlite://{}?mode=rwc",
            holder.path().join("old.db").display()
        ),
        Db::Postgres => create_pg_database(),
    };
    old_index(&url, 9, ROWS);
    let clinics = r#"[{id="demo", name="Demo", ae_titles=["DEMO_CLINIC"], networks=[]},
                      {id="kaunas", name="Kaunas", ae_titles=["KAUNAS"], networks=[]}]"#;
    let centres =
        r#"[{id="demo-centre", name="R", reads=["demo", "kaunas"], ae_titles=[], networks=[]}]"#;
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[
            ("TELECARDIO_DATABASE__URL", url.as_str()),
            ("TELECARDIO_CLINICS", clinics),
            ("TELECARDIO_CENTRES", centres),
        ],
    );
    let studies = |token: &str, query: &str| -> Vec<(String, String)> {
        let reply = request(
            server.http_port,
            "GET",
            &format!("/dicom-web/studies?{query}"),
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        );
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        let mut out: Vec<(String, String)> = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s: &Value| {
                (
                    s["0020000D"]["Value"][0].as_str().unwrap().to_owned(),
                    s["00100010"]["Value"][0]["Alphabetic"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let name = "Šalkauskas^Jonas".to_owned();
    let a = server.token("nurse-a", "clinic", "demo");
    let b = server.token("nurse-b", "clinic", "kaunas");
    let reader = server.token("dr", "cardiologist", "demo-centre");
    assert_eq!(
        studies(&a, "PatientID=MRN-1"),
        [("2.25.11".to_owned(), name.clone())]
    );
    assert_eq!(
        studies(&b, "PatientName=salkausk*"),
        [("2.25.22".to_owned(), name.clone())]
    );
    assert_eq!(
        studies(&a, "OtherPatientIDsSequence.PatientID=LT-77"),
        [("2.25.11".to_owned(), name.clone())]
    );
    assert_eq!(
        studies(&reader, "PatientID=MRN-1"),
        [
            ("2.25.11".to_owned(), name.clone()),
            ("2.25.22".to_owned(), name)
        ]
    );
}

#[test]
fn a_shared_patient_row_becomes_one_per_clinic_sqlite() {
    migrated(Db::Sqlite);
}

#[test]
fn a_shared_patient_row_becomes_one_per_clinic_postgres() {
    migrated(Db::Postgres);
}
