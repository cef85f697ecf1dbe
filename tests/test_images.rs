//! The committed test objects: valid per dicom3tools' `dciodvfy`, and exactly what the
//! generator writes (so the set can be regenerated and reviewed, never hand-edited).

mod common;

use std::process::Command;

use common::*;

#[test]
fn every_test_image_passes_dciodvfy() {
    for file in test_images() {
        let out = Command::new("dciodvfy")
            .arg(&file)
            .output()
            .expect("run dciodvfy");
        let text = String::from_utf8_lossy(&out.stderr).into_owned()
            + &String::from_utf8_lossy(&out.stdout);
        let errors: Vec<&str> = text.lines().filter(|l| l.starts_with("Error")).collect();
        assert!(
            errors.is_empty(),
            "{}:\n{}",
            file.display(),
            errors.join("\n")
        );
    }
}

#[test]
fn committed_set_is_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["generate", "--out"])
        .arg(dir.path())
        .output()
        .expect("run generate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let committed = test_images();
    for file in &committed {
        let name = file.file_name().unwrap();
        let fresh =
            std::fs::read(dir.path().join(name)).unwrap_or_else(|e| panic!("{name:?}: {e}"));
        assert!(
            std::fs::read(file).unwrap() == fresh,
            "{name:?} differs from the generator's output"
        );
    }
    let total: u64 = committed
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(total < 20 * 1024 * 1024, "committed set is {total} bytes");
}
