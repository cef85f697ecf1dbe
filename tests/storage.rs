//! The storage SCP driven by DCMTK (`echoscu`, `storescu`, `dcmsend`) against the real binary,
//! on every index engine and object store.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::Value;

/// Runs a scenario on SQLite and PostgreSQL, each with a local directory and with S3.
macro_rules! on_every_backend {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;
            #[test]
            fn sqlite_local() {
                super::$scenario(Db::Sqlite, Store::Local)
            }
            #[test]
            fn postgres_local() {
                super::$scenario(Db::Postgres, Store::Local)
            }
            #[test]
            fn sqlite_s3() {
                super::$scenario(Db::Sqlite, Store::S3)
            }
            #[test]
            fn postgres_s3() {
                super::$scenario(Db::Postgres, Store::S3)
            }
        }
    };
}

/// Runs a scenario on both index engines with the local store.
macro_rules! on_both_engines {
    ($scenario:ident) => {
        mod $scenario {
            use super::*;
            #[test]
            fn sqlite() {
                super::$scenario(Db::Sqlite, Store::Local)
            }
            #[test]
            fn postgres() {
                super::$scenario(Db::Postgres, Store::Local)
            }
        }
    };
}

fn successes(output: &str) -> usize {
    output.matches("Received Store Response (Success)").count()
}

fn echo_and_store_every_test_image(db: Db, store: Store) {
    let server = Server::start(db, store);
    let (ok, out) = echo(server.dicom_port);
    assert!(ok, "echoscu failed:\n{out}");

    let files = test_images();
    let (ok, out) = storescu(server.dicom_port, &files);
    assert!(ok, "storescu failed:\n{out}");
    assert_eq!(successes(&out), files.len(), "{out}");

    let instances = server.instances();
    assert_eq!(instances.len(), files.len());
    // DCMTK re-encodes a data set when it sends it; DCMTK's own bit-preserving storescp tells
    // what went over the wire.
    let sent_on_wire = wire_capture(&files);
    for file in &files {
        let sent = std::fs::read(file).unwrap();
        let sop_uid = meta_value(&sent, 0x0003);
        let row = instances
            .iter()
            .find(|i| i["sop_instance_uid"] == sop_uid.as_str())
            .unwrap_or_else(|| panic!("{} not indexed", file.display()));
        let stored = server.object(row["object_key"].as_str().unwrap());
        assert_same_bytes(
            dataset_of(&stored),
            &sent_on_wire[&sop_uid],
            &file.display().to_string(),
        );
        assert_eq!(sha256_hex(&stored), row["sha256"].as_str().unwrap());
        assert_eq!(
            meta_value(&stored, 0x0016),
            CLINIC_AE,
            "source AE in file meta"
        );
        assert_eq!(
            meta_value(&stored, 0x0010),
            meta_value(&sent, 0x0010),
            "transfer syntax"
        );
        assert_eq!(row["calling_ae"], CLINIC_AE);
        assert_eq!(row["clinic_id"], "demo");
        assert_eq!(row["size_bytes"].as_u64().unwrap() as usize, stored.len());
    }

    let studies = server.studies();
    let total: i64 = studies
        .iter()
        .map(|s| s["num_instances"].as_i64().unwrap())
        .sum();
    assert_eq!(total as usize, files.len());
    let table = String::from_utf8(server.cli(&["studies"]).stdout).unwrap();
    assert!(table.contains("PATIENT"), "{table}");
    for study in &studies {
        assert!(
            table.contains(study["study_uid"].as_str().unwrap()),
            "{table}"
        );
        assert!(!study["modalities"].as_str().unwrap().is_empty());
        assert_eq!(study["clinic_id"], "demo");
    }
}
on_every_backend!(echo_and_store_every_test_image);

fn identical_resend_is_stored_once_and_different_content_kept_with_warning(db: Db, store: Store) {
    let server = Server::start(db, store);
    let file = test_image("us-single.dcm");
    for _ in 0..2 {
        let (ok, out) = storescu(server.dicom_port, std::slice::from_ref(&file));
        assert!(ok && successes(&out) == 1, "{out}");
    }
    assert_eq!(server.instances().len(), 1);

    // Same SOP Instance UID, other content.
    let altered = server.data_dir().join("altered.dcm");
    std::fs::copy(&file, &altered).unwrap();
    let (ok, out) = run({
        let mut c = dcmtk("dcmodify");
        c.args(["-nb", "-m", "(0008,1030)=Altered after sending"])
            .arg(&altered);
        c
    });
    assert!(ok, "dcmodify: {out}");
    let (_, out) = storescu(server.dicom_port, std::slice::from_ref(&altered));
    assert!(
        out.contains("Received Store Response (Warning"),
        "expected a warning:\n{out}"
    );

    let instances = server.instances();
    assert_eq!(instances.len(), 2, "both contents kept");
    let study_uid = server.studies()[0]["study_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let detail = server.show(&study_uid);
    let sop_uid = meta_value(&std::fs::read(&file).unwrap(), 0x0003);
    assert_eq!(detail["conflicts"], serde_json::json!([sop_uid]));
    let text = String::from_utf8(server.cli(&["show", &study_uid]).stdout).unwrap();
    assert!(text.contains("Conflicts"), "{text}");
}
on_every_backend!(identical_resend_is_stored_once_and_different_content_kept_with_warning);

fn undeclared_and_misaddressed_associations_are_rejected_and_audited(db: Db, store: Store) {
    let server = Server::start(db, store);
    let port = server.dicom_port.to_string();
    let (ok, out) = echoscu_as(server.dicom_port, "STRANGER", AE);
    assert!(!ok);
    assert!(out.contains("Calling AE Title Not Recognized"), "{out}");
    let (ok, out) = echoscu_as(server.dicom_port, CLINIC_AE, "NOT_US");
    assert!(!ok);
    assert!(out.contains("Called AE Title Not Recognized"), "{out}");
    // A rejected sender stores nothing.
    let (ok, _) = run({
        let mut c = dcmtk("storescu");
        c.args(["-aet", "STRANGER", "-aec", AE, "127.0.0.1", &port]);
        c.arg(test_image("us-single.dcm"));
        c
    });
    assert!(!ok);
    assert!(server.studies().is_empty());

    let events = server.audit_events("dicom_association_rejected");
    let outcomes: Vec<&str> = events.iter().map(|(_, _, o)| o.as_str()).collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == "calling_ae_unknown")
            .count(),
        2,
        "{events:?}"
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == "called_ae_unknown")
            .count(),
        1,
        "{events:?}"
    );
    assert!(events.iter().all(|(_, address, _)| address == "127.0.0.1"));
}
on_both_engines!(undeclared_and_misaddressed_associations_are_rejected_and_audited);

