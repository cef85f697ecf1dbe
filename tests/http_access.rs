//! Authentication over HTTP against the real server: every route but the open ones answers
//! 401 without credentials; local accounts (Argon2) sign in with a session cookie; API tokens
//! from `telecardio token create` work until revoked; accounts are managed from the command
//! line with clear errors; a hospital IdP's JWTs are accepted when valid; HTTPS with rustls,
//! checked with curl; plain HTTP refused on a non-loopback address.

mod common;

use std::process::Command;

use common::*;

fn add_user(server: &Server, name: &str, role: &str, institution: &str, password: Option<&str>) {
    let mut args = vec!["user", "add", name, "--role", role];
    if !institution.is_empty() {
        args.extend(["--institution", institution]);
    }
    let out = match password {
        Some(p) => {
            args.push("--password-stdin");
            server.cli_with_input(&args, &format!("{p}\n"))
        }
        None => server.cli_with_input(&args, ""),
    };
    assert!(out.status.success(), "user add: {out:?}");
}

fn login(server: &Server, name: &str, password: &str) -> Reply {
    let body = serde_json::json!({"name": name, "password": password}).to_string();
    request(
        server.http_port,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Reply {
    request(server.http_port, "GET", path, headers, b"")
}

#[test]
fn routes_need_authentication_except_health() {
    let server = Server::start(Db::Sqlite, Store::Local);
    for path in [
        "/api/me",
        "/api/openapi.json",
        "/nothing/here",
        "/dicom-web/studies",
    ] {
        let reply = get(&server, path, &[]);
        assert_eq!(reply.status, 401, "{path}: {}", reply.body);
        assert!(reply.header("WWW-Authenticate").is_some(), "{path}");
        assert_eq!(reply.json()["error"], "authentication required");
    }
    assert_eq!(get(&server, "/healthz", &[]).status, 200);
    let reply = get(
        &server,
        "/api/me",
        &[("Authorization", "Bearer tc_0123_bad")],
    );
    assert_eq!(reply.status, 401);
    let failures = server.audit_events("authentication_failed");
    assert_eq!(failures.len(), 1, "{failures:?}");
}

fn accounts_and_sessions(db: Db) {
    let server = Server::start(db, Store::Local);
    add_user(
        &server,
        "ruta",
        "clinic",
        "demo",
        Some("correct horse battery"),
    );
    // Wrong password and unknown user look the same.
    let wrong = login(&server, "ruta", "wrong password!!");
    assert_eq!(wrong.status, 401);
    let unknown = login(&server, "nobody", "correct horse battery");
    assert_eq!(unknown.status, 401);
    assert_eq!(wrong.body, unknown.body);
    // Right password: a Secure, HttpOnly, SameSite=Strict session cookie.
    let ok = login(&server, "ruta", "correct horse battery");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["role"], "clinic");
    let cookie = ok.header("Set-Cookie").expect("cookie");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let me = get(&server, "/api/me", &[("Cookie", &session)]);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["name"], "ruta");
    assert_eq!(me.json()["institution"], "demo");
    assert_eq!(me.json()["via"], "session");
    // The API description is served to signed-in callers.
    let spec = get(&server, "/api/openapi.json", &[("Cookie", &session)]);
    assert_eq!(spec.status, 200);
    assert_eq!(spec.json()["openapi"], "3.1.0");
    assert!(spec.json()["paths"]["/api/login"]["post"].is_object());
    // Malformed JSON is a clear 400.
    let bad = request(
        server.http_port,
        "POST",
        "/api/login",
        &[("Content-Type", "application/json")],
        b"{\"name\": ",
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.json()["error"].is_string());
    // Logout ends the session.
    // A state-changing request on a session needs the session's anti-forgery token: without
    // it, or with another, it is refused (and audited); with it, it goes through.
    let csrf = me.json()["csrf_token"].as_str().unwrap().to_owned();
    assert_eq!(csrf.len(), 64);
    for headers in [
        vec![("Cookie", session.as_str())],
        vec![("Cookie", session.as_str()), ("X-CSRF-Token", "0123")],
    ] {
        let forged = request(server.http_port, "POST", "/api/logout", &headers, b"");
        assert_eq!(forged.status, 403, "{}", forged.body);
    }
    let forged = request(
        server.http_port,
        "POST",
        "/api/logout",
        &[
            ("Cookie", &session),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"csrf=wrong",
    );
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert_eq!(server.audit_events("forgery_refused").len(), 3);
    assert_eq!(get(&server, "/api/me", &[("Cookie", &session)]).status, 200);
    let out = request(
        server.http_port,
        "POST",
        "/api/logout",
        &[("Cookie", &session), ("X-CSRF-Token", &csrf)],
        b"",
    );
    assert_eq!(out.status, 204);
    assert_eq!(get(&server, "/api/me", &[("Cookie", &session)]).status, 401);
    // A session left alone longer than auth.idle_minutes (30) ends, though it has hours left.
    let idle = login(&server, "ruta", "correct horse battery");
    let idle = idle.header("Set-Cookie").unwrap();
    let idle = idle.split(';').next().unwrap().to_owned();
    assert_eq!(get(&server, "/api/me", &[("Cookie", &idle)]).status, 200);
    server.execute_sql(
        "UPDATE sessions SET last_seen_at = last_seen_at - 31 * 60 * 1000000, \
         created_at = created_at - 31 * 60 * 1000000",
    );
    assert_eq!(get(&server, "/api/me", &[("Cookie", &idle)]).status, 401);
    // A new password replaces the old one; disabling ends everything.
    let out = server.cli_with_input(
        &["user", "passwd", "ruta", "--password-stdin"],
        "another long secret\n",
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(login(&server, "ruta", "correct horse battery").status, 401);
    let ok = login(&server, "ruta", "another long secret");
    assert_eq!(ok.status, 200);
    let session = ok
        .header("Set-Cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let out = server.cli(&["user", "disable", "ruta"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(get(&server, "/api/me", &[("Cookie", &session)]).status, 401);
    assert_eq!(login(&server, "ruta", "another long secret").status, 401);

    // Machine accounts: no password, bearer tokens until revoked.
    add_user(&server, "reader-ws1", "cardiologist", "demo-centre", None);
    let out = server.cli(&["token", "create", "reader-ws1", "--label", "workstation 1"]);
    assert!(out.status.success(), "{out:?}");
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("tc_"), "{token}");
    let bearer = format!("Bearer {token}");
    let me = get(&server, "/api/me", &[("Authorization", &bearer)]);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["role"], "cardiologist");
    assert_eq!(me.json()["via"], "token");
    // Listings never show secrets.
    let list = server.cli(&["token", "list", "--json"]);
    let text = String::from_utf8_lossy(&list.stdout);
    let secret = token.rsplit('_').next().unwrap();
    assert!(!text.contains(secret));
    let tokens: serde_json::Value = serde_json::from_str(&text).unwrap();
    let id = tokens[0]["id"].as_str().unwrap().to_owned();
    assert!(tokens[0]["last_used_at"].is_i64(), "{tokens}");
    let users = server.cli(&["user", "list", "--json"]);
    let users_text = String::from_utf8_lossy(&users.stdout);
    assert!(!users_text.contains("argon2"), "{users_text}");
    assert!(users_text.contains("reader-ws1"));
    let out = server.cli(&["token", "revoke", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        get(&server, "/api/me", &[("Authorization", &bearer)]).status,
        401
    );
    // A tampered secret is refused.
    let forged = format!("Bearer tc_{id}_{}", "0".repeat(64));
    assert_eq!(
        get(&server, "/api/me", &[("Authorization", &forged)]).status,
        401
    );

    // Account rules give clear errors and exit 2 (bad input) or 3 (not found).
    let cases: &[(&[&str], i32, &str)] = &[
        (&["user", "add", "x", "--role", "boss"], 2, "not one of"),
        (
            &["user", "add", "x", "--role", "clinic"],
            2,
            "--institution",
        ),
        (
            &[
                "user",
                "add",
                "x",
                "--role",
                "clinic",
                "--institution",
                "demo-centre",
            ],
            2,
            "not a declared clinic",
        ),
        (
            &[
                "user",
                "add",
                "x",
                "--role",
                "cardiologist",
                "--institution",
                "nowhere",
            ],
            2,
            "not a declared centre",
        ),
        (
            &[
                "user",
                "add",
                "x",
                "--role",
                "admin",
                "--institution",
                "demo",
            ],
            2,
            "belongs to no institution",
        ),
        (
            &["user", "add", "bad name", "--role", "admin"],
            2,
            "user name",
        ),
        (
            &["user", "add", "reader-ws1", "--role", "admin"],
            2,
            "already exists",
        ),
        (&["user", "disable", "nobody"], 3, "no user"),
        (&["token", "create", "nobody"], 3, "no user"),
        (&["token", "revoke", "nothing"], 3, "no token"),
    ];
    for (args, code, message) in cases {
        let out = server.cli_with_input(args, "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let out = server.cli_with_input(
        &[
            "user",
            "add",
            "short",
            "--role",
            "admin",
            "--password-stdin",
        ],
        "tiny\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12"));
    // Sign-ins and account changes are audited.
    let logins = server.audit_events("login");
    assert!(logins
        .iter()
        .any(|(actor, _, outcome)| actor == "ruta" && outcome == "refused"));
    assert!(logins
        .iter()
        .any(|(actor, _, outcome)| actor == "ruta" && outcome == "signed in"));
    assert_eq!(server.audit_events("token_revoked").len(), 1);
    assert_eq!(server.audit_events("user_disabled").len(), 1);
}

#[test]
fn accounts_and_sessions_sqlite() {
    accounts_and_sessions(Db::Sqlite);
}

#[test]
fn accounts_and_sessions_postgres() {
    accounts_and_sessions(Db::Postgres);
}

fn base64url(data: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// JWTs from a hospital IdP: accepted when signature, issuer, audience, lifetime and claims
/// check out; refused otherwise.
#[test]
fn identity_provider_jwts() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = key.public_key_raw();
    let jwks = serde_json::json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "idp-1", "alg": "ES256", "use": "sig",
        "x": base64url(&point[1..33]), "y": base64url(&point[33..65]),
    }]});
    let dir = tempfile::tempdir().unwrap();
    let jwks_path = dir.path().join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[
            ("TELECARDIO_AUTH__OIDC__ENABLED", "true"),
            ("TELECARDIO_AUTH__OIDC__ISSUER", "https://idp.example.lt"),
            ("TELECARDIO_AUTH__OIDC__AUDIENCE", "telecardio"),
            (
                "TELECARDIO_AUTH__OIDC__JWKS_FILE",
                jwks_path.to_str().unwrap(),
            ),
        ],
    );
    let encoding = jsonwebtoken::EncodingKey::from_ec_pem(key.serialize_pem().as_bytes()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: serde_json::Value| {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("idp-1".into());
        jsonwebtoken::encode(&header, &claims, &encoding).unwrap()
    };
    let good = serde_json::json!({
        "iss": "https://idp.example.lt", "aud": "telecardio", "exp": now + 600,
        "preferred_username": "dr.kazlauskas", "telecardio_role": "cardiologist",
        "telecardio_institution": "demo-centre",
    });
    let token = sign(good.clone());
    let me = get(
        &server,
        "/api/me",
        &[("Authorization", &format!("Bearer {token}"))],
    );
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["name"], "dr.kazlauskas");
    assert_eq!(me.json()["via"], "jwt");
    let mut variants = Vec::new();
    for (claim, value) in [
        ("aud", serde_json::json!("someone-else")),
        ("iss", serde_json::json!("https://evil.example")),
        ("exp", serde_json::json!(now - 3600)),
        ("telecardio_role", serde_json::json!("superuser")),
        ("telecardio_institution", serde_json::json!("demo")),
    ] {
        let mut claims = good.clone();
        claims[claim] = value;
        variants.push((claim, sign(claims)));
    }
    // Signed by another key.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let other_key =
        jsonwebtoken::EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("idp-1".into());
    variants.push((
        "signature",
        jsonwebtoken::encode(&header, &good, &other_key).unwrap(),
    ));
    for (what, token) in variants {
        let reply = get(
            &server,
            "/api/me",
            &[("Authorization", &format!("Bearer {token}"))],
        );
        assert_eq!(reply.status, 401, "{what} accepted: {}", reply.body);
    }
}

