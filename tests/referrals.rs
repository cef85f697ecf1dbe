//! Form 027 referrals over HTTP against the real server: a valid document is kept byte for byte
//! and read into the index (SQLite and PostgreSQL), a resend answers the same referral, scoping
//! and the journal hold; each way a document can be unacceptable gets its own test, its own
//! 4xx with a message (and the field, for what point 12.3 requires), and nothing stored.

mod common;

use std::path::PathBuf;

use common::*;

const VALID: &str = include_str!("fixtures/form027-valid.xml");

fn start(db: Db, extra: &[(&str, &str)]) -> Server {
    let clinics = format!(
        r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[]}},
            {{id="other", name="Other", ae_titles=["OTHER_CLINIC"], networks=[]}}]"#
    );
    let mut env = vec![("TELECARDIO_CLINICS", clinics.as_str())];
    env.extend_from_slice(extra);
    Server::start_with(db, Store::Local, &env)
}

fn post(server: &Server, token: &str, content_type: &str, body: &[u8]) -> Reply {
    request(
        server.http_port,
        "POST",
        "/api/referrals",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", content_type),
        ],
        body,
    )
}

fn get(server: &Server, token: &str, path: &str) -> Reply {
    request(
        server.http_port,
        "GET",
        path,
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
}

/// Referral documents in the store.
fn stored_documents(server: &Server) -> Vec<PathBuf> {
    let dir = server.data_dir().join("objects").join("cda");
    if dir.exists() {
        files_under(&dir)
    } else {
        vec![]
    }
}

fn received(db: Db) {
    let server = start(db, &[]);
    let clinic = server.token("demo-his", "clinic", "demo");
    let reply = post(
        &server,
        &clinic,
        "application/hl7-cda+xml",
        VALID.as_bytes(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    let referral = reply.json();
    let id = referral["id"].as_str().unwrap().to_owned();
    assert_eq!(referral["status"], "awaiting_examination");
    assert_eq!(
        reply.header("Location").as_deref(),
        Some(format!("/api/referrals/{id}").as_str())
    );
    assert_eq!(referral["patient"]["personal_code"], "48507120013");
    assert_eq!(referral["patient"]["statistical_card"], "AK-2026-0077");
    assert_eq!(referral["patient"]["family_name"], "Žukauskienė");
    assert_eq!(referral["patient"]["birth_date"], "19850712");
    assert_eq!(referral["order_number"], "E027-2026-0001");
    assert_eq!(referral["examination"], "echo");
    assert_eq!(referral["urgency"], "urgent");
    assert_eq!(referral["author"]["name"], "Vytautas Kairys");
    assert_eq!(referral["clinic_id"], "demo");
    assert!(referral["reason"]
        .as_str()
        .unwrap()
        .contains("aortos vožtuvo"));
    // The document itself is kept byte for byte.
    let documents = stored_documents(&server);
    assert_eq!(documents.len(), 1);
    assert_same_bytes(
        &std::fs::read(&documents[0]).unwrap(),
        VALID.as_bytes(),
        "stored referral document",
    );
    // A resend is the same referral, not a second one.
    let again = post(&server, &clinic, "application/xml", VALID.as_bytes());
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["id"], id.as_str());
    assert_eq!(stored_documents(&server).len(), 1);

    // Read back by the sender, the contracted centre and an auditor; not by another clinic.
    let path = format!("/api/referrals/{id}");
    assert_eq!(get(&server, &clinic, &path).json()["id"], id.as_str());
    let reader = server.token("dr.jonaitis", "cardiologist", "demo-centre");
    assert_eq!(get(&server, &reader, &path).status, 200);
    let auditor = server.token("auditorius", "auditor", "");
    assert_eq!(get(&server, &auditor, &path).status, 200);
    let other = server.token("other-his", "clinic", "other");
    assert_eq!(get(&server, &other, &path).status, 404);
    assert_eq!(
        get(&server, &clinic, "/api/referrals/no-such-id").status,
        404
    );
    // Only a clinic sends referrals.
    assert_eq!(
        post(&server, &reader, "application/xml", VALID.as_bytes()).status,
        403
    );
    assert_eq!(
        post(&server, &auditor, "application/xml", VALID.as_bytes()).status,
        403
    );
    // The journal has the case's first entry.
    let journal = get(&server, &clinic, &format!("{path}/journal"));
    assert_eq!(journal.status, 200, "{}", journal.body);
    let entries = journal.json()["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["kind"], "referral_received");
    assert_eq!(entries[0]["patient_id"], "48507120013");
    assert_eq!(entries[0]["actor"], "demo-his");
    assert_eq!(get(&server, &other, &format!("{path}/journal")).status, 404);
    // Every receipt and reading is audited.
    let receipts = server.audit_events("referral_received");
    assert!(receipts
        .iter()
        .any(|(a, _, o)| a == "demo-his" && o == "accepted"));
    assert!(receipts
        .iter()
        .any(|(a, _, o)| a == "demo-his" && o == "already received"));
    let reads = server.audit_events("referral_read");
    assert!(reads
        .iter()
        .any(|(a, _, o)| a == "other-his" && o.contains("not found")));
}

#[test]
fn referral_received_sqlite() {
    received(Db::Sqlite);
}

#[test]
fn referral_received_postgres() {
    received(Db::Postgres);
}

/// Sends `body` and expects `status` with a message (and `field`, when given); then checks
/// that nothing was kept.
fn refused(body: &[u8], content_type: &str, status: u16, field: Option<&str>) -> String {
    refused_with(&[], body, content_type, status, field)
}

fn refused_with(
    env: &[(&str, &str)],
    body: &[u8],
    content_type: &str,
    status: u16,
    field: Option<&str>,
) -> String {
    let server = start(Db::Sqlite, env);
    let clinic = server.token("demo-his", "clinic", "demo");
    let reply = post(&server, &clinic, content_type, body);
    assert_eq!(reply.status, status, "{}", reply.body);
    let problem = reply.json();
    let message = problem["error"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{}", reply.body);
    if let Some(field) = field {
        assert_eq!(problem["field"], field, "{}", reply.body);
    }
    assert!(
        stored_documents(&server).is_empty(),
        "a refused document was stored"
    );
    let receipts = server.audit_events("referral_received");
    if status != 415 && status != 413 {
        assert!(
            receipts.iter().any(|(_, _, o)| o.starts_with("refused")),
            "{receipts:?}"
        );
    }
    message
}

/// `VALID` with `from` replaced by `to` (which must occur).
fn changed(from: &str, to: &str) -> String {
    assert!(VALID.contains(from), "{from}");
    VALID.replace(from, to)
}

#[test]
fn without_personal_or_insured_code_is_422() {
    let doc = changed(r#"<id root="2.999.370.1" extension="48507120013"/>"#, "");
    let message = refused(
        doc.as_bytes(),
        "application/xml",
        422,
        Some("personal_code"),
    );
    assert!(message.contains("personal code"), "{message}");
}

#[test]
fn insured_code_alone_is_enough() {
    let server = start(Db::Sqlite, &[]);
    let clinic = server.token("demo-his", "clinic", "demo");
    let doc = changed(
        r#"<id root="2.999.370.1" extension="48507120013"/>"#,
        r#"<id root="2.999.370.2" extension="DIK-99887766"/>"#,
    );
    let reply = post(&server, &clinic, "application/xml", doc.as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json()["patient"]["insured_code"], "DIK-99887766");
}

#[test]
fn without_statistical_card_is_422() {
    let doc = changed(r#"<id root="2.999.370.3" extension="AK-2026-0077"/>"#, "");
    let message = refused(
        doc.as_bytes(),
        "application/xml",
        422,
        Some("statistical_card"),
    );
    assert!(message.contains("statistical card"), "{message}");
}

#[test]
fn wrong_personal_code_checksum_is_422() {
    let doc = changed("48507120013", "48507120014");
    let message = refused(
        doc.as_bytes(),
        "application/xml",
        422,
        Some("personal_code"),
    );
    assert!(message.contains("check digit"), "{message}");
}

#[test]
fn personal_code_disagreeing_with_birth_date_is_422() {
    let doc = changed(
        r#"<birthTime value="19850712"/>"#,
        r#"<birthTime value="19850713"/>"#,
    );
    refused(doc.as_bytes(), "application/xml", 422, Some("birth_date"));
}

#[test]
fn another_clinics_referral_is_422() {
    let doc = changed(
        r#"<id root="2.999.370.4" extension="demo"/>
        <name>Demo poliklinika</name>
      </representedCustodianOrganization>"#,
        r#"<id root="2.999.370.4" extension="other"/>
        <name>Other</name>
      </representedCustodianOrganization>"#,
    );
    refused(doc.as_bytes(), "application/xml", 422, Some("custodian"));
}

#[test]
fn malformed_xml_is_400() {
    let doc = changed("</ClinicalDocument>", "</ClinicalDoc>");
    let message = refused(doc.as_bytes(), "application/xml", 400, None);
    assert!(message.contains("well-formed"), "{message}");
}

#[test]
fn wrong_namespace_is_400() {
    let doc = changed(
        r#"xmlns="urn:hl7-org:v3""#,
        r#"xmlns="urn:example:not-cda""#,
    );
    let message = refused(doc.as_bytes(), "application/xml", 400, None);
    assert!(message.contains("urn:hl7-org:v3"), "{message}");
}

#[test]
fn dtd_and_external_entities_are_400_and_never_resolved() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), "TOP-SECRET-MARKER").unwrap();
    let doc = changed(
        "<ClinicalDocument xmlns",
        &format!(
            "<!DOCTYPE ClinicalDocument [<!ENTITY leak SYSTEM \"file://{}\">]>\n<ClinicalDocument xmlns",
            secret.path().display()
        ),
    )
    .replace("<title>", "<title>&leak;");
    let message = refused(doc.as_bytes(), "application/xml", 400, None);
    assert!(message.contains("DTD"), "{message}");
    assert!(!message.contains("TOP-SECRET"), "{message}");
}

#[test]
fn oversize_document_is_413() {
    let padding = format!("<!-- {} -->", "x".repeat(8192));
    let doc = changed("<realmCode", &format!("{padding}<realmCode"));
    let message = refused_with(
        &[("TELECARDIO_REFERRAL__MAX_DOCUMENT_BYTES", "8192")],
        doc.as_bytes(),
        "application/xml",
        413,
        None,
    );
    assert!(message.contains("8192"), "{message}");
}

#[test]
fn non_utf8_text_is_400() {
    // "Žukauskienė" in ISO 8859-4 bytes inside a document that says nothing of its encoding.
    let mut doc = changed("Žukauskienė", "ZZZ").into_bytes();
    let at = doc.windows(3).position(|w| w == b"ZZZ").unwrap();
    doc.splice(at..at + 3, [0xAE, 0x75, 0x6B, 0xEC].iter().copied());
    let message = refused(&doc, "application/xml", 400, None);
    assert!(message.contains("UTF-8"), "{message}");
}

#[test]
fn a_body_that_is_not_xml_is_415() {
    refused(b"{\"referral\": 1}", "application/json", 415, None);
}

/// An Encapsulated CDA object made by DCMTK `cda2dcm` from `document`, in a new study.
fn encapsulated(dir: &std::path::Path, document: &str) -> PathBuf {
    let xml = dir.join("referral.xml");
    std::fs::write(&xml, document).unwrap();
    let out = dir.join("referral.dcm");
    let mut cmd = dcmtk("cda2dcm");
    cmd.arg("+sg").arg(&xml).arg(&out);
    let (ok, log) = run(cmd);
    assert!(ok, "cda2dcm: {log}");
    out
}

/// The referral inside an Encapsulated CDA object sent by C-STORE goes through the same
/// pipeline; the object itself is stored as an instance like any other, whatever the referral's
/// fate.
fn encapsulated_cda_over_c_store(db: Db) {
    let server = start(db, &[]);
    let dir = tempfile::tempdir().unwrap();
    let object = encapsulated(dir.path(), VALID);
    let (ok, log) = dcmsend(server.dicom_port, &[object]);
    assert!(ok && log.contains("SUCCESS"), "{log}");
    let clinic = server.token("demo-his", "clinic", "demo");
    let list = get(
        &server,
        &clinic,
        "/api/referrals?order_number=E027-2026-0001",
    );
    assert_eq!(list.status, 200, "{}", list.body);
    let referrals = list.json()["referrals"].as_array().unwrap().clone();
    assert_eq!(referrals.len(), 1, "{}", list.body);
    assert_eq!(referrals[0]["source"], "dicom");
    assert_eq!(referrals[0]["received_by"], CLINIC_AE);
    assert_eq!(referrals[0]["patient"]["personal_code"], "48507120013");
    assert_eq!(referrals[0]["status"], "awaiting_examination");
    // The document came out of the object byte for byte.
    let documents = stored_documents(&server);
    assert_eq!(documents.len(), 1);
    assert_same_bytes(
        &std::fs::read(&documents[0]).unwrap(),
        VALID.as_bytes(),
        "referral taken from the object",
    );
    let instances = server.instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(
        instances[0]["sop_class_uid"],
        "1.2.840.10008.5.1.4.1.1.104.2"
    );
    // The same document over HTTP is the same referral.
    let again = post(&server, &clinic, "application/xml", VALID.as_bytes());
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["id"], referrals[0]["id"]);
    // Lists are scoped.
    let other = server.token("other-his", "clinic", "other");
    let theirs = get(&server, &other, "/api/referrals");
    assert_eq!(theirs.json()["referrals"].as_array().unwrap().len(), 0);
    let waiting = get(
        &server,
        &clinic,
        "/api/referrals?status=awaiting_examination",
    );
    assert_eq!(waiting.json()["referrals"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(&server, &clinic, "/api/referrals?colour=red").status,
        400
    );

    // A refused referral: the object is still stored, the refusal audited.
    let dir = tempfile::tempdir().unwrap();
    let bad = changed(r#"<id root="2.999.370.3" extension="AK-2026-0077"/>"#, "")
        .replace("E027-DOC-0001", "E027-DOC-0002");
    let object = encapsulated(dir.path(), &bad);
    let (ok, log) = dcmsend(server.dicom_port, &[object]);
    assert!(ok && log.contains("SUCCESS"), "{log}");
    assert_eq!(server.instances().len(), 2);
    assert_eq!(stored_documents(&server).len(), 1);
    let receipts = server.audit_events("referral_received");
    assert!(
        receipts
            .iter()
            .any(|(a, _, o)| a == CLINIC_AE && o.contains("statistical card")),
        "{receipts:?}"
    );
}

#[test]
fn encapsulated_cda_over_c_store_sqlite() {
    encapsulated_cda_over_c_store(Db::Sqlite);
}

#[test]
fn encapsulated_cda_over_c_store_postgres() {
    encapsulated_cda_over_c_store(Db::Postgres);
}

/// A document id already received from another clinic answers nothing about that referral;
/// ids under the root reserved for HL7 v2 orders are refused.
#[test]
fn another_senders_document_id_reveals_nothing() {
    let server = start(Db::Sqlite, &[]);
    let demo = server.token("demo-his", "clinic", "demo");
    let other = server.token("other-his", "clinic", "other");
    assert_eq!(
        post(&server, &demo, "application/xml", VALID.as_bytes()).status,
        201
    );
    let theirs = VALID.replace(
        r#"<id root="2.999.370.4" extension="demo"/>"#,
        r#"<id root="2.999.370.4" extension="other"/>"#,
    );
    let reply = post(&server, &other, "application/xml", theirs.as_bytes());
    assert_eq!(reply.status, 409, "{}", reply.body);
    assert!(!reply.body.contains("48507120013"), "{}", reply.body);
    let reserved = VALID.replace(
        r#"<id root="2.999.370.9" extension="E027-DOC-0001"/>"#,
        r#"<id root="hl7v2:demo" extension="E027-2026-0001"/>"#,
    );
    let reply = post(&server, &demo, "application/xml", reserved.as_bytes());
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.json()["field"], "id");
}

/// An Encapsulated CDA object uploaded with STOW-RS is stored like any instance and read as a
/// referral, the same as over C-STORE.
#[test]
fn encapsulated_cda_over_stow_rs() {
    let server = start(Db::Sqlite, &[]);
    let clinic = server.token("demo-his", "clinic", "demo");
    let dir = tempfile::tempdir().unwrap();
    let object = std::fs::read(encapsulated(dir.path(), VALID)).unwrap();
    let mut body = b"--b\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
    body.extend_from_slice(&object);
    body.extend_from_slice(b"\r\n--b--\r\n");
    let reply = request(
        server.http_port,
        "POST",
        "/dicom-web/studies",
        &[
            ("Authorization", &format!("Bearer {clinic}")),
            (
                "Content-Type",
                "multipart/related; type=\"application/dicom\"; boundary=b",
            ),
        ],
        &body,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let list = get(
        &server,
        &clinic,
        "/api/referrals?order_number=E027-2026-0001",
    );
    let referrals = list.json()["referrals"].as_array().unwrap().clone();
    assert_eq!(referrals.len(), 1, "{}", list.body);
    assert_eq!(referrals[0]["source"], "dicom");
    assert_eq!(referrals[0]["received_by"], "demo-his");
    assert_eq!(referrals[0]["patient"]["statistical_card"], "AK-2026-0077");
    assert_eq!(stored_documents(&server).len(), 1);
    assert_eq!(server.instances().len(), 1);
}

/// Whichever arrives first, referral and study end linked, and the case's journal shows the
/// sequence in order; disagreements become exceptions, never links.
fn linking(db: Db) {
    let server = start(db, &[]);
    let clinic = server.token("demo-his", "clinic", "demo");
    let dir = tempfile::tempdir().unwrap();

    // Referral first, then the study.
    let referral = post(&server, &clinic, "application/xml", VALID.as_bytes()).json();
    assert_eq!(referral["status"], "awaiting_examination");
    let id = referral["id"].as_str().unwrap().to_owned();
    let study = study_of(
        dir.path(),
        "a.dcm",
        "48507120013",
        "E027-2026-0001",
        "2.25.5001",
    );
    let (ok, log) = storescu(server.dicom_port, &[study]);
    assert!(ok, "{log}");
    let after = get(&server, &clinic, &format!("/api/referrals/{id}")).json();
    assert_eq!(after["status"], "linked", "{after}");
    assert_eq!(after["study_uid"], "2.25.5001");
    let journal = get(&server, &clinic, &format!("/api/referrals/{id}/journal"));
    assert_eq!(
        kinds(&journal),
        ["referral_received", "data_received", "linked"],
        "{}",
        journal.body
    );

    // Study first, then its referral (another document, another order).
    let study = study_of(
        dir.path(),
        "b.dcm",
        "48507120013",
        "E027-2026-0002",
        "2.25.5002",
    );
    let (ok, log) = storescu(server.dicom_port, &[study]);
    assert!(ok, "{log}");
    let unlinked = get(&server, &clinic, "/api/studies/unlinked");
    assert!(unlinked.body.contains("2.25.5002"), "{}", unlinked.body);
    let second = VALID
        .replace("E027-DOC-0001", "E027-DOC-0002")
        .replace("E027-2026-0001", "E027-2026-0002");
    let reply = post(&server, &clinic, "application/xml", second.as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json()["status"], "linked", "{}", reply.body);
    assert_eq!(reply.json()["study_uid"], "2.25.5002");
    let id2 = reply.json()["id"].as_str().unwrap().to_owned();
    let journal = get(&server, &clinic, &format!("/api/referrals/{id2}/journal"));
    assert_eq!(
        kinds(&journal),
        ["data_received", "referral_received", "linked"],
        "{}",
        journal.body
    );
    assert!(!get(&server, &clinic, "/api/studies/unlinked")
        .body
        .contains("2.25.5002"));

    // Same accession, another patient (whose ID is no personal code): an exception.
    let third = VALID
        .replace("E027-DOC-0001", "E027-DOC-0003")
        .replace("E027-2026-0001", "E027-2026-0003");
    post(&server, &clinic, "application/xml", third.as_bytes());
    let study = study_of(
        dir.path(),
        "c.dcm",
        "MRN-7731",
        "E027-2026-0003",
        "2.25.5003",
    );
    let (ok, log) = storescu(server.dicom_port, &[study]);
    assert!(ok, "{log}");
    // Same accession, a patient with another valid personal code: an exception of its own kind.
    let fourth = VALID
        .replace("E027-DOC-0001", "E027-DOC-0004")
        .replace("E027-2026-0001", "E027-2026-0004");
    post(&server, &clinic, "application/xml", fourth.as_bytes());
    let study = study_of(
        dir.path(),
        "d.dcm",
        "38507120056",
        "E027-2026-0004",
        "2.25.5004",
    );
    let (ok, log) = storescu(server.dicom_port, &[study]);
    assert!(ok, "{log}");
    // Two referrals (two documents) claiming the one study of order 0001.
    let rival = VALID.replace("E027-DOC-0001", "E027-DOC-0005");
    let reply = post(&server, &clinic, "application/xml", rival.as_bytes());
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.json()["status"], "awaiting_examination");

    let exceptions = get(&server, &clinic, "/api/link-exceptions");
    assert_eq!(exceptions.status, 200, "{}", exceptions.body);
    let list = exceptions.json()["exceptions"].as_array().unwrap().clone();
    let by_study = |uid: &str| -> Vec<String> {
        list.iter()
            .filter(|e| e["study_uid"] == uid)
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        by_study("2.25.5003"),
        ["patient_mismatch"],
        "{}",
        exceptions.body
    );
    assert_eq!(
        by_study("2.25.5004"),
        ["personal_code_mismatch"],
        "{}",
        exceptions.body
    );
    assert_eq!(
        by_study("2.25.5001"),
        ["duplicate_claim"],
        "{}",
        exceptions.body
    );
    assert!(list
        .iter()
        .all(|e| e["status"] == "open" && !e["reason"].as_str().unwrap().is_empty()));
    // Neither doubtful study was linked; the first link stands.
    for uid in ["2.25.5003", "2.25.5004"] {
        assert!(get(&server, &clinic, "/api/studies/unlinked")
            .body
            .contains(uid));
    }
    assert_eq!(
        get(&server, &clinic, &format!("/api/referrals/{id}")).json()["study_uid"],
        "2.25.5001"
    );
    // The same lists on the command line.
    let out = server.cli(&["exceptions"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    for expected in [
        "patient_mismatch",
        "personal_code_mismatch",
        "duplicate_claim",
        "2.25.5003",
    ] {
        assert!(text.contains(expected), "{text}");
    }
    let out = server.cli(&["exceptions", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 3);
    let out = server.cli(&["unlinked"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("2.25.5003") && text.contains("E027-2026-0004"),
        "{text}"
    );
    assert!(!text.contains("2.25.5001"), "{text}");

    // An administrator decides, each decision audited and journaled; nobody else may.
    let exception_of = |uid: &str| {
        list.iter().find(|e| e["study_uid"] == uid).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let admin = server.token("admin1", "admin", "");
    let decide = |token: &str, id: &str, body: &str| {
        request(
            server.http_port,
            "POST",
            &format!("/api/link-exceptions/{id}/resolve"),
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    let mismatch = exception_of("2.25.5003");
    let link = r#"{"decision": "link", "note": "same person, hospital MRN checked"}"#;
    assert_eq!(decide(&clinic, &mismatch, link).status, 403);
    let reply = decide(&admin, &mismatch, link);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["status"], "resolved");
    assert_eq!(decide(&admin, &mismatch, link).status, 409);
    assert_eq!(
        decide(&admin, &mismatch, r#"{"decision": "maybe"}"#).status,
        400
    );
    let third_id = list.iter().find(|e| e["study_uid"] == "2.25.5003").unwrap()["referral_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let third_now = get(&server, &clinic, &format!("/api/referrals/{third_id}")).json();
    assert_eq!(third_now["status"], "linked");
    assert_eq!(third_now["study_uid"], "2.25.5003");
    let reply = decide(
        &admin,
        &exception_of("2.25.5004"),
        r#"{"decision": "reject", "note": "another patient"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply.json()["resolution"]
        .as_str()
        .unwrap()
        .starts_with("rejected"));
    // The rival referral gets the study only once the first link is undone.
    let duplicate = exception_of("2.25.5001");
    assert_eq!(decide(&admin, &duplicate, link).status, 409);
    let unlink = |token: &str, body: &str| {
        request(
            server.http_port,
            "POST",
            &format!("/api/referrals/{id}/unlink"),
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
            ],
            body.as_bytes(),
        )
    };
    assert_eq!(unlink(&clinic, r#"{"reason": "wrong order"}"#).status, 403);
    assert_eq!(unlink(&admin, r#"{"reason": " "}"#).status, 400);
    let reply = unlink(&admin, r#"{"reason": "the clinic sent the order twice"}"#);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["status"], "awaiting_examination");
    assert_eq!(decide(&admin, &duplicate, link).status, 200);
    let open = get(&server, &admin, "/api/link-exceptions").json();
    assert_eq!(open["exceptions"].as_array().unwrap().len(), 0, "{open}");
    let resolved = get(&server, &admin, "/api/link-exceptions?status=resolved").json();
    assert_eq!(resolved["exceptions"].as_array().unwrap().len(), 3);
    let journal = get(&server, &clinic, &format!("/api/referrals/{id}/journal"));
    assert_eq!(
        kinds(&journal),
        // Unlinked, the study's own entries are no longer this case's.
        ["referral_received", "linked", "unlinked"],
        "{}",
        journal.body
    );
    let decisions = server.audit_events("link_exception_resolved");
    assert_eq!(
        decisions
            .iter()
            .filter(|(a, _, o)| a == "admin1" && o == "done")
            .count(),
        3,
        "{decisions:?}"
    );
    assert!(decisions
        .iter()
        .any(|(a, _, o)| a == "demo-his" && o.starts_with("refused")));
    let unlinks = server.audit_events("referral_unlinked");
    assert!(
        unlinks.iter().any(|(a, _, o)| a == "admin1" && o == "done"),
        "{unlinks:?}"
    );
    assert!(unlinks
        .iter()
        .any(|(a, _, o)| a == "demo-his" && o.starts_with("refused")));

    // Another clinic sees none of it.
    let other = server.token("other-his", "clinic", "other");
    let theirs = get(&server, &other, "/api/link-exceptions").json();
    assert_eq!(theirs["exceptions"].as_array().unwrap().len(), 0);
    let theirs = get(&server, &other, "/api/studies/unlinked").json();
    assert_eq!(theirs["studies"].as_array().unwrap().len(), 0);
}

#[test]
fn linking_sqlite() {
    linking(Db::Sqlite);
}

#[test]
fn linking_postgres() {
    linking(Db::Postgres);
}
