//! HL7 v2 over MLLP against the real server, sent by a client nobody here wrote (the Python
//! `hl7` package's `mllp_send`): orders become referrals (and a later CDA document for the same
//! order enriches the same referral), ADT^A08 updates and ADT^A40 merges patients in the index
//! without touching stored objects, every message is answered with an ACK that says what was
//! wrong and where; the journal shows the whole case in order, on SQLite and PostgreSQL.

mod common;

use std::path::PathBuf;

use common::hl7::{field, msh, send};
use common::*;

const VALID: &str = include_str!("fixtures/form027-valid.xml");
const PERSONAL_CODE: &str = "48507120013";

fn start(db: Db) -> Server {
    let clinics = format!(
        r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[]}},
            {{id="other", name="Other", ae_titles=["OTHER_CLINIC"], networks=[]}}]"#
    );
    let senders = r#"[{facility="DEMO_HIS", clinic="demo", networks=["127.0.0.0/8"]},
                      {facility="OTHER_HIS", clinic="other", networks=[]}]"#;
    Server::start_with(
        db,
        Store::Local,
        &[
            ("TELECARDIO_CLINICS", clinics.as_str()),
            ("TELECARDIO_HL7__SENDERS", senders),
        ],
    )
}

fn orm(control_id: &str, order: &str, pid3: &str) -> String {
    [
        msh(control_id, "ORM^O01^ORM_O01", "DEMO_HIS"),
        format!("PID|1||{pid3}||Žukauskienė^Rūta||19850712|F"),
        "PV1|1|O".to_owned(),
        format!("ORC|NW|{order}|||||^^^^^A||20261130100000|||GYD-10234^Kairys^Vytautas"),
        format!("OBR|1|{order}||34552-0^Echocardiography^LN|||||||||Dusulys krūvio metu"),
    ]
    .join("\r")
}

const PATIENT_IDS: &str =
    "48507120013^^^LT&2.999.370.1&ISO^NNLTU~AK-2026-0077^^^&2.999.370.3&ISO^MR";

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn get(server: &Server, token: &str, path: &str) -> Reply {
    request(
        server.http_port,
        "GET",
        path,
        &[("Authorization", &bearer(token))],
        b"",
    )
}

