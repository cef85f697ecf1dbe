//! Test harness: the real `telecardio` binary on free ports with a temporary data directory,
//! over SQLite or PostgreSQL, a local directory or an S3-compatible server (moto), driven by
//! clients nobody here wrote (DCMTK) or by raw sockets.
#![allow(dead_code)]

pub mod browser;
pub mod cases;
pub mod hl7;
pub mod indicators;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_telecardio");
pub const AE: &str = "TELECARDIO";
pub const CLINIC_AE: &str = "DEMO_CLINIC";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    Local,
    S3,
    /// An S3 bucket created with Object Lock enabled.
    S3Locked,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with the test clients (pydicom, dicomweb-client, hl7), as `deploy/test.sh`
/// installs it.
pub fn python() -> PathBuf {
    std::env::var_os("TC_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"))
}

pub fn test_image(name: &str) -> PathBuf {
    repo().join("test-images").join(name)
}

/// Every committed test object.
pub fn test_images() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("test-images"))
        .expect("test-images/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no test images committed");
    files
}

/// A port nothing listens on now and that this test process has not handed out before: the
/// kernel may offer a just-released port again, and one server's DICOM and HTTP ports (or two
/// servers of parallel tests) must differ.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// PostgreSQL server for tests; `./deploy/test.sh` exports the URL of the one it ensured.
fn pg_admin_url() -> String {
    std::env::var("TC_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh PostgreSQL database for one server.
pub fn create_pg_database() -> String {
    use sqlx::Connection;
    let admin = pg_admin_url();
    let name = format!("tc_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for tests: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
    });
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// The S3-compatible server (moto) shared by all tests of a binary, and its endpoint.
pub fn s3_endpoint() -> String {
    static ENDPOINT: OnceLock<String> = OnceLock::new();
    static SERVER: Mutex<Option<Child>> = Mutex::new(None);
    ENDPOINT
        .get_or_init(|| {
            let port = free_port();
            let moto = std::env::var("TC_TEST_MOTO")
                .unwrap_or_else(|_| repo().join(".venv/bin/moto_server").display().to_string());
            let child = Command::new(&moto)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {moto} (run ./deploy/test.sh): {e}"));
            *SERVER.lock().unwrap() = Some(child);
            let endpoint = format!("http://127.0.0.1:{port}");
            wait_for(Duration::from_secs(30), || {
                http(port, "GET", "/", &[]).is_ok()
            });
            endpoint
        })
        .clone()
}

pub fn create_bucket(endpoint: &str, store: Store) -> String {
    let bucket = format!("tc-{}", uuid::Uuid::new_v4().simple());
    let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let lock: &[(&str, &str)] = if store == Store::S3Locked {
        &[("x-amz-bucket-object-lock-enabled", "true")]
    } else {
        &[]
    };
    let (status, _) = http(port, "PUT", &format!("/{bucket}"), lock).expect("create bucket");
    assert_eq!(status, 200, "bucket creation");
    bucket
}

pub fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP answer: status, raw header block, body.
pub struct Reply {
    pub status: u16,
    pub headers: String,
    /// The body as text (lossy), for JSON and messages.
    pub body: String,
    /// The body as bytes, chunked transfer coding removed.
    pub bytes: Vec<u8>,
}

impl Reply {
    /// The value of a response header (case-insensitive name), if present.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// A minimal HTTP/1.1 request with a body.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send");
    stream.write_all(body).expect("send body");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(response.len());
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let raw = response.get(split + 4..).unwrap_or_default();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let bytes = if chunked { dechunk(raw) } else { raw.to_vec() };
    Reply {
        status,
        headers: head,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        bytes,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&rest[..end]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        let data = &rest[end + 2..];
        if n == 0 || data.len() < n {
            break;
        }
        out.extend_from_slice(&data[..n]);
        rest = data[n..].strip_prefix(b"\r\n").unwrap_or(&data[n..]);
    }
    out
}

/// A minimal HTTP/1.1 request; returns status and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: 0\r\n"
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// A running `telecardio serve`.
pub struct Server {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub dicom_port: u16,
    pub http_port: u16,
    pub hl7_port: u16,
    pub db: Db,
    pub store: Store,
    env: Vec<(String, String)>,
}

impl Server {
    pub fn start(db: Db, store: Store) -> Server {
        Self::start_with(db, store, &[])
    }

    pub fn start_with(db: Db, store: Store, extra_env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut env: Vec<(String, String)> = Vec::new();
        if db == Db::Postgres {
            env.push(("TELECARDIO_DATABASE__URL".into(), create_pg_database()));
        }
        if matches!(store, Store::S3 | Store::S3Locked) {
            let endpoint = s3_endpoint();
            let bucket = create_bucket(&endpoint, store);
            for (k, v) in [
                ("TELECARDIO_STORE__URL", format!("s3://{bucket}")),
                ("TELECARDIO_STORE__S3__ENDPOINT", endpoint),
                ("TELECARDIO_STORE__S3__ALLOW_HTTP", "true".into()),
                ("TELECARDIO_STORE__S3__REGION", "us-east-1".into()),
                ("TELECARDIO_STORE__S3__ACCESS_KEY_ID", "test".into()),
                ("TELECARDIO_STORE__S3__SECRET_ACCESS_KEY", "test".into()),
            ] {
                env.push((k.into(), v));
            }
        }
        for (k, v) in extra_env {
            env.push((k.to_string(), v.to_string()));
        }
        let mut server = Server {
            hl7_port: free_port(),
            child: None,
            dir,
            dicom_port: free_port(),
            http_port: free_port(),
            db,
            store,
            env,
        };
        server.launch();
        server
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server and loses its index alone (the SQLite file, or a new empty PostgreSQL
    /// database in place of the old); the store stays. Call [`Server::restart`] after.
    pub fn fresh_index(&mut self) {
        self.kill9();
        match self.db {
            Db::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let file = self.dir.path().join(format!("telecardio.db{suffix}"));
                    if file.exists() {
                        std::fs::remove_file(file).expect("remove index");
                    }
                }
            }
            Db::Postgres => {
                self.env.retain(|(k, _)| k != "TELECARDIO_DATABASE__URL");
                self.env
                    .push(("TELECARDIO_DATABASE__URL".into(), create_pg_database()));
            }
        }
    }

    /// Stops the server and takes everything away, as a machine lost in a disaster: the data
    /// directory emptied (its log aside), and a new empty PostgreSQL database or S3 bucket in
    /// place of the old. The server is not started again: call [`Server::restart`].
    pub fn fresh_machine(&mut self) {
        self.kill9();
        for entry in std::fs::read_dir(self.dir.path()).expect("data dir") {
            let path = entry.expect("entry").path();
            if path == self.log_path() {
                continue;
            }
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("remove");
            } else {
                std::fs::remove_file(&path).expect("remove");
            }
        }
        let mut replace = |key: &str, value: String| {
            self.env.retain(|(k, _)| k != key);
            self.env.push((key.to_owned(), value));
        };
        if self.db == Db::Postgres {
            replace("TELECARDIO_DATABASE__URL", create_pg_database());
        }
        if matches!(self.store, Store::S3 | Store::S3Locked) {
            let bucket = create_bucket(&s3_endpoint(), self.store);
            replace("TELECARDIO_STORE__URL", format!("s3://{bucket}"));
        }
    }

    /// A second node of the same service: the same index database and object store, its own
    /// ports and data directory (PostgreSQL only: SQLite has one node).
    pub fn twin(&self) -> Server {
        self.twin_with(&[])
    }

    /// A second node like [`Server::twin`], with more environment of its own.
    pub fn twin_with(&self, extra_env: &[(&str, &str)]) -> Server {
        assert_eq!(self.db, Db::Postgres, "two nodes share a PostgreSQL index");
        let mut env = self.env.clone();
        if self.store == Store::Local {
            env.push((
                "TELECARDIO_STORE__URL".into(),
                self.data_dir().join("objects").display().to_string(),
            ));
        }
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let mut twin = Server {
            hl7_port: free_port(),
            child: None,
            dir: tempfile::tempdir().expect("temp dir"),
            dicom_port: free_port(),
            http_port: free_port(),
            db: self.db,
            store: self.store,
            env,
        };
        twin.launch();
        twin
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(repo().join("config/telecardio.toml"))
            .arg("--data-dir")
            .arg(self.dir.path());
        // Tests must not inherit a developer's overrides.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TELECARDIO_")) {
            cmd.env_remove(k);
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        let child = self
            .command()
            .args(["serve", "--dicom-port", &self.dicom_port.to_string()])
            .args(["--http-port", &self.http_port.to_string()])
            .args(["--hl7-port", &self.hl7_port.to_string()])
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start telecardio serve");
        self.child = Some(child);
        let port = self.http_port;
        let https = self
            .env
            .iter()
            .any(|(k, v)| k == "TELECARDIO_HTTP__CERTIFICATE" && !v.is_empty());
        let start = Instant::now();
        loop {
            let healthy = if https {
                // Certificate checks are the HTTPS test's business; here only readiness.
                Command::new("curl")
                    .args(["-skf", "-o", "/dev/null"])
                    .arg(format!("https://127.0.0.1:{port}/healthz"))
                    .status()
                    .is_ok_and(|s| s.success())
            } else {
                matches!(http(port, "GET", "/healthz", &[]), Ok((200, _)))
            };
            if healthy {
                break;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("server exited with {status}:\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "server not healthy in time:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sets an environment variable for the next start and for commands run from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Stops the server as an operator does (SIGTERM) and waits until it has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = child.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    /// Peak resident memory of the server so far (VmHWM), in bytes.
    pub fn peak_rss(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .expect("VmHWM")
    }

    /// Runs a `telecardio` subcommand against this server's configuration.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run telecardio")
    }

    /// Runs a `telecardio` subcommand with `input` on its standard input.
    pub fn cli_with_input(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run telecardio");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("wait telecardio")
    }

    pub fn studies(&self) -> Vec<Value> {
        // Every study: the command lists the most recent 100 unless told otherwise.
        let out = self.cli(&["studies", "--json", "--limit", "1000000"]);
        assert!(
            out.status.success(),
            "studies: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("studies JSON")
    }

    pub fn show(&self, study_uid: &str) -> Value {
        let out = self.cli(&["show", study_uid, "--json"]);
        assert!(
            out.status.success(),
            "show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("show JSON")
    }

    /// An account that signs in with `password` (no institution for administrators and
    /// auditors: give "").
    pub fn person(&self, name: &str, role: &str, institution: &str, password: &str) {
        let mut args = vec!["user", "add", name, "--role", role, "--password-stdin"];
        if !institution.is_empty() {
            args.extend(["--institution", institution]);
        }
        let out = self.cli_with_input(&args, &format!("{password}\n"));
        assert!(out.status.success(), "user add {name}: {out:?}");
    }

    /// A token-only account and its bearer token.
    pub fn token(&self, name: &str, role: &str, institution: &str) -> String {
        let mut args = vec!["user", "add", name, "--role", role];
        if !institution.is_empty() {
            args.extend(["--institution", institution]);
        }
        let out = self.cli_with_input(&args, "");
        assert!(out.status.success(), "{out:?}");
        let out = self.cli(&["token", "create", name]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// All instances of the index, as `show` reports them.
    pub fn instances(&self) -> Vec<Value> {
        self.studies()
            .iter()
            .flat_map(|s| {
                let uid = s["study_uid"].as_str().unwrap().to_owned();
                self.show(&uid)["instances"].as_array().unwrap().clone()
            })
            .collect()
    }

    /// Whether the store the server uses holds an object under `key`.
    pub fn has_object(&self, key: &str) -> bool {
        match self.store {
            Store::Local => self.dir.path().join("objects").join(key).exists(),
            Store::S3 | Store::S3Locked => {
                let endpoint = self.env_value("TELECARDIO_STORE__S3__ENDPOINT");
                let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
                let bucket = self.store_url().trim_start_matches("s3://").to_owned();
                let out = std::process::Command::new(python())
                    .args([
                        "-c",
                        "import sys, boto3, botocore\n\
                         s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                             aws_access_key_id='test', aws_secret_access_key='test')\n\
                         try:\n    s3.head_object(Bucket=sys.argv[2], Key=sys.argv[3]); print('yes')\n\
                         except botocore.exceptions.ClientError:\n    print('no')",
                        &format!("http://127.0.0.1:{port}"),
                        &bucket,
                        key,
                    ])
                    .output()
                    .expect("python");
                let said = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                assert!(
                    said == "yes" || said == "no",
                    "{said} {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                said == "yes"
            }
        }
    }

    /// The stored object under `key`, read from the store the server uses.
    pub fn object(&self, key: &str) -> Vec<u8> {
        match self.store {
            Store::Local => std::fs::read(self.dir.path().join("objects").join(key))
                .unwrap_or_else(|e| panic!("object {key}: {e}")),
            Store::S3 | Store::S3Locked => {
                use object_store::ObjectStoreExt;
                let store = self.s3_client();
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(async {
                    let path = object_store::path::Path::from(key);
                    store
                        .get(&path)
                        .await
                        .expect("get object")
                        .bytes()
                        .await
                        .expect("object bytes")
                        .to_vec()
                })
            }
        }
    }

    /// The keys under `prefix` in the store the server uses, sorted.
    pub fn object_keys(&self, prefix: &str) -> Vec<String> {
        let mut keys: Vec<String> = match self.store {
            Store::Local => {
                let root = self.dir.path().join("objects");
                files_under(&root.join(prefix))
                    .iter()
                    .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
                    .collect()
            }
            Store::S3 | Store::S3Locked => {
                use futures::TryStreamExt;
                use object_store::ObjectStore;
                let store = self.s3_client();
                let rt = tokio::runtime::Runtime::new().unwrap();
                rt.block_on(async {
                    let prefix = object_store::path::Path::from(prefix);
                    store
                        .list(Some(&prefix))
                        .map_ok(|meta| meta.location.to_string())
                        .try_collect()
                        .await
                        .expect("list objects")
                })
            }
        };
        keys.sort();
        keys
    }

    fn s3_client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(self.env_value("TELECARDIO_STORE__S3__ENDPOINT"))
            .with_bucket_name(
                self.env_value("TELECARDIO_STORE__URL")
                    .trim_start_matches("s3://"),
            )
            .with_region("us-east-1")
            .with_access_key_id("test")
            .with_secret_access_key("test")
            .with_allow_http(true)
            .build()
            .expect("S3 client")
    }

    /// The index database URL this server uses.
    pub fn database_url(&self) -> String {
        match self.db {
            Db::Sqlite => format!("sqlite://{}/telecardio.db", self.dir.path().display()),
            Db::Postgres => self.env_value("TELECARDIO_DATABASE__URL"),
        }
    }

    /// A bare request on this server's S3 bucket (`PUT` creates it, `DELETE` removes it).
    pub fn s3_bucket_request(&self, method: &str) {
        let endpoint = self.env_value("TELECARDIO_STORE__S3__ENDPOINT");
        let bucket = self
            .env_value("TELECARDIO_STORE__URL")
            .trim_start_matches("s3://")
            .to_owned();
        let port: u16 = endpoint.rsplit(':').next().unwrap().parse().unwrap();
        let (status, body) = http(port, method, &format!("/{bucket}"), &[]).expect("S3 request");
        assert!(
            (200..300).contains(&status),
            "{method} bucket: {status} {body}"
        );
    }

    /// The store URL this server uses (`s3://bucket` on S3).
    pub fn store_url(&self) -> String {
        self.env_value("TELECARDIO_STORE__URL")
    }

    fn env_value(&self, key: &str) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// Audit events of one kind, read directly from the index database.
    pub fn audit_events(&self, kind: &str) -> Vec<(String, String, String)> {
        let url = self.database_url();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let index = telecardio::index::Index::open(&url, 1)
                .await
                .expect("open index");
            let events = index.audit_events(kind, 1000).await.expect("audit events");
            index.close().await;
            events
                .into_iter()
                .map(|e| (e.actor, e.address, e.outcome))
                .collect()
        })
    }
}

impl Server {
    /// Runs `work` on a one-connection pool of the index database.
    fn with_index<T>(&self, work: impl AsyncFnOnce(&sqlx::AnyPool) -> T) -> T {
        let url = self.database_url();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            sqlx::any::install_default_drivers();
            let pool = sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .expect("open index");
            let out = work(&pool).await;
            pool.close().await;
            out
        })
    }

    /// How many audit events name `actor` (an AE title, a user, an HL7 sender), association
    /// summaries aside, read directly from the index database.
    pub fn audit_count(&self, actor: &str) -> i64 {
        use sqlx::Row;
        self.with_index(async |pool| {
            let row = sqlx::query(
                "SELECT COUNT(*) FROM audit_events
                 WHERE actor = $1 AND kind <> 'dicom_association'",
            )
            .bind(actor)
            .fetch_one(pool)
            .await
            .expect("count audit events");
            row.try_get::<i64, _>(0).expect("a count")
        })
    }

    /// Runs one statement on the index database, as an operator (or time) would.
    pub fn execute_sql(&self, statement: &str) {
        self.with_index(async |pool| {
            sqlx::query(sqlx::AssertSqlSafe(statement.to_owned()))
                .execute(pool)
                .await
                .expect("statement");
        })
    }

    /// Runs a script of one statement per line on the index database, in one transaction.
    pub fn execute_script(&self, script: &str) {
        self.with_index(async |pool| {
            let mut tx = pool.begin().await.expect("begin script");
            for statement in script.lines().filter(|l| !l.trim().is_empty()) {
                let statement = statement.trim().trim_end_matches(';').to_owned();
                sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                    .execute(&mut *tx)
                    .await
                    .unwrap_or_else(|e| panic!("{e}: {statement}"));
            }
            tx.commit().await.expect("commit script");
        })
    }

    /// Every DICOM object in the local store (referral documents and HL7 messages aside).
    pub fn stored_objects(&self) -> Vec<PathBuf> {
        files_under(&self.dir.path().join("objects"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
            .collect()
    }
}

/// STOW-RS of Part 10 files to `path` (`/dicom-web/studies` or a study's URL) as `token`.
pub fn stow(port: u16, token: &str, path: &str, files: &[PathBuf]) -> Reply {
    let mut body = Vec::new();
    for f in files {
        body.extend_from_slice(b"--stow\r\nContent-Type: application/dicom\r\n\r\n");
        body.extend_from_slice(&std::fs::read(f).expect("read object"));
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--stow--\r\n");
    request(
        port,
        "POST",
        path,
        &[
            ("Authorization", &format!("Bearer {token}")),
            (
                "Content-Type",
                "multipart/related; type=\"application/dicom\"; boundary=stow",
            ),
        ],
        &body,
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- server log ---\n{}", self.log());
        }
        self.kill9();
    }
}

/// A DCMTK command with Nagle off (DCMTK 3.6.7 keeps it on unless told).
pub fn dcmtk(tool: &str) -> Command {
    let mut cmd = Command::new(tool);
    cmd.env("TCP_NODELAY", "1");
    cmd
}

pub fn run(mut cmd: Command) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn storescu(port: u16, files: &[PathBuf]) -> (bool, String) {
    run(storescu_command(port, files))
}

/// `storescu -v` sending `files` as the demo clinic, to run or spawn.
pub fn storescu_command(port: u16, files: &[PathBuf]) -> Command {
    let mut cmd = dcmtk("storescu");
    cmd.args([
        "-v",
        "-aet",
        CLINIC_AE,
        "-aec",
        AE,
        "127.0.0.1",
        &port.to_string(),
    ]);
    cmd.args(files);
    cmd
}

/// Every acknowledged file is indexed, and its stored object is intact: the stored bytes hash
/// to the row's SHA-256 and carry the data set as it went over the wire. Answers the index's
/// rows by SOP Instance UID.
pub fn assert_all_kept(
    server: &Server,
    acked: &std::collections::HashSet<PathBuf>,
) -> std::collections::HashMap<String, Value> {
    let wire = wire_capture(&acked.iter().cloned().collect::<Vec<_>>());
    let indexed: std::collections::HashMap<String, Value> = server
        .instances()
        .into_iter()
        .map(|i| (i["sop_instance_uid"].as_str().unwrap().to_owned(), i))
        .collect();
    for file in acked {
        let sent = std::fs::read(file).unwrap();
        let uid = meta_value(&sent, 0x0003);
        let row = indexed
            .get(&uid)
            .unwrap_or_else(|| panic!("acknowledged {uid} is not indexed"));
        let stored = server.object(row["object_key"].as_str().unwrap());
        assert_eq!(
            sha256_hex(&stored),
            row["sha256"].as_str().unwrap(),
            "{uid} altered"
        );
        assert_same_bytes(dataset_of(&stored), &wire[&uid], &uid);
    }
    indexed
}

/// `dcmsend` proposes each file's own transfer syntax (compressed ones included).
pub fn dcmsend(port: u16, files: &[PathBuf]) -> (bool, String) {
    let mut cmd = dcmtk("dcmsend");
    cmd.args([
        "-v",
        "--decompress-never",
        "-aet",
        CLINIC_AE,
        "-aec",
        AE,
        "127.0.0.1",
        &port.to_string(),
    ]);
    cmd.args(files);
    run(cmd)
}

/// The data set of a Part 10 file: everything after the file meta group.
pub fn dataset_of(file: &[u8]) -> &[u8] {
    assert_eq!(&file[128..132], b"DICM", "not a Part 10 file");
    // (0002,0000) UL group length: tag 4 + VR 2 + length 2, then the value.
    let group_length = u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    &file[144 + group_length..]
}

/// The value of a text element of the file meta group.
pub fn meta_value(file: &[u8], element: u16) -> String {
    let group_length = u32::from_le_bytes(file[140..144].try_into().unwrap()) as usize;
    let mut pos = 144;
    while pos < 144 + group_length {
        let el = u16::from_le_bytes([file[pos + 2], file[pos + 3]]);
        let vr = &file[pos + 4..pos + 6];
        let (len, start) = if vr == b"OB" {
            (
                u32::from_le_bytes(file[pos + 8..pos + 12].try_into().unwrap()) as usize,
                pos + 12,
            )
        } else {
            (
                u16::from_le_bytes([file[pos + 6], file[pos + 7]]) as usize,
                pos + 8,
            )
        };
        if el == element {
            return String::from_utf8_lossy(&file[start..start + len])
                .trim_end_matches(['\0', ' '])
                .to_owned();
        }
        pos = start + len;
    }
    String::new()
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Compares two byte strings, reporting lengths and the first difference instead of both.
pub fn assert_same_bytes(actual: &[u8], expected: &[u8], what: &str) {
    if actual != expected {
        let at = actual
            .iter()
            .zip(expected)
            .position(|(a, b)| a != b)
            .unwrap_or(actual.len().min(expected.len()));
        panic!(
            "{what}: {} bytes differ from the expected {} bytes, first at offset {at}",
            actual.len(),
            expected.len()
        );
    }
}

/// What `storescu` puts on the wire for `files` (it re-encodes data sets), as captured by
/// DCMTK's `storescp` in bit-preserving mode: SOP Instance UID → data set bytes.
pub fn wire_capture(files: &[PathBuf]) -> std::collections::HashMap<String, Vec<u8>> {
    wire_capture_with("storescu", files)
}

/// [`wire_capture`] with another DCMTK sender (`dcmsend` keeps compressed syntaxes).
pub fn wire_capture_with(
    sender: &str,
    files: &[PathBuf],
) -> std::collections::HashMap<String, Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut scp = dcmtk("storescp")
        .args(["+B", "+xa", "-aet", "CAPTURE", "-od"])
        .arg(dir.path())
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start storescp");
    wait_for(Duration::from_secs(10), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let mut cmd = dcmtk(sender);
    if sender == "dcmsend" {
        // Never let the sender transcode: the capture must see the file's own syntax.
        cmd.arg("--decompress-never");
    }
    cmd.args([
        "-aet",
        CLINIC_AE,
        "-aec",
        "CAPTURE",
        "127.0.0.1",
        &port.to_string(),
    ]);
    cmd.args(files);
    let (ok, out) = run(cmd);
    let _ = scp.kill();
    let _ = scp.wait();
    assert!(ok, "capture: {out}");
    std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .map(|bytes| (meta_value(&bytes, 0x0003), dataset_of(&bytes).to_vec()))
        .collect()
}

/// `echoscu` from `calling` to `called`.
pub fn echoscu_as(port: u16, calling: &str, called: &str) -> (bool, String) {
    let mut cmd = dcmtk("echoscu");
    cmd.args([
        "-v",
        "-aet",
        calling,
        "-aec",
        called,
        "127.0.0.1",
        &port.to_string(),
    ]);
    run(cmd)
}

/// `echoscu` as the demo clinic.
pub fn echo(port: u16) -> (bool, String) {
    echoscu_as(port, CLINIC_AE, AE)
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// A test CA with a server certificate (localhost, 127.0.0.1) and a client certificate
/// (CN = the demo clinic's AE title).
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

/// The name (subjectAltName) in the test PKI's client certificate.
pub const CLINIC_CERTIFICATE_NAME: &str = "demo-clinic.telecardio.test";

pub fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "telecardio test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "TELECARDIO");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server.signed_by(&server_key, &ca).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client = CertificateParams::new(vec![CLINIC_CERTIFICATE_NAME.into()]).unwrap();
    client
        .distinguished_name
        .push(DnType::CommonName, CLINIC_AE);
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client.signed_by(&client_key, &ca).unwrap();

    Pki {
        ca: ca.pem(),
        server_cert: server_cert.pem(),
        server_key: server_key.serialize_pem(),
        client_cert: client_cert.pem(),
        client_key: client_key.serialize_pem(),
    }
}

/// SHA-256 (hex) of everything `reader` yields, read in chunks (for files of gigabytes).
pub fn sha256_of(mut reader: impl Read) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    hex::encode(hash.finalize())
}

/// A copy of a committed test image as a study of the referral's patient (or another one),
/// carrying `accession` as its accession number.
pub fn study_of(
    dir: &std::path::Path,
    name: &str,
    patient_id: &str,
    accession: &str,
    uid: &str,
) -> PathBuf {
    let out = dir.join(name);
    std::fs::copy(test_image("us-single.dcm"), &out).unwrap();
    let mut cmd = dcmtk("dcmodify");
    cmd.arg("-nb");
    for change in [
        format!("(0010,0020)={patient_id}"),
        format!("(0008,0050)={accession}"),
        format!("(0020,000D)={uid}"),
        format!("(0020,000E)={uid}.1"),
        format!("(0008,0018)={uid}.1.1"),
    ] {
        cmd.arg("-m").arg(change);
    }
    cmd.arg(&out);
    let (ok, log) = run(cmd);
    assert!(ok, "{log}");
    out
}

pub fn kinds(journal: &Reply) -> Vec<String> {
    journal.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// Writes a deterministic corpus with the service's own generator.
pub fn corpus(dir: &Path, args: &[&str]) -> Vec<PathBuf> {
    let out = Command::new(BIN)
        .arg("generate")
        .arg("--out")
        .arg(dir)
        .args(args)
        .output()
        .expect("run generate");
    assert!(
        out.status.success(),
        "generate: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "dcm"))
        .collect();
    files.sort();
    files
}

/// Files whose C-STORE was answered with success, from `storescu -v` output.
pub fn acknowledged(output: &str) -> std::collections::HashSet<PathBuf> {
    let mut current = None;
    let mut acked = std::collections::HashSet::new();
    for line in output.lines() {
        if let Some(file) = line.split("Sending file: ").nth(1) {
            current = Some(PathBuf::from(file.trim()));
        } else if line.contains("Received Store Response (Success)") {
            if let Some(file) = current.take() {
                acked.insert(file);
            }
        }
    }
    acked
}
