//! Delivery of signed reports back to the clinic, end to end against the real server: a study
//! from DCMTK `storescu` and its referral, routed by the rules, claimed, drafted and signed over
//! the API; the clinic's PACS (DCMTK `storescp`) receives the report as a DICOM Encapsulated
//! PDF that `dciodvfy` accepts and poppler renders with the signer's name; the clinic's HIS (an
//! MLLP listener) receives ORU^R01 that Python's `hl7` reads; the clinic pulls the CDA answer.
//! The queue survives a restart with the PACS down and delivers once when it comes up; two
//! nodes on one PostgreSQL database share 200 deliveries without delivering one twice.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cases::*;
use common::*;
use serde_json::Value;

const PACS_AE: &str = "CLINIC_PACS";
const SIGNER: &str = "Aušra Žilinskienė";

/// The clinic's HIS: takes MLLP messages, keeps them, acknowledges each with AA after `delay`.
struct His {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl His {
    fn start(delay: Duration) -> His {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let Ok(n) = stream.read(&mut chunk) else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buffer.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buffer.windows(2).position(|w| w == [0x1c, 0x0d]) {
                            let frame: Vec<u8> = buffer.drain(..end + 2).collect();
                            let start = frame.iter().position(|b| *b == 0x0b).unwrap_or(0) + 1;
                            let text = String::from_utf8(frame[start..end].to_vec()).unwrap();
                            let control = text
                                .split('\r')
                                .next()
                                .and_then(|msh| msh.split('|').nth(9))
                                .unwrap_or("")
                                .to_owned();
                            kept.lock().unwrap().push(text);
                            std::thread::sleep(delay);
                            let ack = format!(
                                "\x0bMSH|^~\\&|HIS|DEMO|TELECARDIO|demo-centre|20261130120000||ACK^R01^ACK|A{control}|P|2.5\rMSA|AA|{control}\r\x1c\r"
                            );
                            if stream.write_all(ack.as_bytes()).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        His { port, messages }
    }

    fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// DCMTK's storage SCP as the clinic's PACS; every object received gets a file of its own.
struct Pacs {
    child: Child,
    dir: tempfile::TempDir,
}

impl Pacs {
    fn start(port: u16) -> Pacs {
        let dir = tempfile::tempdir().unwrap();
        let child = dcmtk("storescp")
            .args(["-aet", PACS_AE, "+uf", "-od"])
            .arg(dir.path())
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("storescp");
        wait_for(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Pacs { child, dir }
    }

    fn files(&self) -> Vec<PathBuf> {
        files_under(self.dir.path())
    }
}

impl Drop for Pacs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(db: Db, pacs_port: u16, his_port: u16) -> Server {
    start_with(db, pacs_port, his_port, &[])
}

/// The demo clinic pushing to its PACS and HIS, quick retries, and `extra` settings.
fn start_with(db: Db, pacs_port: u16, his_port: u16, extra: &[(&str, &str)]) -> Server {
    let clinics = format!(
        r#"[{{id="demo", name="Demo klinika", ae_titles=["{CLINIC_AE}"], networks=[],
             delivery={{pacs={{ae_title="{PACS_AE}", host="127.0.0.1", port={pacs_port}}},
                        his={{host="127.0.0.1", port={his_port}, application="HIS", facility="DEMO"}}}}}}]"#
    );
    let mut env = vec![
        ("TELECARDIO_CLINICS", clinics.as_str()),
        ("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0"),
        ("TELECARDIO_DELIVERY__POLL_SECONDS", "1"),
        ("TELECARDIO_DELIVERY__RETRY_FIRST_SECONDS", "1"),
        ("TELECARDIO_DELIVERY__RETRY_MAX_SECONDS", "2"),
        ("TELECARDIO_DELIVERY__TIMEOUT_SECONDS", "10"),
    ];
    env.extend_from_slice(extra);
    Server::start_with(db, Store::Local, &env)
}

/// Claim, draft (Lithuanian text) and sign; the signed version.
fn read_and_sign(server: &Server, reader: &str, case: &str) -> Value {
    claim_and_draft(server, reader, case);
    // A double click: two signatures of one draft at once; one signs, the other is refused.
    let path = format!("/api/cases/{case}/report/sign");
    let mut replies: Vec<Reply> = std::thread::scope(|s| {
        let both = [
            s.spawn(|| call(server, reader, "POST", &path, "")),
            s.spawn(|| call(server, reader, "POST", &path, "")),
        ];
        both.map(|t| t.join().unwrap()).into_iter().collect()
    });
    replies.sort_by_key(|r| r.status);
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 409], "{}", replies[1].body);
    replies[0].json()
}

