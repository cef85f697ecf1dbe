//! Two clinics and their centres on one service, on SQLite and PostgreSQL: one clinic walks
//! every write door (C-STORE, STOW-RS to `/studies` and to a study, Encapsulated CDA, HL7 orders
//! and patient maintenance, the referral API) against the other clinic's study, series, SOP
//! instance and Patient ID. Every attempt into the other's data is refused and audited, nothing
//! of it is stored, and the other clinic's answers (QIDO-RS, WADO-RS metadata, C-FIND, the
//! journal) stay byte-identical. Two clinics using one Patient ID for two people each see only
//! their own patient; a centre reading both sees two patients, and the same national personal
//! code at both clinics shows up as the same person's other case. A name that arrives in three
//! character sets, in any order, is answered with its Lithuanian letters once any copy had them.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::hl7::{field, msh, send};
use common::*;
use serde_json::Value;

const VALID: &str = include_str!("fixtures/form027-valid.xml");
const OTHER_AE: &str = "OTHER_CLINIC";
const REGIONAL_AE: &str = "REGIONAL_READER";
/// One local record number, used by both clinics for two different people.
const MRN: &str = "MRN-0047731";
/// The national personal code of clinic B's patient (and, later, of one of clinic A's).
const PERSONAL_CODE: &str = "48507120013";
const STUDY_B: &str = "2.25.5001";
const SERIES_B: &str = "2.25.5001.1";
const SOP_B: &str = "2.25.5001.1.1";
const STUDY_A: &str = "2.25.6001";

/// Clinic A is `demo`, clinic B `kaunas`; the demo centre reads A, the other centre B, and the
/// regional centre both (every case is routed there).
fn start(db: Db) -> Server {
    let clinics = format!(
        r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[]}},
            {{id="kaunas", name="Kaunas", ae_titles=["{OTHER_AE}"], networks=[]}}]"#
    );
    let centres = format!(
        r#"[{{id="demo-centre", name="A", reads=["demo"], ae_titles=["DEMO_READER"], networks=[]}},
            {{id="kaunas-centre", name="B", reads=["kaunas"], ae_titles=["OTHER_READER"], networks=[]}},
            {{id="regional", name="R", reads=["demo", "kaunas"], ae_titles=["{REGIONAL_AE}"], networks=[]}}]"#
    );
    let senders = r#"[{facility="DEMO_HIS", clinic="demo", networks=[]},
                      {facility="OTHER_HIS", clinic="kaunas", networks=[]}]"#;
    let rules = r#"[{name="regional", clinics=[], examinations=[], urgencies=[], patients="any",
                     centre="regional", readers=[], assign="pool"}]"#;
    Server::start_with(
        db,
        Store::Local,
        &[
            ("TELECARDIO_CLINICS", clinics.as_str()),
            ("TELECARDIO_CENTRES", centres.as_str()),
            ("TELECARDIO_HL7__SENDERS", senders),
            ("TELECARDIO_ROUTING__RULES", rules),
            ("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0"),
        ],
    )
}

/// A copy of the committed ultrasound image with these attributes changed (`tag=value`, or an
/// item path such as `(0010,1002)[0].(0010,0020)=…`).
fn object(dir: &Path, name: &str, changes: &[String]) -> PathBuf {
    let out = dir.join(name);
    std::fs::copy(test_image("us-single.dcm"), &out).unwrap();
    let mut cmd = dcmtk("dcmodify");
    cmd.arg("-nb");
    for change in changes {
        cmd.arg("-i").arg(change);
    }
    cmd.arg(&out);
    let (ok, log) = run(cmd);
    assert!(ok, "dcmodify: {log}");
    out
}

/// The UIDs and patient of an object: study, series, SOP instance, Patient ID, name, birth.
fn uids(study: &str, series: &str, sop: &str) -> Vec<String> {
    vec![
        format!("(0020,000D)={study}"),
        format!("(0020,000E)={series}"),
        format!("(0008,0018)={sop}"),
    ]
}

fn patient(id: &str, name: &str, birth: &str, accession: &str) -> Vec<String> {
    vec![
        format!("(0010,0020)={id}"),
        format!("(0010,0010)={name}"),
        format!("(0010,0030)={birth}"),
        format!("(0008,0050)={accession}"),
    ]
}

fn storescu_as(server: &Server, ae: &str, files: &[PathBuf]) -> (bool, String) {
    let mut cmd = dcmtk("storescu");
    cmd.args(["-v", "-aet", ae, "-aec", AE, "127.0.0.1"]);
    cmd.arg(server.dicom_port.to_string());
    cmd.args(files);
    run(cmd)
}

fn call(server: &Server, token: &str, method: &str, path: &str, body: &[u8]) -> Reply {
    let content_type = if body.starts_with(b"<") {
        "application/xml"
    } else {
        "application/json"
    };
    request(
        server.http_port,
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", content_type),
        ],
        body,
    )
}

fn get(server: &Server, token: &str, path: &str) -> Reply {
    call(server, token, "GET", path, b"")
}

