//! C-FIND, C-MOVE and C-GET against the real server with DCMTK's `findscu`, `movescu` and
//! `getscu`, on SQLite and PostgreSQL: every information model and level, wildcards, date
//! ranges, Lithuanian names in two character sets, cancel, and per-institution scoping.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use dicom_dictionary_std::tags;

const OTHER_AE: &str = "OTHER_CLINIC";
const READER_AE: &str = "DEMO_READER";
const STUDY_A: &str = "2.25.143334534848296470270503991942325904385";

/// Two clinics; the demo centre reads only the demo clinic; one move destination each for the
/// centre's workstation and the other clinic's PACS.
fn start(db: Db, reader_port: u16, other_port: u16) -> Server {
    let clinics = format!(
        r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[]}},
            {{id="other", name="Other", ae_titles=["{OTHER_AE}"], networks=[]}}]"#
    );
    let destinations = format!(
        r#"[{{ae_title="READER_WS", host="127.0.0.1", port={reader_port}, institution="demo-centre"}},
            {{ae_title="OTHER_PACS", host="127.0.0.1", port={other_port}, institution="other"}}]"#
    );
    Server::start_with(
        db,
        Store::Local,
        &[
            ("TELECARDIO_CLINICS", clinics.as_str()),
            ("TELECARDIO_DICOM__DESTINATIONS", destinations.as_str()),
        ],
    )
}

/// A copy of a committed test image with other patient, study and UIDs.
fn variant(dir: &Path, template: &str, name: &str, changes: &[(&str, &str)]) -> PathBuf {
    let out = dir.join(name);
    std::fs::copy(test_image(template), &out).unwrap();
    let mut cmd = dcmtk("dcmodify");
    cmd.arg("-nb");
    for (tag, value) in changes {
        cmd.arg("-m").arg(format!("{tag}={value}"));
    }
    cmd.arg(&out);
    let (ok, text) = run(cmd);
    assert!(ok, "dcmodify: {text}");
    out
}

/// Study A (demo clinic): the five committed images. Study B (other clinic): two objects of
/// Petraitis. Study C (demo clinic): one object of Čepas, 2024.
fn load(server: &Server, dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let b = |n: &str, template: &str, series: &str| {
        variant(
            dir,
            template,
            n,
            &[
                ("(0010,0010)", "Petraitis^Jonas"),
                ("(0010,0020)", "39001010001"),
                ("(0008,0020)", "20250315"),
                ("(0008,0030)", "101500"),
                ("(0008,0050)", "E027-2025-0042"),
                ("(0020,000D)", "2.25.1001"),
                ("(0020,000E)", series),
                ("(0008,0018)", &format!("{series}.1")),
            ],
        )
    };
    let study_b = vec![
        b("b1.dcm", "us-single.dcm", "2.25.1001.1"),
        b("b2.dcm", "ecg-12lead.dcm", "2.25.1001.2"),
    ];
    let study_c = vec![variant(
        dir,
        "us-single.dcm",
        "c1.dcm",
        &[
            ("(0010,0010)", "Čepas^Antanas"),
            ("(0010,0020)", "38001010002"),
            ("(0008,0020)", "20240101"),
            ("(0008,0030)", "083000"),
            ("(0008,0050)", "E027-2024-0007"),
            ("(0020,000D)", "2.25.1002"),
            ("(0020,000E)", "2.25.1002.1"),
            ("(0008,0018)", "2.25.1002.1.1"),
        ],
    )];
    // Study C's patient has two other IDs, and its accession number an issuer: what sequence
    // matching works on.
    let mut cmd = dcmtk("dcmodify");
    cmd.arg("-nb");
    for item in [
        "(0010,1002)[0].(0010,0020)=LT-380101",
        "(0010,1002)[0].(0010,0021)=VLK",
        "(0010,1002)[1].(0010,0020)=PSDF-77",
        "(0010,1002)[1].(0010,0021)=SODRA",
        "(0008,0051)[0].(0040,0031)=VULSK",
    ] {
        cmd.arg("-i").arg(item);
    }
    cmd.arg(&study_c[0]);
    let (ok, text) = run(cmd);
    assert!(ok, "dcmodify: {text}");
    let (ok, out) = storescu(server.dicom_port, &test_images());
    assert!(ok, "{out}");
    let (ok, out) = storescu(server.dicom_port, &study_c);
    assert!(ok, "{out}");
    let mut cmd = dcmtk("storescu");
    cmd.args([
        "-aet",
        OTHER_AE,
        "-aec",
        AE,
        "127.0.0.1",
        &server.dicom_port.to_string(),
    ]);
    cmd.args(&study_b);
    let (ok, out) = run(cmd);
    assert!(ok, "{out}");
    (study_b, study_c)
}

