//! The generated history of cases the indicator tests share, and the Python that computes
//! what it should give by other means than ours.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::repo;

/// Python with `fhir.resources` (R4) and `holidays`, kept apart from the other test clients:
/// that release of `fhir.resources` needs pydantic 1.
pub fn fhir_python() -> PathBuf {
    std::env::var_os("TC_TEST_FHIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/fhir-venv/bin/python"))
}

/// Generates the history into `dir`, with the expected values computed from it.
pub fn history(dir: &Path, now: &str, secret: &str) -> Value {
    let out = Command::new(fhir_python())
        .arg(repo().join("tests/indicators/history.py"))
        .args([
            "--out",
            dir.to_str().unwrap(),
            "--now",
            now,
            "--secret",
            secret,
        ])
        .arg("--expect")
        .output()
        .expect("run history.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap()
}
