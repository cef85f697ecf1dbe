//! Headless Chromium driven over WebDriver (Debian's `chromedriver`): the pages are tested in
//! the browser people use, not in a simulation of one.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};

use std::io::{BufRead, BufReader, Read, Write};

use super::{free_port, repo};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
    pub base: String,
}

impl Browser {
    /// A fresh browser (empty profile) whose preferred language is `accept_language`.
    pub fn start(http_port: u16, accept_language: &str) -> Browser {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) runs");
        super::wait_for(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--accept-lang={accept_language}"),
                ],
                "prefs": {"intl.accept_languages": accept_language},
            }
        }}});
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            _profile: profile,
            base: format!("http://127.0.0.1:{http_port}"),
        };
        let reply = browser.command("POST", "/session", capabilities);
        browser.session = reply["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {reply}"))
            .to_owned();
        browser
    }

    fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let text = exchange(self.port, method, path, &body);
        let value: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("WebDriver answered ({e}): {text}"));
        value.get("value").cloned().unwrap_or(value)
    }

    fn session_command(&self, method: &str, path: &str, body: Value) -> Value {
        let value = self.command(method, &format!("/session/{}{path}", self.session), body);
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    pub fn goto(&self, path: &str) {
        self.session_command(
            "POST",
            "/url",
            json!({"url": format!("{}{path}", self.base)}),
        );
    }

    pub fn path(&self) -> String {
        let url = self.session_command("GET", "/url", json!({}));
        url.as_str()
            .unwrap_or_default()
            .trim_start_matches(&self.base)
            .to_owned()
    }

    /// Waits until the address satisfies `test` (a click that navigates returns before the
    /// next page has arrived); returns it.
    pub fn wait_path(&self, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let path = self.path();
            let ready = self.script("return document.readyState;", json!([]));
            if test(&path) && ready == "complete" {
                return path;
            }
            assert!(Instant::now() < deadline, "still at {path}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The element `css` names, waiting up to ten seconds for it to appear.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.command(
                "POST",
                &format!("/session/{}/element", self.session),
                json!({"using": "css selector", "value": css}),
            );
            if let Some(id) = value.get(ELEMENT).and_then(Value::as_str) {
                return id.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no element {css} on {}",
                self.path()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `action` on the element `css` names; if a page replaced it between finding and
    /// acting (a stale element), finds it again rather than failing.
    fn on_element(&self, css: &str, method: &str, action: &str, body: Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let id = self.find(css);
            let value = self.command(
                method,
                &format!("/session/{}/element/{id}/{action}", self.session),
                body.clone(),
            );
            match value.get("error").and_then(Value::as_str) {
                None => return value,
                Some("stale element reference") if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Some(error) => panic!("WebDriver {action} on {css}: {error}: {}", value["message"]),
            }
        }
    }

    pub fn click(&self, css: &str) {
        self.on_element(css, "POST", "click", json!({}));
    }

    pub fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "POST", "value", json!({"text": text}));
    }

    /// Chooses files in a file input, as a person picking them would.
    pub fn choose_files(&self, css: &str, files: &[PathBuf]) {
        let paths: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        self.type_into(css, &paths.join("\n"));
    }

    pub fn text(&self, css: &str) -> String {
        self.on_element(css, "GET", "text", json!({}))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The text of `css` now, if it is on the page (None while a page is being replaced).
    fn try_text(&self, css: &str) -> Option<String> {
        let found = self.command(
            "POST",
            &format!("/session/{}/element", self.session),
            json!({"using": "css selector", "value": css}),
        );
        let id = found.get(ELEMENT)?.as_str()?.to_owned();
        let text = self.command(
            "GET",
            &format!("/session/{}/element/{id}/text", self.session),
            json!({}),
        );
        text.as_str().map(str::to_owned)
    }

    /// Waits until the text of `css` satisfies `test`; returns it. A page reloading meanwhile
    /// (the element gone stale) is waited out, not an error.
    pub fn wait_text(&self, css: &str, test: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.try_text(css).unwrap_or_default();
            if test(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "{css} still reads {text:?}");
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn script(&self, script: &str, args: Value) -> Value {
        self.session_command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
    }

    /// Runs `script` whose last argument is the callback to call with the result.
    pub fn script_async(&self, script: &str, args: Value) -> Value {
        self.session_command(
            "POST",
            "/execute/async",
            json!({"script": script, "args": args}),
        )
    }

    /// Signs in on the sign-in page and waits to leave it.
    pub fn sign_in(&self, name: &str, password: &str) {
        self.goto("/login");
        self.type_into("#name", name);
        self.type_into("#password", password);
        self.click("button[type=submit]");
        self.wait_path(|p| p != "/login");
    }

    /// Serious and critical accessibility violations axe-core (WCAG 2 A and AA rules) finds on
    /// the current page, as `rule: selector…` lines.
    pub fn accessibility_violations(&self) -> Vec<String> {
        let path = std::env::var("TC_TEST_AXE")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo().join("target/js/node_modules/axe-core/axe.min.js"));
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "axe-core at {} ({e}); ./deploy/test.sh installs it",
                path.display()
            )
        });
        self.script(&format!("{axe}\nreturn typeof axe;"), json!([]));
        let found = self.script_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}})
               .then(r => done(r.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))),
                     e => done(['axe failed: ' + e]));",
            json!([]),
        );
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe answered {found}")])
    }

    pub fn source(&self) -> String {
        self.session_command("GET", "/source", json!({}))
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// A PNG of the whole window, written under `target/screenshots/`; returns its bytes.
    pub fn screenshot(&self, name: &str) -> Vec<u8> {
        let encoded = self.session_command("GET", "/screenshot", json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("base64 screenshot");
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &png).unwrap();
        png
    }
}

