//! Retention against the real server: every stored thing of a study has a date (received +
//! 15 years), deletion before it is refused on every path saying until when, legal holds block
//! deletion whatever the date, a date is never shortened, and deletion after expiry takes an
//! administrator and an auditor and leaves tombstones with every object's hash. Each refusal
//! and each decision is in the audit trail. (Expiry is reached by moving the receipt times of
//! one study 20 years back in the index, as time would.)

mod common;

use common::cases::*;
use common::*;
use serde_json::Value;

fn today() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Vilnius").unwrap())
        .date()
}

fn in_years(years: i64) -> String {
    today()
        .checked_add(jiff::Span::new().years(years))
        .unwrap()
        .to_string()
}

/// Moves every receipt of the study 20 years back, as if it had been received then.
fn age(server: &Server, study: &str) {
    let back: i64 = 20 * 366 * 86_400 * 1_000_000;
    for sql in [
        format!(
            "UPDATE instances SET received_at = received_at - {back} WHERE study_uid = '{study}'"
        ),
        format!(
            "UPDATE referrals SET received_at = received_at - {back} WHERE study_uid = '{study}'"
        ),
        format!(
            "UPDATE reports SET created_at = created_at - {back}
             WHERE case_id IN (SELECT id FROM cases WHERE study_uid = '{study}')"
        ),
    ] {
        server.execute_sql(&sql);
    }
}

fn outcomes(server: &Server, kind: &str) -> Vec<String> {
    server
        .audit_events(kind)
        .into_iter()
        .map(|(_, _, outcome)| outcome)
        .collect()
}