fn profile(server: &Server) {
    let out = server.cli(&[
        "user",
        "profile",
        "dr-a",
        "--full-name",
        SIGNER,
        "--licence",
        "MPL-100",
    ]);
    assert!(out.status.success(), "{out:?}");
}

fn deliveries(server: &Server, token: &str, case: &str) -> Vec<Value> {
    let reply = call(
        server,
        token,
        "GET",
        &format!("/api/cases/{case}/deliveries"),
        "",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()["deliveries"].as_array().unwrap().clone()
}

fn by_channel<'a>(list: &'a [Value], channel: &str) -> Vec<&'a Value> {
    list.iter().filter(|d| d["channel"] == channel).collect()
}

/// The PDF inside an Encapsulated PDF object.
fn encapsulated_pdf(file: &Path) -> Vec<u8> {
    let object = dicom_object::open_file(file).expect("a DICOM file");
    let length = object
        .element(dicom_dictionary_std::tags::ENCAPSULATED_DOCUMENT_LENGTH)
        .unwrap()
        .to_int::<usize>()
        .unwrap();
    let mut pdf = object
        .element(dicom_dictionary_std::tags::ENCAPSULATED_DOCUMENT)
        .unwrap()
        .to_bytes()
        .unwrap()
        .to_vec();
    pdf.truncate(length);
    pdf
}