impl Browser {
    /// A PNG of one element (what a person sees of it), written under `target/screenshots/`.
    pub fn element_screenshot(&self, css: &str, name: &str) -> Vec<u8> {
        let id = self.find(css);
        let encoded = self.session_command("GET", &format!("/element/{id}/screenshot"), json!({}));
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .expect("base64 screenshot");
        std::fs::create_dir_all(screenshots()).unwrap();
        std::fs::write(screenshots().join(format!("{name}.png")), &png).unwrap();
        png
    }
}

impl Browser {
    /// Presses keys as a person at the keyboard would (WebDriver key codes, e.g. "\u{E004}"
    /// for Tab, "\u{E007}" for Enter).
    pub fn press(&self, keys: &str) {
        let actions: Vec<_> = keys
            .chars()
            .flat_map(|k| {
                [
                    json!({"type": "keyDown", "value": k.to_string()}),
                    json!({"type": "keyUp", "value": k.to_string()}),
                ]
            })
            .collect();
        self.session_command(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        );
    }

    /// Accepts the page's confirmation dialog (window.confirm), as a person clicking OK.
    pub fn accept_dialog(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.command(
                "POST",
                &format!("/session/{}/alert/accept", self.session),
                json!({}),
            );
            if value.get("error").is_none() {
                return;
            }
            assert!(Instant::now() < deadline, "no dialog to accept: {value}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Tabs from the top of the page until `css` has the focus; panics if Tab never gets there.
    pub fn tab_to(&self, css: &str) {
        self.script(
            "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
            json!([]),
        );
        for _ in 0..200 {
            self.press("\u{E004}");
            let there = self.script(
                "return document.activeElement !== null && document.activeElement.matches(arguments[0]);",
                json!([css]),
            );
            if there == true {
                return;
            }
        }
        panic!("Tab never reaches {css} on {}", self.path());
    }
}

/// Pixels of a PNG that are the grid's pink and the traces' near-black.
pub fn grid_and_ink(png: &[u8]) -> (usize, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    let channels = info.color_type.samples();
    let (mut grid, mut ink) = (0, 0);
    for p in pixels[..info.buffer_size()].chunks(channels) {
        if channels < 3 {
            continue;
        }
        let (r, g, b) = (i32::from(p[0]), i32::from(p[1]), i32::from(p[2]));
        if r > 200 && r - g > 25 && r - b > 25 {
            grid += 1;
        } else if r < 90 && g < 90 && b < 90 {
            ink += 1;
        }
    }
    (grid, ink)
}

/// How many distinct grey levels a PNG shows (1 for a uniform picture).
pub fn distinct_levels(png: &[u8]) -> usize {
    let decoder = png::Decoder::new(std::io::Cursor::new(png));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut pixels).expect("PNG pixels");
    let channels = info.color_type.samples();
    let mut seen = [false; 256];
    for pixel in pixels[..info.buffer_size()].chunks(channels) {
        let grey =
            pixel.iter().take(3).map(|&v| v as usize).sum::<usize>() / pixel.len().clamp(1, 3);
        seen[grey.min(255)] = true;
    }
    seen.iter().filter(|s| **s).count()
}

pub fn screenshots() -> PathBuf {
    repo().join("target").join("screenshots")
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = exchange(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                b"",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One request to the driver, reading exactly the answer's Content-Length (chromedriver keeps
/// the connection open whatever the request says).
fn exchange(port: u16, method: &str, path: &str, body: &[u8]) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("chromedriver");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("driver answer");
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut answer = vec![0; length];
    reader.read_exact(&mut answer).expect("driver answer body");
    String::from_utf8_lossy(&answer).into_owned()
}