/// Runs `findscu` and reads back every response identifier it extracted.
fn find(server: &Server, calling: &str, model: &str, keys: &[&[u8]], extra: &[&str]) -> Found {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = dcmtk("findscu");
    cmd.args(["-v", model, "-X", "-od"]).arg(dir.path());
    cmd.args(extra);
    cmd.args(["-aet", calling, "-aec", AE]);
    for key in keys {
        cmd.arg("-k").arg(OsString::from_vec(key.to_vec()));
    }
    cmd.args(["127.0.0.1", &server.dicom_port.to_string()]);
    let (ok, log) = run(cmd);
    let mut files: Vec<PathBuf> = files_under(dir.path());
    files.sort();
    let answers = files
        .iter()
        .map(|f| {
            (
                std::fs::read(f).unwrap(),
                dicom_object::open_file(f).unwrap(),
            )
        })
        .collect();
    Found { ok, log, answers }
}

struct Found {
    ok: bool,
    log: String,
    answers: Vec<(Vec<u8>, dicom_object::DefaultDicomObject)>,
}

impl Found {
    fn values(&self, tag: dicom_core::Tag) -> BTreeSet<String> {
        self.answers
            .iter()
            .map(|(_, obj)| {
                obj.element(tag)
                    .ok()
                    .and_then(|e| e.to_str().ok())
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                    .unwrap_or_default()
            })
            .collect()
    }

    fn count(&self) -> usize {
        self.answers.len()
    }
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A DCMTK `storescp` standing in for a workstation or a clinic's PACS.
struct Destination {
    child: Child,
    dir: tempfile::TempDir,
}

impl Destination {
    fn start(ae: &str, port: u16) -> Destination {
        let dir = tempfile::tempdir().unwrap();
        let child = dcmtk("storescp")
            .args(["+B", "-aet", ae, "-od"])
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start storescp");
        wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Destination { child, dir }
    }

