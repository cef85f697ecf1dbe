//! Real-world CDA R2: example documents published by HL7 (tests/fixtures/hl7-c-cda-examples,
//! CC0) sent as referrals. Under our shipped profile none carries a Lithuanian personal code,
//! and each is refused naming the field; a deployment whose OID roots name the documents'
//! identifier systems accepts the one that carries a patient code, a record number and an
//! order, and refuses the others precisely.

mod common;

use common::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(repo().join("tests/fixtures/hl7-c-cda-examples").join(name)).unwrap()
}

fn post(server: &Server, token: &str, body: &[u8]) -> Reply {
    request(
        server.http_port,
        "POST",
        "/api/referrals",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/hl7-cda+xml"),
        ],
        body,
    )
}

fn refused(reply: &Reply, field: &str, says: &str) {
    assert_eq!(reply.status, 422, "{}", reply.body);
    let problem = reply.json();
    assert_eq!(problem["field"], field, "{problem}");
    assert!(
        problem["error"].as_str().unwrap().contains(says),
        "{problem}"
    );
}

#[test]
fn hl7_examples_are_read_and_judged_by_our_profile() {
    let server = Server::start(Db::Sqlite, Store::Local);
    let clinic = server.token("demo-his", "clinic", "demo");
    for name in [
        "History_and_Physical.xml",
        "Referral_Note.xml",
        "Diagnostic_Imaging_Report.xml",
    ] {
        refused(
            &post(&server, &clinic, &fixture(name)),
            "personal_code",
            "neither a personal code (id root 2.999.370.1)",
        );
    }
    assert!(!server.data_dir().join("objects").join("cda").exists());
}

#[test]
fn hl7_examples_with_the_needed_identifiers_are_accepted() {
    // The US realm's SSN root as the insured person's code, the example hospital's record
    // number root as the statistical card.
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[
            (
                "TELECARDIO_REFERRAL__OIDS__INSURED_CODE",
                "2.16.840.1.113883.4.1",
            ),
            (
                "TELECARDIO_REFERRAL__OIDS__STATISTICAL_CARD",
                "2.16.840.1.113883.19.5.99999.2",
            ),
        ],
    );
    let clinic = server.token("demo-his", "clinic", "demo");
    let reply = post(&server, &clinic, &fixture("History_and_Physical.xml"));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let referral = reply.json();
    assert_eq!(referral["patient"]["insured_code"], "111-00-2330");
    assert_eq!(referral["patient"]["statistical_card"], "998991");
    assert_eq!(referral["patient"]["birth_date"], "20050501");
    assert_eq!(referral["patient"]["sex"], "F");
    assert_eq!(referral["order_number"], "12345-67890");
    assert_eq!(referral["status"], "awaiting_examination");
    // The original is kept byte for byte.
    let kept = files_under(&server.data_dir().join("objects").join("cda"));
    assert_eq!(kept.len(), 1);
    assert_same_bytes(
        &std::fs::read(&kept[0]).unwrap(),
        &fixture("History_and_Physical.xml"),
        "kept document",
    );
    // The referral note carries the insured code but no record number; the imaging report
    // neither code.
    refused(
        &post(&server, &clinic, &fixture("Referral_Note.xml")),
        "statistical_card",
        "statistical card number (id root 2.16.840.1.113883.19.5.99999.2)",
    );
    refused(
        &post(&server, &clinic, &fixture("Diagnostic_Imaging_Report.xml")),
        "personal_code",
        "insured person's identification code (id root 2.16.840.1.113883.4.1)",
    );
}