/// HTTPS with rustls, checked by curl; plain HTTP off loopback is refused at start.
#[test]
fn https_and_plain_http_policy() {
    let pki = pki();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path, ca_path) = (
        dir.path().join("server.pem"),
        dir.path().join("server.key"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert_path, &pki.server_cert).unwrap();
    std::fs::write(&key_path, &pki.server_key).unwrap();
    std::fs::write(&ca_path, &pki.ca).unwrap();
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[
            ("TELECARDIO_HTTP__CERTIFICATE", cert_path.to_str().unwrap()),
            ("TELECARDIO_HTTP__PRIVATE_KEY", key_path.to_str().unwrap()),
        ],
    );
    let url = format!("https://localhost:{}/healthz", server.http_port);
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--cacert",
        ca_path.to_str().unwrap(),
        "-w",
        "\n%{http_code}",
        &url,
    ]);
    let (ok, out) = run(cmd);
    assert!(ok, "{out}");
    assert!(out.trim_end().ends_with("200"), "{out}");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--cacert",
        ca_path.to_str().unwrap(),
        "-w",
        "\n%{http_code}",
    ])
    .arg(format!("https://localhost:{}/api/me", server.http_port));
    let (_, out) = run(cmd);
    assert!(out.trim_end().ends_with("401"), "{out}");
    // Without a certificate, a non-loopback listener is a configuration error naming the key.
    let refused = Command::new(BIN)
        .args([
            "--config",
            repo().join("config/telecardio.toml").to_str().unwrap(),
        ])
        .args(["--data-dir", dir.path().to_str().unwrap(), "serve"])
        .env("TELECARDIO_HTTP__LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("http.listen"));
}

/// Password guessing is slowed: after the allowed failures for a name, sign-in for it pauses
/// (429 with Retry-After, even with the right password) while other accounts are unaffected;
/// the pause ends on its own and each refusal is audited.
#[test]
fn repeated_failed_sign_ins_pause_sign_in() {
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[("TELECARDIO_AUTH__LOCKOUT_SECONDS", "2")],
    );
    add_user(
        &server,
        "vida",
        "clinic",
        "demo",
        Some("correct horse battery"),
    );
    add_user(
        &server,
        "ona",
        "clinic",
        "demo",
        Some("another long secret"),
    );
    for _ in 0..5 {
        assert_eq!(login(&server, "vida", "a wrong guess!!").status, 401);
    }
    let paused = login(&server, "vida", "correct horse battery");
    assert_eq!(paused.status, 429, "{}", paused.body);
    let retry: u64 = paused.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    assert_eq!(login(&server, "ona", "another long secret").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2200));
    assert_eq!(login(&server, "vida", "correct horse battery").status, 200);
    let logins = server.audit_events("login");
    assert!(logins
        .iter()
        .any(|(actor, _, outcome)| actor == "vida" && outcome.starts_with("refused: throttled")));
}