/// An order, its resend, the CDA document that follows it, the study: one referral, linked,
/// and the journal tells it in order (per case, per patient, as CSV).
fn order_then_document_then_study(db: Db) {
    let server = start(db);
    let clinic = server.token("demo-staff", "clinic", "demo");
    let order = "E027-2026-0001";
    let message = orm("MSG-0001", order, PATIENT_IDS);
    let acks = send(server.hl7_port, &[message.clone(), message]);
    assert_eq!(field(&acks[0], "MSA", 1), "AA", "{acks:?}");
    assert_eq!(field(&acks[0], "MSA", 2), "MSG-0001");
    assert!(
        field(&acks[0], "MSA", 3).contains("awaiting_examination"),
        "{acks:?}"
    );
    // MSH-1 is the separator itself, so MSH-9 is the eighth field after the name.
    assert_eq!(field(&acks[0], "MSH", 8), "ACK^O01^ACK");
    assert_eq!(field(&acks[1], "MSA", 1), "AA");
    assert!(
        field(&acks[1], "MSA", 3).contains("already received"),
        "{acks:?}"
    );

    let list = get(
        &server,
        &clinic,
        &format!("/api/referrals?order_number={order}"),
    )
    .json();
    let referrals = list["referrals"].as_array().unwrap();
    assert_eq!(referrals.len(), 1, "{list}");
    let referral = &referrals[0];
    let id = referral["id"].as_str().unwrap().to_owned();
    assert_eq!(referral["source"], "hl7v2");
    assert_eq!(referral["patient"]["personal_code"], PERSONAL_CODE);
    assert_eq!(referral["patient"]["statistical_card"], "AK-2026-0077");
    assert_eq!(referral["patient"]["family_name"], "Žukauskienė");
    assert_eq!(referral["examination"], "echo");
    assert_eq!(referral["urgency"], "urgent");
    assert_eq!(referral["author"]["name"], "Vytautas Kairys");
    // The message itself is kept as received.
    let kept = files_under(&server.data_dir().join("objects").join("hl7"));
    assert_eq!(kept.len(), 1);
    assert!(std::fs::read_to_string(&kept[0])
        .unwrap()
        .contains("ORC|NW|E027-2026-0001"));

    // The CDA document for the same order enriches the same referral.
    let reply = request(
        server.http_port,
        "POST",
        "/api/referrals",
        &[
            ("Authorization", &bearer(&clinic)),
            ("Content-Type", "application/xml"),
        ],
        VALID.as_bytes(),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let enriched = reply.json();
    assert_eq!(enriched["id"], id.as_str(), "{enriched}");
    assert_eq!(enriched["document_id"], "2.999.370.9^E027-DOC-0001");
    let list = get(
        &server,
        &clinic,
        &format!("/api/referrals?order_number={order}"),
    )
    .json();
    assert_eq!(list["referrals"].as_array().unwrap().len(), 1, "{list}");

    // A document for the same order but another patient is refused, naming the field.
    let other = VALID
        .replace("E027-DOC-0001", "E027-DOC-0099")
        .replace("48507120013", "38507120056");
    let reply = request(
        server.http_port,
        "POST",
        "/api/referrals",
        &[
            ("Authorization", &bearer(&clinic)),
            ("Content-Type", "application/xml"),
        ],
        other.as_bytes(),
    );
    assert_eq!(reply.status, 422, "{}", reply.body);

    let dir = tempfile::tempdir().unwrap();
    let study = study_of(dir.path(), "s.dcm", PERSONAL_CODE, order, "2.25.7001");
    let (ok, log) = storescu(server.dicom_port, &[study]);
    assert!(ok, "{log}");
    let after = get(&server, &clinic, &format!("/api/referrals/{id}")).json();
    assert_eq!(after["status"], "linked", "{after}");

    let expected = [
        "referral_received",
        "referral_enriched",
        "data_received",
        "linked",
    ];
    let case = get(&server, &clinic, &format!("/api/referrals/{id}/journal"));
    assert_eq!(kinds(&case), expected, "{}", case.body);
    let by_patient = get(
        &server,
        &clinic,
        &format!("/api/journal?patient={PERSONAL_CODE}&from=2000-01-01&to=2999-12-31"),
    );
    assert_eq!(by_patient.status, 200, "{}", by_patient.body);
    assert_eq!(kinds(&by_patient), expected, "{}", by_patient.body);
    let csv = get(
        &server,
        &clinic,
        &format!("/api/journal?patient={PERSONAL_CODE}&format=csv"),
    );
    assert_eq!(csv.status, 200);
    assert!(csv
        .header("Content-Type")
        .is_some_and(|t| t.starts_with("text/csv")));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("at,kind,clinic_id"), "{}", csv.body);
    let csv_kinds: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(csv_kinds, expected, "{}", csv.body);
    // A period before anything happened is empty; a bad date is a 400 naming the parameter.
    let empty = get(&server, &clinic, "/api/journal?to=2001-01-01");
    assert_eq!(kinds(&empty), Vec::<String>::new());
    let bad = get(&server, &clinic, "/api/journal?from=yesterday");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["field"], "from");

    // Another clinic sees none of it, and its attempt is audited.
    let other = server.token("other-staff", "clinic", "other");
    let theirs = get(
        &server,
        &other,
        &format!("/api/journal?patient={PERSONAL_CODE}"),
    );
    assert_eq!(kinds(&theirs), Vec::<String>::new());
    assert!(server
        .audit_events("journal_read")
        .iter()
        .any(|(actor, _, _)| actor == "other-staff"));
}

#[test]
fn order_then_document_then_study_sqlite() {
    order_then_document_then_study(Db::Sqlite);
}

#[test]
fn order_then_document_then_study_postgres() {
    order_then_document_then_study(Db::Postgres);
}