fn end_to_end(db: Db) {
    let his = His::start(Duration::ZERO);
    let pacs_port = free_port();
    let pacs = Pacs::start(pacs_port);
    let server = start(db, pacs_port, his.port);
    let clinic = server.token("demo-staff", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    let admin = server.token("root", "admin", "");
    profile(&server);
    let (case, study_uid) = routed_case(&server, &clinic, &reader, 1);
    let signed = read_and_sign(&server, &reader, &case);
    let report_id = signed["id"].as_str().unwrap().to_owned();

    // The PACS receives the report object by C-STORE.
    wait_for(Duration::from_secs(30), || !pacs.files().is_empty());
    let received = pacs.files();
    assert_eq!(received.len(), 1, "{received:?}");
    let (ok, verdict) = run({
        let mut cmd = Command::new("dciodvfy");
        cmd.arg(&received[0]);
        cmd
    });
    assert!(
        !verdict.lines().any(|l| l.starts_with("Error")),
        "dciodvfy ({ok}):\n{verdict}"
    );
    assert!(verdict.contains("EncapsulatedPDF"), "{verdict}");
    let object = dicom_object::open_file(&received[0]).unwrap();
    let text = |tag| {
        object
            .element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_owned()
    };
    use dicom_dictionary_std::tags;
    assert_eq!(text(tags::STUDY_INSTANCE_UID), study_uid);
    assert_eq!(text(tags::MODALITY), "DOC");
    assert_eq!(text(tags::PATIENT_ID), "48507120013");
    assert_eq!(text(tags::SPECIFIC_CHARACTER_SET), "ISO_IR 192");
    // The PDF renders and names the signer (Lithuanian letters extracted as text).
    let pdf = encapsulated_pdf(&received[0]);
    let dir = tempfile::tempdir().unwrap();
    let pdf_path = dir.path().join("report.pdf");
    std::fs::write(&pdf_path, &pdf).unwrap();
    let (ok, log) = run({
        let mut cmd = Command::new("pdftoppm");
        cmd.args(["-png", "-r", "40"])
            .arg(&pdf_path)
            .arg(dir.path().join("page"));
        cmd
    });
    assert!(ok, "{log}");
    let page = std::fs::read(dir.path().join("page-1.png")).expect("page 1 rendered");
    assert!(page.starts_with(b"\x89PNG") && page.len() > 2000);
    let (ok, extracted) = run({
        let mut cmd = Command::new("pdftotext");
        cmd.arg(&pdf_path).arg("-");
        cmd
    });
    assert!(ok, "{extracted}");
    for expected in [
        SIGNER,
        "MPL-100",
        "Širdies struktūra ir funkcija normalios.",
        "Demo klinika",
        "Rūta",
    ] {
        assert!(extracted.contains(expected), "{expected} in:\n{extracted}");
    }
    let (ok, fonts) = run({
        let mut cmd = Command::new("pdffonts");
        cmd.arg(&pdf_path);
        cmd
    });
    assert!(ok && fonts.contains("DejaVuSans"), "{fonts}");
    assert!(
        fonts
            .lines()
            .skip(2)
            .all(|l| l.split_whitespace().rev().nth(4) == Some("yes")),
        "every font embedded:\n{fonts}"
    );
    // The report is in the study as a new series, found like any instance.
    let shown = server.show(&study_uid).to_string();
    assert!(shown.contains("DOC"), "{shown}");
    assert_eq!(
        shown.matches("1.2.840.10008.5.1.4.1.1.104.1").count(),
        1,
        "one report object, none from the refused second signature: {shown}"
    );

    // The HIS receives ORU^R01, readable by a parser nobody here wrote.
    wait_for(Duration::from_secs(30), || !his.messages().is_empty());
    let messages = his.messages();
    assert_eq!(messages.len(), 1);
    let python = std::env::var("TC_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys, hl7\n\
         m = hl7.parse(sys.stdin.read())\n\
         print(m.segment('MSH')[9])\n\
         print(m.segment('PID')[3][0][0])\n\
         print(m.segment('OBR')[2])\n\
         print(m.segment('OBR')[25])\n\
         print('|'.join(str(o[5]) for o in m.segments('OBX')))",
    ]);
    let parsed = {
        use std::process::Stdio;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(messages[0].as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let lines: Vec<&str> = parsed.lines().collect();
    assert_eq!(lines[0], "ORU^R01^ORU_R01", "{parsed}");
    assert_eq!(lines[1], "48507120013");
    assert_eq!(lines[2], "E027-2026-0001");
    assert_eq!(lines[3], "F");
    assert!(
        lines[4].contains("Širdies struktūra ir funkcija normalios."),
        "{parsed}"
    );
    assert!(lines[4].contains("Vožtuvai be ypatumų."), "{parsed}");

    // The clinic pulls the CDA answer, which names the referral.
    let pull = call(&server, &clinic, "GET", "/api/reports", "").json();
    let answer_url = pull["reports"][0]["answer"].as_str().unwrap().to_owned();
    let answer = call(&server, &clinic, "GET", &answer_url, "");
    assert_eq!(answer.status, 200, "{}", answer.body);
    telecardio::referral::cda::read(answer.body.as_bytes()).expect("a well-formed CDA answer");
    let case_row = call(&server, &admin, "GET", &format!("/api/cases/{case}"), "").json();
    let referral_oid =
        telecardio::reports::answer::uuid_oid(case_row["referral_id"].as_str().unwrap());
    assert!(answer.body.contains(&referral_oid), "{}", answer.body);

    // Delivery status per channel, for the clinic and for administrators.
    wait_for(Duration::from_secs(10), || {
        deliveries(&server, &clinic, &case)
            .iter()
            .all(|d| d["status"] == "delivered")
    });
    let list = deliveries(&server, &clinic, &case);
    assert_eq!(list.len(), 3, "{list:?}");
    for channel in ["dicom", "hl7", "pull"] {
        let d = by_channel(&list, channel);
        assert_eq!(d.len(), 1, "{channel}: {list:?}");
        assert_eq!(d[0]["report_id"], report_id.as_str());
        assert!(d[0]["delivered_at"].is_string(), "{channel}: {list:?}");
    }
    assert_eq!(by_channel(&list, "dicom")[0]["attempts"], 1);
    assert!(by_channel(&list, "dicom")[0]["target"]
        .as_str()
        .unwrap()
        .starts_with(PACS_AE));
    let all = call(
        &server,
        &admin,
        "GET",
        "/api/deliveries?status=delivered",
        "",
    );
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.json()["deliveries"].as_array().unwrap().len(), 3);
    assert_eq!(
        call(&server, &reader, "GET", "/api/deliveries", "").status,
        403,
        "centres follow their cases' deliveries"
    );
    assert_eq!(
        call(&server, &admin, "GET", "/api/deliveries?status=lost", "").status,
        422
    );
    let journal = call(
        &server,
        &admin,
        "GET",
        &format!(
            "/api/referrals/{}/journal",
            case_row["referral_id"].as_str().unwrap()
        ),
        "",
    );
    let delivered = kinds(&journal)
        .iter()
        .filter(|k| *k == "report_delivered")
        .count();
    assert_eq!(delivered, 3, "{}", journal.body);
    // The report object is not data the clinic sent.
    let received = kinds(&journal)
        .iter()
        .filter(|k| *k == "data_received")
        .count();
    assert_eq!(received, 1, "{}", journal.body);
    assert_eq!(case_row["status"], "delivered");
    let metrics = request(server.http_port, "GET", "/metrics", &[], b"");
    assert!(
        metrics.body.contains(
            r#"telecardio_delivery_attempts_total{channel="dicom",outcome="delivered"} 1"#
        ),
        "{}",
        metrics.body
    );

    // A correction goes out on both channels as a new object and a corrected result (OBR-25
    // C) under the same filler order number, so the HIS replaces the first.
    let amended = call(
        &server,
        &reader,
        "PUT",
        &format!("/api/cases/{case}/report"),
        r#"{"conclusion": "Lengva mitralinė regurgitacija.", "amendment_reason": "praleista"}"#,
    );
    assert_eq!(amended.status, 200, "{}", amended.body);
    let resigned = call(
        &server,
        &reader,
        "POST",
        &format!("/api/cases/{case}/report/sign"),
        "",
    );
    assert_eq!(resigned.status, 200, "{}", resigned.body);
    wait_for(Duration::from_secs(30), || {
        pacs.files().len() == 2 && his.messages().len() == 2
    });
    let obr = |m: &str| -> Vec<String> {
        m.split('\r')
            .find(|s| s.starts_with("OBR"))
            .unwrap()
            .split('|')
            .map(str::to_owned)
            .collect()
    };
    let (first, second) = (obr(&his.messages()[0]), obr(&his.messages()[1]));
    assert_eq!(first[3], second[3], "the same filler order");
    assert!(first[3].len() <= 22);
    assert_eq!((first[25].as_str(), second[25].as_str()), ("F", "C"));
    assert!(his.messages()[1].contains("Lengva mitralinė regurgitacija."));
}

#[test]
fn end_to_end_sqlite() {
    end_to_end(Db::Sqlite);
}

#[test]
fn end_to_end_postgres() {
    end_to_end(Db::Postgres);
}

/// The PACS is down when the report is signed: the delivery waits in the queue through a
/// restart (SIGKILL) and goes out once, when the PACS comes up.
fn survives_restart(db: Db) {
    let his = His::start(Duration::ZERO);
    let pacs_port = free_port();
    let mut server = start(db, pacs_port, his.port);
    let clinic = server.token("demo-staff", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    let admin = server.token("root", "admin", "");
    profile(&server);
    let (case, _) = routed_case(&server, &clinic, &reader, 2);
    read_and_sign(&server, &reader, &case);
    // Stopped hard between two attempts: one killed inside an attempt holds its lease until
    // it lapses (a minute and more), past this test's patience. A delivery waiting for its
    // next attempt has that attempt still ahead; a leased one's is already due.
    wait_for(Duration::from_secs(30), || {
        let list = deliveries(&server, &clinic, &case);
        let d = by_channel(&list, "dicom")[0];
        let next = d["next_attempt_at"]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_microsecond());
        d["attempts"].as_i64().unwrap_or(0) >= 2
            && next - jiff::Timestamp::now().as_microsecond() > 1_000_000
    });
    let pending = deliveries(&server, &clinic, &case);
    let dicom = by_channel(&pending, "dicom")[0];
    assert_eq!(dicom["status"], "pending", "{pending:?}");
    assert!(
        dicom["last_error"]
            .as_str()
            .unwrap()
            .contains(&pacs_port.to_string()),
        "{pending:?}"
    );
    assert!(dicom["next_attempt_at"].is_string());
    assert!(server.log().contains("will retry"));

    server.restart();
    let pacs = Pacs::start(pacs_port);
    wait_for(Duration::from_secs(30), || !pacs.files().is_empty());
    wait_for(Duration::from_secs(10), || {
        by_channel(&deliveries(&server, &admin, &case), "dicom")[0]["status"] == "delivered"
    });
    // Retries keep going for a while; none may deliver again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(pacs.files().len(), 1, "delivered exactly once");
    let list = deliveries(&server, &admin, &case);
    assert_eq!(by_channel(&list, "dicom").len(), 1);
    assert_eq!(his.messages().len(), 1);
}

#[test]
fn survives_restart_sqlite() {
    survives_restart(Db::Sqlite);
}

#[test]
fn survives_restart_postgres() {
    survives_restart(Db::Postgres);
}

/// A delivery that cannot succeed fails for good after the configured attempts, raises an
/// alert (log and metrics), shows its reason, and an administrator can retry it.
fn permanent_failure(db: Db) {
    let his = His::start(Duration::ZERO);
    let pacs_port = free_port();
    let server = start_with(
        db,
        pacs_port,
        his.port,
        &[
            ("TELECARDIO_DELIVERY__RETRY_MAX_SECONDS", "1"),
            ("TELECARDIO_DELIVERY__MAX_ATTEMPTS", "2"),
        ],
    );
    let clinic = server.token("demo-staff", "clinic", "demo");
    let reader = server.token("dr-a", "cardiologist", "demo-centre");
    let admin = server.token("root", "admin", "");
    profile(&server);
    let (case, _) = routed_case(&server, &clinic, &reader, 3);
    let signed = read_and_sign(&server, &reader, &case);
    wait_for(Duration::from_secs(30), || {
        by_channel(&deliveries(&server, &clinic, &case), "dicom")[0]["status"] == "failed"
    });
    let failed = call(&server, &clinic, "GET", "/api/deliveries?status=failed", "").json();
    let failed = failed["deliveries"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["attempts"], 2);
    assert!(!failed[0]["last_error"].as_str().unwrap().is_empty());
    assert!(
        server.log().contains("delivery_failed"),
        "an alert in the log"
    );
    let metrics = request(server.http_port, "GET", "/metrics", &[], b"");
    assert!(
        metrics
            .body
            .contains(r#"telecardio_delivery_attempts_total{channel="dicom",outcome="failed"} 1"#),
        "{}",
        metrics.body
    );
    wait_for(Duration::from_secs(15), || {
        request(server.http_port, "GET", "/metrics", &[], b"")
            .body
            .contains(r#"telecardio_deliveries{channel="dicom",status="failed"} 1"#)
    });
    // Only administrators retry; the PACS is up now, and the retry delivers.
    let id = failed[0]["id"].as_str().unwrap();
    assert_eq!(
        call(
            &server,
            &clinic,
            "POST",
            &format!("/api/deliveries/{id}/retry"),
            ""
        )
        .status,
        403
    );
    let pacs = Pacs::start(pacs_port);
    let retried = call(
        &server,
        &admin,
        "POST",
        &format!("/api/deliveries/{id}/retry"),
        "",
    );
    assert_eq!(retried.status, 200, "{}", retried.body);
    assert_eq!(retried.json()["status"], "pending");
    assert_eq!(
        call(
            &server,
            &admin,
            "POST",
            &format!("/api/deliveries/{id}/retry"),
            ""
        )
        .status,
        409,
        "only a failed delivery is retried"
    );
    wait_for(Duration::from_secs(30), || pacs.files().len() == 1);
    // Sent again on request: a new delivery of the same version.
    let again = call(
        &server,
        &admin,
        "POST",
        &format!(
            "/api/cases/{case}/reports/{}/deliveries",
            signed["id"].as_str().unwrap()
        ),
        r#"{"channel": "dicom"}"#,
    );
    assert_eq!(again.status, 202, "{}", again.body);
    wait_for(Duration::from_secs(30), || pacs.files().len() == 2);
    let unknown = call(
        &server,
        &admin,
        "POST",
        &format!(
            "/api/cases/{case}/reports/{}/deliveries",
            signed["id"].as_str().unwrap()
        ),
        r#"{"channel": "fax"}"#,
    );
    assert_eq!(unknown.status, 422, "{}", unknown.body);
}

#[test]
fn permanent_failure_sqlite() {
    permanent_failure(Db::Sqlite);
}

#[test]
fn permanent_failure_postgres() {
    permanent_failure(Db::Postgres);
}

/// Two nodes on one PostgreSQL database work 200 queued deliveries: each goes out once.
#[test]
fn two_nodes_share_the_queue_postgres() {
    let his = His::start(Duration::from_millis(60));
    let pacs_port = free_port();
    let _pacs = Pacs::start(pacs_port);
    let first = start(Db::Postgres, pacs_port, his.port);
    let clinic = first.token("demo-staff", "clinic", "demo");
    let reader = first.token("dr-a", "cardiologist", "demo-centre");
    let admin = first.token("root", "admin", "");
    profile(&first);
    let (case, _) = routed_case(&first, &clinic, &reader, 4);
    let signed = read_and_sign(&first, &reader, &case);
    wait_for(Duration::from_secs(30), || his.messages().len() == 1);
    let second = first.twin();
    let path = format!(
        "/api/cases/{case}/reports/{}/deliveries",
        signed["id"].as_str().unwrap()
    );
    for n in 0..200 {
        let node = if n % 2 == 0 { &first } else { &second };
        let queued = call(node, &admin, "POST", &path, r#"{"channel": "hl7"}"#);
        assert_eq!(queued.status, 202, "{}", queued.body);
    }
    wait_for(Duration::from_secs(120), || his.messages().len() >= 201);
    std::thread::sleep(Duration::from_secs(3));
    let messages = his.messages();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        let control = m.split('\r').next().unwrap().split('|').nth(9).unwrap();
        *seen.entry(control.to_owned()).or_default() += 1;
    }
    assert_eq!(messages.len(), 201, "one message per delivery");
    assert!(seen.values().all(|n| *n == 1), "a delivery went twice");
    let list = deliveries(&first, &admin, &case);
    let hl7 = by_channel(&list, "hl7");
    assert_eq!(hl7.len(), 201);
    assert!(hl7
        .iter()
        .all(|d| d["status"] == "delivered" && d["attempts"] == 1));
    for id in hl7.iter().map(|d| d["id"].as_str().unwrap()) {
        let control = telecardio::delivery::control_id(id);
        assert!(control.len() <= 20, "MSH-10 {control}");
        assert_eq!(seen.get(&control), Some(&1), "delivery {id}");
    }
    // Both nodes took part.
    for node in [&first, &second] {
        assert!(
            node.log().matches("report delivered").count() > 0,
            "{}",
            node.log()
        );
    }
}
