//! Backup and restore against the real binary: an archive of 500 objects with referrals and
//! signed reports is backed up to a second store, the machine is lost (data directory, index
//! database and store all gone), and `telecardio restore` builds it again: every object's
//! hash, every QIDO-RS listing and every C-FIND answer is what it was. A second backup of an
//! unchanged archive copies nothing; targets holding something else are refused.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::cases::*;
use common::*;
use serde_json::Value;

fn cli_json(server: &Server, args: &[&str]) -> (i32, Value, String) {
    let out = server.cli(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr,
    )
}

/// What a user of the archive sees of it: each object's hash as served over WADO-RS, every
/// QIDO-RS listing (studies, their series, their instances), and the C-FIND answers at study
/// level, as DCMTK findscu writes them.
#[derive(Debug, PartialEq)]
struct Seen {
    objects: BTreeMap<String, String>,
    qido: Vec<String>,
    cfind: Vec<Vec<u8>>,
}

fn seen(server: &Server, token: &str) -> Seen {
    let auth = format!("Bearer {token}");
    let get = |path: &str| {
        let reply = request(
            server.http_port,
            "GET",
            path,
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        reply
    };
    let mut qido = Vec::new();
    let objects: BTreeMap<String, String> = server
        .instances()
        .iter()
        .map(|i| {
            let key = i["object_key"].as_str().unwrap();
            let stored = sha256_hex(&server.object(key));
            assert_eq!(i["sha256"].as_str(), Some(stored.as_str()), "{key}");
            (key.to_owned(), stored)
        })
        .collect();
    let studies = get("/dicom-web/studies?limit=10000");
    let uid = |v: &Value, tag: &str| v[tag]["Value"][0].as_str().unwrap_or("").to_owned();
    let mut study_uids: Vec<String> = studies
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|s| uid(s, "0020000D"))
        .collect();
    study_uids.sort();
    qido.push(studies.body);
    for study in &study_uids {
        let series = get(&format!("/dicom-web/studies/{study}/series"));
        let series_uids: Vec<String> = series
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| uid(s, "0020000E"))
            .collect();
        qido.push(series.body);
        for s in series_uids {
            let instances = get(&format!("/dicom-web/studies/{study}/series/{s}/instances"));
            qido.push(instances.body);
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = dcmtk("findscu");
    cmd.args(["-S", "-X", "-od"]).arg(dir.path());
    cmd.args(["-aet", "DEMO_READER", "-aec", AE]);
    for key in [
        "QueryRetrieveLevel=STUDY",
        "StudyInstanceUID",
        "PatientName",
        "PatientID",
        "StudyDate",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "AccessionNumber",
    ] {
        cmd.arg("-k").arg(key);
    }
    cmd.args(["127.0.0.1", &server.dicom_port.to_string()]);
    let (ok, log) = run(cmd);
    assert!(ok, "{log}");
    // The data sets as answered (the file meta findscu adds names a fresh instance UID).
    let mut cfind: Vec<Vec<u8>> = files_under(dir.path())
        .iter()
        .map(|f| dataset_of(&std::fs::read(f).unwrap()).to_vec())
        .collect();
    cfind.sort();
    assert!(cfind.len() >= 25, "{} C-FIND answers", cfind.len());
    Seen {
        objects,
        qido,
        cfind,
    }
}

/// Every stored object of a local store and its hash.
fn store_hashes(root: &Path) -> BTreeMap<String, String> {
    files_under(root)
        .into_iter()
        .map(|f| {
            let key = f.strip_prefix(root).unwrap().display().to_string();
            (key, sha256_hex(&std::fs::read(&f).unwrap()))
        })
        .collect()
}

fn lost_and_restored(db: Db, store: Store) {
    let mut server = Server::start_with(
        db,
        store,
        &[("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0")],
    );
    // 500 objects in 25 studies, then two referred studies read and signed.
    let corpus = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "generate", "--set", "corpus", "--kind", "tiny", "--count", "500", "--out",
        ])
        .arg(corpus.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let (ok, log) = storescu(server.dicom_port, &files_under(corpus.path()));
    assert!(ok, "{log}");
    let clinic = server.token("slaugytoja", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    signer_profile(&server, "dr-a");
    for n in 1..=2 {
        signed_case(&server, &clinic, &reader, n);
    }
    let before = seen(&server, &reader);
    assert!(before.objects.len() >= 502, "{}", before.objects.len());

    // A backup target of its own, then the same again: nothing new to copy.
    // A directory for an archive on a directory, a second bucket for one on S3.
    let target = tempfile::tempdir().unwrap();
    let to = if store == Store::Local {
        target.path().join("backup").to_str().unwrap().to_owned()
    } else {
        format!("s3://{}", create_bucket(&s3_endpoint(), Store::S3))
    };
    let to = to.as_str();
    let (code, first, stderr) = cli_json(&server, &["backup", "--to", to, "--json"]);
    assert_eq!(code, 0, "{first}\n{stderr}");
    assert!(first["copied"].as_u64().unwrap() >= 502 + 2 + 2, "{first}");
    assert_eq!(first["failures"].as_array().unwrap().len(), 0);
    let (code, second, stderr) = cli_json(&server, &["backup", "--to", to, "--json"]);
    assert_eq!(code, 0, "{second}\n{stderr}");
    assert_eq!(second["copied"], 0, "{second}");
    assert!(second["already_there"].as_u64().unwrap() >= first["copied"].as_u64().unwrap());
    // The backup holds each object as stored, under the same key.
    if store == Store::Local {
        let stored = store_hashes(&server.data_dir().join("objects"));
        let copied = store_hashes(Path::new(to));
        for (key, hash) in &stored {
            assert_eq!(copied.get(key), Some(hash), "{key}");
        }
    }

    // Targets that hold something else are refused, and left as they were.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("notes.txt"), "not a backup").unwrap();
    let (code, _, stderr) = cli_json(
        &server,
        &["backup", "--to", other.path().to_str().unwrap(), "--json"],
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("no telecardio backup"), "{stderr}");
    assert_eq!(files_under(other.path()).len(), 1);
    let stranger = Server::start(Db::Sqlite, store);
    let (code, _, stderr) = cli_json(&stranger, &["backup", "--to", to, "--json"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("another archive"), "{stderr}");
    drop(stranger);
    if store == Store::Local {
        let inside = server.data_dir().join("objects/backup");
        let (code, _, stderr) = cli_json(
            &server,
            &["backup", "--to", inside.to_str().unwrap(), "--json"],
        );
        assert_ne!(code, 0);
        assert!(stderr.contains("own store"), "{stderr}");
    }

    // The machine is lost. The audit signing key is kept apart from the backup (it signs
    // what the backup cannot vouch for), so it comes back from where it was kept.
    let key = std::fs::read(server.data_dir().join("keys/audit-signing.pem")).unwrap();
    server.fresh_machine();
    let (code, restored, stderr) = cli_json(&server, &["restore", "--from", to, "--json"]);
    assert_eq!(code, 0, "{restored}\n{stderr}");
    assert_eq!(restored["archive_id"], first["archive_id"]);
    assert!(restored["copied"].as_u64().unwrap() >= first["copied"].as_u64().unwrap());
    std::fs::create_dir_all(server.data_dir().join("keys")).unwrap();
    std::fs::write(server.data_dir().join("keys/audit-signing.pem"), key).unwrap();
    server.restart();
    let after = seen(&server, &reader);
    let differing = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
        a.iter().filter(|(k, v)| b.get(*k) != Some(v)).count() + b.len().abs_diff(a.len())
    };
    assert_eq!(differing(&after.objects, &before.objects), 0);
    assert_eq!(after.qido.len(), before.qido.len());
    for (a, b) in after.qido.iter().zip(&before.qido) {
        assert_eq!(a, b);
    }
    assert_eq!(after.cfind.len(), before.cfind.len());
    for (a, b) in after.cfind.iter().zip(&before.cfind) {
        assert!(
            a == b,
            "C-FIND answers differ:\n{}\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
    // Signed reports came back with their cases.
    let reports = call(&server, &reader, "GET", "/api/reports", "").json();
    assert_eq!(reports["reports"].as_array().unwrap().len(), 2, "{reports}");
    // Fixity and the audit trail hold on the restored archive.
    let verify = server.cli(&["verify", "--all"]);
    assert!(verify.status.success(), "{verify:?}");
    let (code, chain, _) = cli_json(&server, &["audit", "verify", "--json"]);
    assert_eq!(code, 0, "{chain}");

    // Restoring over an archive is refused, and changes nothing.
    let (code, _, stderr) = cli_json(&server, &["restore", "--from", to, "--json"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("already holds an archive"), "{stderr}");
    assert!(
        seen(&server, &reader) == after,
        "the restored archive changed"
    );
}

/// The referral workflow as a user sees it: each referral (without what only the index knew:
/// its id, channel, receiver and receipt time, compared apart), and each signed case with its
/// status, its versions as signed, its answer documents byte for byte and the hash of each
/// version's printed PDF.
#[derive(Debug, PartialEq)]
struct Workflow {
    referrals: Vec<Value>,
    receipts: BTreeMap<String, (String, i64)>,
    cases: BTreeMap<String, (Value, Value, Vec<String>)>,
}

fn workflow(server: &Server, admin: &str, cases: &[String]) -> Workflow {
    let list = call(server, admin, "GET", "/api/referrals?limit=1000", "").json();
    let mut referrals = Vec::new();
    let mut receipts = BTreeMap::new();
    for r in list["referrals"].as_array().unwrap() {
        let mut r = r.clone();
        let order = r["order_number"].as_str().unwrap().to_owned();
        receipts.insert(
            order,
            (
                r["id"].as_str().unwrap().to_owned(),
                r["received_at"].as_i64().unwrap(),
            ),
        );
        for only_indexed in ["id", "source", "received_by", "received_at"] {
            r.as_object_mut().unwrap().remove(only_indexed);
        }
        referrals.push(r);
    }
    referrals.sort_by_key(|r| r["order_number"].as_str().unwrap().to_owned());
    let mut out = BTreeMap::new();
    for case in cases {
        let row = call(server, admin, "GET", &format!("/api/cases/{case}"), "").json();
        let versions = call(
            server,
            admin,
            "GET",
            &format!("/api/cases/{case}/reports"),
            "",
        );
        assert_eq!(versions.status, 200, "{}", versions.body);
        let versions = versions.json()["reports"].clone();
        let answers = versions
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|v| {
                let id = v["id"].as_str().unwrap();
                let answer = format!("/api/cases/{case}/reports/{id}/answer");
                let reply = call(server, admin, "GET", &answer, "");
                assert_eq!(reply.status, 200, "{answer}: {}", reply.body);
                // The PDF is read from the version's report object.
                let pdf = format!("/api/cases/{case}/reports/{id}/pdf");
                let printed = request(
                    server.http_port,
                    "GET",
                    &pdf,
                    &[("Authorization", &format!("Bearer {admin}"))],
                    b"",
                );
                assert_eq!(printed.status, 200, "{pdf}: {}", printed.body);
                [reply.body, sha256_hex(&printed.bytes)]
            })
            .collect();
        let facts = serde_json::json!({
            "status": row["status"], "study_uid": row["study_uid"],
            "referral_id": row["referral_id"], "clinic_id": row["clinic_id"],
            "centre_id": row["centre_id"], "patient_id": row["patient_id"],
        });
        out.insert(case.clone(), (facts, versions, answers));
    }
    Workflow {
        referrals,
        receipts,
        cases: out,
    }
}

/// The index lost and no backup of it: `rebuild-index` reads the store alone. The same
/// studies, series and instances answer as before; the referrals come back linked (one made by
/// an HL7 order whose form 027 document followed), the signed cases with their versions (one
/// amended), answers and report objects under the ids they had, and the referred study not yet
/// read is routed again.
fn rebuilt_from_the_store(db: Db, store: Store) {
    let senders = r#"[{facility="DEMO_HIS", clinic="demo", networks=["127.0.0.0/8"]}]"#;
    let mut server = Server::start_with(
        db,
        store,
        &[
            ("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0"),
            ("TELECARDIO_HL7__SENDERS", senders),
        ],
    );
    let corpus = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .args([
            "generate", "--set", "corpus", "--kind", "tiny", "--count", "500", "--out",
        ])
        .arg(corpus.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut files = files_under(corpus.path());
    files.extend(test_images());
    let (ok, log) = storescu(server.dicom_port, &files);
    assert!(ok, "{log}");

    let clinic = server.token("slaugytoja", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    let admin = server.token("root", "admin", "");
    signer_profile(&server, "dr-a");
    let signed_cases: Vec<String> = (1..=2)
        .map(|n| signed_case(&server, &clinic, &reader, n).0)
        .collect();
    let amended = call(
        &server,
        &reader,
        "PUT",
        &format!("/api/cases/{}/report", signed_cases[0]),
        r#"{"conclusion": "Lengva mitralinė regurgitacija.", "amendment_reason": "praleista"}"#,
    );
    assert_eq!(amended.status, 200, "{}", amended.body);
    sign(&server, &reader, &signed_cases[0]);
    // An order over HL7, then its form 027 document, then its study: read by nobody yet.
    let order = "E027-2026-0003";
    let message = [
        common::hl7::msh("MSG-0003", "ORM^O01^ORM_O01", "DEMO_HIS"),
        "PID|1||48507120013^^^LT&2.999.370.1&ISO^NNLTU~AK-2026-0077^^^&2.999.370.3&ISO^MR\
         ||Žukauskienė^Rūta||19850712|F"
            .into(),
        "PV1|1|O".into(),
        format!("ORC|NW|{order}|||||^^^^^A||20261130100000|||GYD-10234^Kairys^Vytautas"),
        format!("OBR|1|{order}||34552-0^Echocardiography^LN|||||||||Dusulys"),
    ]
    .join("\r");
    let acks = common::hl7::send(server.hl7_port, &[message]);
    assert_eq!(common::hl7::field(&acks[0], "MSA", 1), "AA", "{acks:?}");
    let document = VALID
        .replace("E027-DOC-0001", "E027-DOC-0003")
        .replace("E027-2026-0001", order);
    let reply = post_referral(&server, &clinic, &document);
    assert!(reply.status == 200 || reply.status == 201, "{}", reply.body);
    let dir = tempfile::tempdir().unwrap();
    let unread = study_of(dir.path(), "s.dcm", "48507120013", order, "2.25.7003");
    let (ok, log) = storescu(server.dicom_port, &[unread]);
    assert!(ok, "{log}");
    let routed = |server: &Server, token: &str| {
        wait_for(Duration::from_secs(30), || {
            let list = call(server, token, "GET", "/api/worklist", "").json();
            list["cases"]
                .as_array()
                .is_some_and(|l| l.iter().any(|c| c["study_uid"] == "2.25.7003"))
        })
    };
    routed(&server, &reader);

    let counts = |server: &Server| -> Vec<(String, i64, i64, String)> {
        let mut rows: Vec<(String, i64, i64, String)> = server
            .studies()
            .iter()
            .map(|s| {
                (
                    s["study_uid"].as_str().unwrap().to_owned(),
                    s["num_series"].as_i64().unwrap(),
                    s["num_instances"].as_i64().unwrap(),
                    s["patient_name"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        rows.sort();
        rows
    };
    let before = counts(&server);
    let seen_before = seen(&server, &reader);
    let workflow_before = workflow(&server, &admin, &signed_cases);
    assert!(before.len() >= 29, "{before:?}");
    assert_eq!(workflow_before.referrals.len(), 3);

    server.fresh_index();
    let (code, report, stderr) = cli_json(&server, &["rebuild-index", "--json"]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["indexed"], report["dicom_objects"], "{report}");
    // The corpus, the test images, three referred studies and three report objects.
    assert_eq!(
        report["indexed"].as_u64().unwrap() as usize,
        files.len() + 3 + 3,
        "{report}"
    );
    assert_eq!(report["referral_objects"], 4, "{report}");
    assert_eq!(report["referrals"], 3, "{report}");
    assert_eq!(report["linked"], 3, "{report}");
    assert_eq!(report["report_objects"], 3, "{report}");
    assert_eq!(report["reports"], 3, "{report}");
    assert_eq!(report["cases"], 2, "{report}");
    assert_eq!(report["to_route"], 1, "{report}");
    assert_eq!(report["unplaced"].as_array().unwrap().len(), 0, "{report}");
    // Done once: a second rebuild over the rebuilt index is refused.
    let (code, _, stderr) = cli_json(&server, &["rebuild-index", "--json"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("already holds an archive"), "{stderr}");
    server.restart();
    assert_eq!(counts(&server), before);
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    let admin = server.token("root", "admin", "");
    let seen_after = seen(&server, &reader);
    assert_eq!(seen_after.objects, seen_before.objects);
    assert!(
        seen_after.cfind == seen_before.cfind,
        "C-FIND answers differ"
    );
    for (a, b) in seen_after.qido.iter().zip(&seen_before.qido) {
        let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        let near = |t: &str| {
            t.get(at.saturating_sub(200)..(at + 200).min(t.len()))
                .unwrap_or(t)
                .to_owned()
        };
        assert!(a == b, "QIDO-RS answers differ:\n{}\n{}", near(a), near(b));
    }
    assert_eq!(seen_after.qido.len(), seen_before.qido.len());
    let workflow_after = workflow(&server, &admin, &signed_cases);
    assert_eq!(workflow_after.referrals, workflow_before.referrals);
    assert_eq!(workflow_after.cases, workflow_before.cases);
    for (order, (id, at)) in &workflow_before.receipts {
        let (id_after, at_after) = &workflow_after.receipts[order];
        // The signed cases' referrals keep the ids their reports name.
        if order != "E027-2026-0003" {
            assert_eq!(id_after, id, "{order}");
        }
        // Received when the store wrote the document, within moments of the receipt.
        assert!(
            (at_after - at).abs() < 60_000_000,
            "{order}: {at} / {at_after}"
        );
    }
    routed(&server, &reader);
    // Every report object is named by its signed version again: nothing left over.
    let verify = server.cli(&["verify", "--all", "--json"]);
    assert!(verify.status.success(), "{verify:?}");
}

/// What the store holds but cannot be placed is named with the reason, and the rest is
/// rebuilt: a document that is not XML, an order from a facility the configuration does not
/// know, a signed version altered behind the service's back (and so the answer made with it).
fn rebuild_names_what_it_cannot_place(db: Db) {
    let mut server = Server::start_with(
        db,
        Store::Local,
        &[("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0")],
    );
    let clinic = server.token("slaugytoja", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    signer_profile(&server, "dr-a");
    signed_case(&server, &clinic, &reader, 1);
    server.fresh_index();

    let objects = server.data_dir().join("objects");
    let put = |prefix: &str, ext: &str, bytes: &[u8]| {
        let key = format!("{prefix}/{}.{ext}", sha256_hex(bytes));
        std::fs::create_dir_all(objects.join(prefix)).unwrap();
        std::fs::write(objects.join(&key), bytes).unwrap();
        key
    };
    let not_xml = put("cda", "xml", b"<ClinicalDocument><unclosed>");
    let stranger = [
        common::hl7::msh("MSG-9", "ORM^O01^ORM_O01", "NOBODY_HIS"),
        "PID|1||48507120013^^^LT&2.999.370.1&ISO^NNLTU||Vardenis^Pavardenis||19850712|F".into(),
        "ORC|NW|ORD-9|||||^^^^^R||20261130100000".into(),
        "OBR|1|ORD-9||34552-0^Echocardiography^LN".into(),
    ]
    .join("\r");
    let unknown_sender = put("hl7", "hl7", stranger.as_bytes());
    let signed = server.object_keys("reports");
    assert_eq!(signed.len(), 1, "{signed:?}");
    let mut altered = server.object(&signed[0]);
    altered.extend_from_slice(b" ");
    std::fs::write(objects.join(&signed[0]), altered).unwrap();
    let answer = server.object_keys("answers");

    let (code, report, stderr) = cli_json(&server, &["rebuild-index", "--json"]);
    assert_eq!(code, 1, "{report}\n{stderr}");
    assert_eq!(report["indexed"], report["dicom_objects"], "{report}");
    assert_eq!(report["referrals"], 1, "{report}");
    assert_eq!(report["linked"], 1, "{report}");
    assert_eq!(report["reports"], 0, "{report}");
    let why = |key: &str| {
        report["unplaced"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["key"] == key)
            .and_then(|u| u["why"].as_str())
            .unwrap_or_else(|| panic!("{key} not named: {report}"))
            .to_owned()
    };
    assert!(
        why(&not_xml).contains("CDA") || why(&not_xml).contains("XML"),
        "{}",
        why(&not_xml)
    );
    assert!(
        why(&unknown_sender).contains("not a declared HL7 sender"),
        "{report}"
    );
    assert!(why(&signed[0]).contains("altered"), "{report}");
    assert!(why(&answer[0]).contains("no signed report"), "{report}");
    assert_eq!(report["unplaced"].as_array().unwrap().len(), 4, "{report}");
}

#[test]
fn rebuild_names_what_it_cannot_place_sqlite() {
    rebuild_names_what_it_cannot_place(Db::Sqlite);
}

#[test]
fn rebuild_names_what_it_cannot_place_postgres() {
    rebuild_names_what_it_cannot_place(Db::Postgres);
}

#[test]
fn rebuilt_from_the_store_sqlite_local() {
    rebuilt_from_the_store(Db::Sqlite, Store::Local);
}

#[test]
fn rebuilt_from_the_store_postgres_s3() {
    rebuilt_from_the_store(Db::Postgres, Store::S3);
}

#[test]
fn lost_and_restored_sqlite_local() {
    lost_and_restored(Db::Sqlite, Store::Local);
}

#[test]
fn lost_and_restored_postgres_s3() {
    lost_and_restored(Db::Postgres, Store::S3);
}