/// Each way a message can be unacceptable is answered AE or AR with an ERR segment naming the
/// HL7 error code and the field, and leaves nothing behind.
#[test]
fn bad_messages_are_answered_with_what_is_wrong() {
    let server = start(Db::Sqlite);
    let no_code = orm("BAD-1", "ORD-1", "AK-2026-0077^^^&2.999.370.3&ISO^MR");
    let no_card = orm("BAD-2", "ORD-2", "48507120013^^^&2.999.370.1&ISO");
    let bad_checksum = orm(
        "BAD-3",
        "ORD-3",
        "48507120014^^^&2.999.370.1&ISO~AK-1^^^&2.999.370.3&ISO",
    );
    let no_order = orm("BAD-4", "", PATIENT_IDS);
    let unknown_type = orm("BAD-5", "ORD-5", PATIENT_IDS).replace("ORM^O01^ORM_O01", "ORU^R01");
    let unknown_sender = orm("BAD-6", "ORD-6", PATIENT_IDS).replace("|DEMO_HIS|", "|NOBODY|");
    let cancel = orm("BAD-7", "ORD-7", PATIENT_IDS).replace("ORC|NW|", "ORC|CA|");
    let wrong_version = orm("BAD-8", "ORD-8", PATIENT_IDS).replace("|P|2.5|", "|P|3.1|");
    let acks = send(
        server.hl7_port,
        &[
            no_code,
            no_card,
            bad_checksum,
            no_order,
            unknown_type,
            unknown_sender,
            cancel,
            wrong_version,
        ],
    );
    let expect = |i: usize, code: &str, err_code: &str, location: &str, says: &str| {
        let ack = &acks[i];
        assert_eq!(field(ack, "MSA", 1), code, "message {i}: {ack:?}");
        assert_eq!(field(ack, "MSA", 2), format!("BAD-{}", i + 1));
        assert!(
            field(ack, "ERR", 3).starts_with(&format!("{err_code}^")),
            "message {i}: {ack:?}"
        );
        assert_eq!(field(ack, "ERR", 2), location, "message {i}: {ack:?}");
        assert!(field(ack, "ERR", 8).contains(says), "message {i}: {ack:?}");
    };
    expect(0, "AE", "101", "PID^1^3", "personal code");
    expect(1, "AE", "101", "PID^1^3", "statistical card");
    expect(2, "AE", "102", "PID^1^3", "check digit");
    expect(3, "AE", "101", "ORC^1^2", "placer order number");
    expect(4, "AR", "200", "MSH^1^9", "ORU");
    expect(5, "AR", "207", "MSH^1^4", "NOBODY");
    expect(6, "AE", "103", "ORC^1^1", "CA");
    expect(7, "AR", "203", "MSH^1^12", "3.1");
    let clinic = server.token("demo-staff", "clinic", "demo");
    let list = get(&server, &clinic, "/api/referrals").json();
    assert_eq!(list["referrals"].as_array().unwrap().len(), 0, "{list}");
    assert!(!server.data_dir().join("objects").join("hl7").exists());
    let refused = server.audit_events("hl7_message_refused");
    assert!(refused.len() >= 4, "{refused:?}");
    // OMG^O19 is an order too.
    let omg = orm("OK-1", "ORD-9", PATIENT_IDS).replace("ORM^O01^ORM_O01", "OMG^O19^OMG_O19");
    let acks = send(server.hl7_port, &[omg]);
    assert_eq!(field(&acks[0], "MSA", 1), "AA", "{acks:?}");
}

fn adt(control_id: &str, event: &str, pid3: &str, name: &str, extra: &str) -> String {
    let mut segments = vec![
        msh(control_id, &format!("ADT^{event}^ADT_A01"), "DEMO_HIS"),
        format!("EVN|{event}|20261130120000"),
        format!("PID|1||{pid3}||{name}||19850712|F"),
    ];
    if !extra.is_empty() {
        segments.push(extra.to_owned());
    }
    segments.join("\r")
}

fn qido_patient(server: &Server, token: &str, patient_id: &str) -> Vec<serde_json::Value> {
    let reply = get(
        server,
        token,
        &format!("/dicom-web/studies?PatientID={patient_id}&includefield=00100010"),
    );
    if reply.status == 204 {
        return vec![];
    }
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json().as_array().cloned().unwrap_or_default()
}

fn name_of(study: &serde_json::Value) -> String {
    study["00100010"]["Value"][0]["Alphabetic"]
        .as_str()
        .unwrap_or("")
        .to_owned()
}

