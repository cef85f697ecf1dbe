//! Fixity (`telecardio verify`) against the real binary: every stored object read back and
//! compared with the hash recorded on arrival; one byte changed on disk, or an object deleted
//! behind the service's back, is named exactly, and the exit status says so.

mod common;

use std::path::PathBuf;

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
    let text = server.cli(&["verify", "--all"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("every object matches"),
        "{text:?}"
    );

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
