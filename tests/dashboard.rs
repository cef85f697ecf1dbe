//! The indicators dashboard in a real browser (headless Chromium) against the real binary, on
//! SQLite and PostgreSQL: over the generated history of 1,200 cases, every number behind every
//! chart (turnaround by month per kind and priority, shares within target by month and per
//! clinic, volumes per clinic and kind) equals the independent computation in Python; the page
//! passes axe in Lithuanian, reads in English, offers the exports, and refuses a clinic user,
//! on record.

mod common;

use std::collections::BTreeSet;

use common::browser::Browser;
use common::indicators::history;
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "dashboard-platform-secret";
const PASSWORD: &str = "Rodikliai-ąčę-2026";

/// Every chart's table on the page: figure id → rows of [header, [data-value or null …]].
fn tables(browser: &Browser) -> Value {
    browser.script(
        "const out = {};
         for (const f of document.querySelectorAll('figure.chart')) {
           out[f.id] = Array.from(f.querySelectorAll('tbody tr')).map(r => [
             r.querySelector('th').textContent,
             Array.from(r.querySelectorAll('td')).map(c =>
               c.hasAttribute('data-value') ? Number(c.getAttribute('data-value')) : null)]);
         }
         return out;",
        json!([]),
    )
}

fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a.is_null() && b.is_null(),
    }
}

fn assert_cell(got: &Value, want: &Value, what: &str) {
    assert!(same(got, want), "{what}: page {got} ≠ expected {want}");
}

