//! DICOMweb with a client nobody here wrote: the Python `dicomweb-client` package (installed by
//! `./deploy/test.sh` into `.venv/`) runs QIDO-RS, WADO-RS and STOW-RS round trips and the
//! scoping checks against the real server, on SQLite and PostgreSQL. The HTTP-level details
//! (status codes, headers, multipart framing) are checked here directly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const STUDY: &str = "2.25.143334534848296470270503991942325904385";

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
        (
            "dcmcjpeg",
            "+eb",
            "1.2.840.10008.1.2.4.50",
            "image/jpeg",
            "lossy",
        ),
        (
            "dcmcrle",
            "+un",
            "1.2.840.10008.1.2.5",
            "image/dicom-rle",
            "lossless",
        ),
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
    let reader = server.token("dr.jonaitis", "cardiologist", "demo-centre");
    let clinic = server.token("demo-pacs", "clinic", "demo");
    let other = server.token("other-pacs", "clinic", "other");
    let auditor = server.token("auditorius", "auditor", "");
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
    let reader = server.token("dr.jonaitis", "cardiologist", "demo-centre");
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
    // WADO-RS frames, rendering, metadata and bulk data: what a client library would hide.
    let rows = server.instances();
    let echo = rows
        .iter()
        .find(|r| r["sop_class_uid"] == "1.2.840.10008.5.1.4.1.1.3.1")
        .expect("the multi-frame echo clip");
    let base = format!(
        "/dicom-web/studies/{STUDY}/series/{}/instances/{}",
        echo["series_uid"].as_str().unwrap(),
        echo["sop_instance_uid"].as_str().unwrap()
    );
    for bad in ["0", "1,x", "", "-1"] {
        let reply = get(&format!("{base}/frames/{bad}"), "*/*");
        assert!(matches!(reply.status, 400 | 404), "{bad}: {}", reply.status);
    }
    let reply = get(&format!("{base}/frames/31"), "*/*");
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert!(reply.body.contains("30 frames"), "{}", reply.body);
    // Native frames are not offered as JPEG (no transcoding).
    let reply = get(
        &format!("{base}/frames/1"),
        "multipart/related; type=\"image/jpeg\"",
    );
    assert_eq!(reply.status, 406, "{}", reply.body);
    let reply = get(
        &format!("{base}/frames/2"),
        "multipart/related; type=\"application/octet-stream\"",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let content_type = reply.header("Content-Type").unwrap();
    let boundary = content_type.split("boundary=").nth(1).unwrap().to_owned();
    let head = format!(
        "--{boundary}\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1\r\n\r\n"
    );
    let tail = format!("\r\n--{boundary}--\r\n");
    assert!(reply.bytes.starts_with(head.as_bytes()), "{}", reply.body);
    assert!(reply.bytes.ends_with(tail.as_bytes()));
    assert_eq!(reply.bytes.len(), head.len() + 256 * 256 + tail.len());
    // A multi-frame instance is rendered one frame at a time, as an image type only.
    assert_eq!(get(&format!("{base}/rendered"), "image/png").status, 406);
    let reply = get(&format!("{base}/frames/2/rendered"), "image/png");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("Content-Type").as_deref(), Some("image/png"));
    assert!(reply.bytes.starts_with(b"\x89PNG\r\n"));
    let reply = get(&format!("{base}/frames/2/rendered?quality=40"), "");
    assert_eq!(reply.header("Content-Type").as_deref(), Some("image/jpeg"));
    assert!(reply.bytes.starts_with(&[0xFF, 0xD8]));
    assert_eq!(
        get(&format!("{base}/frames/2/rendered"), "text/html").status,
        406
    );
    assert_eq!(
        get(&format!("{base}/frames/2,3/rendered"), "image/png").status,
        400
    );
    // Metadata is JSON only; bulk data paths are checked.
    assert_eq!(get(&format!("{base}/metadata"), "image/png").status, 406);
    assert_eq!(get(&format!("{base}/bulk/nonsense"), "*/*").status, 400);
    assert_eq!(get(&format!("{base}/bulk/00191234"), "*/*").status, 404);
    // STOW-RS without multipart is 415; an empty multipart is 400.
    let clinic = server.token("demo-pacs", "clinic", "demo");
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

