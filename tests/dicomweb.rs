//! DICOMweb with a client nobody here wrote: the Python `dicomweb-client` package (installed by
//! `./deploy/test.sh` into `.venv/`) runs QIDO-RS, WADO-RS and STOW-RS round trips and the
//! scoping checks against the real server, on SQLite and PostgreSQL. The HTTP-level details
//! (status codes, headers, multipart framing) are checked here directly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const STUDY: &str = "2.25.143334534848296470270503991942325904385";

fn python() -> PathBuf {
    std::env::var_os("TC_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

fn start(db: Db) -> Server {
    let clinics = format!(
        r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[]}},
            {{id="other", name="Other", ae_titles=["OTHER_CLINIC"], networks=[]}}]"#
    );
    Server::start_with(
        db,
        Store::Local,
        &[("TELECARDIO_CLINICS", clinics.as_str())],
    )
}

/// A token-only account and its bearer token.
fn token(server: &Server, name: &str, role: &str, institution: &str) -> String {
    let mut args = vec!["user", "add", name, "--role", role];
    if !institution.is_empty() {
        args.extend(["--institution", institution]);
    }
    let out = server.cli_with_input(&args, "");
    assert!(out.status.success(), "{out:?}");
    let out = server.cli(&["token", "create", name]);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Two objects of a new study, to be sent with STOW-RS.
fn stow_files(dir: &Path) -> Vec<PathBuf> {
    ["us-single.dcm", "ecg-12lead.dcm"]
        .iter()
        .enumerate()
        .map(|(i, template)| {
            let out = dir.join(format!("stow{i}.dcm"));
            std::fs::copy(test_image(template), &out).unwrap();
            let mut cmd = dcmtk("dcmodify");
            cmd.arg("-nb");
            for change in [
                "(0020,000D)=2.25.2001".to_owned(),
                format!("(0020,000E)=2.25.2001.{i}"),
                format!("(0008,0018)=2.25.2001.{i}.1"),
            ] {
                cmd.arg("-m").arg(change);
            }
            cmd.arg(&out);
            let (ok, log) = run(cmd);
            assert!(ok, "{log}");
            out
        })
        .collect()
}

/// The multi-frame echo clip compressed by DCMTK as JPEG baseline and RLE, in a study of their
/// own, as `series:instance:syntax:media:lossless` entries for the client script.
fn encapsulated_files(dir: &Path) -> (Vec<PathBuf>, String) {
    let source = test_image("us-multiframe-echo.dcm");
    let variants = [
        ("dcmcjpeg", "+eb", "1.2.840.10008.1.2.4.50", "image/jpeg", "lossy"),
        ("dcmcrle", "+un", "1.2.840.10008.1.2.5", "image/dicom-rle", "lossless"),
    ];
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (i, (tool, option, syntax, media, lossless)) in variants.into_iter().enumerate() {
        let out = dir.join(format!("{tool}.dcm"));
        let mut cmd = dcmtk(tool);
        cmd.arg(option).arg(&source).arg(&out);
        let (ok, log) = run(cmd);
        assert!(ok, "{log}");
        let (series, instance) = (format!("2.25.3001.{i}"), format!("2.25.3001.{i}.1"));
        let mut cmd = dcmtk("dcmodify");
        cmd.arg("-nb");
        for change in [
            "(0020,000D)=2.25.3001".to_owned(),
            format!("(0020,000E)={series}"),
            format!("(0008,0018)={instance}"),
        ] {
            cmd.arg("-m").arg(change);
        }
        cmd.arg(&out);
        let (ok, log) = run(cmd);
        assert!(ok, "{log}");
        assert_eq!(meta_value(&std::fs::read(&out).unwrap(), 0x0010), syntax);
        files.push(out);
        entries.push(format!("{series}:{instance}:{syntax}:{media}:{lossless}"));
    }
    (files, entries.join(","))
}

fn roundtrip(db: Db) {
    let server = start(db);
    let (ok, log) = storescu(server.dicom_port, &test_images());
    assert!(ok, "{log}");
    let reader = token(&server, "dr.jonaitis", "cardiologist", "demo-centre");
    let clinic = token(&server, "demo-pacs", "clinic", "demo");
    let other = token(&server, "other-pacs", "clinic", "other");
    let auditor = token(&server, "auditorius", "auditor", "");
    let dir = tempfile::tempdir().unwrap();
    let files = stow_files(dir.path());
    let (encapsulated, entries) = encapsulated_files(dir.path());
    let (ok, log) = dcmsend(server.dicom_port, &encapsulated);
    assert!(ok, "{log}");
    let joined = std::env::join_paths(&files).unwrap();
    let output = Command::new(python())
        .arg(repo().join("tests/clients/dicomweb_client_roundtrip.py"))
        .env(
            "TC_URL",
            format!("http://127.0.0.1:{}/dicom-web", server.http_port),
        )
        .env("TC_STUDY", STUDY)
        .env("TC_STOW_FILES", joined)
        .env("TC_STOW_STUDY", "2.25.2001")
        .env("TC_ENC_STUDY", "2.25.3001")
        .env("TC_ENCAPSULATED", entries)
        .env("TC_READER_TOKEN", &reader)
        .env("TC_CLINIC_TOKEN", &clinic)
        .env("TC_OTHER_TOKEN", &other)
        .env("TC_AUDITOR_TOKEN", &auditor)
        .output()
        .expect("run python (./deploy/test.sh installs it into .venv)");
    assert!(
        output.status.success(),
        "dicomweb-client round trips failed:\n{}\n{}\n--- server log ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    // The STOW-RS objects are stored like C-STORE ones: indexed under the sending clinic.
    let stored = server.show("2.25.2001");
    assert_eq!(stored["study"]["clinic_id"], "demo");
    assert_eq!(stored["instances"].as_array().unwrap().len(), 2);
    // Each refused attempt is audited.
    let retrievals = server.audit_events("retrieve");
    assert!(retrievals
        .iter()
        .any(|(actor, _, outcome)| actor == "other-pacs" && outcome.contains("outside")));
    let stores = server.audit_events("store");
    assert!(stores
        .iter()
        .any(|(actor, _, outcome)| actor == "auditorius" && outcome.starts_with("denied")));
}

#[test]
fn dicomweb_client_roundtrips_sqlite() {
    roundtrip(Db::Sqlite);
}

#[test]
fn dicomweb_client_roundtrips_postgres() {
    roundtrip(Db::Postgres);
}

/// Status codes, headers and framing a client library would hide.
#[test]
fn dicomweb_http_details() {
    let server = start(Db::Sqlite);
    let (ok, log) = storescu(server.dicom_port, &test_images());
    assert!(ok, "{log}");
    let reader = token(&server, "dr.jonaitis", "cardiologist", "demo-centre");
    let auth = format!("Bearer {reader}");
    let get = |path: &str, accept: &str| {
        request(
            server.http_port,
            "GET",
            path,
            &[("Authorization", &auth), ("Accept", accept)],
            b"",
        )
    };
    let reply = get(
        "/dicom-web/studies?PatientName=*&limit=1",
        "application/dicom+json",
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("Content-Type").as_deref(),
        Some("application/dicom+json")
    );
    // Bad parameters are named.
    let reply = get(
        "/dicom-web/studies?NoSuchAttribute=1",
        "application/dicom+json",
    );
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["field"], "NoSuchAttribute");
    let reply = get(
        "/dicom-web/studies?StudyDate=yesterday",
        "application/dicom+json",
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["error"]
        .as_str()
        .unwrap()
        .contains("StudyDate"));
    let reply = get("/dicom-web/studies?limit=0", "application/dicom+json");
    assert_eq!(reply.status, 400);
    // Keys we cannot match on are reported in a Warning, not silently ignored.
    let reply = get(
        "/dicom-web/studies?InstitutionName=X",
        "application/dicom+json",
    );
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("Warning")
        .unwrap_or_default()
        .contains("InstitutionName"));
    let reply = get("/dicom-web/studies", "image/png");
    assert_eq!(reply.status, 406);
    // A transfer syntax we would have to transcode to is refused, not faked.
    let path = format!("/dicom-web/studies/{STUDY}");
    let reply = get(
        &path,
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50",
    );
    assert_eq!(reply.status, 406, "{}", reply.body);
    let reply = get(&path, "multipart/related; type=\"application/dicom\"");
    assert_eq!(reply.status, 200);
    let content_type = reply.header("Content-Type").unwrap();
    assert!(
        content_type.starts_with("multipart/related"),
        "{content_type}"
    );
    let boundary = content_type.split("boundary=").nth(1).unwrap().to_owned();
    assert_eq!(reply.body.matches(&format!("--{boundary}\r\n")).count(), 5);
    assert!(reply.body.contains(&format!("--{boundary}--")));
    // STOW-RS without multipart is 415; an empty multipart is 400.
    let clinic = token(&server, "demo-pacs", "clinic", "demo");
    let clinic_auth = format!("Bearer {clinic}");
    let reply = request(
        server.http_port,
        "POST",
        "/dicom-web/studies",
        &[
            ("Authorization", &clinic_auth),
            ("Content-Type", "application/dicom"),
        ],
        b"DICM",
    );
    assert_eq!(reply.status, 415);
    let reply = request(
        server.http_port,
        "POST",
        "/dicom-web/studies",
        &[
            ("Authorization", &clinic_auth),
            (
                "Content-Type",
                "multipart/related; type=\"application/dicom\"; boundary=b",
            ),
        ],
        b"--b--\r\n",
    );
    assert_eq!(reply.status, 400, "{}", reply.body);
    // A part that is not DICOM fails with a reason and stores nothing.
    let body = b"--b\r\nContent-Type: application/dicom\r\n\r\nthis is not a DICOM file at all, not even close to one; more text to pass the header length of one hundred and forty four bytes...........\r\n--b--\r\n";
    let reply = request(
        server.http_port,
        "POST",
        "/dicom-web/studies",
        &[
            ("Authorization", &clinic_auth),
            (
                "Content-Type",
                "multipart/related; type=\"application/dicom\"; boundary=b",
            ),
        ],
        body,
    );
    assert_eq!(reply.status, 409, "{}", reply.body);
    let failed = &reply.json()["00081198"]["Value"][0];
    assert_eq!(failed["00081197"]["Value"][0], 0xC000, "{}", reply.body);
    assert_eq!(server.instances().len(), 5);
}