fn dashboard(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let now = jiff::Timestamp::now().to_string();
    let expected = history(dir.path(), &now, SECRET);
    let secret = dir.path().join("person-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let server = Server::start_with(
        db,
        Store::Local,
        &[(
            "TELECARDIO_INDICATORS__PERSON_SECRET",
            secret.to_str().unwrap(),
        )],
    );
    server.execute_script(&std::fs::read_to_string(dir.path().join("history.sql")).unwrap());
    server.person("auditorius", "auditor", "", PASSWORD);
    server.person("slaugytoja", "clinic", "demo", PASSWORD);
    let tag = format!("{db:?}").to_lowercase();
    let browser = Browser::start(server.http_port, "lt-LT,lt");

    // The auditor finds the dashboard in the menu and opens last year's.
    browser.sign_in("auditorius", PASSWORD);
    browser.click("nav a[href='/indicators']");
    browser.wait_path(|p| p == "/indicators");
    browser.goto("/indicators?year=2025");
    browser.find("figure#volume-by-clinic");
    assert!(browser.text("h1").contains("Kokybės rodikliai"));
    let violations = browser.accessibility_violations();
    assert!(violations.is_empty(), "{violations:#?}");
    let png = browser.screenshot(&format!("{tag}-dashboard-lt"));
    assert!(png.starts_with(b"\x89PNG"));
    for chart in [
        "turnaround-echo-urgent",
        "turnaround-holter-routine",
        "shares-by-month",
        "share-TC-02",
        "volume-by-clinic",
        "volume-by-month",
        "rates",
    ] {
        let png =
            browser.element_screenshot(&format!("#{chart}"), &format!("{tag}-dashboard-{chart}"));
        assert!(png.starts_with(b"\x89PNG"));
    }
    let want = &expected["dashboard_2025"];
    let page = tables(&browser);

    // Turnaround by month: one chart per kind and priority, each month's cases, median and
    // p90 of reading (TC-T1) and end to end (TC-T2), as the independent computation has them.
    let groups = want["turnaround"].as_object().unwrap();
    let drawn: BTreeSet<String> = page
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with("turnaround-"))
        .cloned()
        .collect();
    let wanted: BTreeSet<String> = groups
        .keys()
        .map(|k| format!("turnaround-{}", k.replace('|', "-")))
        .collect();
    assert_eq!(drawn, wanted, "one turnaround chart per kind and priority");
    let mut compared = 0;
    for (group, series) in groups {
        let id = format!("turnaround-{}", group.replace('|', "-"));
        let rows = page[&id].as_array().unwrap();
        assert_eq!(rows.len(), 12, "{id}: the twelve months of 2025");
        for (m, row) in rows.iter().enumerate() {
            let month = format!("2025-{:02}", m + 1);
            let cells = row[1].as_array().unwrap();
            for (i, code) in ["TC-T1", "TC-T2"].iter().enumerate() {
                let v = &series[code][&month];
                let what = format!("{id} {month} {code}");
                if v.is_null() {
                    assert!(cells[i * 3].is_null(), "{what}: nothing measured");
                    continue;
                }
                assert_cell(&cells[i * 3], &v["b"], &format!("{what} cases"));
                assert_cell(
                    &cells[i * 3 + 1],
                    &v["median_min"],
                    &format!("{what} median"),
                );
                assert_cell(&cells[i * 3 + 2], &v["p90_min"], &format!("{what} p90"));
                compared += 1;
            }
        }
    }
    assert!(compared > 100, "only {compared} monthly values compared");
    // An urgent chart carries its 4-hour target as a labelled line.
    let urgent = browser.source();
    assert!(
        urgent.contains("Tikslas: 4 val."),
        "the urgent target is drawn"
    );

    // Shares within target, month by month, in total.
    let rows = page["shares-by-month"].as_array().unwrap();
    assert_eq!(rows.len(), 12);
    for (m, row) in rows.iter().enumerate() {
        let month = format!("2025-{:02}", m + 1);
        for (i, code) in ["TC-01", "TC-02", "TC-03", "TC-08"].iter().enumerate() {
            assert_cell(
                &row[1][i],
                &want["shares"][&month][code],
                &format!("shares {month} {code}"),
            );
        }
    }
    // Each share for the year, in total and per clinic, as the year's report has it.
    let year = &expected["periods"]["2025"]["values"];
    for code in ["TC-01", "TC-02", "TC-03"] {
        let rows = page[&format!("share-{code}")].as_array().unwrap();
        for row in rows {
            let header = row[0].as_str().unwrap();
            let key = if header == "Iš viso" {
                format!("{code}|total|")
            } else {
                format!("{code}|clinic|{header}")
            };
            let v = &year[&key];
            assert!(!v.is_null(), "{key} is not in the independent computation");
            assert_cell(&row[1][0], &v["b"], &format!("{key} b"));
            assert_cell(&row[1][1], &v["p"], &format!("{key} p"));
            assert_cell(&row[1][2], &v["score_pct"], &format!("{key} share"));
        }
        assert_eq!(rows.len(), 4, "{code}: the total and three clinics");
    }

    // Cases signed per clinic and kind, with unique persons.
    let clinics = want["clinics"].as_object().unwrap();
    let kinds: BTreeSet<&str> = clinics
        .values()
        .flat_map(|c| c["by_kind"].as_object().unwrap().keys())
        .map(String::as_str)
        .collect();
    let rows = page["volume-by-clinic"].as_array().unwrap();
    assert_eq!(rows.len(), clinics.len());
    for row in rows {
        let clinic = row[0].as_str().unwrap();
        let w = &clinics[clinic];
        let cells = row[1].as_array().unwrap();
        for (i, kind) in kinds.iter().enumerate() {
            let n = w["by_kind"].get(*kind).cloned().unwrap_or(json!(0));
            assert_cell(&cells[i], &n, &format!("{clinic} {kind}"));
        }
        assert_cell(&cells[kinds.len()], &w["cases"], &format!("{clinic} cases"));
        assert_cell(
            &cells[kinds.len() + 1],
            &w["persons"],
            &format!("{clinic} persons"),
        );
    }
    // The months' volumes add up to the clinics'.
    let by_month: f64 = page["volume-by-month"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r[1].as_array().unwrap().iter().filter_map(Value::as_f64))
        .sum();
    let by_clinic: f64 = clinics.values().filter_map(|c| c["cases"].as_f64()).sum();
    assert_eq!(by_month, by_clinic);

    // The cases with impossible clocks are listed, each linking to its case.
    let listed = browser.script(
        "return document.querySelectorAll('#clock-exceptions tbody tr').length;",
        json!([]),
    );
    let exceptions = expected["periods"]["2025"]["exceptions"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(listed.as_u64(), Some(exceptions.min(100) as u64));

    // The exports are a link away, with the page's session.
    let csv = browser.script_async(
        "const done = arguments[arguments.length - 1];
         fetch(document.querySelector('a[data-format=csv]').href, {credentials: 'same-origin'})
           .then(r => r.text().then(t => done([r.status, t.slice(0, 5)])), e => done([0, String(e)]));",
        json!([]),
    );
    assert_eq!(csv, json!([200, "code,"]));

    // In English, the same charts.
    browser.click("a[lang=en]");
    browser.wait_text("h1", |t| t == "Quality indicators");
    assert!(browser
        .text("#turnaround-h")
        .contains("Turnaround by month"));
    assert!(browser.source().contains("Target: 4 h"));
    browser.screenshot(&format!("{tag}-dashboard-en"));

    // Another year from the year list; a year out of range is refused with a reason.
    browser.script(
        "document.querySelector('#year').value = arguments[0];",
        json!(["2026"]),
    );
    browser.click("form.tools button[type=submit]");
    browser.wait_text("#summary-h", |t| t.contains("2026"));
    let status = browser.script_async(
        "const done = arguments[arguments.length - 1];
         fetch('/indicators?year=1999', {credentials: 'same-origin'}).then(r => done(r.status));",
        json!([]),
    );
    assert_eq!(status, json!(400));

    // A clinic user is refused, and the refusal is on record like the auditor's reads.
    browser.click("form[action='/logout'] button");
    browser.wait_path(|p| p == "/login");
    browser.sign_in("slaugytoja", PASSWORD);
    assert!(
        !browser.source().contains("href=\"/indicators\""),
        "no menu entry for a clinic"
    );
    let status = browser.script_async(
        "const done = arguments[arguments.length - 1];
         fetch('/indicators', {credentials: 'same-origin'}).then(r => done(r.status));",
        json!([]),
    );
    assert_eq!(status, json!(403));
    let events = server.audit_events("indicators_read");
    assert!(
        events
            .iter()
            .any(|(actor, _, outcome)| actor == "auditorius" && outcome == "answered"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(actor, _, outcome)| actor == "slaugytoja" && outcome != "answered"),
        "{events:?}"
    );
}

#[test]
fn dashboard_sqlite() {
    dashboard(Db::Sqlite);
}

#[test]
fn dashboard_postgres() {
    dashboard(Db::Postgres);
}