    fn received(&self) -> Vec<PathBuf> {
        files_under(self.dir.path())
    }
}

impl Drop for Destination {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn retrieve_tool(tool: &str, server: &Server, calling: &str, args: &[&str]) -> (bool, String) {
    let mut cmd: Command = dcmtk(tool);
    cmd.args(["-v", "-S", "-aet", calling, "-aec", AE]);
    cmd.args(args);
    cmd.args(["127.0.0.1", &server.dicom_port.to_string()]);
    run(cmd)
}

fn suite(db: Db) {
    let (reader_port, other_port) = (free_port(), free_port());
    let server = start(db, reader_port, other_port);
    let fixtures = tempfile::tempdir().unwrap();
    let (study_b, _study_c) = load(&server, fixtures.path());

    // Patient root, patient level, name wildcard without case or diacritics.
    let found = find(
        &server,
        CLINIC_AE,
        "-P",
        &[
            b"QueryRetrieveLevel=PATIENT",
            b"PatientName=zukausk*",
            b"PatientID",
            b"NumberOfPatientRelatedStudies",
            b"NumberOfPatientRelatedInstances",
        ],
        &[],
    );
    assert!(found.ok, "{}", found.log);
    assert_eq!(
        found.values(tags::PATIENT_ID),
        set(&["48507120014"]),
        "{}",
        found.log
    );
    assert_eq!(
        found.values(tags::NUMBER_OF_PATIENT_RELATED_STUDIES),
        set(&["1"])
    );
    assert_eq!(
        found.values(tags::NUMBER_OF_PATIENT_RELATED_INSTANCES),
        set(&["5"])
    );

    // Sequence matching: an item's keys must hold in one stored item (PS3.4 C.2.2.2.6).
    let by_other_id = |keys: &[&[u8]]| {
        let mut all: Vec<&[u8]> = vec![b"QueryRetrieveLevel=STUDY", b"StudyInstanceUID"];
        all.extend_from_slice(keys);
        find(&server, CLINIC_AE, "-S", &all, &[])
    };
    let matches_c: &[&[&[u8]]] = &[
        &[b"(0010,1002)[0].(0010,0020)=LT-380101"],
        &[
            b"(0010,1002)[0].(0010,0020)=PSDF*",
            b"(0010,1002)[0].(0010,0021)=SODRA",
        ],
        &[b"(0008,0051)[0].(0040,0031)=VULSK"],
    ];
    for keys in matches_c {
        let found = by_other_id(keys);
        assert_eq!(
            found.values(tags::STUDY_INSTANCE_UID),
            set(&["2.25.1002"]),
            "{}",
            found.log
        );
    }
    // ID of the first item with the issuer of the second: no single item matches.
    let found = by_other_id(&[
        b"(0010,1002)[0].(0010,0020)=LT-380101",
        b"(0010,1002)[0].(0010,0021)=SODRA",
    ]);
    assert!(found.ok && found.count() == 0, "{}", found.log);
    // An empty sequence key is universal and returns every stored item.
    let found = by_other_id(&[
        b"StudyInstanceUID=2.25.1002",
        b"(0010,1002)[0].(0010,0020)",
        b"(0010,1002)[0].(0010,0021)",
    ]);
    assert_eq!(found.count(), 1, "{}", found.log);
    let items = found.answers[0]
        .1
        .element(tags::OTHER_PATIENT_I_DS_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()
        .to_vec();
    let pairs: BTreeSet<String> = items
        .iter()
        .map(|item| {
            let text = |t| item.element(t).unwrap().to_str().unwrap().trim().to_owned();
            format!(
                "{}@{}",
                text(tags::PATIENT_ID),
                text(tags::ISSUER_OF_PATIENT_ID)
            )
        })
        .collect();
    assert_eq!(pairs, set(&["LT-380101@VLK", "PSDF-77@SODRA"]));
    // The same over QIDO-RS, with the `Sequence.Attribute` form of PS3.18.
    let out = server.cli_with_input(
        &[
            "user",
            "add",
            "seq-reader",
            "--role",
            "clinic",
            "--institution",
            "demo",
        ],
        "",
    );
    assert!(out.status.success(), "{out:?}");
    let out = server.cli(&["token", "create", "seq-reader"]);
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let reply = request(
        server.http_port,
        "GET",
        "/dicom-web/studies?OtherPatientIDsSequence.PatientID=PSDF-77&OtherPatientIDsSequence.IssuerOfPatientID=SODRA&includefield=OtherPatientIDsSequence",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answers = reply.json();
    assert_eq!(answers.as_array().unwrap().len(), 1, "{}", reply.body);
    assert_eq!(answers[0]["0020000D"]["Value"][0], "2.25.1002");
    assert_eq!(
        answers[0]["00101002"]["Value"].as_array().unwrap().len(),
        2,
        "{}",
        reply.body
    );
    let reply = request(
        server.http_port,
        "GET",
        "/dicom-web/studies?OtherPatientIDsSequence.PatientID=LT-380101&OtherPatientIDsSequence.IssuerOfPatientID=SODRA",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json().as_array().unwrap().len(), 0, "{}", reply.body);

    // Patient root: study, series and image level under one patient.
    let found = find(
        &server,
        CLINIC_AE,
        "-P",
        &[
            b"QueryRetrieveLevel=STUDY",
            b"PatientID=48507120014",
            b"StudyInstanceUID",
            b"NumberOfStudyRelatedSeries",
        ],
        &[],
    );
    assert_eq!(
        found.values(tags::STUDY_INSTANCE_UID),
        set(&[STUDY_A]),
        "{}",
        found.log
    );
    assert_eq!(
        found.values(tags::NUMBER_OF_STUDY_RELATED_SERIES),
        set(&["5"])
    );
    let study_key = format!("StudyInstanceUID={STUDY_A}");
    let found = find(
        &server,
        CLINIC_AE,
        "-P",
        &[
            b"QueryRetrieveLevel=SERIES",
            b"PatientID=48507120014",
            study_key.as_bytes(),
            b"SeriesInstanceUID",
            b"Modality",
        ],
        &[],
    );
    assert_eq!(found.count(), 5, "{}", found.log);
    assert_eq!(found.values(tags::MODALITY), set(&["US", "ECG", "DOC"]));
    let series: Vec<String> = found
        .values(tags::SERIES_INSTANCE_UID)
        .into_iter()
        .collect();
    let series_key = format!("SeriesInstanceUID={}", series[0]);
    let found = find(
        &server,
        CLINIC_AE,
        "-P",
        &[
            b"QueryRetrieveLevel=IMAGE",
            b"PatientID=48507120014",
            study_key.as_bytes(),
            series_key.as_bytes(),
            b"SOPInstanceUID",
            b"SOPClassUID",
        ],
        &[],
    );
    assert_eq!(found.count(), 1, "{}", found.log);

    // Study root with a date range, as the centre's reading station: studies A and C.
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"QueryRetrieveLevel=STUDY",
            b"StudyDate=20240101-20261231",
            b"StudyInstanceUID",
            b"PatientName",
            b"ModalitiesInStudy",
        ],
        &[],
    );
    assert_eq!(
        found.values(tags::STUDY_INSTANCE_UID),
        set(&[STUDY_A, "2.25.1002"]),
        "{}",
        found.log
    );
    // Open-ended ranges and a time range.
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"QueryRetrieveLevel=STUDY",
            b"StudyDate=-20250101",
            b"StudyInstanceUID",
        ],
        &[],
    );
    assert_eq!(found.values(tags::STUDY_INSTANCE_UID), set(&["2.25.1002"]));
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"QueryRetrieveLevel=STUDY",
            b"StudyTime=0800-0859",
            b"StudyInstanceUID",
        ],
        &[],
    );
    assert_eq!(found.values(tags::STUDY_INSTANCE_UID), set(&["2.25.1002"]));
    // Modalities in study and a '?' wildcard.
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"QueryRetrieveLevel=STUDY",
            b"ModalitiesInStudy=ECG",
            b"AccessionNumber=E027-202?-0001",
            b"StudyInstanceUID",
        ],
        &[],
    );
    assert_eq!(
        found.values(tags::STUDY_INSTANCE_UID),
        set(&[STUDY_A]),
        "{}",
        found.log
    );
    // Study root at series and image level.
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"QueryRetrieveLevel=SERIES",
            study_key.as_bytes(),
            b"Modality=US",
            b"SeriesInstanceUID",
        ],
        &[],
    );
    assert_eq!(found.count(), 2, "{}", found.log);
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"QueryRetrieveLevel=IMAGE",
            study_key.as_bytes(),
            b"SOPClassUID=1.2.840.10008.5.1.4.1.1.104.1",
            b"SOPInstanceUID",
        ],
        &[],
    );
    assert_eq!(found.count(), 1, "{}", found.log);

    // A query in Latin-4 (Ž is 0xAE) finds the UTF-8 name and is answered in Latin-4.
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"SpecificCharacterSet=ISO_IR 110",
            b"QueryRetrieveLevel=STUDY",
            b"PatientName=\xAEUKAUSKIEN\xCC*",
            b"StudyInstanceUID",
        ],
        &[],
    );
    assert_eq!(found.count(), 1, "{}", found.log);
    let (bytes, _) = &found.answers[0];
    let name_latin4 = b"\xAEukauskien\xEC^R\xFEta";
    assert!(
        bytes.windows(name_latin4.len()).any(|w| w == name_latin4),
        "answer not in Latin-4"
    );
    // A query in Latin-1 cannot carry the letters: answered in UTF-8 rather than dropping them.
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[
            b"SpecificCharacterSet=ISO_IR 100",
            b"QueryRetrieveLevel=STUDY",
            b"PatientName=CEPAS*",
            b"StudyInstanceUID",
        ],
        &[],
    );
    assert_eq!(found.count(), 1, "{}", found.log);
    assert_eq!(
        found.values(tags::SPECIFIC_CHARACTER_SET),
        set(&["ISO_IR 192"])
    );
    assert_eq!(found.values(tags::PATIENT_NAME), set(&["Čepas^Antanas"]));

    // Scoping: the other clinic sees its own study and nothing of the demo clinic's.
    let found = find(
        &server,
        OTHER_AE,
        "-S",
        &[
            b"QueryRetrieveLevel=STUDY",
            b"StudyInstanceUID",
            b"PatientID",
        ],
        &[],
    );
    assert_eq!(
        found.values(tags::STUDY_INSTANCE_UID),
        set(&["2.25.1001"]),
        "{}",
        found.log
    );
    let found = find(
        &server,
        OTHER_AE,
        "-P",
        &[b"QueryRetrieveLevel=PATIENT", b"PatientID=48507120014"],
        &[],
    );
    assert_eq!(found.count(), 0, "{}", found.log);
    // …and the centre does not read the other clinic.
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[b"QueryRetrieveLevel=STUDY", b"StudyInstanceUID=2.25.1001"],
        &[],
    );
    assert_eq!(found.count(), 0, "{}", found.log);

    // C-MOVE of study A to the centre's workstation: every object arrives as stored.
    let workstation = Destination::start("READER_WS", reader_port);
    let (ok, log) = retrieve_tool(
        "movescu",
        &server,
        READER_AE,
        &[
            "-aem",
            "READER_WS",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &study_key,
        ],
    );
    assert!(ok, "{log}");
    let received = workstation.received();
    assert_eq!(received.len(), 5, "{log}");
    let stored = server.instances();
    for file in &received {
        let bytes = std::fs::read(file).unwrap();
        let sop = meta_value(&bytes, 0x0003);
        let key = stored
            .iter()
            .find(|i| i["sop_instance_uid"] == sop.as_str())
            .and_then(|i| i["object_key"].as_str())
            .expect("stored instance")
            .to_owned();
        let original = server.object(&key);
        assert_same_bytes(dataset_of(&bytes), dataset_of(&original), &sop);
    }

    // Scoping on C-MOVE: the other clinic cannot move study A, not even to its own PACS, and
    // the demo centre cannot use the other clinic's PACS.
    let pacs = Destination::start("OTHER_PACS", other_port);
    let (_, log) = retrieve_tool(
        "movescu",
        &server,
        OTHER_AE,
        &[
            "-aem",
            "OTHER_PACS",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &study_key,
        ],
    );
    assert!(
        log.contains("Failed") || log.contains("Unable to Process") || log.contains("0xc000"),
        "{log}"
    );
    let (_, log) = retrieve_tool(
        "movescu",
        &server,
        READER_AE,
        &[
            "-aem",
            "OTHER_PACS",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &study_key,
        ],
    );
    assert!(log.contains("MoveDestinationUnknown"), "{log}");
    assert!(pacs.received().is_empty());
    // The other clinic can move its own study to its PACS, at series level.
    let (ok, log) = retrieve_tool(
        "movescu",
        &server,
        OTHER_AE,
        &[
            "-aem",
            "OTHER_PACS",
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            "StudyInstanceUID=2.25.1001",
            "-k",
            "SeriesInstanceUID=2.25.1001.2",
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(pacs.received().len(), 1, "{log}");
    let _ = study_b;

    // C-GET at image level and at study level as the reading station.
    let out = tempfile::tempdir().unwrap();
    let od = out.path().to_str().unwrap().to_owned();
    let (ok, log) = retrieve_tool(
        "getscu",
        &server,
        READER_AE,
        &[
            "-od",
            &od,
            "-k",
            "QueryRetrieveLevel=IMAGE",
            "-k",
            &study_key,
            "-k",
            "SOPInstanceUID=2.25.1002.1.1",
        ],
    );
    // Study C's instance is not in study A: nothing matches.
    assert!(!log.contains("Completed Suboperations  : 1"), "{log}");
    assert!(files_under(out.path()).is_empty());
    let _ = ok;
    let (ok, log) = retrieve_tool(
        "getscu",
        &server,
        READER_AE,
        &[
            "-od",
            &od,
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID=2.25.1002",
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(files_under(out.path()).len(), 1, "{log}");
    // The other clinic cannot C-GET study A.
    let denied = tempfile::tempdir().unwrap();
    let (_, log) = retrieve_tool(
        "getscu",
        &server,
        OTHER_AE,
        &[
            "-od",
            denied.path().to_str().unwrap(),
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            &study_key,
        ],
    );
    assert!(files_under(denied.path()).is_empty(), "{log}");

    // Every query and retrieval is audited, the refused ones as such.
    let queries = server.audit_events("query");
    assert!(queries.iter().any(|(actor, _, _)| actor == OTHER_AE));
    let retrievals = server.audit_events("retrieve");
    assert!(
        retrievals
            .iter()
            .any(|(actor, _, outcome)| actor == OTHER_AE
                && outcome.contains("outside the caller's scope")),
        "{retrievals:?}"
    );
    assert!(retrievals
        .iter()
        .any(|(actor, _, outcome)| actor == READER_AE && outcome.starts_with("released 5")));
    assert!(retrievals
        .iter()
        .any(|(actor, _, outcome)| actor == READER_AE
            && outcome.contains("move destination unknown")));
}

#[test]
fn query_retrieve_sqlite() {
    suite(Db::Sqlite);
}

#[test]
fn query_retrieve_postgres() {
    suite(Db::Postgres);
}

/// A reading station may query and retrieve but not store; nothing it sends is kept.
#[test]
fn reading_station_cannot_store() {
    let server = start(Db::Sqlite, free_port(), free_port());
    let mut cmd = dcmtk("storescu");
    cmd.args([
        "-v",
        "-aet",
        READER_AE,
        "-aec",
        AE,
        "127.0.0.1",
        &server.dicom_port.to_string(),
    ]);
    cmd.arg(test_image("us-single.dcm"));
    let (_, log) = run(cmd);
    // DCMTK names 0x0124 (Refused: Not Authorized, PS3.7 C.5.3) "Unknown Status".
    assert!(log.contains("0x124"), "{log}");
    assert!(server.instances().is_empty());
}

/// A C-CANCEL stops a long C-FIND: status Cancel and far fewer matches than there are.
#[test]
fn cancel_stops_a_long_find() {
    let server = start(Db::Sqlite, free_port(), free_port());
    let corpus = tempfile::tempdir().unwrap();
    let out = server.cli(&[
        "generate",
        "--set",
        "corpus",
        "--kind",
        "small",
        "--count",
        "300",
        "--out",
        corpus.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let (ok, log) = storescu(server.dicom_port, &files_under(corpus.path()));
    assert!(ok, "{log}");
    let found = find(
        &server,
        READER_AE,
        "-S",
        &[b"QueryRetrieveLevel=IMAGE", b"SOPInstanceUID"],
        &["--cancel", "1"],
    );
    assert!(
        found.log.contains("Final Find Response (Cancel"),
        "{}",
        found.log
    );
    assert!(found.count() < 300, "{} answers", found.count());
}