/// ADT^A08 renames the patient in what queries answer, never in the stored object; ADT^A40
/// merges a temporary identifier into the personal code, and queries, later objects and the
/// journal follow the merge.
fn patient_maintenance(db: Db) {
    let server = start(db);
    let clinic = server.token("demo-staff", "clinic", "demo");
    let dir = tempfile::tempdir().unwrap();
    let first = study_of(dir.path(), "a.dcm", PERSONAL_CODE, "ACC-1", "2.25.8001");
    let temporary = study_of(dir.path(), "b.dcm", "TMP-42", "ACC-2", "2.25.8002");
    let (ok, log) = storescu(server.dicom_port, &[first.clone(), temporary]);
    assert!(ok, "{log}");
    let stored_before: Vec<(PathBuf, String)> =
        files_under(&server.data_dir().join("objects").join("dicom"))
            .into_iter()
            .map(|f| {
                let hash = sha256_hex(&std::fs::read(&f).unwrap());
                (f, hash)
            })
            .collect();

    let update = adt("ADT-1", "A08", PATIENT_IDS, "Žukauskienė-Šimkė^Rūta", "");
    let unknown = adt("ADT-2", "A08", "99999999999^^^HIS", "Niekas^Nėra", "");
    let acks = send(server.hl7_port, &[update, unknown]);
    assert_eq!(field(&acks[0], "MSA", 1), "AA", "{acks:?}");
    assert!(
        field(&acks[0], "MSA", 3).starts_with("1 patient record"),
        "{acks:?}"
    );
    assert_eq!(field(&acks[1], "MSA", 1), "AA", "{acks:?}");
    assert!(
        field(&acks[1], "MSA", 3).contains("nothing changed"),
        "{acks:?}"
    );
    let found = qido_patient(&server, &clinic, PERSONAL_CODE);
    assert_eq!(found.len(), 1);
    assert_eq!(name_of(&found[0]), "Žukauskienė-Šimkė^Rūta");

    let merge = adt(
        "ADT-3",
        "A40",
        PATIENT_IDS,
        "Žukauskienė-Šimkė^Rūta",
        "MRG|TMP-42^^^DEMO",
    );
    let acks = send(server.hl7_port, &[merge]);
    assert_eq!(field(&acks[0], "MSA", 1), "AA", "{acks:?}");
    assert!(
        field(&acks[0], "MSA", 3).contains("1 study record"),
        "{acks:?}"
    );
    // Both studies are the survivor's now, and the prior identifier finds them too.
    assert_eq!(qido_patient(&server, &clinic, PERSONAL_CODE).len(), 2);
    let via_prior = qido_patient(&server, &clinic, "TMP-42");
    assert_eq!(via_prior.len(), 2, "{via_prior:?}");
    assert!(via_prior
        .iter()
        .all(|s| s["00100020"]["Value"][0] == PERSONAL_CODE));
    // C-FIND from a DICOM client sees the same.
    let answers = tempfile::tempdir().unwrap();
    let mut find = dcmtk("findscu");
    find.args(["-S", "-X", "-od"])
        .arg(answers.path())
        .args([
            "-aet",
            CLINIC_AE,
            "-aec",
            AE,
            "-k",
            "QueryRetrieveLevel=STUDY",
        ])
        .args(["-k", "PatientID=TMP-42", "-k", "StudyInstanceUID"])
        .args(["127.0.0.1", &server.dicom_port.to_string()]);
    let (ok, log) = run(find);
    assert!(ok, "{log}");
    assert_eq!(files_under(answers.path()).len(), 2, "{log}");
    // An object arriving later under the prior identifier lands with the survivor.
    let late = study_of(dir.path(), "c.dcm", "TMP-42", "ACC-3", "2.25.8003");
    let (ok, log) = storescu(server.dicom_port, &[late]);
    assert!(ok, "{log}");
    assert_eq!(qido_patient(&server, &clinic, PERSONAL_CODE).len(), 3);
    // The HIS keeps the demographics now: an object with the old name does not undo them.
    let old_name = study_of(dir.path(), "d.dcm", PERSONAL_CODE, "ACC-4", "2.25.8004");
    let (ok, log) = storescu(server.dicom_port, &[old_name]);
    assert!(ok, "{log}");
    let all = qido_patient(&server, &clinic, PERSONAL_CODE);
    assert_eq!(all.len(), 4);
    assert!(
        all.iter().all(|s| name_of(s) == "Žukauskienė-Šimkė^Rūta"),
        "{all:?}"
    );
    // The stored objects are exactly as received.
    for (file, hash) in stored_before {
        assert_eq!(sha256_hex(&std::fs::read(&file).unwrap()), hash, "{file:?}");
    }
    let journal = get(
        &server,
        &clinic,
        &format!("/api/journal?patient={PERSONAL_CODE}"),
    );
    let kinds = kinds(&journal);
    assert!(kinds.contains(&"patient_updated".to_owned()), "{kinds:?}");
    assert!(kinds.contains(&"patient_merged".to_owned()), "{kinds:?}");
    assert_eq!(server.audit_events("patient_merged").len(), 1);
    assert_eq!(server.audit_events("patient_updated").len(), 2);
}