/// Compressed and deflated objects, made by DCMTK's own codecs, are stored as received.
fn compressed_transfer_syntaxes_are_stored_as_received(db: Db, store: Store) {
    let server = Server::start(db, store);
    let source = test_image("us-single.dcm");
    let dir = server.data_dir().join("encoded");
    std::fs::create_dir_all(&dir).unwrap();
    let variants: [(&str, &[&str], &str); 4] = [
        ("dcmcjpeg", &[], "1.2.840.10008.1.2.4.70"),
        ("dcmcjpeg", &["+eb"], "1.2.840.10008.1.2.4.50"),
        ("dcmcrle", &[], "1.2.840.10008.1.2.5"),
        ("dcmconv", &["+td"], "1.2.840.10008.1.2.1.99"),
    ];
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    for (i, (tool, args, ts)) in variants.iter().enumerate() {
        let out_file = dir.join(format!("v{i}.dcm"));
        let (ok, out) = run({
            let mut c = dcmtk(tool);
            c.args(*args).arg(&source).arg(&out_file);
            c
        });
        assert!(ok, "{tool}: {out}");
        // Each variant needs its own SOP Instance UID to be a distinct object.
        let (ok, out) = run({
            let mut c = dcmtk("dcmodify");
            c.args([
                "-nb",
                "-m",
                &format!("(0008,0018)=1.2.826.0.1.3680043.10.1234.{i}"),
            ])
            .arg(&out_file);
            c
        });
        assert!(ok, "dcmodify: {out}");
        files.push((out_file, ts));
    }
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    let (ok, out) = dcmsend(server.dicom_port, &paths);
    assert!(
        ok && !out.contains("REFUSED") && !out.contains("FAILED"),
        "{out}"
    );

    let instances = server.instances();
    let sent_on_wire = wire_capture_with("dcmsend", &paths);
    for (path, ts) in &files {
        let sent = std::fs::read(path).unwrap();
        assert_eq!(
            meta_value(&sent, 0x0010),
            *ts,
            "DCMTK produced another syntax"
        );
        let sop = meta_value(&sent, 0x0003);
        let row: &Value = instances
            .iter()
            .find(|r| r["sop_instance_uid"] == sop.as_str())
            .unwrap_or_else(|| panic!("{sop} not stored:\n{out}"));
        assert_eq!(row["transfer_syntax"], *ts);
        let stored = server.object(row["object_key"].as_str().unwrap());
        assert_same_bytes(dataset_of(&stored), &sent_on_wire[&sop], ts);
    }
}
on_both_engines!(compressed_transfer_syntaxes_are_stored_as_received);

#[test]
fn health_and_metrics_report_the_service() {
    let server = Server::start(Db::Sqlite, Store::Local);
    let (status, body) = http(server.http_port, "GET", "/healthz", &[]).unwrap();
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["database"], "ok");
    assert_eq!(health["store"], "ok");

    let file = test_image("us-single.dcm");
    let (ok, out) = storescu(server.dicom_port, std::slice::from_ref(&file));
    assert!(ok, "{out}");
    let (status, body) = http(server.http_port, "GET", "/metrics", &[]).unwrap();
    assert_eq!(status, 200);
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(
        body.contains("telecardio_objects_received_total 1"),
        "{body}"
    );
    assert!(
        body.contains("telecardio_dicom_associations_total{outcome=\"accepted\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("telecardio_store_write_seconds_count 1"),
        "{body}"
    );
    let bytes: u64 = body
        .lines()
        .find_map(|l| l.strip_prefix("telecardio_bytes_received_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("bytes counter");
    // The stored object is the sent file with our own file meta: close in size.
    assert!(bytes.abs_diff(size) < 512, "{bytes} vs {size}");

    // Unknown routes are behind authentication too: a stranger learns nothing but 401.
    let (status, _) = http(server.http_port, "GET", "/api/anything", &[]).unwrap();
    assert_eq!(status, 401);
}
