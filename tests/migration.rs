//! An index written before patient records belonged to one clinic (the schema up to migration
//! 0009, one patient row per Patient ID for all clinics) is brought up to date by the server
//! when it starts, on SQLite and PostgreSQL: every study stays findable, each clinic has its own
//! patient record (other IDs included) whose demographics are read again from that clinic's own
//! newest object, and the clinic's next object speaks for it.

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

/// The old index: one patient row shared by two clinics' studies, last written by clinic
/// kaunas's HIS (so it holds kaunas's patient, HIS-maintained), with an Other Patient ID; and a
/// row no study names.
const ROWS: &[&str] = &[
    "INSERT INTO patients (patient_id, issuer, name, name_search, birth_date, sex, other_ids,
       updated_at, maintained_by)
     VALUES ('MRN-1', '', 'Kaunietis^Petras', 'kaunietis^petras', '19600606', 'M',
       'LT-77^^^VLK', 1, 'hl7'),
            ('ORPHAN', '', 'Niekieno^Vardas', 'niekieno^vardas', '', '', '', 1, '')",
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
     VALUES ('dicom/2.25.11/2.25.11.1/a.dcm', '2.25.11.1.1', '1.2.840.10008.5.1.4.1.1.6.1',
       '2.25.11.1', '2.25.11', 1, NULL, '1.2.840.10008.1.2.1', 100, 'x', 'x', 'demo',
       'DEMO_CLINIC', 1, 0),
            ('dicom/2.25.22/2.25.22.1/b.dcm', '2.25.22.1.1', '1.2.840.10008.5.1.4.1.1.6.1',
       '2.25.22.1', '2.25.22', 1, NULL, '1.2.840.10008.1.2.1', 100, 'y', 'y', 'kaunas',
       'KAUNAS', 1, 0)",
    "INSERT INTO audit_events (id, at, kind, actor, institution, address, outcome, detail, role,
       patient_id, study_uid)
     VALUES ('old-2', 20, 'study_read', 'dr', 'demo-centre', '10.0.0.9', 'answered', '',
       'cardiologist', 'MRN-1', '2.25.11'),
            ('old-1', 10, 'association_rejected', 'STRANGER', '', '10.0.0.66',
       'rejected: unknown calling AE', '', '', '', '')",
];

/// The objects the old index points at, each with its own clinic's patient.
fn objects(store: &std::path::Path) {
    for (key, name, birth) in [
        (
            "dicom/2.25.11/2.25.11.1/a.dcm",
            "Šalkauskas^Jonas",
            "19700101",
        ),
        (
            "dicom/2.25.22/2.25.22.1/b.dcm",
            "Kaunietis^Petras",
            "19600606",
        ),
    ] {
        let path = store.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::copy(test_image("us-single.dcm"), &path).unwrap();
        let mut cmd = dcmtk("dcmodify");
        cmd.args(["-nb", "-m", &format!("(0010,0010)={name}")])
            .args(["-m", &format!("(0010,0030)={birth}")])
            .arg(&path);
        let (ok, log) = run(cmd);
        assert!(ok, "{log}");
    }
}

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
    let store = holder.path().join("objects");
    objects(&store);
    let clinics = r#"[{id="demo", name="Demo", ae_titles=["DEMO_CLINIC"], networks=[]},
                      {id="kaunas", name="Kaunas", ae_titles=["KAUNAS"], networks=[]}]"#;
    let centres =
        r#"[{id="demo-centre", name="R", reads=["demo", "kaunas"], ae_titles=[], networks=[]}]"#;
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[
            ("TELECARDIO_DATABASE__URL", url.as_str()),
            ("TELECARDIO_STORE__URL", store.to_str().unwrap()),
            ("TELECARDIO_CLINICS", clinics),
            ("TELECARDIO_CENTRES", centres),
        ],
    );
    let studies = |token: &str, query: &str| -> Vec<(String, String, String)> {
        let reply = request(
            server.http_port,
            "GET",
            &format!("/dicom-web/studies?{query}"),
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        );
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        let mut out: Vec<_> = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s: &Value| {
                let text = |tag: &str| {
                    let v = &s[tag]["Value"][0];
                    v["Alphabetic"]
                        .as_str()
                        .or(v.as_str())
                        .unwrap_or("")
                        .to_owned()
                };
                (text("0020000D"), text("00100010"), text("00100030"))
            })
            .collect();
        out.sort();
        out
    };
    let row =
        |uid: &str, name: &str, birth: &str| (uid.to_owned(), name.to_owned(), birth.to_owned());
    let a = server.token("nurse-a", "clinic", "demo");
    let b = server.token("nurse-b", "clinic", "kaunas");
    let reader = server.token("dr", "cardiologist", "demo-centre");
    // Each clinic's copy of the shared row is read again from the clinic's own object.
    wait_for(std::time::Duration::from_secs(30), || {
        studies(&a, "PatientID=MRN-1") == [row("2.25.11", "Šalkauskas^Jonas", "19700101")]
    });
    assert_eq!(
        studies(&b, "PatientName=kaunie*"),
        [row("2.25.22", "Kaunietis^Petras", "19600606")]
    );
    // Other Patient IDs came along to each clinic's record.
    for (token, uid) in [(&a, "2.25.11"), (&b, "2.25.22")] {
        let found = studies(token, "OtherPatientIDsSequence.PatientID=LT-77");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, uid);
    }
    assert_eq!(
        studies(&reader, "PatientID=MRN-1"),
        [
            row("2.25.11", "Šalkauskas^Jonas", "19700101"),
            row("2.25.22", "Kaunietis^Petras", "19600606")
        ]
    );
    // The records are no longer HIS-maintained: the clinic's next object speaks for them.
    let dir = tempfile::tempdir().unwrap();
    let next = dir.path().join("next.dcm");
    std::fs::copy(test_image("us-single.dcm"), &next).unwrap();
    let (ok, log) = run({
        let mut cmd = dcmtk("dcmodify");
        cmd.args(["-nb", "-m", "(0010,0020)=MRN-1", "-m", "(0010,0021)="])
            .args(["-m", "(0010,0010)=Šalkauskas^Jonas Petras"])
            .args(["-m", "(0020,000D)=2.25.33", "-m", "(0020,000E)=2.25.33.1"])
            .args(["-m", "(0008,0018)=2.25.33.1.1"])
            .arg(&next);
        cmd
    });
    assert!(ok, "{log}");
    let (ok, log) = storescu(server.dicom_port, &[next]);
    assert!(ok, "{log}");
    let names: Vec<String> = studies(&a, "PatientID=MRN-1")
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(
        names,
        ["Šalkauskas^Jonas Petras", "Šalkauskas^Jonas Petras"]
    );
    assert_eq!(studies(&b, "PatientID=MRN-1")[0].1, "Kaunietis^Petras");

    // The events recorded before the audit trail was chained were chained once, in time
    // order, ahead of everything since: the trail verifies from its first event.
    let out = server.cli(&["audit", "verify", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).expect("audit verify JSON");
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report["events"].as_i64().unwrap() > 2, "{report}");
    let auditor = server.token("auditorius", "auditor", "");
    let found = request(
        server.http_port,
        "POST",
        "/api/audit/search",
        &[
            ("Authorization", &format!("Bearer {auditor}")),
            ("Content-Type", "application/json"),
        ],
        br#"{"actor": "STRANGER"}"#,
    );
    assert_eq!(
        found.json()["events"].as_array().unwrap().len(),
        1,
        "{}",
        found.body
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
