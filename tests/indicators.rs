//! Quality indicators against the real binary: a generated history of 1,200 cases over two
//! calendar years (three clinics, two centres, repeated patients, urgent and routine, echo and
//! Holter, a year-end and both daylight-saving changes inside the periods, impossible clocks
//! and cancelled cases) gives exactly what an independent computation in Python gives, for
//! every indicator and stratum, on SQLite and on PostgreSQL alike; the FHIR export validates
//! as R4; persons pool across two archives through their keyed hashes.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::indicators::{fhir_python, history};
use common::*;
use serde_json::Value;

/// The person secret both archives share, as the platform would hand it out.
const SECRET: &str = "shared-platform-secret";

fn archive(db: Db, secret: &Path) -> Server {
    Server::start_with(
        db,
        Store::Local,
        &[(
            "TELECARDIO_INDICATORS__PERSON_SECRET",
            secret.to_str().unwrap(),
        )],
    )
}

fn indicators(server: &Server, period: &str, extra: &[&str]) -> Value {
    let mut args = vec!["indicators", "--format", "json"];
    let range: Vec<&str>;
    if let Some((from, to)) = period.split_once("..") {
        range = vec!["--from", from, "--to", to];
        args.extend(&range);
    } else {
        args.extend(["--period", period]);
    }
    args.extend(extra);
    let out = server.cli(&args);
    assert!(
        out.status.success(),
        "indicators {period}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("indicators JSON")
}

/// `code|by|value` of a computed value, as the expectation names it.
fn key(v: &Value) -> String {
    format!(
        "{}|{}|{}",
        v["code"].as_str().unwrap(),
        v["stratum"]["by"].as_str().unwrap(),
        v["stratum"]["value"].as_str().unwrap_or("")
    )
}

fn same_number(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a.is_null() && b.is_null(),
    }
}

