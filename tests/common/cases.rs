//! A case made the way users make one: the clinic's referral (form 027) and study, routed to a
//! centre; and the cardiologist's claim and draft.

use std::time::Duration;

use super::*;

pub const VALID: &str = include_str!("../fixtures/form027-valid.xml");

pub fn call(server: &Server, token: &str, method: &str, path: &str, body: &str) -> Reply {
    request(
        server.http_port,
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        body.as_bytes(),
    )
}

/// The clinic sends referral `n` and its study (DCMTK storescu); the case it becomes, routed.
pub fn routed_case(server: &Server, clinic: &str, reader: &str, n: u32) -> (String, String) {
    let order = format!("E027-2026-{n:04}");
    let document = VALID
        .replace("E027-DOC-0001", &format!("E027-DOC-{n:04}"))
        .replace("E027-2026-0001", &order);
    let reply = post_referral(server, clinic, &document);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let dir = tempfile::tempdir().unwrap();
    let uid = format!("2.25.7{n:03}");
    let study = study_of(dir.path(), "s.dcm", "48507120013", &order, &uid);
    let (ok, log) = storescu(server.dicom_port, &[study]);
    assert!(ok, "{log}");
    let mut id = String::new();
    wait_for(Duration::from_secs(30), || {
        let list = call(server, reader, "GET", "/api/worklist", "").json();
        match list["cases"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["study_uid"] == uid.as_str()))
        {
            Some(case) => {
                id = case["id"].as_str().unwrap().to_owned();
                true
            }
            None => false,
        }
    });
    (id, uid)
}

/// A form 027 document sent by the clinic whose token is `clinic`.
pub fn post_referral(server: &Server, clinic: &str, document: &str) -> Reply {
    request(
        server.http_port,
        "POST",
        "/api/referrals",
        &[
            ("Authorization", &format!("Bearer {clinic}")),
            ("Content-Type", "application/xml"),
        ],
        document.as_bytes(),
    )
}

/// The reader claims the case and saves a draft (Lithuanian text).
pub fn claim_and_draft(server: &Server, reader: &str, case: &str) {
    let claim = call(
        server,
        reader,
        "POST",
        &format!("/api/cases/{case}/claim"),
        "",
    );
    assert_eq!(claim.status, 200, "{}", claim.body);
    let draft = call(
        server,
        reader,
        "PUT",
        &format!("/api/cases/{case}/report"),
        r#"{"findings": "Kairysis skilvelis nepadidėjęs, EF 60 %.\nVožtuvai be ypatumų.",
            "conclusion": "Širdies struktūra ir funkcija normalios.",
            "recommendations": "Kontrolė po metų; kreiptis, jei atsiras dusulys."}"#,
    );
    assert_eq!(draft.status, 200, "{}", draft.body);
}

/// Gives reader `name` the full name and licence number a signed report names.
pub fn signer_profile(server: &Server, name: &str) {
    let out = server.cli(&[
        "user",
        "profile",
        name,
        "--full-name",
        "Aušra Žilinskienė",
        "--licence",
        "MPL-100",
    ]);
    assert!(out.status.success(), "{out:?}");
}

/// Signs the case's draft as `reader`; the signed version.
pub fn sign(server: &Server, reader: &str, case: &str) -> Value {
    let signed = call(
        server,
        reader,
        "POST",
        &format!("/api/cases/{case}/report/sign"),
        "",
    );
    assert_eq!(signed.status, 200, "{}", signed.body);
    signed.json()
}

/// A referral, its study routed, read and signed by `reader`: the case and the study.
pub fn signed_case(server: &Server, clinic: &str, reader: &str, n: u32) -> (String, String) {
    let (case, study) = routed_case(server, clinic, reader, n);
    claim_and_draft(server, reader, &case);
    sign(server, reader, &case);
    (case, study)
}