#[test]
fn patient_maintenance_sqlite() {
    patient_maintenance(Db::Sqlite);
}

#[test]
fn patient_maintenance_postgres() {
    patient_maintenance(Db::Postgres);
}

/// Sends one framed message on `stream` and answers whether anything came back: an
/// acknowledgement, or nothing because the server closed the connection unread.
fn answered(stream: &mut std::net::TcpStream, message: &str) -> bool {
    use std::io::{Read, Write};
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut frame = vec![0x0b];
    frame.extend_from_slice(message.as_bytes());
    frame.extend_from_slice(&[0x1c, 0x0d]);
    // A closed connection may refuse the write as well; the read tells.
    let _ = stream.write_all(&frame);
    let mut buf = [0u8; 4096];
    matches!(stream.read(&mut buf), Ok(n) if n > 0)
}

fn connect(port: u16) -> std::net::TcpStream {
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to the HL7 port")
}

/// Refusals at connection time leave a security event with their reason.
fn wait_for_refusal(server: &Server, outcome: &str) {
    wait_for(std::time::Duration::from_secs(20), || {
        server
            .audit_events("hl7_connection_refused")
            .iter()
            .any(|(_, address, o)| o == outcome && address == "127.0.0.1")
    });
}

/// A connection is admitted before anything is read from it. From an address in no declared
/// sender's networks it is closed unread; beyond the cap for one address the next one is
/// closed unread too, and a slot given back is taken again. Each refusal is audited.
fn connections_admitted_before_any_frame(db: Db) {
    let far = Server::start_with(
        db,
        Store::Local,
        &[(
            "TELECARDIO_HL7__SENDERS",
            r#"[{facility="DEMO_HIS", clinic="demo", networks=["10.0.0.0/8"]}]"#,
        )],
    );
    let message = orm("CONN-1", "E027-2026-0901", PATIENT_IDS);
    assert!(!answered(&mut connect(far.hl7_port), &message));
    wait_for_refusal(&far, "address");
    drop(far);

    let server = Server::start_with(
        db,
        Store::Local,
        &[("TELECARDIO_HL7__MAX_CONNECTIONS_PER_ADDRESS", "2")],
    );
    let mut first = connect(server.hl7_port);
    let mut second = connect(server.hl7_port);
    assert!(answered(&mut first, &message));
    assert!(answered(&mut second, &message));
    assert!(!answered(&mut connect(server.hl7_port), &message));
    wait_for_refusal(&server, "address_full");
    drop(first);
    // The server gives the slot back once it sees the connection end.
    wait_for(std::time::Duration::from_secs(20), || {
        answered(&mut connect(server.hl7_port), &message)
    });
    assert!(
        answered(&mut second, &message),
        "the open connection still works"
    );
}

#[test]
fn connections_admitted_before_any_frame_sqlite() {
    connections_admitted_before_any_frame(Db::Sqlite);
}

#[test]
fn connections_admitted_before_any_frame_postgres() {
    connections_admitted_before_any_frame(Db::Postgres);
}
