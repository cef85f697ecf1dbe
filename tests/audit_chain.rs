//! The tamper-evident audit trail against the real binary: events chained as the service
//! records them (one order even with two nodes on one PostgreSQL database), the head signed
//! and kept in the store, and `telecardio audit verify` naming the first event where rows
//! edited, deleted, swapped, inserted or rewritten directly in the database break the trail.

mod common;

use common::*;
use serde_json::Value;

fn audit_verify(server: &Server, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec!["audit", "verify", "--json"];
    args.extend_from_slice(extra);
    let out = server.cli(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// Asserts the trail verifies, and answers the report.
fn intact(server: &Server) -> Value {
    let (code, report, stderr) = audit_verify(server, &[]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert_eq!(report["intact"], true, "{report}");
    assert!(report["broken"].is_null(), "{report}");
    report
}

/// Asserts the trail is broken at `seq` for `kind`.
fn broken_at(server: &Server, seq: i64, kind: &str) -> Value {
    let (code, report, stderr) = audit_verify(server, &[]);
    assert_eq!(code, 1, "{report}\n{stderr}");
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["broken"]["seq"], seq, "{report}");
    assert_eq!(report["broken"]["kind"], kind, "{report}");
    report
}

/// Makes audit events the way users do: reads of patient data over the API, allowed and
/// refused.
fn some_access(server: &Server, token: &str, n: usize) {
    for i in 0..n {
        let path = if i % 3 == 2 {
            "/api/studies/1.2.3.999/metadata"
        } else {
            "/api/studies"
        };
        request(
            server.http_port,
            "GET",
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        );
    }
}

/// The signed heads in the store, whichever kind of store it is.
fn head_objects(server: &Server) -> Vec<Value> {
    server
        .object_keys("audit/heads")
        .iter()
        .map(|key| serde_json::from_slice::<Value>(&server.object(key)).expect("JSON"))
        .collect()
}

fn tampering_is_named(db: Db, store: Store) {
    let mut server = Server::start(db, store);
    let token = server.token("gydytoja", "cardiologist", "demo-centre");
    some_access(&server, &token, 30);

    // The service signs the head when it starts on a day none was signed.
    server.restart();
    wait_for(std::time::Duration::from_secs(20), || {
        !head_objects(&server).is_empty()
    });
    let head: Value = head_objects(&server)
        .into_iter()
        .max_by_key(|h| h["seq"].as_i64())
        .expect("a signed head");
    assert_eq!(head["format"], "telecardio-audit-head/1");
    assert!(head["seq"].as_i64().unwrap() >= 30, "{head}");
    some_access(&server, &token, 9);

    let report = intact(&server);
    assert!(report["events"].as_i64().unwrap() >= 40, "{report}");
    assert_eq!(report["signed_heads"], 1, "{report}");

    // One row edited: broken at that event; put back, intact again.
    server.execute_sql("UPDATE audit_events SET detail = detail || 'x' WHERE seq = 5");
    let report = broken_at(&server, 5, "edited");
    assert!(report["broken"]["detail"]
        .as_str()
        .unwrap()
        .contains("event 5"));
    server.execute_sql(
        "UPDATE audit_events SET detail = substr(detail, 1, length(detail) - 1) WHERE seq = 5",
    );
    intact(&server);

    // One row deleted.
    server.execute_sql("CREATE TABLE saved_event AS SELECT * FROM audit_events WHERE seq = 7");
    server.execute_sql("DELETE FROM audit_events WHERE seq = 7");
    broken_at(&server, 7, "missing");
    server.execute_sql("INSERT INTO audit_events SELECT * FROM saved_event");
    server.execute_sql("DROP TABLE saved_event");
    intact(&server);

    // Two rows swapped (each keeps its own, valid, hash).
    let swap = |a: i64, b: i64| {
        server.execute_sql(&format!("UPDATE audit_events SET seq = -1 WHERE seq = {a}"));
        server.execute_sql(&format!(
            "UPDATE audit_events SET seq = {a} WHERE seq = {b}"
        ));
        server.execute_sql(&format!("UPDATE audit_events SET seq = {b} WHERE seq = -1"));
    };
    swap(10, 11);
    broken_at(&server, 10, "reordered");
    swap(10, 11);
    swap(12, 20);
    broken_at(&server, 12, "reordered");
    swap(12, 20);
    intact(&server);

    // An event put in that the chain never took.
    server.execute_sql(
        "INSERT INTO audit_events (id, at, kind, actor, institution, address, outcome, detail)
         VALUES ('forged', 1, 'study_read', 'someone', '', '', 'answered', '')",
    );
    let (code, report, _) = audit_verify(&server, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["broken"]["kind"], "inserted", "{report}");
    assert_eq!(
        report["broken"]["seq"].as_i64(),
        report["last_seq"].as_i64().map(|s| s + 1),
        "{report}"
    );
    assert!(report["broken"]["detail"]
        .as_str()
        .unwrap()
        .contains("1 events"));
    server.execute_sql("DELETE FROM audit_events WHERE id = 'forged'");
    intact(&server);

    // The last event removed: the chain's head says there was one more.
    server.execute_sql("CREATE TABLE saved_event AS SELECT * FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)");
    server.execute_sql("DELETE FROM audit_events WHERE seq = (SELECT MAX(seq) FROM audit_events)");
    let (code, report, _) = audit_verify(&server, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["broken"]["kind"], "missing", "{report}");
    server.execute_sql("INSERT INTO audit_events SELECT * FROM saved_event");
    server.execute_sql("DROP TABLE saved_event");
    intact(&server);

    // A row edited and every hash after it recomputed, the head too: the chain alone now
    // holds, but what was signed no longer matches.
    server.execute_sql("UPDATE audit_events SET actor = 'someone else' WHERE seq = 3");
    rechain_from(&server, 3);
    let (code, report, _) = audit_verify(&server, &[]);
    assert_eq!(code, 1);
    assert_eq!(report["broken"]["kind"], "signed_head", "{report}");
    let at = report["broken"]["seq"].as_i64().unwrap();
    assert!(at >= 3 && at <= head["seq"].as_i64().unwrap(), "{report}");
    assert!(report["broken"]["detail"]
        .as_str()
        .unwrap()
        .contains("rewritten"));

    // A head checked with another key does not hold.
    let other = "ab".repeat(32);
    let (code, report, _) = audit_verify(&server, &["--public-key", &other]);
    assert_eq!(code, 1);
    assert_eq!(report["broken"]["kind"], "signed_head", "{report}");
    let (code, _, stderr) = audit_verify(&server, &["--public-key", "nonsense"]);
    assert_ne!(code, 0);
    assert!(stderr.contains("64 hexadecimal digits"), "{stderr}");

    // Each check is itself in the trail.
    assert!(!server.audit_events("audit_verified").is_empty());
}

/// Recomputes, as someone covering their tracks would, the hash of every event from `from`
/// on and the chain's head.
fn rechain_from(server: &Server, from: i64) {
    let url = server.database_url();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let index = telecardio::index::Index::open(&url, 1)
            .await
            .expect("index");
        let mut events = index.audit_chain_after(0, 1_000_000).await.expect("chain");
        events.sort_by_key(|e| e.seq);
        let mut prev = String::new();
        let mut statements = Vec::new();
        for e in &events {
            if e.seq >= from {
                let hash = telecardio::index::event_hash(&prev, &e.id, &e.event);
                statements.push(format!(
                    "UPDATE audit_events SET prev_hash = '{prev}', hash = '{hash}' WHERE seq = {}",
                    e.seq
                ));
                prev = hash;
            } else {
                prev = e.hash.clone();
            }
        }
        statements.push(format!(
            "UPDATE audit_chain SET hash = '{prev}' WHERE id = 1"
        ));
        index.close().await;
        statements
    })
    .into_iter()
    .for_each(|s| server.execute_sql(&s));
}