/// Every answer of a C-FIND (patient or study root, at `level`) for `keys`, as the bytes of
/// each response identifier DCMTK's `findscu` extracted (its file meta, which DCMTK makes up
/// anew each time, left out).
fn find(server: &Server, ae: &str, root: &str, keys: &[&str]) -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = dcmtk("findscu");
    cmd.args([root, "-X", "-od"]).arg(dir.path());
    cmd.args(["-aet", ae, "-aec", AE]);
    for key in keys {
        cmd.arg("-k").arg(key);
    }
    cmd.args(["127.0.0.1", &server.dicom_port.to_string()]);
    let (ok, log) = run(cmd);
    assert!(ok, "findscu: {log}");
    let mut files = files_under(dir.path());
    files.sort();
    files
        .iter()
        .map(|f| dataset_of(&std::fs::read(f).unwrap()).to_vec())
        .collect()
}

/// Patient names in C-FIND answers, decoded by their Specific Character Set.
fn names_in(answers: &[Vec<u8>]) -> Vec<String> {
    let mut names: Vec<String> = answers
        .iter()
        .map(|bytes| {
            let object = dicom_object::InMemDicomObject::read_dataset_with_ts(
                &bytes[..],
                &dicom_transfer_syntax_registry::entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
            )
            .expect("a C-FIND answer");
            object
                .element(dicom_dictionary_std::tags::PATIENT_NAME)
                .ok()
                .and_then(|e| e.to_str().ok().map(|s| s.trim().to_owned()))
                .unwrap_or_default()
        })
        .collect();
    names.sort();
    names
}

fn qido(server: &Server, token: &str, path: &str) -> Vec<Value> {
    let reply = get(server, token, path);
    if reply.status == 204 {
        return vec![];
    }
    assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    reply.json().as_array().cloned().unwrap_or_default()
}

fn text_of(item: &Value, tag: &str) -> String {
    let value = &item[tag]["Value"][0];
    value["Alphabetic"]
        .as_str()
        .or(value.as_str())
        .unwrap_or("")
        .to_owned()
}

/// (study, patient name, birth date) of each QIDO-RS study answer, sorted.
fn studies_of(server: &Server, token: &str, query: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = qido(server, token, &format!("/dicom-web/studies?{query}"))
        .iter()
        .map(|s| {
            (
                text_of(s, "0020000D"),
                text_of(s, "00100010"),
                text_of(s, "00100030"),
            )
        })
        .collect();
    out.sort();
    out
}

/// Everything a clinic's people and machines read about their data, byte for byte.
fn view_of(server: &Server, token: &str, ae: &str, study: &str) -> Vec<(String, Vec<u8>)> {
    let mut view = Vec::new();
    for path in [
        "/dicom-web/studies".to_owned(),
        format!("/dicom-web/studies?PatientID={MRN}"),
        "/dicom-web/series".to_owned(),
        "/dicom-web/instances".to_owned(),
        format!("/dicom-web/studies/{study}/instances"),
        format!("/dicom-web/studies/{study}/metadata"),
        "/api/journal".to_owned(),
        "/api/referrals".to_owned(),
        "/api/studies/unlinked".to_owned(),
    ] {
        let reply = get(server, token, &path);
        view.push((format!("{path} {}", reply.status), reply.bytes));
    }
    for (root, keys) in [
        (
            "-P",
            vec![
                "QueryRetrieveLevel=PATIENT",
                "PatientName",
                "PatientBirthDate",
            ],
        ),
        (
            "-S",
            vec![
                "QueryRetrieveLevel=STUDY",
                "PatientName",
                "PatientBirthDate",
                "NumberOfStudyRelatedInstances",
                "ModalitiesInStudy",
                "StudyInstanceUID",
            ],
        ),
    ] {
        let mut keys = keys;
        let id = format!("PatientID={MRN}");
        keys.push(&id);
        for (n, answer) in find(server, ae, root, &keys).into_iter().enumerate() {
            view.push((format!("C-FIND {root} answer {n}"), answer));
        }
    }
    view
}

fn assert_same_view(before: &[(String, Vec<u8>)], after: &[(String, Vec<u8>)], step: &str) {
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(before), names(after), "{step}: other answers");
    for ((what, a), (_, b)) in before.iter().zip(after) {
        assert!(
            a == b,
            "{step}: {what} changed\nbefore: {}\nafter:  {}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(b)
        );
    }
}

/// Runs one attempt by `actor` and checks it left at least one audit record naming them (the
/// summary every association ends with does not count); answers what it returned.
fn audited<T>(server: &Server, actor: &str, what: &str, attempt: impl FnOnce() -> T) -> T {
    let before = server.audit_count(actor);
    let result = attempt();
    let after = server.audit_count(actor);
    assert!(after > before, "{what} by {actor} left no audit record");
    result
}

/// A form 027 document for clinic `clinic`, order `order`, document number `n`.
fn referral(clinic: &str, order: &str, n: u32) -> String {
    VALID
        .replace("extension=\"demo\"", &format!("extension=\"{clinic}\""))
        .replace("E027-DOC-0001", &format!("E027-DOC-{n:04}"))
        .replace("E027-2026-0001", order)
}

/// Posts clinic `clinic`'s form 027 for order `order` (document number `n`) as `token`.
fn post_referral(server: &Server, token: &str, clinic: &str, order: &str, n: u32) -> Reply {
    let document = referral(clinic, order, n);
    call(server, token, "POST", "/api/referrals", document.as_bytes())
}

