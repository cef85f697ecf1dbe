//! The command line as an administrator meets it: configuration errors, listings of an empty
//! archive, an unknown study.

mod common;

use std::process::Command;

use common::*;

fn telecardio(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TELECARDIO_")) {
        cmd.env_remove(k);
    }
    cmd.arg("--config")
        .arg(repo().join("config/telecardio.toml"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn a_wrong_key_names_itself_and_exits_2() {
    for (env, key) in [
        (("TELECARDIO_DICOM__MAX_ASSOCIATIONS", "plenty"), "dicom.max_associations"),
        (("TELECARDIO_DICOM__NO_SUCH_KEY", "1"), "no_such_key"),
        (("TELECARDIO_DATABASE__URL", "mysql://x"), "database.url"),
        (("TELECARDIO_CLINICS", "[{id = \"a\", name = \"A\", ae_titles = [\"WAY_TOO_LONG_AE_TITLE\"], networks = []}]"), "clinics[0].ae_titles[0]"),
    ] {
        let out = telecardio(&["serve"], &[env]);
        assert_eq!(out.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(key), "{env:?}: {stderr}");
    }
    let out = Command::new(BIN)
        .args(["--config", "/nonexistent/telecardio.toml", "studies"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/telecardio.toml"));
}

#[test]
fn empty_archive_lists_nothing_and_unknown_study_is_reported() {
    let out = telecardio(&["studies"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("(no studies yet)"));
    let out = telecardio(&["studies", "--json"], &[]);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        serde_json::json!([])
    );
    let out = telecardio(&["show", "1.2.3"], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no study 1.2.3"));
}

/// Two instances on one machine, each with its own data directory and the shipped
/// configuration, differ only in the ports given on the command line: every listener has its
/// flag. A port already taken stops a third at start, with a message naming the flag to set.
#[test]
fn two_instances_side_by_side_by_their_ports() {
    let a = Server::start(Db::Sqlite, Store::Local);
    let b = Server::start(Db::Sqlite, Store::Local);
    for server in [&a, &b] {
        let (ok, out) = echo(server.dicom_port);
        assert!(ok, "echoscu failed:\n{out}");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", server.hl7_port)).is_ok(),
            "HL7 port {} not listening",
            server.hl7_port
        );
        assert!(
            server.log().contains(&format!(":{}", server.hl7_port)),
            "HL7 not on its own port:\n{}",
            server.log()
        );
    }
    let taken = b.hl7_port.to_string();
    let (dicom, http) = (free_port().to_string(), free_port().to_string());
    let out = telecardio(
        &[
            "serve",
            "--dicom-port",
            &dicom,
            "--http-port",
            &http,
            "--hl7-port",
            &taken,
        ],
        &[],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(":{taken}")) && stderr.contains("--hl7-port"),
        "{stderr}"
    );
}