#[test]
fn tampering_is_named_sqlite_local() {
    tampering_is_named(Db::Sqlite, Store::Local);
}

#[test]
fn tampering_is_named_postgres_s3() {
    tampering_is_named(Db::Postgres, Store::S3);
}

/// Two nodes on one PostgreSQL database appending at once still make one chain.
#[test]
fn two_nodes_make_one_chain_postgres() {
    let server = Server::start(Db::Postgres, Store::Local);
    let key = server.data_dir().join("keys/audit-signing.pem");
    let twin = server.twin_with(&[(
        "TELECARDIO_AUDIT__SIGNING_KEY",
        key.to_str().expect("utf-8 path"),
    )]);
    let token = server.token("gydytoja", "cardiologist", "demo-centre");
    std::thread::scope(|s| {
        for node in [&server, &twin, &server, &twin] {
            let token = token.clone();
            s.spawn(move || some_access(node, &token, 40));
        }
    });
    let report = intact(&server);
    assert!(report["events"].as_i64().unwrap() >= 160, "{report}");
    assert_eq!(report["events"], report["last_seq"], "{report}");
}

/// A TLS syslog receiver (Python's ssl module) standing in for the hospital's audit
/// repository: each connection's bytes go to a file of their own.
struct Repository {
    child: std::process::Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Repository {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Repository {
    fn start(pki: &Pki) -> Repository {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), &pki.server_cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), &pki.server_key).unwrap();
        let port = free_port();
        let script = r#"
import socket, ssl, sys, threading, itertools
port, cert, key, out = sys.argv[1:5]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(port)))
s.listen(8)
def serve(conn, n):
    with ctx.wrap_socket(conn, server_side=True) as c, open(f"{out}/conn-{n}.bin", "ab") as f:
        while True:
            data = c.recv(65536)
            if not data:
                break
            f.write(data)
            f.flush()