/// A 2 GiB study goes out over WADO-RS as a stream: the object arrives byte-exact while the
/// server's peak memory stays far below the study's size; frames and rendering of that object
/// read only the frame.
#[test]
fn two_gigabyte_study_streams_in_bounded_memory() {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let server = start(Db::Sqlite);
    let dir = server.data_dir().join("big");
    let out = Command::new(BIN)
        .args(["generate", "--set", "big", "--size-mib", "2048", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let file = dir.join("us-multiframe-big.dcm");
    let size = std::fs::metadata(&file).unwrap().len();
    assert!(size >= 2 << 30, "generated only {size} bytes");
    let (ok, log) = storescu(server.dicom_port, std::slice::from_ref(&file));
    assert!(ok && log.contains("Success"), "{log}");
    let row = server.instances().pop().unwrap();
    // What went into the store (our file meta header, the sender's data set) must come out.
    let stored = server
        .data_dir()
        .join("objects")
        .join(row["object_key"].as_str().unwrap());
    let stored_size = std::fs::metadata(&stored).unwrap().len();
    let expected = sha256_of(std::fs::File::open(&stored).unwrap());
    let study = server.studies()[0]["study_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let reader = server.token("dr.jonaitis", "cardiologist", "demo-centre");

    // The whole study through curl, hashed as it arrives.
    let mut curl = Command::new("curl")
        .args(["-sf", "-H"])
        .arg(format!("Authorization: Bearer {reader}"))
        .arg(format!(
            "http://127.0.0.1:{}/dicom-web/studies/{study}",
            server.http_port
        ))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut body = curl.stdout.take().unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        body.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
        assert!(head.len() < 1024, "{}", String::from_utf8_lossy(&head));
    }
    let mut hash = Sha256::new();
    let mut left = stored_size;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = body.read(&mut buf[..left.min(1 << 20) as usize]).unwrap();
        assert!(n > 0, "body ended {left} bytes early");
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    let mut tail = Vec::new();
    body.read_to_end(&mut tail).unwrap();
    assert!(curl.wait().unwrap().success());
    assert!(tail.starts_with(b"\r\n--") && tail.ends_with(b"--\r\n"));
    assert_eq!(
        hex::encode(hash.finalize()),
        expected,
        "retrieved object differs"
    );

    // The last frame, read from the end of the stored object, and rendered.
    let frame = 480 * 640u64;
    let frames = row["number_of_frames"].as_i64().unwrap() as u64;
    let base = format!(
        "/dicom-web/studies/{study}/series/{}/instances/{}",
        row["series_uid"].as_str().unwrap(),
        row["sop_instance_uid"].as_str().unwrap()
    );
    let auth = format!("Bearer {reader}");
    let reply = request(
        server.http_port,
        "GET",
        &format!("{base}/frames/{frames}"),
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(reply.status, 200);
    let mut original = std::fs::File::open(&file).unwrap();
    let mut expected_frame = vec![0u8; frame as usize];
    std::io::Seek::seek(&mut original, std::io::SeekFrom::Start(size - frame)).unwrap();
    original.read_exact(&mut expected_frame).unwrap();
    let start = reply
        .bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap()
        + 4;
    assert_same_bytes(
        &reply.bytes[start..start + frame as usize],
        &expected_frame,
        "last frame",
    );
    let reply = request(
        server.http_port,
        "GET",
        &format!("{base}/frames/{frames}/rendered"),
        &[("Authorization", &auth), ("Accept", "image/png")],
        b"",
    );
    assert_eq!(reply.status, 200);

    let peak = server.peak_rss();
    eprintln!(
        "server peak RSS after storing and serving {size} bytes: {} MiB",
        peak >> 20
    );
    assert!(peak < 100 * 1024 * 1024, "peak RSS {} MiB", peak >> 20);
    std::fs::remove_file(&file).unwrap();
}
