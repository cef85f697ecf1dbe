//! HL7 v2 over MLLP from a client nobody here wrote: the Python `hl7` package's `mllp_send`
//! (installed into `.venv` by `deploy/test.sh`), and reading its acknowledgements.

use std::path::PathBuf;

use super::python;

fn mllp_send_path() -> PathBuf {
    python().with_file_name("mllp_send")
}

/// Sends `messages` (segments separated by `\r`) over one MLLP connection with `mllp_send`,
/// returning each acknowledgement's segments.
pub fn send(port: u16, messages: &[String]) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("messages.hl7");
    std::fs::write(&file, messages.join("\r\n")).unwrap();
    let out = std::process::Command::new(mllp_send_path())
        .args(["--loose", "--file"])
        .arg(&file)
        .args(["--port", &port.to_string(), "127.0.0.1"])
        .output()
        .expect("run mllp_send");
    assert!(out.status.success(), "mllp_send: {out:?}");
    let text = String::from_utf8(out.stdout).expect("ACKs are UTF-8");
    let acks: Vec<Vec<String>> = text
        .split('\u{0b}')
        .filter(|m| m.contains("MSH"))
        .map(|m| {
            m.trim_end_matches(['\u{1c}', '\r', '\n'])
                .split('\r')
                .map(str::to_owned)
                .collect()
        })
        .collect();
    assert_eq!(acks.len(), messages.len(), "one ACK per message: {text:?}");
    acks
}

pub fn segment<'a>(ack: &'a [String], name: &str) -> Option<&'a str> {
    ack.iter()
        .find(|s| s.starts_with(&format!("{name}|")))
        .map(String::as_str)
}

/// Field `n` of segment `name` (MSA-1 is `field(ack, "MSA", 1)`).
pub fn field(ack: &[String], name: &str, n: usize) -> String {
    segment(ack, name)
        .and_then(|s| s.split('|').nth(n))
        .unwrap_or("")
        .to_owned()
}

pub fn msh(control_id: &str, kind: &str, facility: &str) -> String {
    format!("MSH|^~\\&|HIS|{facility}|TELECARDIO|TC|20261130101500||{kind}|{control_id}|P|2.5|||||LTU|UNICODE UTF-8")
}