for n in itertools.count():
    conn, _ = s.accept()
    threading.Thread(target=serve, args=(conn, n), daemon=True).start()
"#;
        let child = std::process::Command::new(python())
            .args(["-c", script, &port.to_string()])
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .arg(dir.path())
            .spawn()
            .expect("python receiver");
        wait_for(std::time::Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Repository { child, dir, port }
    }

    /// Every whole syslog message received, connection by connection (a connection cut in
    /// the middle of a frame leaves its last frame out).
    fn messages(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut files: Vec<_> = files_under(self.dir.path())
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "bin"))
            .collect();
        files.sort();
        for file in files {
            let bytes = std::fs::read(file).unwrap();
            let mut rest = bytes.as_slice();
            while let Some(space) = rest.iter().position(|b| *b == b' ') {
                let len: usize = std::str::from_utf8(&rest[..space])
                    .unwrap()
                    .parse()
                    .unwrap();
                if rest.len() < space + 1 + len {
                    break;
                }
                out.push(String::from_utf8(rest[space + 1..space + 1 + len].to_vec()).unwrap());
                rest = &rest[space + 1 + len..];
            }
        }
        out
    }

    /// The chain positions the messages carry, checking each is an RFC 5424 message holding
    /// a well-formed DICOM audit message.
    fn positions(&self) -> std::collections::BTreeSet<i64> {
        self.messages()
            .iter()
            .map(|m| {
                assert!(m.starts_with("<85>1 "), "{m}");
                let fields: Vec<&str> = m.splitn(7, ' ').collect();
                assert_eq!(fields[3], "telecardio", "{m}");
                assert_eq!(fields[5], "IHE+RFC-3881", "{m}");
                let xml = fields[6]
                    .strip_prefix("- \u{feff}")
                    .unwrap_or_else(|| panic!("no structured data, BOM: {m}"));
                let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
                let root = doc.root_element();
                assert_eq!(root.tag_name().name(), "AuditMessage");
                let event_id = root
                    .descendants()
                    .find(|n| n.has_tag_name("EventID"))
                    .expect("EventID");
                assert!(event_id.attribute("csd-code").is_some(), "{xml}");
                assert!(root
                    .descendants()
                    .any(|n| n.has_tag_name("ActiveParticipant")));
                root.descendants()
                    .find(|n| n.attribute("ParticipantObjectTypeCodeRole") == Some("13"))
                    .and_then(|n| n.attribute("ParticipantObjectID"))
                    .expect("chain position")
                    .parse()
                    .unwrap()
            })
            .collect()
    }
}

