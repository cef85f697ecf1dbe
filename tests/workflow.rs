//! Routing and the worklist against the real server, on SQLite and PostgreSQL: each rule kind
//! (paediatric, urgency with balancing over readers' load skipping those away, examination kind
//! into the shared worklist, no matching rule), administrators' routing with a reason, claims
//! (409 for another reader, lapsing after the configured quiet spell) and the journal.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const VALID: &str = include_str!("fixtures/form027-valid.xml");

fn start(db: Db) -> Server {
    let clinics =
        format!(r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[]}}]"#);
    let centres = r#"[{id="demo-centre", name="C", reads=["demo"], ae_titles=["DEMO_READER"], networks=[]},
                      {id="kids", name="K", reads=["demo"], ae_titles=[], networks=[]}]"#;
    let rules = r#"[
        {name="paediatric", clinics=[], examinations=[], urgencies=[], patients="paediatric",
         centre="kids", readers=["dr-kid"], assign="balance"},
        {name="urgent", clinics=[], examinations=[], urgencies=["urgent", "emergency"],
         patients="any", centre="demo-centre", readers=[], assign="balance"},
        {name="holter", clinics=["demo"], examinations=["holter"], urgencies=[], patients="adult",
         centre="demo-centre", readers=[], assign="pool"}]"#;
    Server::start_with(
        db,
        Store::Local,
        &[
            ("TELECARDIO_CLINICS", clinics.as_str()),
            ("TELECARDIO_CENTRES", centres),
            ("TELECARDIO_ROUTING__RULES", rules),
            ("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0"),
            ("TELECARDIO_ROUTING__CLAIM_SECONDS", "2"),
        ],
    )
}

