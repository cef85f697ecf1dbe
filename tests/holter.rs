//! Holter recordings through every door of the real binary, on SQLite and PostgreSQL. Files
//! written by software nobody here wrote (PyPI `ishneholterlib` for ISHNE 1.0 and its beat
//! annotations, `pyedflib` for EDF+) are uploaded by the clinic with curl (`POST /api/holter`),
//! imported by the operator (`telecardio import-holter`) and dropped into the clinic's inbox.
//! The DICOM copy is fetched with DCMTK `getscu` as the reading centre and decoded by pydicom:
//! every sample of every lead over more than an hour, so across the seam between two
//! instances, equals what was written; each instance starts when the one before ended; every
//! beat and EDF+ annotation sits at its sample; `dciodvfy` finds no error. The original comes
//! back byte for byte with the SHA-256 the index holds. Each kind of bad file is refused with
//! 422 naming the field, and leaves nothing in the store or the index.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cases::{call, post_referral, VALID};
use common::*;
use serde_json::Value;

/// A little more than an hour: two instances, the second short.
const SECONDS: u64 = 3605;
const START: &str = "20260306083015";

fn write_recordings(dir: &Path) {
    let out = Command::new(python())
        .arg(repo().join("tests/holter/write.py"))
        .arg(dir)
        .arg(SECONDS.to_string())
        .output()
        .expect("run write.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The EDF+ annotations pyedflib wrote, as check.py expects them.
    std::fs::write(
        dir.join("edf-marks.txt"),
        "12.5 0.2 Ventricular run\n20 0 Patient event\n",
    )
    .unwrap();
}

/// The clinic's referral `n` (order E027-2026-000n) for `personal_code`; its id.
fn referral(server: &Server, token: &str, n: u32, personal_code: &str) -> String {
    let document = VALID
        .replace("E027-DOC-0001", &format!("E027-DOC-H{n:03}"))
        .replace("E027-2026-0001", &format!("E027-2026-H{n:03}"))
        .replace("48507120013", personal_code);
    let reply = post_referral(server, token, &document);
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.json()["id"].as_str().unwrap().to_owned()
}

/// `POST /api/holter` with curl's multipart form: `(name, value)` text fields, `(name, @path)`
/// files.
fn upload(server: &Server, token: &str, parts: &[(&str, String)]) -> (u16, Value) {
    let body = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o"])
        .arg(body.path())
        .args(["-w", "%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"));
    for (name, value) in parts {
        cmd.arg("-F").arg(format!("{name}={value}"));
    }
    cmd.arg(format!("http://127.0.0.1:{}/api/holter", server.http_port));
    let out = cmd.output().expect("run curl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: u16 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let text = std::fs::read_to_string(body.path()).unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The copy `series_uid`, fetched with DCMTK getscu as the reading centre's workstation.
fn fetch_series(server: &Server, series_uid: &str, into: &Path) -> Vec<PathBuf> {
    let mut cmd = dcmtk("getscu");
    cmd.args(["-S", "-aet", "DEMO_READER", "-aec", AE, "-od"])
        .arg(into)
        .args(["-k", "QueryRetrieveLevel=SERIES", "-k"])
        .arg(format!("SeriesInstanceUID={series_uid}"))
        .args(["127.0.0.1", &server.dicom_port.to_string()]);
    let (ok, log) = run(cmd);
    assert!(ok, "{log}");
    files_under(into)
}

/// check.py on the fetched copy; what it printed.
fn check(dir: &Path, prefix: &str, leads: usize, rate: u32, files: &[PathBuf]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/holter/check.py"))
        .arg(dir.join(prefix))
        .arg(leads.to_string())
        .arg(rate.to_string())
        .arg(START)
        .args(files)
        .output()
        .expect("run check.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn dciodvfy_clean(file: &Path) {
    let out = Command::new("dciodvfy")
        .arg(file)
        .output()
        .expect("run dciodvfy");
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!verdict.contains("Error"), "dciodvfy:\n{verdict}");
}

/// Everything stored: object files and index instances.
fn holdings(server: &Server) -> (Vec<PathBuf>, usize) {
    (
        files_under(&server.data_dir().join("objects")),
        server.instances().len(),
    )
}

fn suite(db: Db) {
    let mut server = Server::start_with(
        db,
        Store::Local,
        &[
            (
                "TELECARDIO_CLINICS",
                r#"[{id="demo", name="Demo klinika", ae_titles=["DEMO_CLINIC"], networks=[]},
                    {id="other-clinic", name="Kita", ae_titles=["OTHER_CLINIC"], networks=[]}]"#,
            ),
            ("TELECARDIO_HOLTER__POLL_MS", "200"),
            ("TELECARDIO_HOLTER__SETTLE_MS", "600"),
        ],
    );
    let clinic = server.token("holter-clinic", "clinic", "demo");
    let reader = server.token("holter-reader", "cardiologist", "demo-centre");
    let files = tempfile::tempdir().unwrap();
    let dir = files.path();
    write_recordings(dir);
    let ishne = dir.join("recording.ecg");
    let ishne_bytes = std::fs::read(&ishne).unwrap();

    // The clinic uploads the ISHNE recording and its beats with the referral's id.
    let first = referral(&server, &clinic, 1, "48507120013");
    let (status, made) = upload(
        &server,
        &clinic,
        &[
            ("referral", first.clone()),
            ("file", format!("@{}", ishne.display())),
            (
                "annotations",
                format!("@{}", dir.join("recording.ann").display()),
            ),
        ],
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["instances"], 2);
    assert_eq!(made["channels"], 3);
    assert_eq!(made["sampling_rate"], 200);
    assert_eq!(made["samples"], 200 * SECONDS);
    assert_eq!(made["started"], "2026-03-06T08:30:15");
    assert_eq!(made["linked"], true, "{made}");
    assert_eq!(made["original"]["format"], "ISHNE 1.0");
    assert_eq!(made["original"]["sha256"], sha256_hex(&ishne_bytes));
    assert_eq!(made["original"]["size_bytes"], ishne_bytes.len());
    let beats = std::fs::read_to_string(dir.join("ishne-beats.txt")).unwrap();
    assert_eq!(made["annotations"], beats.lines().count());
    let series = made["series_uid"].as_str().unwrap().to_owned();
    let referral_row = call(
        &server,
        &clinic,
        "GET",
        &format!("/api/referrals/{first}"),
        "",
    )
    .json();
    assert_eq!(referral_row["study_uid"], made["study_uid"]);

    // The same file again, named by the patient's code and order number: nothing new.
    let (status, again) = upload(
        &server,
        &clinic,
        &[
            ("patient_code", "48507120013".into()),
            ("order_number", "E027-2026-H001".into()),
            ("file", format!("@{}", ishne.display())),
            (
                "annotations",
                format!("@{}", dir.join("recording.ann").display()),
            ),
        ],
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["series_uid"], series.as_str());

    // The cardiologist fetches the copy with DCMTK and the original as it was sent.
    let fetched = tempfile::tempdir().unwrap();
    let copy = fetch_series(&server, &series, fetched.path());
    assert_eq!(copy.len(), 2);
    let said = check(dir, "ishne", 3, 200, &copy);
    assert!(said.contains("['ES', 'AS', 'AI']"), "{said}");
    assert!(said.contains("beats placed as written"), "{said}");
    // ISHNE resolutions (2,500 and 5,000 nV) as sensitivities in µV.
    assert!(
        said.contains("sensitivities [2.5, 2.5, 5.0] ['uV', 'uV', 'uV']"),
        "{said}"
    );
    dciodvfy_clean(&copy[0]);
    // The waveform viewer's API reads the copy: its leads and its beats.
    let hour = copy
        .iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let first_hour = dicom_object::open_file(hour).unwrap();
    let sop = first_hour
        .element(dicom_dictionary_std::tags::SOP_INSTANCE_UID)
        .unwrap()
        .to_str()
        .unwrap()
        .trim_end_matches('\0')
        .to_owned();
    let study = made["study_uid"].as_str().unwrap();
    let view = call(
        &server,
        &reader,
        "GET",
        &format!("/api/waveforms/{study}/{series}/{sop}?seconds=10"),
        "",
    );
    assert_eq!(view.status, 200, "{}", view.body);
    let view = view.json();
    let leads: Vec<&str> = view["groups"][0]["channels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(leads, ["ES", "AS", "AI"]);
    assert!(
        view["annotations_total"].as_u64().unwrap() > 1000,
        "{}",
        view["annotations_total"]
    );
    let original = call(
        &server,
        &reader,
        "GET",
        &format!("/api/holter/{series}/original"),
        "",
    );
    assert_eq!(original.status, 200, "{}", original.body);
    assert_same_bytes(&original.bytes, &ishne_bytes, "the original");
    assert_eq!(
        original.header("x-content-sha256").unwrap(),
        sha256_hex(&ishne_bytes)
    );
    // Another clinic's user finds nothing; both reads are on record.
    let stranger = server.token("holter-other", "clinic", "other-clinic");
    assert_eq!(
        call(
            &server,
            &stranger,
            "GET",
            &format!("/api/holter/{series}/original"),
            ""
        )
        .status,
        404
    );
    let reads = server.audit_events("holter_original_read");
    assert!(
        reads
            .iter()
            .any(|(actor, _, outcome)| actor == "holter-reader" && outcome == "answered"),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .any(|(actor, _, outcome)| actor == "holter-other" && outcome == "refused"),
        "{reads:?}"
    );

    // The operator imports the EDF+ recording for a second referral from the command line.
    let second = referral(&server, &clinic, 2, "48507120013");
    let edf = dir.join("recording.edf");
    let out = server.cli(&[
        "import-holter",
        edf.to_str().unwrap(),
        "--referral",
        &second,
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["format"], "EDF+");
    assert_eq!(made["instances"], 2);
    assert_eq!(made["sha256"], sha256_hex(&std::fs::read(&edf).unwrap()));
    let fetched = tempfile::tempdir().unwrap();
    let copy = fetch_series(
        &server,
        made["series_uid"].as_str().unwrap(),
        fetched.path(),
    );
    let said = check(dir, "edf", 2, 250, &copy);
    assert!(said.contains("['ECG II', 'ECG V5']"), "{said}");
    assert!(said.contains("2 marks placed as written"), "{said}");
    // EDF scaling: 6,553.5 µV over 65,535 units, and 10 mV over 65,535 units.
    assert!(said.contains("sensitivities [0.1, 0.15259]"), "{said}");
    dciodvfy_clean(&copy[0]);
    // The command line refuses a bad file with the reason and exit status 2.
    let mut bad = std::fs::read(&edf).unwrap();
    bad[0] = b'X';
    let bad_path = dir.join("bad.edf");
    std::fs::write(&bad_path, &bad).unwrap();
    let out = server.cli(&[
        "import-holter",
        bad_path.to_str().unwrap(),
        "--referral",
        &second,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("neither ISHNE 1.0 nor EDF"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Fixity reads every object back, the originals too, and finds each as recorded.
    let verified = server.cli(&["verify", "--all", "--json"]);
    assert!(
        verified.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    let objects = server.data_dir().join("objects");
    let stored: usize = ["dicom", "cda", "holter"]
        .iter()
        .map(|p| files_under(&objects.join(p)).len())
        .sum();
    assert_eq!(report["objects"], stored, "{report}");
    assert_eq!(report["unindexed"], serde_json::json!([]), "{report}");

    bad_files(&server, &clinic, dir, &ishne_bytes);
    inbox(&mut server, &clinic, dir);
}

/// Each kind of bad file is refused with 422 naming what is wrong, and nothing is stored.
fn bad_files(server: &Server, clinic: &str, dir: &Path, ishne: &[u8]) {
    let id = referral(server, clinic, 3, "48507120013");
    // Someone else: a valid personal code that is not the recording's.
    let other = referral(server, clinic, 4, "48507120024");
    let before = holdings(server);
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);
    let with_crc = |mut f: Vec<u8>| {
        let sum = crc.checksum(&f[10..522]);
        f[8..10].copy_from_slice(&sum.to_le_bytes());
        f
    };
    let patched = |at: usize, value: i16| {
        let mut f = ishne.to_vec();
        f[at..at + 2].copy_from_slice(&value.to_le_bytes());
        with_crc(f)
    };
    let mut bad_crc = ishne.to_vec();
    bad_crc[40] ^= 0x20;
    let edf = std::fs::read(dir.join("recording.edf")).unwrap();
    let mut lying_edf = edf.clone();
    let records: u64 = String::from_utf8_lossy(&edf[236..244])
        .trim()
        .parse()
        .unwrap();
    let claim = format!("{:<8}", records + 10);
    lying_edf[236..244].copy_from_slice(claim.as_bytes());
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "wrong magic",
            b"NOTHOLTER and some bytes".to_vec(),
            "file",
            &id,
        ),
        ("bad header CRC", bad_crc, "crc", &id),
        (
            "truncated samples",
            ishne[..ishne.len() - 3].to_vec(),
            "file",
            &id,
        ),
        ("13 leads", patched(156, 13), "number_of_leads", &id),
        (
            "zero resolution",
            patched(206, 0),
            "amplitude_resolution",
            &id,
        ),
        (
            "sample count against size",
            {
                let mut f = ishne.to_vec();
                f[14..18].copy_from_slice(&5i32.to_le_bytes());
                with_crc(f)
            },
            "ecg_size",
            &id,
        ),
        (
            "EDF records beyond the file",
            lying_edf,
            "number_of_data_records",
            &id,
        ),
        ("another patient", ishne.to_vec(), "patient_id", &other),
    ];
    for (what, bytes, field, referral) in cases {
        let path = dir.join("bad.ecg");
        std::fs::write(&path, &bytes).unwrap();
        let (status, answer) = upload(
            server,
            clinic,
            &[
                ("referral", referral.to_owned()),
                ("file", format!("@{}", path.display())),
            ],
        );
        assert_eq!(status, 422, "{what}: {answer}");
        assert_eq!(answer["field"], field, "{what}: {answer}");
        assert!(!answer["error"].as_str().unwrap_or_default().is_empty());
    }
    // A referral the clinic does not have, and a request without a file.
    let (status, _) = upload(
        server,
        clinic,
        &[
            ("referral", "no-such-referral".into()),
            ("file", format!("@{}", dir.join("recording.ecg").display())),
        ],
    );
    assert_eq!(status, 404);
    let (status, answer) = upload(server, clinic, &[("referral", id.clone())]);
    assert_eq!((status, answer["field"].as_str()), (422, Some("file")));
    assert_eq!(
        holdings(server),
        before,
        "a refused file left something behind"
    );
    let refusals = server.audit_events("holter_import");
    assert!(
        refusals
            .iter()
            .filter(|(_, _, outcome)| outcome == "refused")
            .count()
            >= 9,
        "{refusals:?}"
    );
}

/// The clinic's inbox: a complete file is imported and moved aside; taken again, it adds
/// nothing; a bad file goes to rejected/ with its reason.
fn inbox(server: &mut Server, clinic: &str, dir: &Path) {
    let id = referral(server, clinic, 5, "48507120013");
    let inbox = server.data_dir().join("inbox/demo");
    wait_for(Duration::from_secs(30), || inbox.is_dir());
    let drop = |name: &str, from: &Path| {
        // Written under a hidden name and renamed, as a careful exporter does; the inbox
        // would wait for a plain write to settle and close just the same.
        let hidden = inbox.join(format!(".{name}"));
        std::fs::copy(from, &hidden).unwrap();
        std::fs::rename(&hidden, inbox.join(name)).unwrap();
    };
    drop("E027-2026-H005.edf", &dir.join("recording.edf"));
    let imported = inbox.join("imported/E027-2026-H005.edf");
    wait_for(Duration::from_secs(60), || imported.exists());
    let linked = call(server, clinic, "GET", &format!("/api/referrals/{id}"), "").json();
    let study = linked["study_uid"].as_str().unwrap().to_owned();
    assert!(!study.is_empty(), "{linked}");
    let count = server.show(&study)["instances"].as_array().unwrap().len();
    assert_eq!(count, 2);
    // Taken again (as after a crash before it was moved aside): nothing twice.
    drop("E027-2026-H005.edf", &dir.join("recording.edf"));
    let again = inbox.join("imported");
    wait_for(Duration::from_secs(60), || {
        std::fs::read_dir(&again).unwrap().count() == 2
    });
    assert_eq!(
        server.show(&study)["instances"].as_array().unwrap().len(),
        2
    );
    // Not a recording.
    let junk = dir.join("junk.ecg");
    std::fs::write(&junk, b"this is not a Holter recording").unwrap();
    drop("E027-2026-H005.ecg", &junk);
    let reason = inbox.join("rejected/E027-2026-H005.ecg.reason.txt");
    wait_for(Duration::from_secs(60), || reason.exists());
    let text = std::fs::read_to_string(&reason).unwrap();
    assert!(text.contains("neither ISHNE 1.0 nor EDF"), "{text}");
    assert!(inbox.join("rejected/E027-2026-H005.ecg").exists());

    // Killed at instants around an import (the file settles 0.6 s after it lands): after the
    // restart each file is taken (again) and its copy is there once.
    for (n, delay) in [(6u32, 550u64), (7, 700), (8, 850)] {
        let id = referral(server, clinic, n, "48507120013");
        let name = format!("E027-2026-H{n:03}.ecg");
        drop(&name, &dir.join("recording.ecg"));
        std::thread::sleep(Duration::from_millis(delay));
        server.kill9();
        server.restart();
        let done = inbox.join("imported").join(&name);
        wait_for(Duration::from_secs(60), || done.exists());
        assert!(!inbox.join(&name).exists());
        let linked = call(server, clinic, "GET", &format!("/api/referrals/{id}"), "").json();
        let study = linked["study_uid"].as_str().unwrap().to_owned();
        assert_eq!(
            server.show(&study)["instances"].as_array().unwrap().len(),
            2,
            "after a kill {delay} ms in"
        );
    }
}

#[test]
fn holter_recordings_sqlite() {
    suite(Db::Sqlite);
}

#[test]
fn holter_recordings_postgres() {
    suite(Db::Postgres);
}