/// Every event reaches the audit repository over syslog/TLS, in order and resumed after a
/// restart; the trail is also offered as FHIR R4 AuditEvent resources.
fn exported_to_the_audit_repository(db: Db) {
    let pki = pki();
    let repository = Repository::start(&pki);
    let ca = repository.dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca).unwrap();
    let mut server = Server::start_with(
        db,
        Store::Local,
        &[
            (
                "TELECARDIO_AUDIT__SYSLOG__TARGET",
                &format!("localhost:{}", repository.port),
            ),
            ("TELECARDIO_AUDIT__SYSLOG__CA", ca.to_str().unwrap()),
        ],
    );
    let auditor = server.token("auditorius", "auditor", "");
    let clinic = server.token("slaugytoja", "clinic", "demo");
    some_access(&server, &clinic, 5);
    let (ok, log) = dcmsend(server.dicom_port, &test_images()[..2]);
    assert!(ok, "{log}");
    let sent_all = |server: &Server| {
        let head = intact(server)["last_seq"].as_i64().unwrap();
        wait_for(std::time::Duration::from_secs(30), || {
            repository.positions().last().copied().unwrap_or(0) >= head
        });
        let got = repository.positions();
        let expected: std::collections::BTreeSet<i64> = (1..=head).collect();
        assert!(
            got.is_superset(&expected),
            "missing {:?}",
            expected.difference(&got)
        );
    };
    sent_all(&server);

    // Stopped hard and started again: it goes on from where the repository's copy ends.
    server.restart();
    some_access(&server, &clinic, 3);
    sent_all(&server);

    // The same trail as FHIR R4 AuditEvent resources, a page at a time.
    let get = |token: &str, path: &str| {
        request(
            server.http_port,
            "GET",
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
    };
    let page = get(&auditor, "/api/audit/fhir?after=0&limit=5");
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type").as_deref(),
        Some("application/fhir+json")
    );
    let bundle = page.json();
    assert_eq!(bundle["resourceType"], "Bundle");
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 5);
    for (n, entry) in entries.iter().enumerate() {
        let r = &entry["resource"];
        assert_eq!(r["resourceType"], "AuditEvent");
        assert_eq!(
            r["type"]["system"],
            "http://dicom.nema.org/resources/ontology/DCM"
        );
        assert!(r["recorded"].as_str().unwrap().ends_with('Z'), "{r}");
        assert!(
            ["0", "4", "8"].contains(&r["outcome"].as_str().unwrap()),
            "{r}"
        );
        assert_eq!(
            r["extension"][0]["extension"][0]["valueInteger"],
            n as i64 + 1,
            "{r}"
        );
    }
    let stored = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .chain(
            get(&auditor, "/api/audit/fhir?after=5&limit=10000").json()["entry"]
                .as_array()
                .unwrap(),
        )
        .filter(|e| {
            e["resource"]["subtype"][0]["code"] == "dicom_association"
                && e["resource"]["outcomeDesc"]
                    .as_str()
                    .unwrap()
                    .starts_with("stored 2")
        })
        .count();
    assert_eq!(
        stored, 1,
        "the association that stored the images is in the export"
    );
    assert_eq!(get(&clinic, "/api/audit/fhir").status, 403);
    assert_eq!(get(&auditor, "/api/audit/fhir?limit=0").status, 400);
    assert_eq!(get(&auditor, "/api/audit/fhir?after=x").status, 400);
    // The command line prints the DICOM form too.
    let out = server.cli(&["audit", "export", "--format", "dicom", "--limit", "3"]);
    assert!(out.status.success(), "{out:?}");
    let lines = String::from_utf8(out.stdout).unwrap();
    assert_eq!(lines.lines().count(), 3);
    for line in lines.lines() {
        roxmltree::Document::parse(line).unwrap();
    }
}

#[test]
fn exported_to_the_audit_repository_sqlite() {
    exported_to_the_audit_repository(Db::Sqlite);
}

#[test]
fn exported_to_the_audit_repository_postgres() {
    exported_to_the_audit_repository(Db::Postgres);
}