fn walk(db: Db) {
    let server = start(db);
    let nurse_a = server.token("nurse-a", "clinic", "demo");
    let nurse_b = server.token("nurse-b", "clinic", "kaunas");
    let regional = server.token("dr-regional", "cardiologist", "regional");
    let admin = server.token("admin", "admin", "");
    let dir = tempfile::tempdir().unwrap();

    // Clinic B: its patient (record MRN, personal code in Other Patient IDs), a study of two
    // series, and the referral that links to it.
    let b_patient = || {
        let mut c = patient(MRN, "Žukauskienė^Rūta", "19850712", "E027-2026-0001");
        c.push(format!("(0010,1002)[0].(0010,0020)={PERSONAL_CODE}"));
        c
    };
    let b1 = object(
        dir.path(),
        "b1.dcm",
        &[uids(STUDY_B, SERIES_B, SOP_B), b_patient()].concat(),
    );
    let b2 = object(
        dir.path(),
        "b2.dcm",
        &[uids(STUDY_B, "2.25.5001.2", "2.25.5001.2.1"), b_patient()].concat(),
    );
    // B also has a patient under the record number clinic A will later merge into: another
    // person, whom A's merge must never bring into answers about A's patient.
    let b3 = object(
        dir.path(),
        "b3.dcm",
        &[
            uids("2.25.5003", "2.25.5003.1", "2.25.5003.1.1"),
            patient("MRN-A-1", "Kitas^Žmogus", "19500505", "B-ACC-3"),
        ]
        .concat(),
    );
    let (ok, log) = storescu_as(&server, OTHER_AE, &[b1.clone(), b2, b3]);
    assert!(ok, "{log}");
    let reply = post_referral(&server, &nurse_b, "kaunas", "E027-2026-0001", 1);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json()["status"], "linked", "{}", reply.body);
    let case_of = |study: &str| -> String {
        let mut id = String::new();
        wait_for(Duration::from_secs(30), || {
            let list = get(&server, &admin, "/api/worklist").json();
            id = list["cases"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["study_uid"] == study)
                .and_then(|c| c["id"].as_str())
                .unwrap_or_default()
                .to_owned();
            !id.is_empty()
        });
        id
    };
    // B's case is routed first: what the service itself adds to B's journal is in the picture.
    let b_case = case_of(STUDY_B);
    let b_view = || view_of(&server, &nurse_b, OTHER_AE, STUDY_B);
    let before = b_view();
    let objects_before = server.stored_objects();
    assert_eq!(objects_before.len(), 3);

    // Clinic A's objects naming B's study, B's series, B's SOP instance.
    let a_patient = patient(MRN, "Kolizijaitė^Aldona", "19800202", "A-ACC-1");
    let into_study = object(
        dir.path(),
        "into-study.dcm",
        &[
            uids(STUDY_B, "2.25.7001.1", "2.25.7001.1.1"),
            a_patient.clone(),
        ]
        .concat(),
    );
    let into_series = object(
        dir.path(),
        "into-series.dcm",
        &[
            uids("2.25.7002", SERIES_B, "2.25.7002.1.1"),
            a_patient.clone(),
        ]
        .concat(),
    );
    let into_instance = object(
        dir.path(),
        "into-instance.dcm",
        &[uids("2.25.7003", "2.25.7003.1", SOP_B), a_patient.clone()].concat(),
    );
    let mut refused = 0;
    for file in [&into_study, &into_series, &into_instance] {
        let log = audited(&server, CLINIC_AE, "C-STORE into B", || {
            storescu_as(&server, CLINIC_AE, std::slice::from_ref(file)).1
        });
        // DCMTK names 0x0124 (Refused: Not Authorized) "Unknown Status".
        assert!(log.contains("0x124"), "{log}");
        refused += 1;
    }
    for (path, files) in [
        ("/dicom-web/studies".to_owned(), vec![into_study.clone()]),
        (
            format!("/dicom-web/studies/{STUDY_B}"),
            vec![into_study.clone()],
        ),
        (
            "/dicom-web/studies".to_owned(),
            vec![into_series.clone(), into_instance.clone()],
        ),
    ] {
        let reply = audited(&server, "nurse-a", "STOW-RS into B", || {
            stow(server.http_port, &nurse_a, &path, &files)
        });
        assert_eq!(reply.status, 409, "{path}: {}", reply.body);
        let failed = reply.json()["00081198"]["Value"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(failed.len(), files.len(), "{}", reply.body);
        for item in failed {
            assert_eq!(item["00081197"]["Value"][0], 0x0124, "{}", reply.body);
        }
        let warning = reply.header("Warning").unwrap_or_default();
        assert!(warning.contains("another institution"), "{}", reply.headers);
        assert!(
            !warning.contains("kaunas"),
            "the owner is not named: {warning}"
        );
        refused += files.len();
    }
    // An Encapsulated CDA object (the referral inside is clinic A's) naming B's study.
    let xml = dir.path().join("a-referral.xml");
    std::fs::write(&xml, referral("demo", "A-ORDER-1", 2)).unwrap();
    let cda = dir.path().join("a-referral.dcm");
    let (ok, log) = run({
        let mut cmd = dcmtk("cda2dcm");
        cmd.arg("+sg").arg(&xml).arg(&cda);
        cmd
    });
    assert!(ok, "{log}");
    let (ok, log) = run({
        let mut cmd = dcmtk("dcmodify");
        cmd.args(["-nb", "-m", &format!("(0020,000D)={STUDY_B}")])
            .arg(&cda);
        cmd
    });
    assert!(ok, "{log}");
    let log = audited(&server, CLINIC_AE, "Encapsulated CDA into B", || {
        dcmsend(server.dicom_port, std::slice::from_ref(&cda)).1
    });
    assert!(
        log.contains("0x124") && !log.contains("with status SUCCESS"),
        "{log}"
    );
    refused += 1;

    // Every refusal is a security event naming both institutions, and on the administrators'
    // list; nothing of it was stored, indexed or journaled.
    let events = server.audit_events("ownership_refused");
    assert_eq!(events.len(), refused, "{events:?}");
    let list = get(&server, &admin, "/api/ownership-refusals");
    assert_eq!(list.status, 200, "{}", list.body);
    let rows = list.json()["refusals"].as_array().unwrap().clone();
    assert_eq!(rows.len(), refused, "{}", list.body);
    for row in &rows {
        assert_eq!(row["clinic_id"], "demo", "{row}");
        assert_eq!(row["owner_id"], "kaunas", "{row}");
    }
    let doors: Vec<&str> = rows.iter().filter_map(|r| r["door"].as_str()).collect();
    assert_eq!(doors.iter().filter(|d| **d == "C-STORE").count(), 4);
    assert_eq!(doors.iter().filter(|d| **d == "STOW-RS").count(), 4);
    let whats: Vec<&str> = rows.iter().filter_map(|r| r["what"].as_str()).collect();
    for what in ["study", "series", "instance"] {
        assert!(whats.contains(&what), "{whats:?}");
    }
    let forbidden = audited(&server, "nurse-a", "clinic reads the refusals", || {
        get(&server, &nurse_a, "/api/ownership-refusals")
    });
    assert_eq!(forbidden.status, 403);
    assert_eq!(server.stored_objects(), objects_before);
    let a_referrals = get(&server, &nurse_a, "/api/referrals").json();
    assert_eq!(a_referrals["referrals"].as_array().unwrap().len(), 0);
    assert_same_view(&before, &b_view(), "after the objects");
    let a_journal = get(&server, &nurse_a, "/api/journal").json();
    assert_eq!(a_journal["entries"], serde_json::json!([]), "{a_journal}");

    // HL7 from clinic A's HIS about B's Patient ID and B's order number: an order becomes A's
    // own referral; an update of a patient A does not hold changes nothing.
    let pid3 = format!("{PERSONAL_CODE}^^^LT&2.999.370.1&ISO^NNLTU~{MRN}^^^&2.999.370.3&ISO^MR");
    let order = [
        msh("A-1", "ORM^O01^ORM_O01", "DEMO_HIS"),
        format!("PID|1||{pid3}||Pakeista^Vardenė||19850712|F"),
        "PV1|1|O".to_owned(),
        "ORC|NW|E027-2026-0001|||||^^^^^R||20261130100000|||GYD-1^Kairys^Vytautas".to_owned(),
        "OBR|1|E027-2026-0001||34552-0^Echocardiography^LN".to_owned(),
    ]
    .join("\r");
    let update = [
        msh("A-2", "ADT^A08^ADT_A01", "DEMO_HIS"),
        "EVN|A08|20261130120000".to_owned(),
        format!("PID|1||{MRN}^^^&2.999.370.3&ISO^MR||Pakeista^Vardenė||19010101|M"),
    ]
    .join("\r");
    let acks = audited(
        &server,
        "HIS@DEMO_HIS",
        "HL7 from A about B's patient",
        || send(server.hl7_port, &[order, update]),
    );
    assert_eq!(field(&acks[0], "MSA", 1), "AA", "{acks:?}");
    assert_eq!(field(&acks[1], "MSA", 1), "AA", "{acks:?}");
    assert!(
        field(&acks[1], "MSA", 3).contains("nothing changed"),
        "{acks:?}"
    );
    let a_referrals = get(&server, &nurse_a, "/api/referrals").json();
    let a_referrals = a_referrals["referrals"].as_array().unwrap().clone();
    assert_eq!(a_referrals.len(), 1);
    assert_eq!(a_referrals[0]["status"], "awaiting_examination");

    // The referral API: B's document id is B's (409, revealing nothing); A's own document
    // naming B's order number is A's referral and never links to B's study; a document that
    // names B as the performing clinic is refused.
    let again = audited(&server, "nurse-a", "A resends B's document", || {
        post_referral(&server, &nurse_a, "demo", "E027-2026-0001", 1)
    });
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(!again.body.contains(STUDY_B), "{}", again.body);
    let own = post_referral(&server, &nurse_a, "demo", "E027-2026-0001", 3);
    assert_eq!(own.status, 200, "enriches A's own HL7 order: {}", own.body);
    assert_eq!(own.json()["study_uid"], "");
    let as_b = audited(&server, "nurse-a", "A sends a referral as B", || {
        post_referral(&server, &nurse_a, "kaunas", "E027-2026-0002", 4)
    });
    assert_eq!(as_b.status, 422, "{}", as_b.body);
    assert_same_view(&before, &b_view(), "after HL7 and referrals");

    // Clinic A's own patient under the same record number: a different person.
    let a_study = object(
        dir.path(),
        "a.dcm",
        &[
            uids(STUDY_A, "2.25.6001.1", "2.25.6001.1.1"),
            a_patient.clone(),
        ]
        .concat(),
    );
    let (ok, log) = storescu_as(&server, CLINIC_AE, std::slice::from_ref(&a_study));
    assert!(ok && !log.contains("0x124"), "{log}");
    assert_same_view(&before, &b_view(), "after A's own patient arrived");
    let a_view = || view_of(&server, &nurse_a, CLINIC_AE, STUDY_A);
    let a_before = a_view();
    assert_eq!(
        studies_of(&server, &nurse_a, &format!("PatientID={MRN}")),
        [(
            STUDY_A.to_owned(),
            "Kolizijaitė^Aldona".to_owned(),
            "19800202".to_owned()
        )]
    );
    let patients = |ae: &str| {
        names_in(&find(
            &server,
            ae,
            "-P",
            &[
                "QueryRetrieveLevel=PATIENT",
                "SpecificCharacterSet=ISO_IR 192",
                "PatientName",
                &format!("PatientID={MRN}"),
            ],
        ))
    };
    assert_eq!(patients(CLINIC_AE), ["Kolizijaitė^Aldona"]);
    assert_eq!(patients(OTHER_AE), ["Žukauskienė^Rūta"]);
    // The centre that reads both clinics sees two patients, each as its clinic sent it.
    assert_eq!(
        patients(REGIONAL_AE),
        ["Kolizijaitė^Aldona", "Žukauskienė^Rūta"]
    );
    assert_eq!(
        studies_of(&server, &regional, &format!("PatientID={MRN}")),
        [
            (
                STUDY_B.to_owned(),
                "Žukauskienė^Rūta".to_owned(),
                "19850712".to_owned()
            ),
            (
                STUDY_A.to_owned(),
                "Kolizijaitė^Aldona".to_owned(),
                "19800202".to_owned()
            ),
        ]
    );
    // B sends its object again: A's answers do not move either.
    let (ok, log) = storescu_as(&server, OTHER_AE, std::slice::from_ref(&b1));
    assert!(ok, "{log}");
    assert_same_view(&a_before, &a_view(), "after B resent its object");

    // The same national personal code at both clinics: one person. A's case for them, next to
    // B's, is shown to the regional centre with B's case as the same person's; A sees only its
    // own.
    let a_case_study = object(
        dir.path(),
        "a-same.dcm",
        &[
            uids("2.25.6100", "2.25.6100.1", "2.25.6100.1.1"),
            patient(PERSONAL_CODE, "Zukauskiene^Ruta", "19850712", "A-ORDER-9"),
        ]
        .concat(),
    );
    let reply = post_referral(&server, &nurse_a, "demo", "A-ORDER-9", 9);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let (ok, log) = storescu_as(&server, CLINIC_AE, std::slice::from_ref(&a_case_study));
    assert!(ok, "{log}");
    let a_case = case_of("2.25.6100");
    let seen = get(&server, &regional, &format!("/api/cases/{a_case}")).json();
    let same: Vec<&str> = seen["same_person"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(same, [b_case.as_str()], "{seen}");
    assert_eq!(seen["same_person"][0]["clinic_id"], "kaunas");
    let own = get(&server, &nurse_a, &format!("/api/cases/{a_case}")).json();
    assert_eq!(own["same_person"], serde_json::json!([]), "{own}");
    // The referral restored the letters the modality's character set had lost: A's record.
    assert_eq!(
        studies_of(&server, &nurse_a, "PatientID=48507120013"),
        [(
            "2.25.6100".to_owned(),
            "Žukauskienė^Rūta".to_owned(),
            "19850712".to_owned()
        )]
    );

    // A merge by clinic A's HIS of its record MRN acts on A's records only.
    let merge = [
        msh("A-3", "ADT^A40^ADT_A39", "DEMO_HIS"),
        "EVN|A40|20261130120000".to_owned(),
        "PID|1||MRN-A-1^^^&2.999.370.3&ISO^MR||Kolizijaitė^Aldona||19800202|F".to_owned(),
        format!("MRG|{MRN}^^^&2.999.370.3&ISO^MR"),
    ]
    .join("\r");
    let acks = send(server.hl7_port, &[merge]);
    assert_eq!(field(&acks[0], "MSA", 1), "AA", "{acks:?}");
    assert!(field(&acks[0], "MSA", 3).contains("1 study"), "{acks:?}");
    assert_eq!(
        studies_of(&server, &nurse_a, "PatientID=MRN-A-1"),
        [(
            STUDY_A.to_owned(),
            "Kolizijaitė^Aldona".to_owned(),
            "19800202".to_owned()
        )]
    );
    assert_eq!(patients(OTHER_AE), ["Žukauskienė^Rūta"]);
    // The regional centre asks for MRN: B's patient, and A's merged patient in A only; B's
    // own MRN-A-1 is somebody else.
    let regional_mrn: Vec<String> = studies_of(&server, &regional, &format!("PatientID={MRN}"))
        .into_iter()
        .map(|s| s.0)
        .collect();
    assert_eq!(regional_mrn, [STUDY_B, STUDY_A]);
    assert_same_view(&before, &b_view(), "at the end");
}

#[test]
fn no_clinic_writes_into_another_clinics_data_sqlite() {
    walk(Db::Sqlite);
}

#[test]
fn no_clinic_writes_into_another_clinics_data_postgres() {
    walk(Db::Postgres);
}

/// An object of `us-single.dcm` whose Specific Character Set is `charset` and Patient Name the
/// bytes `name` (in that character set).
fn encoded(dir: &Path, file: &str, charset: &str, name: &[u8], changes: &[String]) -> PathBuf {
    let out = object(dir, file, changes);
    let mut cmd = dcmtk("dcmodify");
    cmd.args(["-nb", "-m"])
        .arg(format!("(0008,0005)={charset}"));
    let mut arg = b"(0010,0010)=".to_vec();
    arg.extend_from_slice(name);
    cmd.arg("-m").arg(OsString::from_vec(arg)).arg(&out);
    let (ok, log) = run(cmd);
    assert!(ok, "dcmodify: {log}");
    out
}

/// One patient's three studies from modalities in UTF-8, Latin-4 and Latin-1 (which has no Ž,
/// ė or ū), in every order of arrival: after each arrival every study answers the best name
/// known so far, never one with fewer letters.
fn charset_orders(db: Db) {
    let server = start(db);
    let nurse = server.token("nurse-a", "clinic", "demo");
    let dir = tempfile::tempdir().unwrap();
    const RICH: &str = "Žukauskienė^Rūta";
    const FOLDED: &str = "Zukauskiene^Ruta";
    let sets: [(&str, Vec<u8>); 3] = [
        ("ISO_IR 192", RICH.as_bytes().to_vec()),
        ("ISO_IR 110", b"\xaeukauskien\xec^R\xfeta".to_vec()),
        ("ISO_IR 100", FOLDED.as_bytes().to_vec()),
    ];
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for (n, order) in orders.iter().enumerate() {
        let patient_id = format!("CS-{n}");
        let mut rich_seen = false;
        for (step, &set) in order.iter().enumerate() {
            let (charset, name) = &sets[set];
            let study = format!("2.25.84{n}{step}");
            let file = encoded(
                dir.path(),
                &format!("{n}-{step}.dcm"),
                charset,
                name,
                &[
                    uids(&study, &format!("{study}.1"), &format!("{study}.1.1")),
                    vec![format!("(0010,0020)={patient_id}")],
                ]
                .concat(),
            );
            let (ok, log) = storescu(server.dicom_port, &[file]);
            assert!(ok && !log.contains("0x124"), "{log}");
            rich_seen |= *charset != "ISO_IR 100";
            let expected = if rich_seen { RICH } else { FOLDED };
            let answered = studies_of(&server, &nurse, &format!("PatientID={patient_id}"));
            assert_eq!(answered.len(), step + 1);
            for (uid, name, _) in &answered {
                assert_eq!(name, expected, "order {order:?}, step {step}, study {uid}");
            }
        }
        // C-FIND answers the same name, whichever character set the query asks in.
        for charset in ["ISO_IR 192", "ISO_IR 110", "ISO_IR 100"] {
            let answers = find(
                &server,
                CLINIC_AE,
                "-S",
                &[
                    "QueryRetrieveLevel=STUDY",
                    &format!("SpecificCharacterSet={charset}"),
                    "PatientName",
                    "StudyInstanceUID",
                    &format!("PatientID={patient_id}"),
                ],
            );
            assert_eq!(
                names_in(&answers),
                [RICH, RICH, RICH],
                "{order:?} {charset}"
            );
        }
    }
}

#[test]
fn a_name_never_loses_its_letters_sqlite() {
    charset_orders(Db::Sqlite);
}

#[test]
fn a_name_never_loses_its_letters_postgres() {
    charset_orders(Db::Postgres);
}

/// An outsider (a clinic and a centre that do not read clinic A) tries every route of the
/// OpenAPI description and every DICOMweb route against clinic A's case, referral, study,
/// series and instance, and C-FIND and C-GET over DICOM: every attempt leaves an audit record,
/// none is answered with A's data.
fn outsiders_are_audited(db: Db) {
    let server = start(db);
    let nurse_a = server.token("nurse-a", "clinic", "demo");
    let admin = server.token("admin", "admin", "");
    let dir = tempfile::tempdir().unwrap();
    let reply = call(
        &server,
        &nurse_a,
        "POST",
        "/api/referrals",
        referral("demo", "A-ORDER-1", 1)
            .replace("Žukauskienė", "Kolizijaitė")
            .as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let referral_id = reply.json()["id"].as_str().unwrap().to_owned();
    let series = format!("{STUDY_A}.1");
    let instance = format!("{STUDY_A}.1.1");
    let a_study = object(
        dir.path(),
        "a.dcm",
        &[
            uids(STUDY_A, &series, &instance),
            patient(PERSONAL_CODE, "Kolizijaitė^Rūta", "19850712", "A-ORDER-1"),
        ]
        .concat(),
    );
    let (ok, log) = storescu(server.dicom_port, std::slice::from_ref(&a_study));
    assert!(ok, "{log}");
    let mut case_id = String::new();
    wait_for(Duration::from_secs(30), || {
        let list = get(&server, &admin, "/api/worklist").json();
        case_id = list["cases"][0]["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        !case_id.is_empty()
    });
    let secrets = ["Kolizijait", STUDY_A, PERSONAL_CODE];
    let outsiders = [
        ("nurse-b", server.token("nurse-b", "clinic", "kaunas")),
        (
            "dr-b",
            server.token("dr-b", "cardiologist", "kaunas-centre"),
        ),
    ];
    let spec = get(&server, &outsiders[0].1, "/api/openapi.json").json();
    let fill = |path: &str| {
        path.replace(
            "/api/referrals/{id}",
            &format!("/api/referrals/{referral_id}"),
        )
        .replace("/api/cases/{id}", &format!("/api/cases/{case_id}"))
        .replace("{report}", "01900000-0000-7000-8000-000000000001")
        .replace("{uid}", STUDY_A)
        .replace("{name}", "dr-regional")
        .replace("{id}", "01900000-0000-7000-8000-000000000002")
    };
    let body_for = |method: &str, path: &str| -> Vec<u8> {
        let json = if path.ends_with("/report") {
            r#"{"findings": "x", "conclusion": "y"}"#
        } else if path.starts_with("/api/studies/") {
            r#"{"reason": "trying"}"#
        } else if path.ends_with("/route") {
            r#"{"centre": "regional", "reason": "trying"}"#
        } else if path.ends_with("/availability") {
            r#"{"away": true}"#
        } else if path.ends_with("/resolve") {
            r#"{"decision": "link"}"#
        } else if path.ends_with("/unlink") {
            r#"{"reason": "trying"}"#
        } else if path.ends_with("/deliveries") && method == "POST" {
            r#"{"channel": "hl7"}"#
        } else if path == "/api/referrals" && method == "POST" {
            return referral("demo", "A-ORDER-2", 2).into_bytes();
        } else {
            "{}"
        };
        json.as_bytes().to_vec()
    };
    let mut tried = 0;
    for (template, item) in spec["paths"].as_object().unwrap() {
        // Open routes: nothing of a patient's behind them.
        if ["/healthz", "/metrics", "/api/login"].contains(&template.as_str()) {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let path = fill(template);
            for (name, token) in &outsiders {
                let reply = audited(&server, name, &format!("{method} {path}"), || {
                    let body = if method == "GET" {
                        Vec::new()
                    } else {
                        body_for(&method, &path)
                    };
                    call(&server, token, &method, &path, &body)
                });
                for secret in secrets.iter().filter(|s| !path.contains(**s)) {
                    assert!(
                        !reply.body.contains(secret),
                        "{method} {path} answered {}: {}",
                        reply.status,
                        reply.body
                    );
                }
                if template.contains('{') {
                    assert!(
                        !(200..300).contains(&reply.status),
                        "{method} {path} answered {}: {}",
                        reply.status,
                        reply.body
                    );
                }
                tried += 1;
            }
        }
    }
    assert!(tried > 50, "{tried} attempts");
    // DICOMweb, which the OpenAPI description leaves to PS3.18.
    let base = format!("/dicom-web/studies/{STUDY_A}");
    let object = format!("{base}/series/{series}/instances/{instance}");
    for path in [
        format!("/dicom-web/studies?StudyInstanceUID={STUDY_A}"),
        format!("/dicom-web/series?StudyInstanceUID={STUDY_A}"),
        format!("/dicom-web/instances?SOPInstanceUID={instance}"),
        base.clone(),
        format!("{base}/series"),
        format!("{base}/instances"),
        format!("{base}/metadata"),
        format!("{base}/series/{series}"),
        format!("{base}/series/{series}/instances"),
        format!("{base}/series/{series}/metadata"),
        object.clone(),
        format!("{object}/metadata"),
        format!("{object}/frames/1"),
        format!("{object}/rendered"),
        format!("{object}/frames/1/rendered"),
    ] {
        for (name, token) in &outsiders {
            let reply = audited(&server, name, &path, || get(&server, token, &path));
            assert!(
                reply.status == 204 || reply.status >= 400 || reply.body.trim() == "[]",
                "{path} answered {}: {}",
                reply.status,
                reply.body
            );
            assert!(!reply.body.contains("Kolizijait"), "{path}: {}", reply.body);
        }
    }
    for (name, token) in &outsiders {
        let reply = audited(&server, name, "STOW-RS into A's study", || {
            stow(
                server.http_port,
                token,
                &base,
                std::slice::from_ref(&a_study),
            )
        });
        assert!(reply.status >= 400, "{}", reply.body);
    }
    let answers = audited(&server, OTHER_AE, "C-FIND for A's study", || {
        find(
            &server,
            OTHER_AE,
            "-S",
            &[
                "QueryRetrieveLevel=STUDY",
                "PatientName",
                &format!("StudyInstanceUID={STUDY_A}"),
            ],
        )
    });
    assert!(answers.is_empty());
    let log = audited(&server, OTHER_AE, "C-GET of A's study", || {
        let mut cmd = dcmtk("getscu");
        cmd.args(["-S", "-aet", OTHER_AE, "-aec", AE, "-od"])
            .arg(dir.path())
            .args(["-k", "QueryRetrieveLevel=STUDY"])
            .args(["-k", &format!("StudyInstanceUID={STUDY_A}")])
            .args(["127.0.0.1", &server.dicom_port.to_string()]);
        run(cmd).1
    });
    assert!(!dir.path().join(format!("US.{instance}")).exists(), "{log}");
}

#[test]
fn outsiders_are_audited_on_every_route_sqlite() {
    outsiders_are_audited(Db::Sqlite);
}

#[test]
fn outsiders_are_audited_on_every_route_postgres() {
    outsiders_are_audited(Db::Postgres);
}

/// The index's own check, under its locks, whatever ingest checked before: what another clinic
/// owns is refused and nothing of the attempt is recorded (the race ingest's early check
/// cannot see).
fn index_refuses_under_its_locks(db: Db) {
    use telecardio::index::{Collision, Index, InstanceRecord, Recorded};
    let dir = tempfile::tempdir().unwrap();
    let url = match db {
        Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.path().join("i.db").display()),
        Db::Postgres => create_pg_database(),
    };
    let record = |clinic: &str, study: &str, series: &str, sop: &str| InstanceRecord {
        object_key: format!("{clinic}/{sop}"),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.6.1".into(),
        sop_instance_uid: sop.into(),
        study_uid: study.into(),
        series_uid: series.into(),
        clinic_id: clinic.into(),
        patient_id: MRN.into(),
        patient_name: format!("Pacientas^{clinic}"),
        ..InstanceRecord::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let index = Index::open(&url, 2).await.unwrap();
        let first = index
            .record_instance(&record("kaunas", "2.25.1", "2.25.1.1", "2.25.1.1.1"))
            .await
            .unwrap();
        assert_eq!(first, Recorded::New { new_series: true });
        let foreign = |what: &'static str, uid: &str| {
            Recorded::Refused(Collision::Foreign {
                what,
                uid: uid.into(),
                owner: "kaunas".into(),
            })
        };
        for (attempt, expected) in [
            (
                record("demo", "2.25.1", "2.25.2.1", "2.25.2.1.1"),
                foreign("study", "2.25.1"),
            ),
            (
                record("demo", "2.25.3", "2.25.1.1", "2.25.3.1.1"),
                foreign("series", "2.25.1.1"),
            ),
            (
                record("demo", "2.25.4", "2.25.4.1", "2.25.1.1.1"),
                foreign("instance", "2.25.1.1.1"),
            ),
            (
                record("kaunas", "2.25.5", "2.25.1.1", "2.25.5.1.1"),
                Recorded::Refused(Collision::SeriesElsewhere {
                    series_uid: "2.25.1.1".into(),
                    study_uid: "2.25.1".into(),
                }),
            ),
        ] {
            let elsewhere = record("demo", "2.25.9", "2.25.9", "2.25.9");
            assert_eq!(index.precheck(&elsewhere).await.unwrap().collision, None);
            let early = index.precheck(&attempt).await.unwrap().collision;
            let Recorded::Refused(collision) = &expected else {
                unreachable!()
            };
            assert_eq!(early.as_ref(), Some(collision));
            let recorded = index.record_instance(&attempt).await.unwrap();
            assert_eq!(recorded, expected, "{attempt:?}");
            assert!(!index.has_object(&attempt.object_key).await.unwrap());
        }
        // Two clinics storing one SOP Instance UID into studies of their own at the same
        // moment: one keeps it, the other is refused, every time.
        for n in 0..20 {
            let a = record(
                "demo",
                &format!("2.25.10{n}"),
                &format!("2.25.10{n}.1"),
                &format!("2.25.99.{n}"),
            );
            let b = record(
                "kaunas",
                &format!("2.25.20{n}"),
                &format!("2.25.20{n}.1"),
                &format!("2.25.99.{n}"),
            );
            let (a, b) = tokio::join!(index.record_instance(&a), index.record_instance(&b));
            let outcomes = [a.unwrap(), b.unwrap()];
            let kept = outcomes
                .iter()
                .filter(|o| matches!(o, Recorded::New { .. }))
                .count();
            let refused = outcomes
                .iter()
                .filter(|o| {
                    matches!(
                        o,
                        Recorded::Refused(Collision::Foreign {
                            what: "instance",
                            ..
                        })
                    )
                })
                .count();
            assert_eq!((kept, refused), (1, 1), "{outcomes:?}");
        }
        assert_eq!(index.count_instances().await.unwrap(), 21);
        // Nothing of the refused attempts is anywhere: the first study of one instance, its
        // patient as its own clinic named them.
        let studies = index.list_studies(100).await.unwrap();
        let first = studies.iter().find(|s| s.study_uid == "2.25.1").unwrap();
        assert_eq!(first.num_instances, 1);
        assert_eq!(first.patient_name, "Pacientas^kaunas");
        assert_eq!(studies.len(), 21);
        index.close().await;
    });
}

#[test]
fn the_index_refuses_under_its_locks_sqlite() {
    index_refuses_under_its_locks(Db::Sqlite);
}

#[test]
fn the_index_refuses_under_its_locks_postgres() {
    index_refuses_under_its_locks(Db::Postgres);
}