fn call(server: &Server, token: &str, method: &str, path: &str, body: &str) -> Reply {
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

/// A referral (order `n`) for `patient`, and its study: linked, so routing takes it.
fn case_of(server: &Server, clinic: &str, n: u32, patient: &str, edit: &dyn Fn(String) -> String) {
    let order = format!("E027-2026-{n:04}");
    let document = edit(
        VALID
            .replace("E027-DOC-0001", &format!("E027-DOC-{n:04}"))
            .replace("E027-2026-0001", &order)
            .replace("48507120013", patient),
    );
    let reply = common::cases::post_referral(server, clinic, &document);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let dir = tempfile::tempdir().unwrap();
    let study = study_of(
        dir.path(),
        "s.dcm",
        patient,
        &order,
        &format!("2.25.9{n:03}"),
    );
    let (ok, log) = storescu(server.dicom_port, &[study]);
    assert!(ok, "{log}");
}

fn cases(server: &Server, token: &str, query: &str) -> Vec<Value> {
    let reply = call(server, token, "GET", &format!("/api/worklist{query}"), "");
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["cases"].as_array().unwrap().clone()
}

fn by_study(list: &[Value], n: u32) -> Option<&Value> {
    let uid = format!("2.25.9{n:03}");
    list.iter().find(|c| c["study_uid"] == uid.as_str())
}

fn workflow(db: Db) {
    let server = start(db);
    let clinic = server.token("demo-staff", "clinic", "demo");
    let admin = server.token("root", "admin", "");
    let dr_a = server.token("dr-a", "cardiologist", "demo-centre");
    let dr_b = server.token("dr-b", "cardiologist", "demo-centre");
    let dr_kid = server.token("dr-kid", "cardiologist", "kids");
    let same = |d: String| d;

    // Urgent adults are balanced over the centre's readers by open load.
    case_of(&server, &clinic, 1, "48507120013", &same);
    wait_for(Duration::from_secs(20), || {
        by_study(&cases(&server, &admin, ""), 1).is_some()
    });
    case_of(&server, &clinic, 2, "38507120056", &|d| {
        d.replace(
            r#"<administrativeGenderCode code="F""#,
            r#"<administrativeGenderCode code="M""#,
        )
    });
    wait_for(Duration::from_secs(20), || {
        by_study(&cases(&server, &admin, ""), 2).is_some()
    });
    // dr-b is away: the third urgent case goes to dr-a although dr-a has more.
    let away = call(
        &server,
        &dr_b,
        "PUT",
        "/api/readers/dr-b/availability",
        r#"{"away": true}"#,
    );
    assert_eq!(away.status, 200, "{}", away.body);
    let not_theirs = call(
        &server,
        &dr_a,
        "PUT",
        "/api/readers/dr-b/availability",
        r#"{"away": false}"#,
    );
    assert_eq!(not_theirs.status, 403);
    case_of(&server, &clinic, 3, "49001010023", &|d| {
        d.replace("19850712", "19900101")
    });
    // A child goes to the paediatric centre's reader.
    case_of(&server, &clinic, 4, "61503040011", &|d| {
        d.replace("19850712", "20150304")
    });
    // A routine Holter for an adult goes to the centre's shared worklist.
    let holter = |d: String| {
        d.replace(r#"code="433236007""#, r#"code="86184003""#)
            .replace("Transthoracic echocardiography", "Holter monitoring")
            .replace(r#"<priorityCode code="UR""#, r#"<priorityCode code="R""#)
    };
    case_of(&server, &clinic, 5, "47005050034", &|d| {
        holter(d).replace("19850712", "19700505")
    });
    // A routine echo matches no rule: unrouted, for administrators.
    case_of(&server, &clinic, 6, "48507120013", &|d| {
        d.replace(r#"<priorityCode code="UR""#, r#"<priorityCode code="R""#)
    });
    wait_for(Duration::from_secs(20), || {
        cases(&server, &admin, "").len() == 6
    });

    let all = cases(&server, &admin, "");
    let case = |n: u32| {
        by_study(&all, n)
            .unwrap_or_else(|| panic!("case {n}: {all:?}"))
            .clone()
    };
    assert_eq!(case(1)["assigned_to"], "dr-a", "{all:?}");
    assert_eq!(case(1)["rule"], "urgent");
    assert_eq!(case(1)["status"], "new");
    assert_eq!(case(2)["assigned_to"], "dr-b");
    assert_eq!(case(3)["assigned_to"], "dr-a");
    assert_eq!(case(4)["centre_id"], "kids");
    assert_eq!(case(4)["assigned_to"], "dr-kid");
    assert_eq!(case(4)["rule"], "paediatric");
    assert_eq!(case(5)["rule"], "holter");
    assert_eq!(case(5)["assigned_to"], "");
    assert_eq!(case(6)["status"], "unrouted");
    assert!(case(6)["rule"]
        .as_str()
        .unwrap()
        .starts_with("no rule matched"));
    assert!(case(1)["clocks"]["ready"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert_eq!(case(1)["urgency"], "urgent");
    // Emergency and urgent cases come first in a worklist.
    assert_eq!(all[0]["urgency"], "urgent");

    // Each reader sees their centre's cases; the unrouted one only administrators.
    let theirs = cases(&server, &dr_a, "");
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    assert!(by_study(&theirs, 4).is_none() && by_study(&theirs, 6).is_none());
    assert_eq!(cases(&server, &dr_kid, "").len(), 1);
    assert_eq!(cases(&server, &dr_a, "?mine=true").len(), 2);
    assert_eq!(cases(&server, &dr_a, "?examination=holter").len(), 1);
    assert_eq!(
        call(&server, &dr_a, "GET", "/api/worklist?status=lost", "").status,
        400
    );

    // An administrator routes the unrouted case, with a reason.
    let six = case(6)["id"].as_str().unwrap().to_owned();
    let no_reason = call(
        &server,
        &admin,
        "POST",
        &format!("/api/cases/{six}/route"),
        r#"{"centre": "demo-centre", "reason": ""}"#,
    );
    assert_eq!(no_reason.status, 422);
    let by_reader = call(
        &server,
        &dr_a,
        "POST",
        &format!("/api/cases/{six}/route"),
        r#"{"centre": "demo-centre", "reason": "x"}"#,
    );
    assert_eq!(by_reader.status, 403);
    let routed = call(
        &server,
        &admin,
        "POST",
        &format!("/api/cases/{six}/route"),
        r#"{"centre": "demo-centre", "reader": "dr-b", "reason": "contract covers routine echo"}"#,
    );
    assert_eq!(routed.status, 200, "{}", routed.body);
    assert_eq!(routed.json()["status"], "new");
    assert_eq!(routed.json()["assigned_to"], "dr-b");

    // A case assigned to a reader is that reader's to claim.
    let one = case(1)["id"].as_str().unwrap().to_owned();
    let claim_of = |id: &str, token: &str| {
        call(
            &server,
            token,
            "POST",
            &format!("/api/cases/{id}/claim"),
            "",
        )
    };
    let assigned = claim_of(&one, &dr_b);
    assert_eq!(assigned.status, 409, "{}", assigned.body);
    assert!(
        assigned.body.contains("assigned to dr-a"),
        "{}",
        assigned.body
    );

    // Claims on the shared worklist: one reader at a time; a claim lapses after the quiet
    // spell.
    let five = case(5)["id"].as_str().unwrap().to_owned();
    let claim = |token: &str| claim_of(&five, token);
    let mine = claim(&dr_a);
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.json()["status"], "in_progress");
    assert_eq!(mine.json()["claim"]["by"], "dr-a");
    assert_eq!(claim(&dr_b).status, 409);
    assert_eq!(claim(&dr_kid).status, 404);
    assert_eq!(claim(&clinic).status, 403);
    std::thread::sleep(Duration::from_millis(2500));
    let taken = claim(&dr_b);
    assert_eq!(taken.status, 200, "{}", taken.body);
    assert_eq!(taken.json()["claim"]["by"], "dr-b");
    let release = |token: &str| {
        call(
            &server,
            token,
            "POST",
            &format!("/api/cases/{five}/release"),
            "",
        )
    };
    assert_eq!(release(&dr_a).status, 409);
    let released = release(&dr_b);
    assert_eq!(released.status, 200, "{}", released.body);
    assert_eq!(released.json()["status"], "new");
    // The first claim's time stays: it is the indicator's T4.
    assert!(released.json()["clocks"]["claimed"].as_str().is_some());

    // The case's journal tells it in order.
    let referral = case(5)["referral_id"].as_str().unwrap().to_owned();
    let journal = call(
        &server,
        &clinic,
        "GET",
        &format!("/api/referrals/{referral}/journal"),
        "",
    );
    assert_eq!(
        kinds(&journal),
        [
            "referral_received",
            "data_received",
            "linked",
            "routed",
            "claimed",
            "claimed",
            "released"
        ],
        "{}",
        journal.body
    );

    // Reports: the assigned reader drafts (which claims the case), signs with a profile and a
    // conclusion; the signed text is frozen in the store; a correction is a new version.
    let report = |token: &str, body: &str| {
        call(
            &server,
            token,
            "PUT",
            &format!("/api/cases/{one}/report"),
            body,
        )
    };
    let sign = |token: &str| {
        call(
            &server,
            token,
            "POST",
            &format!("/api/cases/{one}/report/sign"),
            "",
        )
    };
    assert_eq!(
        report(&dr_b, r#"{"findings": "x"}"#).status,
        409,
        "another reader's case"
    );
    let draft = report(
        &dr_a,
        r#"{"findings": "Kairysis skilvelis nepadidėjęs, EF 60 %."}"#,
    );
    assert_eq!(draft.status, 200, "{}", draft.body);
    assert_eq!(draft.json()["status"], "draft");
    assert_eq!(draft.json()["version"], 1);
    assert_eq!(report(&dr_a, r#"{"colour": "red"}"#).status, 400);
    let control = report(&dr_a, r#"{"findings": "a\u0001b"}"#);
    assert_eq!(control.status, 422, "{}", control.body);
    assert_eq!(control.json()["field"], "findings");
    let refused = sign(&dr_a);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "conclusion");
    let draft = report(
        &dr_a,
        r#"{"findings": "Kairysis skilvelis nepadidėjęs, EF 60 %.", "conclusion": "Norma.", "recommendations": "Kontrolė po metų."}"#,
    );
    assert_eq!(draft.status, 200, "{}", draft.body);
    let refused = sign(&dr_a);
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert_eq!(refused.json()["field"], "licence");
    for (name, full) in [("dr-a", "Aušra Žilinskienė"), ("dr-b", "Jonas Čiurlionis")] {
        let out = server.cli(&[
            "user",
            "profile",
            name,
            "--full-name",
            full,
            "--licence",
            "MPL-100",
        ]);
        assert!(out.status.success(), "{out:?}");
    }
    let signed = sign(&dr_a);
    assert_eq!(signed.status, 200, "{}", signed.body);
    let signed = signed.json();
    assert_eq!(signed["status"], "signed");
    assert_eq!(signed["signer"]["name"], "Aušra Žilinskienė");
    assert_eq!(signed["signer"]["centre"], "demo-centre");
    let frozen = files_under(&server.data_dir().join("objects").join("reports"));
    assert_eq!(frozen.len(), 1);
    let content = std::fs::read(&frozen[0]).unwrap();
    assert_eq!(
        sha256_hex(&content),
        signed["content_sha256"].as_str().unwrap()
    );
    assert!(String::from_utf8_lossy(&content).contains("Aušra Žilinskienė"));
    assert_eq!(
        call(&server, &admin, "GET", &format!("/api/cases/{one}"), "").json()["status"],
        "reported"
    );
    assert_eq!(sign(&dr_a).status, 409, "nothing left to sign");
    // Pull delivery: the clinic lists what was signed, not yet fetched.
    let pull = call(&server, &clinic, "GET", "/api/reports?since=2000-01-01", "");
    assert_eq!(pull.status, 200, "{}", pull.body);
    let listed = pull.json()["reports"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["report_id"], signed["id"]);
    assert!(listed[0]["fetched_at"].is_null());
    assert_eq!(
        call(&server, &clinic, "GET", "/api/reports?since=soon", "").status,
        400
    );
    // The answer to the referral is a CDA document our own reader takes back: the patient, the
    // order, the referral's id and the signer. The clinic fetching it is the delivery.
    let answer = call(
        &server,
        &clinic,
        "GET",
        &format!(
            "/api/cases/{one}/reports/{}/answer",
            signed["id"].as_str().unwrap()
        ),
        "",
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.header("Content-Type").as_deref(),
        Some("application/hl7-cda+xml")
    );
    assert_eq!(
        sha256_hex(answer.body.as_bytes()),
        signed["answer_sha256"].as_str().unwrap()
    );
    let read = telecardio::referral::cda::read(answer.body.as_bytes()).expect("well-formed CDA");
    assert!(
        read.patient_ids
            .iter()
            .any(|i| i.extension == "48507120013"),
        "{read:?}"
    );
    assert_eq!(read.order_id.extension, "E027-2026-0001");
    let referral_oid =
        telecardio::reports::answer::uuid_oid(case(1)["referral_id"].as_str().unwrap());
    assert!(
        answer
            .body
            .contains(&format!(r#"<id root="{referral_oid}"/>"#)),
        "{}",
        answer.body
    );
    assert!(answer.body.contains("Aušra Žilinskienė") && answer.body.contains("MPL-100"));
    assert!(answer.body.contains("Išvada / Conclusion"));
    let case_one = call(&server, &admin, "GET", &format!("/api/cases/{one}"), "").json();
    assert_eq!(case_one["status"], "delivered", "{case_one}");
    let pull = call(&server, &clinic, "GET", "/api/reports", "").json();
    assert!(pull["reports"][0]["fetched_at"].is_string(), "{pull}");
    // A correction needs a reason and becomes version 2; version 1 stays as signed.
    assert_eq!(report(&dr_b, r#"{"conclusion": "Norma."}"#).status, 422);
    let amended = report(
        &dr_b,
        r#"{"conclusion": "Lengva mitralinė regurgitacija.", "amendment_reason": "missed in v1"}"#,
    );
    assert_eq!(amended.status, 200, "{}", amended.body);
    assert_eq!(amended.json()["version"], 2);
    assert_eq!(amended.json()["amends"], signed["id"]);
    assert_eq!(
        report(&dr_a, r#"{"conclusion": "x", "amendment_reason": "y"}"#).status,
        409
    );
    assert_eq!(sign(&dr_b).status, 200);
    let versions = call(
        &server,
        &clinic,
        "GET",
        &format!("/api/cases/{one}/reports"),
        "",
    );
    assert_eq!(versions.status, 200, "{}", versions.body);
    let list = versions.json()["reports"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["conclusion"], "Norma.");
    assert_eq!(list[0]["content_sha256"], signed["content_sha256"]);
    assert_eq!(list[1]["conclusion"], "Lengva mitralinė regurgitacija.");
    let second = call(
        &server,
        &clinic,
        "GET",
        &format!(
            "/api/cases/{one}/reports/{}/answer",
            list[1]["id"].as_str().unwrap()
        ),
        "",
    );
    assert_eq!(second.status, 200, "{}", second.body);
    let replaced = telecardio::reports::answer::uuid_oid(signed["id"].as_str().unwrap());
    assert!(
        second.body.contains(r#"<relatedDocument typeCode="RPLC">"#)
            && second.body.contains(&replaced),
        "{}",
        second.body
    );
    let journal = call(
        &server,
        &clinic,
        "GET",
        &format!(
            "/api/referrals/{}/journal",
            case(1)["referral_id"].as_str().unwrap()
        ),
        "",
    );
    let steps = kinds(&journal);
    assert!(
        steps.ends_with(
            &[
                "report_signed",
                "report_delivered",
                "report_amended",
                "report_delivered"
            ]
            .map(String::from)
        ),
        "{steps:?}"
    );

    // A study without a referral, routed by an administrator with a reason, by the rules.
    let dir = tempfile::tempdir().unwrap();
    let orphan = study_of(
        dir.path(),
        "o.dcm",
        "48507120013",
        "NO-REFERRAL",
        "2.25.9999",
    );
    let (ok, log) = storescu(server.dicom_port, &[orphan]);
    assert!(ok, "{log}");
    let path = "/api/studies/2.25.9999/route";
    assert_eq!(
        call(&server, &admin, "POST", path, r#"{"reason": " "}"#).status,
        422
    );
    let routed = call(
        &server,
        &admin,
        "POST",
        path,
        r#"{"reason": "referral on paper"}"#,
    );
    assert_eq!(routed.status, 200, "{}", routed.body);
    assert_eq!(routed.json()["referral_id"], "");
    assert_eq!(
        call(&server, &admin, "POST", path, r#"{"reason": "again"}"#).status,
        409
    );
    assert!(!server.audit_events("case_claimed").is_empty());
    assert!(!server.audit_events("worklist_read").is_empty());
}

#[test]
fn workflow_sqlite() {
    workflow(Db::Sqlite);
}

#[test]
fn workflow_postgres() {
    workflow(Db::Postgres);
}
