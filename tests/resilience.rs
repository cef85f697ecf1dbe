//! Durability and load: SIGKILL mid-ingest, a 1 GiB object in bounded memory, many associations
//! at once, association limits and timeouts.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// SHA-256 of a Part 10 file's data set, streamed.
fn dataset_sha256(path: &Path) -> String {
    let mut file = std::fs::File::open(path).unwrap();
    let mut head = vec![0u8; 144];
    file.read_exact(&mut head).unwrap();
    let group_length = u32::from_le_bytes(head[140..144].try_into().unwrap()) as usize;
    let mut skip = vec![0u8; group_length];
    file.read_exact(&mut skip).unwrap();
    sha256_of(file)
}

fn sigkill_mid_ingest_loses_nothing_acknowledged(db: Db) {
    let mut server = Server::start(db, Store::Local);
    let dir = server.data_dir().join("corpus");
    let files = corpus(
        &dir,
        &["--set", "corpus", "--kind", "small", "--count", "300"],
    );
    assert!(files.len() >= 300);

    let sender = dcmtk("storescu")
        .args([
            "-v",
            "-aet",
            CLINIC_AE,
            "-aec",
            AE,
            "127.0.0.1",
            &server.dicom_port.to_string(),
        ])
        .args(&files)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(120), || {
        server.log().matches(" stored ").count() >= 40
    });
    server.kill9();
    let output = sender.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let acked = acknowledged(&text);
    assert!(
        acked.len() >= 40,
        "only {} acknowledged:\n{text}",
        acked.len()
    );
    assert!(
        acked.len() < files.len(),
        "the kill came too late to test anything"
    );

    server.restart();
    let indexed = assert_all_kept(&server, &acked);
    // At most the one object in flight at the kill was stored without its answer arriving.
    assert!(
        indexed.len() <= acked.len() + 1,
        "{} indexed, {} acked",
        indexed.len(),
        acked.len()
    );
    for row in indexed.values() {
        let stored = server.object(row["object_key"].as_str().unwrap());
        assert_eq!(sha256_hex(&stored), row["sha256"].as_str().unwrap());
    }
    // Nothing half-written left in the store.
    let staging = server.data_dir().join("objects/staging");
    let leftovers: Vec<_> = std::fs::read_dir(&staging)
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    assert!(leftovers.is_empty(), "staging not swept: {leftovers:?}");
    let objects = server.data_dir().join("objects");
    wait_for(Duration::from_secs(30), || temporaries(&objects).is_empty());

    // And the service goes on: the rest arrives.
    let (ok, out) = storescu(server.dicom_port, &files);
    assert!(ok, "{out}");
    assert_eq!(server.instances().len(), files.len());
}

/// Temporary files of interrupted writes anywhere under `dir`.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains('#'))
        })
        .collect()
}

#[test]
fn sigkill_mid_ingest_loses_nothing_acknowledged_sqlite() {
    sigkill_mid_ingest_loses_nothing_acknowledged(Db::Sqlite)
}

#[test]
fn sigkill_mid_ingest_loses_nothing_acknowledged_postgres() {
    sigkill_mid_ingest_loses_nothing_acknowledged(Db::Postgres)
}

#[test]
fn gigabyte_object_streams_in_bounded_memory() {
    let server = Server::start(Db::Sqlite, Store::Local);
    let dir = server.data_dir().join("big");
    let files = corpus(&dir, &["--set", "big", "--size-mib", "1024"]);
    assert_eq!(files.len(), 1);
    let size = std::fs::metadata(&files[0]).unwrap().len();
    assert!(size >= 1 << 30, "generated only {size} bytes");

    let (ok, out) = storescu(server.dicom_port, &files);
    assert!(
        ok && out.contains("Received Store Response (Success)"),
        "{out}"
    );
    let peak = server.peak_rss();
    eprintln!(
        "server peak RSS after a {size}-byte object: {} MiB",
        peak >> 20
    );
    assert!(peak < 100 * 1024 * 1024, "peak RSS {} MiB", peak >> 20);

    let rows = server.instances();
    assert_eq!(rows.len(), 1);
    let key = rows[0]["object_key"].as_str().unwrap();
    let expected = dataset_sha256(&files[0]);
    assert!(
        key.ends_with(&format!("{expected}.dcm")),
        "{key} vs {expected}"
    );
    let stored = server.data_dir().join("objects").join(key);
    assert_eq!(dataset_sha256(&stored), expected, "stored data set differs");
    std::fs::remove_file(&files[0]).unwrap();
}

