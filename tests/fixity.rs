//! Fixity (`telecardio verify`) against the real binary: every stored object read back and
//! compared with the hash recorded on arrival; one byte changed on disk, or an object deleted
//! behind the service's back, is named exactly, and the exit status says so.

mod common;

use std::path::PathBuf;

use common::cases::*;
use common::*;
use serde_json::Value;

const VALID: &str = include_str!("fixtures/form027-valid.xml");

fn verify(server: &Server, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["verify", "--json"];
    all.extend_from_slice(args);
    let out = server.cli(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn failures(report: &Value) -> Vec<(String, String)> {
    report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["problem"].as_str().unwrap().to_owned(),
                f["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The stored file of an object key on the local store.
fn file_of(server: &Server, key: &str) -> PathBuf {
    server.data_dir().join("objects").join(key)
}

fn altered_and_missing_objects_are_named(db: Db) {
    let server = Server::start(db, Store::Local);
    let files = test_images();
    let (ok, log) = dcmsend(server.dicom_port, &files);
    assert!(ok, "{log}");
    let token = server.token("slaugytoja", "clinic", "demo");
    let sent = request(
        server.http_port,
        "POST",
        "/api/referrals",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/xml"),
        ],
        VALID.as_bytes(),
    );
    assert_eq!(sent.status, 201, "{}", sent.body);

    // Untouched: every object checked, every byte read, nothing failed.
    let (code, report, stderr) = verify(&server, &["--all"]);
    assert_eq!(code, 0, "{stderr}");
    // (study, instance) for every stored DICOM object.
    let instances: Vec<(String, Value)> = server
        .studies()
        .iter()
        .flat_map(|s| {
            let uid = s["study_uid"].as_str().unwrap().to_owned();
            let rows = server.show(&uid)["instances"].as_array().unwrap().clone();
            rows.into_iter().map(move |i| (uid.clone(), i))
        })
        .collect();
    assert_eq!(report["objects"], instances.len() as u64 + 1, "{report}");
    let stored_bytes: u64 = instances
        .iter()
        .map(|(_, i)| i["size_bytes"].as_u64().unwrap())
        .sum::<u64>()
        + VALID.len() as u64;
    assert_eq!(report["bytes"], stored_bytes);
    assert!(failures(&report).is_empty());
    assert_eq!(report["unindexed"], serde_json::json!([]), "{report}");
    let text = server.cli(&["verify", "--all"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("every object matches"),
        "{text:?}"
    );

    // An object durable in the store whose index row never committed: reported, not a
    // failure, not deleted.
    let stray_key = format!(
        "dicom/demo/2.25.1/2.25.1.1/2.25.1.1.1_{}.dcm",
        "0".repeat(64)
    );
    let stray = file_of(&server, &stray_key);
    std::fs::create_dir_all(stray.parent().unwrap()).unwrap();
    std::fs::write(&stray, b"left by a crash").unwrap();
    let (code, report, stderr) = verify(&server, &["--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        report["unindexed"],
        serde_json::json!([stray_key]),
        "{report}"
    );
    assert!(stray.exists());
    std::fs::remove_file(&stray).unwrap();

    // One byte changed in one object, another object deleted, behind the service's back.
    let altered = instances[0].1["object_key"].as_str().unwrap().to_owned();
    let deleted = instances[1].1["object_key"].as_str().unwrap().to_owned();
    let path = file_of(&server, &altered);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    std::fs::remove_file(file_of(&server, &deleted)).unwrap();

    let (code, report, stderr) = verify(&server, &["--all"]);
    assert_eq!(code, 1, "a failed check exits 1: {stderr}");
    let mut found = failures(&report);
    found.sort();
    let mut expected = vec![
        ("altered".to_owned(), altered.clone()),
        ("missing".to_owned(), deleted.clone()),
    ];
    expected.sort();
    assert_eq!(found, expected, "exactly those two, nothing else: {report}");
    let failure = report["failures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["problem"] == "altered")
        .unwrap();
    assert_eq!(failure["expected_sha256"], instances[0].1["sha256"]);
    assert_eq!(
        failure["found_sha256"].as_str().unwrap(),
        sha256_hex(&bytes)
    );
    assert_eq!(failure["study_uid"], instances[0].0.as_str());
    // The alert is a log line with a stable field, for whoever watches the logs.
    assert!(
        stderr.contains("alert") && stderr.contains("fixity"),
        "{stderr}"
    );
    // Nothing was repaired: the altered bytes are still what is stored.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // One study: only its objects.
    let study = instances[0].0.as_str();
    let in_study = instances.iter().filter(|(s, _)| s == study).count();
    let (code, report, _) = verify(&server, &["--study", study]);
    assert_eq!(code, 1);
    assert!(
        report["objects"].as_u64().unwrap() >= in_study as u64,
        "{report}"
    );
    assert!(report["scope"].as_str().unwrap().contains(study));

    // Bad requests say what is wrong and check nothing.
    let (code, _, stderr) = verify(&server, &["--study", "1.2.3.4.5"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("no study 1.2.3.4.5"), "{stderr}");
    let (code, _, stderr) = verify(&server, &["--since", "2026-13-45"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("not a date"), "{stderr}");
    let (code, _, stderr) = verify(&server, &[]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--all"), "{stderr}");
    // A future day: nothing received since, nothing to fail.
    let (code, report, stderr) = verify(&server, &["--since", "2099-01-01"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["objects"], 0);

    // The run is in the audit trail, under the operator.
    assert!(!server.audit_events("fixity_verified").is_empty());
}

#[test]
fn altered_and_missing_objects_are_named_sqlite() {
    altered_and_missing_objects_are_named(Db::Sqlite);
}

#[test]
fn altered_and_missing_objects_are_named_postgres() {
    altered_and_missing_objects_are_named(Db::Postgres);
}

/// The background worker, set to a pass every couple of seconds, finds a damaged object by
/// itself: an alert line, the metric, the list for auditors, the report over the period in
/// JSON, CSV and PDF; and repairs nothing.
fn background_pass_raises_the_alert(db: Db) {
    let server = Server::start_with(
        db,
        Store::Local,
        &[("TELECARDIO_FIXITY__CYCLE_DAYS", "0.00002")],
    );
    let (ok, log) = dcmsend(server.dicom_port, &test_images());
    assert!(ok, "{log}");
    let instance = server.instances()[0].clone();
    let key = instance["object_key"].as_str().unwrap().to_owned();
    let path = file_of(&server, &key);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x80;
    std::fs::write(&path, &bytes).unwrap();

    let auditor = server.token("auditorius", "auditor", "");
    let auth = format!("Bearer {auditor}");
    let get = |path: &str, token: &str| {
        request(
            server.http_port,
            "GET",
            path,
            &[("Authorization", token)],
            b"",
        )
    };
    wait_for(std::time::Duration::from_secs(90), || {
        get("/api/fixity/failures", &auth).body.contains(&key)
    });
    let listed = get("/api/fixity/failures", &auth).json();
    let failures = listed["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{listed}");
    assert_eq!(failures[0]["problem"], "altered");
    assert_eq!(failures[0]["expected_sha256"], instance["sha256"]);
    assert_eq!(
        failures[0]["found_sha256"].as_str().unwrap(),
        sha256_hex(&bytes)
    );
    let log = server.log();
    assert!(
        log.lines()
            .any(|l| l.contains("alert") && l.contains("fixity") && l.contains(&key)),
        "{log}"
    );
    let metrics = request(server.http_port, "GET", "/metrics", &[], b"").body;
    assert!(
        metrics.contains("telecardio_fixity_failures 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("telecardio_fixity_objects_checked_total"),
        "{metrics}"
    );

    // The report over today: what was checked, the failure with its hashes.
    let report = get("/api/fixity/report", &auth);
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.json();
    assert!(
        report["checked"]["objects"].as_i64().unwrap() >= 1,
        "{report}"
    );
    assert!(report["checked"]["bytes"].as_i64().unwrap() > 0, "{report}");
    assert!(
        report["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["key"] == key.as_str()),
        "{report}"
    );
    assert_eq!(report["standing_failures"].as_array().unwrap().len(), 1);
    assert!(report["background_pass"]["cycle"].as_i64().unwrap() >= 1);
    let csv = get("/api/fixity/report?format=csv", &auth);
    assert_eq!(csv.status, 200);
    assert!(csv.body.starts_with("status,object_key"), "{}", csv.body);
    assert!(csv
        .body
        .lines()
        .any(|l| l.starts_with("altered,") && l.contains(&key)));
    for (lang, title) in [
        ("lt", "Archyvo vientisumo ataskaita"),
        ("en", "Archive fixity report"),
    ] {
        let pdf = request(
            server.http_port,
            "GET",
            &format!("/api/fixity/report?format=pdf&lang={lang}"),
            &[("Authorization", &auth)],
            b"",
        );
        assert_eq!(pdf.status, 200);
        assert_eq!(
            pdf.header("content-type").as_deref(),
            Some("application/pdf")
        );
        let text = pdf_text(&pdf.bytes);
        assert!(text.contains(title), "{text}");
        assert!(text.contains("altered"), "{text}");
    }

    // Only auditors and administrators; bad parameters say which.
    let clinic = server.token("registratore", "clinic", "demo");
    let refused = get("/api/fixity/report", &format!("Bearer {clinic}"));
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        get("/api/fixity/failures", &format!("Bearer {clinic}")).status,
        403
    );
    for (query, field) in [
        ("from=yesterday", "from"),
        ("format=xml", "format"),
        ("lang=de", "lang"),
        ("from=2026-02-01&to=2026-01-01", "to"),
    ] {
        let bad = get(&format!("/api/fixity/report?{query}"), &auth);
        assert_eq!(bad.status, 400, "{query}: {}", bad.body);
        assert_eq!(bad.json()["field"], field, "{query}: {}", bad.body);
    }

    // Nothing was repaired.
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

/// The text of a PDF, by poppler's `pdftotext`.
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.pdf");
    std::fs::write(&file, pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn background_pass_raises_the_alert_sqlite() {
    background_pass_raises_the_alert(Db::Sqlite);
}

#[test]
fn background_pass_raises_the_alert_postgres() {
    background_pass_raises_the_alert(Db::Postgres);
}

fn orphans(server: &Server, args: &[&str]) -> (i32, String) {
    let mut all = vec!["orphans"];
    all.extend_from_slice(args);
    let out = server.cli(&all);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Leftovers: objects whose index commit was lost, a file nobody indexed, and a report object
/// whose signature never committed are named by `verify --all`; an administrator adopts or
/// quarantines each, audited, and nothing is deleted.
fn leftovers_are_adopted_or_quarantined(db: Db) {
    let server = Server::start_with(
        db,
        Store::Local,
        &[("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0")],
    );
    let clinic = server.token("slaugytoja", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    signer_profile(&server, "dr-a");
    let (_, referred) = signed_case(&server, &clinic, &reader, 1);
    let (ok, log) = dcmsend(server.dicom_port, &test_images()[..1]);
    assert!(ok, "{log}");
    let lost = server
        .studies()
        .iter()
        .map(|s| s["study_uid"].as_str().unwrap().to_owned())
        .find(|uid| *uid != referred)
        .unwrap();
    let lost_detail = server.show(&lost);
    let mut lost_keys: Vec<String> = lost_detail["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["object_key"].as_str().unwrap().to_owned())
        .collect();
    lost_keys.sort();
    // The index commit of that study "failed": its rows are gone, its objects stayed.
    for sql in [
        format!(
            "DELETE FROM instance_owners WHERE sop_instance_uid IN
             (SELECT sop_instance_uid FROM instances WHERE study_uid = '{lost}')"
        ),
        format!("DELETE FROM instances WHERE study_uid = '{lost}'"),
        format!("DELETE FROM series WHERE study_uid = '{lost}'"),
        format!("DELETE FROM studies WHERE study_uid = '{lost}'"),
    ] {
        server.execute_sql(&sql);
    }
    // A file nobody indexed.
    let junk = format!("cda/{}.xml", "0f".repeat(32));
    let junk_file = file_of(&server, &junk);
    std::fs::write(&junk_file, b"<not-a-referral/>").unwrap();
    // The report's signature "never committed": no signed version names its object.
    let before = server.show(&referred);
    let report_key = before["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.104.1")
        .expect("report object")["object_key"]
        .as_str()
        .unwrap()
        .to_owned();
    server.execute_sql("UPDATE reports SET document_key = ''");
    server.execute_sql(&format!(
        "UPDATE instances SET received_at = received_at - 3600000000
         WHERE object_key = '{report_key}'"
    ));

    let (code, report, stderr) = verify(&server, &["--all"]);
    assert_eq!(code, 0, "{stderr}");
    let mut expected = lost_keys.clone();
    expected.push(junk.clone());
    expected.sort();
    assert_eq!(report["unindexed"], serde_json::json!(expected), "{report}");
    assert_eq!(report["orphan_reports"][0]["key"], report_key.as_str());
    assert_eq!(report["orphan_reports"].as_array().unwrap().len(), 1);

    // Bad decisions change nothing.
    assert_eq!(orphans(&server, &["adopt", &junk, "--reason", "x"]).0, 2);
    assert_eq!(
        orphans(&server, &["adopt", &lost_keys[0], "--reason", " "]).0,
        2
    );
    assert_eq!(
        orphans(
            &server,
            &["adopt", "dicom/none/1.2/1.2.3/x.dcm", "--reason", "x"]
        )
        .0,
        3
    );
    let indexed = before["instances"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["object_key"] != report_key.as_str())
        .unwrap()["object_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, said) = orphans(&server, &["quarantine", &indexed, "--reason", "x"]);
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("no leftover"), "{said}");
    assert!(file_of(&server, &indexed).exists());

    // Adopted: the lost study is back as it was.
    for key in &lost_keys {
        let (code, said) = orphans(&server, &["adopt", key, "--reason", "index commit lost"]);
        assert_eq!(code, 0, "{said}");
    }
    // As it was, but received when its object became durable (the lost row's time is lost).
    let without_time = |detail: &Value| {
        let mut rows = detail["instances"].as_array().unwrap().clone();
        for r in &mut rows {
            r.as_object_mut().unwrap().remove("received_at");
        }
        rows
    };
    let back = server.show(&lost);
    assert_eq!(without_time(&back), without_time(&lost_detail));
    // Quarantined: moved, not deleted; the report object leaves its study.
    let (code, said) = orphans(&server, &["quarantine", &junk, "--reason", "not ours"]);
    assert_eq!(code, 0, "{said}");
    assert!(!junk_file.exists());
    assert_eq!(
        std::fs::read(file_of(&server, &format!("quarantine/{junk}"))).unwrap(),
        b"<not-a-referral/>"
    );
    let (code, said) = orphans(
        &server,
        &[
            "quarantine",
            &report_key,
            "--reason",
            "signature never committed",
        ],
    );
    assert_eq!(code, 0, "{said}");
    assert!(file_of(&server, &format!("quarantine/{report_key}")).exists());
    let after = server.show(&referred);
    assert_eq!(
        after["instances"].as_array().unwrap().len(),
        before["instances"].as_array().unwrap().len() - 1
    );
    assert_eq!(
        after["study"]["num_instances"].as_i64().unwrap(),
        before["study"]["num_instances"].as_i64().unwrap() - 1
    );

    let (code, report, stderr) = verify(&server, &["--all"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["unindexed"], serde_json::json!([]), "{report}");
    assert_eq!(report["orphan_reports"], serde_json::json!([]), "{report}");
    let adopted = server.audit_events("orphan_adopt");
    assert!(adopted.iter().any(|(_, _, o)| o == "done"));
    assert!(adopted.iter().any(|(_, _, o)| o.starts_with("refused")));
    assert!(server
        .audit_events("orphan_quarantine")
        .iter()
        .any(|(_, _, o)| o.starts_with("done: moved to quarantine/")));
}

#[test]
fn leftovers_are_adopted_or_quarantined_sqlite() {
    leftovers_are_adopted_or_quarantined(Db::Sqlite);
}

#[test]
fn leftovers_are_adopted_or_quarantined_postgres() {
    leftovers_are_adopted_or_quarantined(Db::Postgres);
}

/// The same on moto's S3: an object overwritten and another deleted behind the service's back
/// (with boto3, past the service's create-only writes) are named; a stray object too.
fn altered_and_missing_on_s3(db: Db) {
    let server = Server::start(db, Store::S3);
    let (ok, log) = dcmsend(server.dicom_port, &test_images()[..2]);
    assert!(ok, "{log}");
    let (code, _, stderr) = verify(&server, &["--all"]);
    assert_eq!(code, 0, "{stderr}");
    let keys: Vec<String> = server
        .instances()
        .iter()
        .map(|i| i["object_key"].as_str().unwrap().to_owned())
        .collect();
    let (altered, deleted) = (keys[0].clone(), keys[1].clone());
    let mut bytes = server.object(&altered);
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("altered.dcm");
    std::fs::write(&body, &bytes).unwrap();
    let stray = "dicom/demo/stray.dcm";
    let script = r#"
import sys, boto3
endpoint, bucket, altered, body, deleted, stray = sys.argv[1:7]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
s3.put_object(Bucket=bucket, Key=altered, Body=open(body, "rb").read())
s3.delete_object(Bucket=bucket, Key=deleted)
s3.put_object(Bucket=bucket, Key=stray, Body=b"stray")
"#;
    let out = std::process::Command::new(python())
        .args(["-c", script, &s3_endpoint()])
        .arg(server.store_url().trim_start_matches("s3://"))
        .arg(&altered)
        .arg(&body)
        .arg(&deleted)
        .arg(stray)
        .output()
        .expect("python");
    assert!(out.status.success(), "{out:?}");

    let (code, report, stderr) = verify(&server, &["--all"]);
    assert_eq!(code, 1, "{stderr}");
    let mut found = failures(&report);
    found.sort();
    let mut expected = vec![
        ("altered".to_owned(), altered.clone()),
        ("missing".to_owned(), deleted.clone()),
    ];
    expected.sort();
    assert_eq!(found, expected, "{report}");
    assert_eq!(report["unindexed"], serde_json::json!([stray]), "{report}");
}

#[test]
fn altered_and_missing_on_s3_sqlite() {
    altered_and_missing_on_s3(Db::Sqlite);
}

#[test]
fn altered_and_missing_on_s3_postgres() {
    altered_and_missing_on_s3(Db::Postgres);
}