/// Every value of `report` equals the independent computation, and no stratum is missing.
fn assert_matches(report: &Value, expected: &Value, period: &str) {
    let expected = &expected["periods"][period];
    let values = report["values"].as_array().unwrap();
    let mut seen = BTreeSet::new();
    for v in values {
        let k = key(v);
        let want = &expected["values"][&k];
        assert!(
            !want.is_null(),
            "{period}: {k} is not in the independent computation"
        );
        for field in ["b", "excluded", "persons_b"] {
            assert_eq!(v[field], want[field], "{period} {k} {field}");
        }
        for field in [
            "p",
            "persons_p",
            "score_pct",
            "median_min",
            "p90_min",
            "target_met",
        ] {
            if want.get(field).is_some() {
                let ok = v[field] == want[field] || same_number(&v[field], &want[field]);
                assert!(ok, "{period} {k} {field}: {} ≠ {}", v[field], want[field]);
            }
        }
        seen.insert(k);
    }
    let wanted: BTreeSet<String> = expected["values"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(seen, wanted, "{period}: strata");
    let exceptions: BTreeSet<&str> = report["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["case_id"].as_str().unwrap())
        .collect();
    let want: BTreeSet<&str> = expected["exceptions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(exceptions, want, "{period}: exceptions");
}

/// The report without the instant it was made.
fn content(mut report: Value) -> Value {
    report["generated_at"] = Value::Null;
    report
}

#[test]
fn indicators_equal_an_independent_computation_on_both_engines() {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().to_string();
    let expected = history(dir.path(), &now, SECRET);
    assert!(expected["cases"].as_u64().unwrap() >= 1000);
    let secret = dir.path().join("person-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let script = std::fs::read_to_string(dir.path().join("history.sql")).unwrap();
    let sqlite = archive(Db::Sqlite, &secret);
    let postgres = archive(Db::Postgres, &secret);
    sqlite.execute_script(&script);
    postgres.execute_script(&script);

    let periods: Vec<String> = expected["periods"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    for period in &periods {
        let a = indicators(&sqlite, period, &[]);
        assert_matches(&a, &expected, period);
        let b = indicators(&postgres, period, &[]);
        assert_eq!(
            content(a),
            content(b),
            "{period}: SQLite and PostgreSQL differ"
        );
    }

    // The same over HTTP, for an auditor; CSV in the platform's columns. A clinic may not.
    let auditor = sqlite.token("quality", "auditor", "");
    let bearer = format!("Bearer {auditor}");
    let reply = request(
        sqlite.http_port,
        "GET",
        "/api/indicators?period=2026&format=csv",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(reply
        .header("content-type")
        .unwrap()
        .starts_with("text/csv"));
    let mut lines = reply.body.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("code,period_start,period_end,reporter_id,partner_id,kind,priority,b,p,"));
    let total_01 = lines
        .find(|l| l.starts_with("TC-01,2026-01-01,2026-12-31,,,,,"))
        .expect("TC-01 total row");
    let b: u64 = total_01.split(',').nth(7).unwrap().parse().unwrap();
    assert_eq!(
        b,
        expected["periods"]["2026"]["values"]["TC-01|total|"]["b"]
            .as_u64()
            .unwrap()
    );
    let clinic = sqlite.token("clinic-user", "clinic", "demo");
    let reply = request(
        sqlite.http_port,
        "GET",
        "/api/indicators?period=2026",
        &[("Authorization", &format!("Bearer {clinic}"))],
        b"",
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    for bad in [
        "period=2026-13",
        "period=2026&format=xml",
        "from=2026-02-01&to=2026-01-01",
    ] {
        let reply = request(
            sqlite.http_port,
            "GET",
            &format!("/api/indicators?{bad}"),
            &[("Authorization", &bearer)],
            b"",
        );
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
    }

    // Settlement: examinations read per centre, clinic and kind, with the cases behind them.
    let out = postgres.cli(&["indicators", "--year", "2026", "--format", "settlement"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("period_start,period_end,centre_id,clinic_id,kind,examinations_read,cases")
    );
    let mut settled = serde_json::Map::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let mut cases: Vec<&str> = f[6].split(' ').collect();
        cases.sort();
        assert_eq!(f[5].parse::<usize>().unwrap(), cases.len(), "{line}");
        settled.insert(
            format!("{}|{}|{}", f[2], f[3], f[4]),
            serde_json::json!(cases),
        );
    }
    assert_eq!(Value::Object(settled), expected["settlement_2026"]);

    // FHIR R4: every Measure and MeasureReport validates, and each centre's report carries
    // the scores the independent computation gives for that centre's cases.
    let out = sqlite.cli(&["indicators", "--year", "2026", "--format", "fhir"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bundle = dir.path().join("bundle.json");
    std::fs::write(&bundle, &out.stdout).unwrap();
    let check = Command::new(fhir_python())
        .arg(repo().join("tests/indicators/validate_fhir.py"))
        .arg(&bundle)
        .output()
        .expect("run validate_fhir.py");
    let summary: Value = serde_json::from_slice(&check.stdout).unwrap_or(Value::Null);
    assert!(
        check.status.success(),
        "{summary}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(summary["measures"], 12);
    // Two centres of the history and the configuration's own one.
    assert_eq!(summary["reports"], 36);
    let year = &expected["periods"]["2026"]["values"];
    for centre in ["centre-1", "centre-2"] {
        for code in ["TC-01", "TC-02", "TC-03", "TC-04", "TC-07"] {
            let want = &year[format!("{code}|centre|{centre}")];
            let got = &summary["scores"][format!("{centre}|{code}")];
            assert!(
                same_number(got, &want["score_pct"]),
                "{centre} {code}: {got} ≠ {want}"
            );
            let numerator = &summary["counts"][format!("{centre}|{code}|numerator")];
            assert_eq!(numerator, &want["p"], "{centre} {code} numerator");
        }
        let want = &year[format!("TC-T1|centre|{centre}")];
        let got = &summary["scores"][format!("{centre}|TC-T1-median")];
        assert!(
            same_number(got, &want["median_min"]),
            "{centre} TC-T1 median"
        );
        let got = &summary["scores"][format!("{centre}|TC-T1-p90")];
        assert!(same_number(got, &want["p90_min"]), "{centre} TC-T1 p90");
    }
}

#[test]
fn persons_pool_across_two_archives_through_their_keys() {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().to_string();
    let expected = history(dir.path(), &now, SECRET);
    let secret = dir.path().join("person-secret");
    std::fs::write(&secret, SECRET).unwrap();
    // Clinics a and b in one archive, clinic c in another, on the other engine.
    let first = archive(Db::Sqlite, &secret);
    let second = archive(Db::Postgres, &secret);
    first.execute_script(&std::fs::read_to_string(dir.path().join("part-a.sql")).unwrap());
    second.execute_script(&std::fs::read_to_string(dir.path().join("part-b.sql")).unwrap());
    let keys = |server: &Server| -> BTreeSet<String> {
        let report = indicators(server, "2026", &["--person-keys"]);
        let volume = report["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["code"] == "TC-V1" && v["stratum"]["by"] == "total")
            .unwrap()
            .clone();
        let keys: BTreeSet<String> = volume["person_keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(keys.len() as u64, volume["p"].as_u64().unwrap());
        assert!(keys.iter().all(|k| k.len() == 64), "HMAC-SHA-256 in hex");
        keys
    };
    let a = keys(&first);
    let b = keys(&second);
    assert_eq!(a.len() as u64, expected["persons_2026_a"].as_u64().unwrap());
    assert_eq!(b.len() as u64, expected["persons_2026_b"].as_u64().unwrap());
    let union: BTreeSet<&String> = a.iter().chain(b.iter()).collect();
    assert_eq!(
        union.len() as u64,
        expected["persons_2026"].as_u64().unwrap()
    );
    assert!(
        union.len() < a.len() + b.len(),
        "some persons were seen at both: a plain sum would count them twice"
    );
    // Without the flag the keys stay home.
    let plain = indicators(&first, "2026", &[]);
    assert!(!plain.to_string().contains("person_keys"));
}

/// A Holter study read as non-diagnostic and an echo study cancelled, through the real
/// workflow: T1 comes from the objects (the recording's start plus its duration), the
/// cancelled case leaves the indicators as excluded, the non-diagnostic one counts in TC-07.
fn clocks_from_the_workflow(db: Db) {
    use common::cases::*;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("person-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let server = Server::start_with(
        db,
        Store::Local,
        &[
            (
                "TELECARDIO_INDICATORS__PERSON_SECRET",
                secret.to_str().unwrap(),
            ),
            ("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0"),
        ],
    );
    let clinic = server.token("clinic-desk", "clinic", "demo");
    let reader = server.token("dr-ona", "cardiologist", "demo-centre");
    signer_profile(&server, "dr-ona");
    let admin = server.token("boss", "admin", "");

    // The Holter recording started 2026-11-20 09:30 in Vilnius and lasted 120,000 samples at
    // 200 Hz: T1 is 07:40 UTC, five minutes after its content time.
    let holter = dir.path().join("holter.dcm");
    std::fs::copy(test_image("holter-ambulatory.dcm"), &holter).unwrap();
    let mut cmd = dcmtk("dcmodify");
    cmd.arg("-nb");
    for change in [
        "(0010,0020)=48507120013",
        "(0008,0050)=E027-2026-0801",
        "(0020,000D)=2.25.80801",
        "(0020,000E)=2.25.80801.1",
        "(0008,0018)=2.25.80801.1.1",
    ] {
        cmd.arg("-m").arg(change);
    }
    cmd.arg(&holter);
    let (ok, log) = run(cmd);
    assert!(ok, "{log}");
    let document = VALID
        .replace("E027-DOC-0001", "E027-DOC-0801")
        .replace("E027-2026-0001", "E027-2026-0801");
    assert_eq!(post_referral(&server, &clinic, &document).status, 201);
    let before = jiff::Timestamp::now().as_microsecond();
    let (ok, log) = storescu(server.dicom_port, &[holter]);
    assert!(ok, "{log}");
    let after = jiff::Timestamp::now().as_microsecond();
    let mut holter_case = String::new();
    wait_for(Duration::from_secs(30), || {
        let list = call(&server, &reader, "GET", "/api/worklist", "").json();
        match list["cases"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["study_uid"] == "2.25.80801"))
        {
            Some(case) => {
                holter_case = case["id"].as_str().unwrap().to_owned();
                true
            }
            None => false,
        }
    });
    let claim = call(
        &server,
        &reader,
        "POST",
        &format!("/api/cases/{holter_case}/claim"),
        "",
    );
    assert_eq!(claim.status, 200, "{}", claim.body);
    let draft = call(
        &server,
        &reader,
        "PUT",
        &format!("/api/cases/{holter_case}/report"),
        r#"{"findings": "Įrašas triukšmingas, ritmo įvertinti negalima.",
            "conclusion": "Tyrimas nediagnostinis.", "non_diagnostic": true}"#,
    );
    assert_eq!(draft.status, 200, "{}", draft.body);
    assert_eq!(draft.json()["non_diagnostic"], true);
    let signed = sign(&server, &reader, &holter_case);
    assert_eq!(signed["non_diagnostic"], true);
    let answer = call(
        &server,
        &reader,
        "GET",
        &format!(
            "/api/cases/{holter_case}/reports/{}/answer",
            signed["id"].as_str().unwrap()
        ),
        "",
    );
    assert!(answer.body.contains("Non-diagnostic"), "{}", answer.body);

    // An echo study the clinic withdraws.
    let (echo_case, _) = routed_case(&server, &clinic, &reader, 802);
    let path = format!("/api/cases/{echo_case}/cancel");
    assert_eq!(
        call(&server, &clinic, "POST", &path, r#"{"reason": " "}"#).status,
        422
    );
    assert_eq!(
        call(&server, &reader, "POST", &path, r#"{"reason": "no"}"#).status,
        403
    );
    let cancelled = call(
        &server,
        &clinic,
        "POST",
        &path,
        r#"{"reason": "sent in error"}"#,
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let case = cancelled.json();
    assert_eq!(case["status"], "cancelled");
    assert_eq!(case["cancelled"]["reason"], "sent in error");
    assert_eq!(case["cancelled"]["by"], "clinic-desk");
    let again = call(&server, &admin, "POST", &path, r#"{"reason": "twice"}"#);
    assert_eq!(again.status, 409, "{}", again.body);
    let worklist = call(&server, &reader, "GET", "/api/worklist", "").json();
    assert!(
        !worklist.to_string().contains(&echo_case),
        "a cancelled case leaves the worklist"
    );
    let signed_holter = call(
        &server,
        &admin,
        "POST",
        &format!("/api/cases/{holter_case}/cancel"),
        r#"{"reason": "late"}"#,
    );
    assert_eq!(
        signed_holter.status, 409,
        "a reported case is not cancelled"
    );

    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Vilnius").unwrap())
        .date();
    let day = |d: jiff::civil::Date| d.to_string();
    let period = format!(
        "{}..{}",
        day(today.yesterday().unwrap()),
        day(today.tomorrow().unwrap())
    );
    let report = indicators(&server, &period, &[]);
    let total = |code: &str| {
        report["values"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["code"] == code && v["stratum"]["by"] == "total")
            .unwrap()
            .clone()
    };
    let t1 = "2026-11-20T07:40:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_microsecond();
    let latency = total("TC-T3");
    assert_eq!(
        (latency["b"].as_u64(), latency["excluded"].as_u64()),
        (Some(1), Some(1)),
        "{latency}"
    );
    let minutes = latency["median_min"].as_f64().unwrap();
    let low = (before - t1) as f64 / 60e6 - 0.01;
    let high = (after - t1) as f64 / 60e6 + 0.01;
    assert!(
        (low..=high).contains(&minutes),
        "T2 − T1 {minutes} not in {low}..{high}"
    );
    let non_diagnostic = total("TC-07");
    assert_eq!(
        (non_diagnostic["b"].as_u64(), non_diagnostic["p"].as_u64()),
        (Some(1), Some(1))
    );
    let volume = total("TC-V1");
    assert_eq!(
        (volume["b"].as_u64(), volume["p"].as_u64()),
        (Some(1), Some(1))
    );
    let referral = total("TC-04");
    assert_eq!(
        (
            referral["b"].as_u64(),
            referral["p"].as_u64(),
            referral["excluded"].as_u64()
        ),
        (Some(1), Some(0), Some(1))
    );
    assert!(
        report["exceptions"].as_array().unwrap().is_empty(),
        "{}",
        report["exceptions"]
    );
}

#[test]
fn clocks_from_the_workflow_sqlite() {
    clocks_from_the_workflow(Db::Sqlite);
}

#[test]
fn clocks_from_the_workflow_postgres() {
    clocks_from_the_workflow(Db::Postgres);
}

/// The yearly report frozen as immutable versions (a new one only when something changed,
/// saying what), and its delivery surviving a platform outage and a restart: queued, retried,
/// delivered once when the platform is back, which validates every resource and sees one
/// report.
fn frozen_and_delivered(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().to_string();
    history(dir.path(), &now, SECRET);
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/fhir/Bundle");
    let mut server = delivering(
        db,
        dir.path(),
        &url,
        "3",
        &[("TELECARDIO_INDICATORS__PLATFORM__TOKEN", "platform-token")],
    );
    server.execute_script(&std::fs::read_to_string(dir.path().join("part-a.sql")).unwrap());
    let admin = server.token("quality-admin", "admin", "");
    let auditor = server.token("quality-auditor", "auditor", "");
    let post = |token: &str, path: &str, body: &str| {
        common::cases::call(&server, token, "POST", path, body)
    };

    let first = post(&admin, "/api/indicators/reports", r#"{"period": "2025"}"#);
    assert_eq!(first.status, 201, "{}", first.body);
    let first = first.json();
    assert_eq!(first["version"], 1);
    let again = post(&admin, "/api/indicators/reports", r#"{"period": "2025"}"#);
    assert_eq!(again.status, 200, "nothing changed: the same version");
    assert_eq!(again.json()["id"], first["id"]);
    assert_eq!(
        post(&auditor, "/api/indicators/reports", r#"{"period": "2025"}"#).status,
        403,
        "an auditor reads, an administrator freezes"
    );
    // A late delivery recorded for a 2025 case changes the year: version 2 says what changed.
    server.execute_sql(
        "UPDATE cases SET delivered_at = signed_at + 60000000, status = 'delivered'
         WHERE id = (SELECT MIN(id) FROM cases WHERE delivered_at IS NULL
                     AND signed_at IS NOT NULL AND signed_at < 1767218400000000)",
    );
    let second = post(&admin, "/api/indicators/reports", r#"{"period": "2025"}"#);
    assert_eq!(second.status, 201, "{}", second.body);
    let second = second.json();
    assert_eq!(second["version"], 2);
    let changes = second["changes"].to_string();
    assert!(changes.contains("TC-02 total"), "{changes}");
    // Each version stays as it was frozen.
    let bundle_path = format!(
        "/api/indicators/reports/{}?format=fhir",
        second["id"].as_str().unwrap()
    );
    let stored = common::cases::call(&server, &auditor, "GET", &bundle_path, "");
    assert_eq!(stored.status, 200);
    assert_eq!(
        sha256_hex(&stored.bytes),
        second["bundle_sha256"].as_str().unwrap()
    );
    let (ok, report) = {
        let out = server.cli(&["verify", "--all", "--json"]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(ok, "the frozen versions are checked, not orphans: {report}");

    // The platform is down: the delivery waits in the queue, retried, across a restart.
    let id = second["id"].as_str().unwrap().to_owned();
    let queued = post(&admin, &format!("/api/indicators/reports/{id}/deliver"), "");
    assert_eq!(queued.status, 202, "{}", queued.body);
    let deliveries = |server: &Server| {
        let list = common::cases::call(
            server,
            &auditor,
            "GET",
            "/api/indicators/reports?period=2025",
            "",
        );
        list.json()["reports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap()["deliveries"]
            .clone()
    };
    // Stopped hard between two attempts (one killed inside an attempt would hold its lease
    // until it lapses: the same outcome, a minute later).
    wait_for(Duration::from_secs(60), || {
        let d = &deliveries(&server)[0];
        let next = d["next_attempt_at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_microsecond());
        d["attempts"].as_i64().unwrap_or(0) >= 2
            && next - jiff::Timestamp::now().as_microsecond() > 1_500_000
    });
    let waiting = deliveries(&server);
    assert_eq!(waiting[0]["status"], "pending", "{waiting}");
    assert!(!waiting[0]["last_error"].as_str().unwrap().is_empty());
    server.restart();

    // Back: delivered once, the platform holds one report, every resource valid.
    let state = dir.path().join("platform.json");
    let mut platform = Command::new(fhir_python())
        .arg(repo().join("tests/indicators/quality_platform.py"))
        .args([&port.to_string(), "platform-token", state.to_str().unwrap()])
        .spawn()
        .expect("start the platform");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while deliveries(&server)[0]["status"] != "delivered" {
        assert!(
            std::time::Instant::now() < deadline,
            "not delivered: {}\n{}",
            deliveries(&server),
            server
                .log()
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    let seen: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let _ = platform.kill();
    let _ = platform.wait();
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["key"], id.as_str());
    assert_eq!(seen[0]["posts"], 1, "delivered once");
    assert_eq!(seen[0]["measures"], 12);
    assert!(seen[0]["reports"].as_u64().unwrap() >= 12);
    assert_eq!(deliveries(&server).as_array().unwrap().len(), 1);
}

#[test]
fn frozen_and_delivered_sqlite() {
    frozen_and_delivered(Db::Sqlite);
}

#[test]
fn frozen_and_delivered_postgres() {
    frozen_and_delivered(Db::Postgres);
}

/// An archive keying persons by the shared secret that delivers to the platform at `url`
/// (frozen in January from day 0), retrying every `retry` seconds; `auth` says how it proves
/// itself there.
fn delivering(db: Db, dir: &Path, url: &str, retry: &str, auth: &[(&str, &str)]) -> Server {
    let secret = dir.join("person-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let mut env = vec![
        (
            "TELECARDIO_INDICATORS__PERSON_SECRET",
            secret.to_str().unwrap(),
        ),
        ("TELECARDIO_INDICATORS__PLATFORM__URL", url),
        ("TELECARDIO_INDICATORS__PLATFORM__FREEZE_DAY", "0"),
        ("TELECARDIO_DELIVERY__POLL_SECONDS", "1"),
        ("TELECARDIO_DELIVERY__RETRY_FIRST_SECONDS", retry),
        ("TELECARDIO_DELIVERY__RETRY_MAX_SECONDS", retry),
        ("TELECARDIO_DELIVERY__MAX_ATTEMPTS", "100"),
        ("TELECARDIO_DELIVERY__TIMEOUT_SECONDS", "5"),
    ];
    env.extend_from_slice(auth);
    Server::start_with(db, Store::Local, &env)
}

/// A child process stopped when the test ends, passed or not.
struct Stopped(std::process::Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The platform takes only clients with a certificate its CA issued: without one, the
/// handshake fails and the delivery waits in the queue with the reason; with the certificate
/// configured, the same delivery goes through once and the platform sees who sent it.
fn delivered_over_mutual_tls(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let file = |name: &str, pem: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (ca, server_cert, server_key) = (
        file("ca.pem", &pki.ca),
        file("platform.pem", &pki.server_cert),
        file("platform.key", &pki.server_key),
    );
    let (client_cert, client_key) = (
        file("client.pem", &pki.client_cert),
        file("client.key", &pki.client_key),
    );
    let port = free_port();
    let state = dir.path().join("platform.json");
    let log = std::fs::File::create(dir.path().join("platform.log")).unwrap();
    let _platform = Stopped(
        Command::new(fhir_python())
            .arg(repo().join("tests/indicators/quality_platform.py"))
            .args([&port.to_string(), "-", state.to_str().unwrap()])
            .args([&server_cert, &server_key, &ca])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start the platform"),
    );
    wait_for(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("https://127.0.0.1:{port}/fhir/Bundle");
    let mut server = delivering(
        db,
        dir.path(),
        &url,
        "2",
        &[("TELECARDIO_INDICATORS__PLATFORM__CA", ca.as_str())],
    );
    let admin = server.token("quality-admin", "admin", "");
    let frozen = common::cases::call(
        &server,
        &admin,
        "POST",
        "/api/indicators/reports",
        r#"{"period": "2025"}"#,
    );
    assert_eq!(frozen.status, 201, "{}", frozen.body);
    let id = frozen.json()["id"].as_str().unwrap().to_owned();
    let deliver = format!("/api/indicators/reports/{id}/deliver");
    let queued = common::cases::call(&server, &admin, "POST", &deliver, "");
    assert_eq!(queued.status, 202, "{}", queued.body);
    let delivery = |server: &Server| {
        let list = common::cases::call(
            server,
            &admin,
            "GET",
            "/api/indicators/reports?period=2025",
            "",
        );
        list.json()["reports"][0]["deliveries"][0].clone()
    };
    // No client certificate: refused in the handshake, retried, the reason on record.
    wait_for(Duration::from_secs(60), || {
        !delivery(&server)["last_error"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
    });
    let waiting = delivery(&server);
    assert_eq!(waiting["status"], "pending", "{waiting}");
    // (In TLS 1.3 the refusal may arrive as the alert or as the connection closed under the
    // request; either way the attempt failed with its reason kept.)
    assert!(
        waiting["last_error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("quality platform: "),
        "{waiting}"
    );
    // With the certificate: delivered once, the platform knows the sender.
    server.set_env("TELECARDIO_INDICATORS__PLATFORM__CERTIFICATE", &client_cert);
    server.set_env("TELECARDIO_INDICATORS__PLATFORM__PRIVATE_KEY", &client_key);
    server.restart();
    wait_for(Duration::from_secs(60), || {
        delivery(&server)["status"] == "delivered"
    });
    let seen: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    let seen = seen.as_array().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["key"], id.as_str());
    assert_eq!(seen[0]["posts"], 1);
    assert_eq!(seen[0]["client"], CLINIC_AE);
    assert_eq!(seen[0]["measures"], 12);
}

#[test]
fn delivered_over_mutual_tls_sqlite() {
    delivered_over_mutual_tls(Db::Sqlite);
}

#[test]
fn delivered_over_mutual_tls_postgres() {
    delivered_over_mutual_tls(Db::Postgres);
}
