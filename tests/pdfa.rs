//! Open formats for the long term: every PDF the service makes for a person (the signed
//! report in Lithuanian and English, the fixity report) is PDF/A-2b, as veraPDF (the PDF
//! Association's reference validator) finds it, with every font embedded (poppler's pdffonts).

mod common;

use common::cases::*;
use common::*;
use serde_json::Value;

/// veraPDF over all the files in one run (its start-up dominates); each file's verdict.
fn verapdf(files: &[std::path::PathBuf]) -> Vec<(String, bool, Vec<String>)> {
    let classpath = std::env::var("TC_TEST_VERAPDF_CP")
        .expect("TC_TEST_VERAPDF_CP names veraPDF's classpath: run ./deploy/test.sh");
    let out = std::process::Command::new("java")
        .args([
            "-cp",
            &classpath,
            "VeraCli",
            "--flavour",
            "2b",
            "--format",
            "json",
        ])
        .args(files)
        .output()
        .expect("run veraPDF");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "veraPDF said no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    report["report"]["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|job| {
            let name = job["itemDetails"]["name"].as_str().unwrap_or("").to_owned();
            let result = &job["validationResult"][0];
            let failed = result["details"]["ruleSummaries"]
                .as_array()
                .map(|rules| {
                    rules
                        .iter()
                        .filter(|r| r["status"] == "failed")
                        .map(|r| {
                            format!("{}-{} {}", r["clause"], r["testNumber"], r["description"])
                        })
                        .collect()
                })
                .unwrap_or_default();
            (name, result["compliant"] == true, failed)
        })
        .collect()
}

fn report_pdfs_are_pdfa_2b(db: Db) {
    let server = Server::start_with(
        db,
        Store::Local,
        &[("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0")],
    );
    let clinic = server.token("slaugytoja", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    let auditor = server.token("auditorius", "auditor", "");
    signer_profile(&server, "dr-a");
    let (case, _) = routed_case(&server, &clinic, &reader, 1);
    claim_and_draft(&server, &reader, &case);
    // A character no embedded font has must not reach the page as .notdef.
    let draft = call(
        &server,
        &reader,
        "PUT",
        &format!("/api/cases/{case}/report"),
        r#"{"findings": "Kairysis skilvelis nepadidėjęs, EF 60 % ❤.",
            "conclusion": "Širdies struktūra ir funkcija normalios.",
            "recommendations": "Kontrolė po metų."}"#,
    );
    assert_eq!(draft.status, 200, "{}", draft.body);
    let report = sign(&server, &reader, &case)["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut fetch = |token: &str, path: &str, name: &str| {
        let reply = call(&server, token, "GET", path, "");
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert!(reply.bytes.starts_with(b"%PDF-"), "{path}");
        let file = dir.path().join(name);
        std::fs::write(&file, &reply.bytes).unwrap();
        files.push(file);
    };
    fetch(
        &clinic,
        &format!("/api/cases/{case}/reports/{report}/pdf"),
        "report.pdf",
    );
    fetch(
        &auditor,
        "/api/fixity/report?format=pdf&lang=lt",
        "fixity-lt.pdf",
    );
    fetch(
        &auditor,
        "/api/fixity/report?format=pdf&lang=en",
        "fixity-en.pdf",
    );

    let verdicts = verapdf(&files);
    assert_eq!(verdicts.len(), files.len(), "{verdicts:?}");
    for (name, compliant, failed) in &verdicts {
        assert!(compliant, "{name} is not PDF/A-2b: {failed:#?}");
    }
    for file in &files {
        let out = std::process::Command::new("pdffonts")
            .arg(file)
            .output()
            .expect("pdffonts");
        let listing = String::from_utf8_lossy(&out.stdout);
        let fonts: Vec<&str> = listing.lines().skip(2).collect();
        assert!(!fonts.is_empty(), "{listing}");
        for line in fonts {
            // Columns: name, type, encoding, emb, sub, uni, object, id.
            let cells: Vec<&str> = line.split_whitespace().collect();
            let n = cells.len();
            assert_eq!(cells[n - 5..n - 2], ["yes", "yes", "yes"], "{line}");
        }
    }
}

#[test]
fn report_pdfs_are_pdfa_2b_sqlite() {
    report_pdfs_are_pdfa_2b(Db::Sqlite);
}

#[test]
fn report_pdfs_are_pdfa_2b_postgres() {
    report_pdfs_are_pdfa_2b(Db::Postgres);
}