fn concurrent_associations_keep_study_aggregates_exact(db: Db) {
    let server = Server::start(db, Store::Local);
    let dir = server.data_dir().join("corpus");
    let files = corpus(
        &dir,
        &["--set", "corpus", "--kind", "small", "--count", "160"],
    );
    // One association held open and idle must not hold anyone up.
    let idle = std::net::TcpStream::connect(("127.0.0.1", server.dicom_port)).unwrap();
    let senders: Vec<_> = files
        .chunks(files.len().div_ceil(32))
        .map(|chunk| {
            dcmtk("storescu")
                .args([
                    "-v",
                    "-aet",
                    CLINIC_AE,
                    "-aec",
                    AE,
                    "127.0.0.1",
                    &server.dicom_port.to_string(),
                ])
                .args(chunk)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    assert_eq!(senders.len(), 32);
    let mut acked = 0;
    for sender in senders {
        let out = sender.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        acked += acknowledged(&text).len();
    }
    drop(idle);
    assert_eq!(acked, files.len());
    let studies = server.studies();
    let mut total = 0;
    for study in &studies {
        let uid = study["study_uid"].as_str().unwrap();
        let detail = server.show(uid);
        let instances = detail["instances"].as_array().unwrap();
        assert_eq!(
            study["num_instances"].as_u64().unwrap() as usize,
            instances.len(),
            "{uid}"
        );
        let bytes: u64 = instances
            .iter()
            .map(|i| i["size_bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(study["total_bytes"].as_u64().unwrap(), bytes, "{uid}");
        let series = detail["series"].as_array().unwrap();
        assert_eq!(study["num_series"].as_u64().unwrap() as usize, series.len());
        for s in series {
            let n = instances
                .iter()
                .filter(|i| i["series_uid"] == s["series_uid"])
                .count();
            assert_eq!(s["num_instances"].as_u64().unwrap() as usize, n);
        }
        total += instances.len();
    }
    assert_eq!(total, files.len());
}

#[test]
fn concurrent_associations_keep_study_aggregates_exact_sqlite() {
    concurrent_associations_keep_study_aggregates_exact(Db::Sqlite)
}

#[test]
fn concurrent_associations_keep_study_aggregates_exact_postgres() {
    concurrent_associations_keep_study_aggregates_exact(Db::Postgres)
}

fn open_association(
    port: u16,
) -> dicom_ul::association::client::ClientAssociation<std::net::TcpStream> {
    dicom_ul::ClientAssociationOptions::new()
        .calling_ae_title(CLINIC_AE)
        .called_ae_title(AE)
        .with_abstract_syntax("1.2.840.10008.1.1")
        .establish(("127.0.0.1", port))
        .expect("association")
}

#[test]
fn excess_associations_are_refused_as_transient() {
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[("TELECARDIO_DICOM__MAX_ASSOCIATIONS_PER_CLINIC", "2")],
    );
    let first = open_association(server.dicom_port);
    let _second = open_association(server.dicom_port);
    let (ok, out) = echo(server.dicom_port);
    assert!(!ok);
    assert!(
        out.contains("Rejected Transient") && out.contains("Local Limit Exceeded"),
        "{out}"
    );
    first.release().unwrap();
    wait_for(Duration::from_secs(10), || echo(server.dicom_port).0);
    let events = server.audit_events("dicom_association_rejected");
    assert!(
        events.iter().any(|(_, _, o)| o == "limit_institution"),
        "{events:?}"
    );
}

#[test]
fn silent_peers_are_dropped_by_artim_and_idle_timeouts() {
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[
            ("TELECARDIO_DICOM__ARTIM_TIMEOUT_SECS", "1"),
            ("TELECARDIO_DICOM__IDLE_TIMEOUT_SECS", "1"),
        ],
    );
    // Connects and never sends an A-ASSOCIATE-RQ.
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", server.dicom_port)).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 16];
    let n = silent.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "ARTIM expiry closes the connection");

    // Associates, then says nothing.
    let mut idle = open_association(server.dicom_port);
    std::thread::sleep(Duration::from_millis(2500));
    let answer = idle.receive();
    assert!(
        matches!(answer, Ok(dicom_ul::Pdu::AbortRQ { .. }) | Err(_)),
        "idle association not aborted: {answer:?}"
    );
    assert!(server.log().contains("idle timeout"));
    assert!(echo(server.dicom_port).0, "service still answers");
}

fn status_of(output: &str) -> &str {
    if output.contains("Received Store Response (Success)") {
        "success"
    } else if output.contains("Received Store Response (Refused: OutOfResources)") {
        "out of resources"
    } else {
        "other"
    }
}

#[test]
fn database_failure_answers_out_of_resources_and_recovers() {
    use sqlx::Connection;
    let server = Server::start(Db::Postgres, Store::Local);
    let url = server.database_url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut conn = rt.block_on(sqlx::PgConnection::connect(&url)).unwrap();
    let file = test_image("us-single.dcm");

    rt.block_on(sqlx::query("ALTER TABLE instances RENAME TO instances_away").execute(&mut conn))
        .unwrap();
    let (_, out) = storescu(server.dicom_port, std::slice::from_ref(&file));
    assert_eq!(status_of(&out), "out of resources", "{out}");
    assert!(
        server.log().contains("index query"),
        "log names the failed step"
    );
    assert!(echo(server.dicom_port).0, "still serving");

    rt.block_on(sqlx::query("ALTER TABLE instances_away RENAME TO instances").execute(&mut conn))
        .unwrap();
    // The retry finds the object already durable and indexes it.
    let (ok, out) = storescu(server.dicom_port, std::slice::from_ref(&file));
    assert!(ok && status_of(&out) == "success", "{out}");
    let rows = server.instances();
    assert_eq!(rows.len(), 1);
    let stored = server.object(rows[0]["object_key"].as_str().unwrap());
    assert_eq!(sha256_hex(&stored), rows[0]["sha256"].as_str().unwrap());
    assert_eq!(rows[0]["calling_ae"], CLINIC_AE);
}

#[test]
fn store_failure_answers_out_of_resources_and_recovers() {
    let server = Server::start(Db::Sqlite, Store::S3);
    let file = test_image("us-single.dcm");
    // Take the bucket away under the running service.
    server.s3_bucket_request("DELETE");
    let (_, out) = storescu(server.dicom_port, std::slice::from_ref(&file));
    assert_eq!(status_of(&out), "out of resources", "{out}");
    assert!(
        server.studies().is_empty(),
        "nothing indexed without its object"
    );
    let (status, _) = http(server.http_port, "GET", "/healthz", &[]).unwrap();
    assert_eq!(status, 503, "health reports the store");

    server.s3_bucket_request("PUT");
    let (ok, out) = storescu(server.dicom_port, std::slice::from_ref(&file));
    assert!(ok && status_of(&out) == "success", "{out}");
    assert_eq!(server.instances().len(), 1);
}