fn retention_lifecycle(db: Db, store: Store) {
    let server = Server::start_with(
        db,
        store,
        &[("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0")],
    );
    let clinic = server.token("slaugytoja", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    let admin = server.token("archyvaras", "admin", "");
    let auditor = server.token("auditorius", "auditor", "");
    signer_profile(&server, "dr-a");
    // Study A: referral, images, a signed report. Study B: referral and images.
    let (_, a) = signed_case(&server, &clinic, &reader, 1);
    let (_, b) = routed_case(&server, &clinic, &reader, 2);

    // Every stored thing of A has its date: received today + 15 years.
    let fifteen = in_years(15);
    let shown = call(
        &server,
        &admin,
        "GET",
        &format!("/api/retention/studies/{a}"),
        "",
    );
    assert_eq!(shown.status, 200, "{}", shown.body);
    let state = shown.json();
    assert_eq!(state["retain_until"], fifteen.as_str(), "{state}");
    assert_eq!(state["expired"], false);
    let mut kinds: Vec<&str> = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            assert_eq!(o["retain_until"], fifteen.as_str(), "{o}");
            o["kind"].as_str().unwrap()
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["answer", "dicom", "referral", "report", "report_object"],
        "{state}"
    );
    let keys: Vec<(String, String)> = state["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["key"].as_str().unwrap().to_owned(),
                o["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Auditors read it too; clinics and cardiologists do not.
    assert_eq!(
        call(
            &server,
            &auditor,
            "GET",
            &format!("/api/retention/studies/{a}"),
            ""
        )
        .status,
        200
    );
    for token in [&clinic, &reader] {
        let denied = call(
            &server,
            token,
            "GET",
            &format!("/api/retention/studies/{a}"),
            "",
        );
        assert_eq!(denied.status, 403, "{}", denied.body);
    }
    // Bad input changes nothing.
    let unknown = call(
        &server,
        &admin,
        "GET",
        "/api/retention/studies/2.25.999999",
        "",
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let bad_uid = call(
        &server,
        &admin,
        "GET",
        "/api/retention/studies/not-a-uid",
        "",
    );
    assert_eq!(bad_uid.status, 422, "{}", bad_uid.body);

    // Deletion before the date: refused, saying until when, and audited.
    let propose = |study: &str, token: &str| {
        call(
            &server,
            token,
            "POST",
            "/api/retention/deletions",
            &format!(r#"{{"study_uid": "{study}", "reason": "retention period over"}}"#),
        )
    };
    let early = propose(&a, &admin);
    assert_eq!(early.status, 409, "{}", early.body);
    assert!(
        early.body.contains(&format!("kept until {fifteen}")),
        "{}",
        early.body
    );
    assert!(
        outcomes(&server, "deletion_proposed")
            .iter()
            .any(|o| o.starts_with("refused") && o.contains(&fifteen)),
        "the refusal is audited"
    );
    // Only administrators propose.
    assert_eq!(propose(&a, &auditor).status, 403);
    assert_eq!(propose(&a, &clinic).status, 403);

    // Extensions: later only.
    let extend = |study: &str, until: &str| {
        call(
            &server,
            &admin,
            "POST",
            &format!("/api/retention/studies/{study}/extend"),
            &format!(r#"{{"until": "{until}", "reason": "research cohort"}}"#),
        )
    };
    let shorter = extend(&b, &in_years(10));
    assert_eq!(shorter.status, 409, "{}", shorter.body);
    assert!(shorter.body.contains("never shortened"), "{}", shorter.body);
    let not_a_day = extend(&b, "2041-02-30");
    assert_eq!(not_a_day.status, 422, "{}", not_a_day.body);
    assert_eq!(not_a_day.json()["field"], "until");
    assert_eq!(extend("2.25.999999", &in_years(20)).status, 404);
    let twenty = in_years(20);
    let longer = extend(&b, &twenty);
    assert_eq!(longer.status, 200, "{}", longer.body);
    assert_eq!(longer.json()["retain_until"], twenty.as_str());
    let unchanged = call(
        &server,
        &admin,
        "GET",
        &format!("/api/retention/studies/{b}"),
        "",
    );
    assert_eq!(unchanged.json()["retain_until"], twenty.as_str());
    assert_eq!(unchanged.json()["extensions"].as_array().unwrap().len(), 1);

    // A legal hold blocks deletion whatever the date.
    let hold = |study: &str, token: &str, reason: &str| {
        call(
            &server,
            token,
            "POST",
            &format!("/api/retention/studies/{study}/holds"),
            &format!(r#"{{"reason": "{reason}"}}"#),
        )
    };
    assert_eq!(hold(&a, &auditor, "x").status, 403);
    assert_eq!(hold(&a, &admin, " ").status, 422);
    let placed = hold(&a, &admin, "court case 2026-17");
    assert_eq!(placed.status, 201, "{}", placed.body);
    let hold_id = placed.json()["id"].as_str().unwrap().to_owned();
    let second = hold(&a, &admin, "patient complaint");
    assert_eq!(second.status, 201, "{}", second.body);
    let second_id = second.json()["id"].as_str().unwrap().to_owned();
    age(&server, &a);
    let aged = call(
        &server,
        &admin,
        "GET",
        &format!("/api/retention/studies/{a}"),
        "",
    )
    .json();
    assert_eq!(aged["expired"], true, "{aged}");
    assert_eq!(aged["open_holds"], 2);
    let held = propose(&a, &admin);
    assert_eq!(held.status, 409, "{}", held.body);
    assert!(held.body.contains("2 legal hold"), "{}", held.body);
    let release = |id: &str, reason: &str| {
        call(
            &server,
            &admin,
            "POST",
            &format!("/api/retention/holds/{id}/release"),
            &format!(r#"{{"reason": "{reason}"}}"#),
        )
    };
    assert_eq!(release(&hold_id, "").status, 422);
    assert_eq!(release(&hold_id, "case closed").status, 200);
    assert_eq!(release(&hold_id, "again").status, 409);
    assert_eq!(release("no-such-hold", "x").status, 404);
    assert_eq!(propose(&a, &admin).status, 409, "one hold still stands");
    assert_eq!(release(&second_id, "complaint answered").status, 200);
    // Released holds stay on record.
    let record = call(
        &server,
        &auditor,
        "GET",
        &format!("/api/retention/studies/{a}"),
        "",
    )
    .json();
    assert_eq!(record["holds"].as_array().unwrap().len(), 2, "{record}");
    assert_eq!(record["open_holds"], 0);

    // The list of what expires soon names A (past its date), not B.
    let listed = server.cli(&["retention", "expiring", "--json"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let named: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["study_uid"].as_str().unwrap())
        .collect();
    assert!(
        named.contains(&a.as_str()) && !named.contains(&b.as_str()),
        "{listed}"
    );

    // Two people: an administrator proposes, an auditor approves.
    let proposed = propose(&a, &admin);
    assert_eq!(proposed.status, 201, "{}", proposed.body);
    let request = proposed.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(propose(&a, &admin).status, 409, "one proposal at a time");
    let decide = |token: &str, verb: &str, id: &str| {
        call(
            &server,
            token,
            "POST",
            &format!("/api/retention/deletions/{id}/{verb}"),
            r#"{"note": "checked against the register"}"#,
        )
    };
    assert_eq!(decide(&admin, "approve", &request).status, 403);
    assert_eq!(decide(&auditor, "approve", "no-such-request").status, 404);
    let approved = decide(&auditor, "approve", &request);
    assert_eq!(approved.status, 200, "{}", approved.body);
    let deletion = approved.json();
    assert_eq!(deletion["request"]["state"], "done", "{deletion}");
    assert_eq!(deletion["left_in_store"].as_array().unwrap().len(), 0);
    let mut tombstoned: Vec<(String, String)> = deletion["tombstones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["proposed_by"], "archyvaras");
            assert_eq!(t["approved_by"], "auditorius");
            assert_eq!(t["reason"], "retention period over");
            assert!(t["removed_at"].is_i64(), "{t}");
            (
                t["object_key"].as_str().unwrap().to_owned(),
                t["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    tombstoned.sort();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(tombstoned, expected);
    assert_eq!(decide(&auditor, "approve", &request).status, 409);

    // A is gone from the index and the store; B is whole; the archive verifies.
    let gone = call(
        &server,
        &admin,
        "GET",
        &format!("/api/retention/studies/{a}"),
        "",
    );
    assert_eq!(gone.status, 404);
    let studies: Vec<String> = server
        .studies()
        .iter()
        .map(|s| s["study_uid"].as_str().unwrap().to_owned())
        .collect();
    assert!(!studies.contains(&a) && studies.contains(&b), "{studies:?}");
    if store == Store::Local {
        for (key, _) in &keys {
            assert!(
                !server.data_dir().join("objects").join(key).exists(),
                "{key}"
            );
        }
        assert!(server
            .data_dir()
            .join("objects/tombstones")
            .join(format!("{request}.json"))
            .exists());
    }
    let verified = server.cli(&["verify", "--all", "--json"]);
    assert!(verified.status.success(), "{verified:?}");
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["unindexed"].as_array().unwrap().len(), 0, "{report}");
    // Tombstones stay, for auditors.
    let kept = call(
        &server,
        &auditor,
        "GET",
        &format!("/api/retention/tombstones?study={a}"),
        "",
    );
    assert_eq!(kept.status, 200);
    assert_eq!(
        kept.json()["tombstones"].as_array().unwrap().len(),
        keys.len()
    );
    assert!(outcomes(&server, "deletion_approved")
        .iter()
        .any(|o| o == "done"));

    // A rejected proposal deletes nothing.
    age(&server, &b);
    let still = propose(&b, &admin);
    assert_eq!(
        still.status, 409,
        "the extension still keeps B: {}",
        still.body
    );
    assert!(still.body.contains(&twenty), "{}", still.body);
    server.execute_sql("UPDATE retention_extensions SET until_day = '2001-01-01'");
    let proposed = propose(&b, &admin);
    assert_eq!(proposed.status, 201, "{}", proposed.body);
    let id = proposed.json()["id"].as_str().unwrap().to_owned();
    let rejected = decide(&auditor, "reject", &id);
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    assert_eq!(rejected.json()["state"], "rejected");
    assert_eq!(decide(&auditor, "approve", &id).status, 409);
    assert!(server
        .studies()
        .iter()
        .any(|s| s["study_uid"] == b.as_str()));
}

#[test]
fn retention_lifecycle_sqlite_local() {
    retention_lifecycle(Db::Sqlite, Store::Local);
}

#[test]
fn retention_lifecycle_postgres_local() {
    retention_lifecycle(Db::Postgres, Store::Local);
}

#[test]
fn retention_lifecycle_sqlite_s3() {
    retention_lifecycle(Db::Sqlite, Store::S3);
}

/// A figure lowered in the configuration never shortens a date.
fn lowered_setting_keeps_the_longer_date(db: Db) {
    let mut server = Server::start(db, Store::Local);
    let (ok, log) = dcmsend(server.dicom_port, &test_images()[..1]);
    assert!(ok, "{log}");
    let uid = server.studies()[0]["study_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let fifteen = in_years(15);
    let shown = |server: &Server| {
        let out = server.cli(&["retention", "show", &uid, "--json"]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    assert_eq!(shown(&server)["retain_until"], fifteen.as_str());
    server.set_env("TELECARDIO_RETENTION__DICOM_YEARS", "5");
    server.restart();
    assert_eq!(shown(&server)["retain_until"], fifteen.as_str());
    assert!(server
        .log()
        .contains("lower than a figure configured before"));
    server.set_env("TELECARDIO_RETENTION__DICOM_YEARS", "25");
    server.restart();
    assert_eq!(shown(&server)["retain_until"], in_years(25).as_str());
    let unknown = server.cli(&["retention", "show", "2.25.1", "--json"]);
    assert_eq!(unknown.status.code(), Some(3), "{unknown:?}");
}

#[test]
fn lowered_setting_keeps_the_longer_date_sqlite() {
    lowered_setting_keeps_the_longer_date(Db::Sqlite);
}

#[test]
fn lowered_setting_keeps_the_longer_date_postgres() {
    lowered_setting_keeps_the_longer_date(Db::Postgres);
}

/// Where the bucket has Object Lock, every object is locked (compliance mode) until its
/// retention date: boto3 sees the lock, and the store itself refuses deleting the version, to
/// boto3 and to an approved deletion alike. A bucket without it is named at start-up.
fn object_lock_refuses_early_deletion(db: Db) {
    let server = Server::start_with(
        db,
        Store::S3Locked,
        &[("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0")],
    );
    assert!(
        server
            .log()
            .contains("every object is locked until its retention date"),
        "{}",
        server.log()
    );
    let (ok, log) = dcmsend(server.dicom_port, &test_images()[..1]);
    assert!(ok, "{log}");
    let uid = server.studies()[0]["study_uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = server.show(&uid)["instances"][0]["object_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let bytes = server.object(&key);

    // A client nobody here wrote sees the lock and is refused the deletion.
    let script = r#"
import sys, boto3, botocore
endpoint, bucket, key = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
head = s3.head_object(Bucket=bucket, Key=key)
print(head["ObjectLockMode"], head["ObjectLockRetainUntilDate"].date().isoformat())
try:
    s3.delete_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
    print("deleted")
except botocore.exceptions.ClientError as e:
    print("refused", e.response["Error"]["Code"])
s3.head_object(Bucket=bucket, Key=key, VersionId=head["VersionId"])
print("still there")
"#;
    let bucket = server.store_url().trim_start_matches("s3://").to_owned();
    let out = std::process::Command::new(python())
        .args(["-c", script, &s3_endpoint(), &bucket, &key])
        .output()
        .expect("python");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let day_after = today()
        .checked_add(jiff::Span::new().years(15))
        .unwrap()
        .tomorrow()
        .unwrap()
        .to_string();
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        [
            format!("COMPLIANCE {day_after}").as_str(),
            "refused AccessDenied",
            "still there"
        ],
        "{said}"
    );

    // Past its date in the index (moved back), the deletion is approved, but the store keeps
    // the object until its lock ends: the tombstone waits, the alert is raised.
    age(&server, &uid);
    let admin = server.token("archyvaras", "admin", "");
    let auditor = server.token("auditorius", "auditor", "");
    let proposed = call(
        &server,
        &admin,
        "POST",
        "/api/retention/deletions",
        &format!(r#"{{"study_uid": "{uid}", "reason": "retention period over"}}"#),
    );
    assert_eq!(proposed.status, 201, "{}", proposed.body);
    let id = proposed.json()["id"].as_str().unwrap().to_owned();
    let approved = call(
        &server,
        &auditor,
        "POST",
        &format!("/api/retention/deletions/{id}/approve"),
        "{}",
    );
    assert_eq!(approved.status, 200, "{}", approved.body);
    let deletion = approved.json();
    assert_eq!(deletion["request"]["state"], "approved", "{deletion}");
    assert_eq!(deletion["left_in_store"], serde_json::json!([key]));
    assert!(server.log().contains("deletion_incomplete"));
    assert_eq!(server.object(&key), bytes, "the store kept it whole");
    // Not an orphan: the tombstone names it.
    let verified = server.cli(&["verify", "--all", "--json"]);
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["unindexed"], serde_json::json!([]), "{report}");

    let plain = Server::start(db, Store::S3);
    assert!(
        plain.log().contains("the S3 bucket has no Object Lock"),
        "{}",
        plain.log()
    );
}

#[test]
fn object_lock_refuses_early_deletion_sqlite() {
    object_lock_refuses_early_deletion(Db::Sqlite);
}

#[test]
fn object_lock_refuses_early_deletion_postgres() {
    object_lock_refuses_early_deletion(Db::Postgres);
}
