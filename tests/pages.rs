//! The pages in a real browser (headless Chromium over WebDriver) against the real binary, on
//! SQLite and PostgreSQL: a clinic user signs in (in Lithuanian, from the browser's language),
//! sends a referral and a study from the send page (one refused file shown with its reason),
//! follows the case; the cardiologist claims it from the worklist, reads the referral and the
//! study's series, drafts (autosaved), signs after the confirmation naming signer and licence,
//! and amends with a reason; the clinic user downloads the PDF and the answer. Another clinic
//! gets 404 for the case page (audited); a request without the anti-forgery token is refused.
//! Every page is photographed in both languages under `target/screenshots/`.

mod common;

use std::time::Duration;

use common::browser::Browser;
use common::*;
use serde_json::json;

const VALID: &str = include_str!("fixtures/form027-valid.xml");
const PASSWORD: &str = "Slaptas-žodis-2026";

fn start(db: Db) -> Server {
    let clinics = format!(
        r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[]}},
            {{id="other", name="Other", ae_titles=["OTHER_AE"], networks=[]}}]"#
    );
    let centres =
        r#"[{id="demo-centre", name="C", reads=["demo", "other"], ae_titles=[], networks=[]}]"#;
    let rules = r#"[{name="all", clinics=[], examinations=[], urgencies=[], patients="any",
                     centre="demo-centre", readers=["dr-a"], assign="balance"}]"#;
    // deploy/test.sh installs the viewer here, as deploy/run.sh does under data/.
    let viewer = repo().join("target/viewer").display().to_string();
    assert!(
        std::path::Path::new(&viewer).join("index.html").is_file(),
        "the OHIF Viewer is installed by ./deploy/viewer.sh target/viewer"
    );
    Server::start_with(
        db,
        Store::Local,
        &[
            ("TELECARDIO_CLINICS", clinics.as_str()),
            ("TELECARDIO_CENTRES", centres),
            ("TELECARDIO_ROUTING__RULES", rules),
            ("TELECARDIO_ROUTING__STUDY_STABLE_SECONDS", "0"),
            ("TELECARDIO_VIEWER__DIR", viewer.as_str()),
        ],
    )
}

/// A test image (by name, or a path) made part of the examination under test (study
/// 2.25.7001), in series `n`.
fn same_examination(dir: &std::path::Path, image: &str, name: &str, n: u32) -> std::path::PathBuf {
    let out = dir.join(name);
    let source = if image.contains('/') {
        std::path::PathBuf::from(image)
    } else {
        test_image(image)
    };
    std::fs::copy(source, &out).unwrap();
    let mut modify = dcmtk("dcmodify");
    modify.arg("-nb");
    for change in [
        "(0010,0020)=48507120013".to_owned(),
        "(0008,0050)=E027-2026-0001".to_owned(),
        "(0020,000D)=2.25.7001".to_owned(),
        format!("(0020,000E)=2.25.7001.{n}"),
        format!("(0008,0018)=2.25.7001.{n}.1"),
    ] {
        modify.arg("-m").arg(change);
    }
    modify.arg(&out);
    let (ok, log) = run(modify);
    assert!(ok, "{log}");
    out
}

/// Rewrites the clip at `path` as a modality sending video would label it: MPEG-4 AVC/H.264
/// High Profile, the frames in one encapsulated stream, 8-bit YBR_PARTIAL_420 (PS3.5 8.2.7).
fn as_video(path: &std::path::Path) {
    let script = "
import sys, pydicom
from pydicom.encaps import encapsulate
ds = pydicom.dcmread(sys.argv[1])
stream = bytes([0, 0, 0, 1, 0x67, 0x64, 0, 0x29]) + bytes(ds.PixelData[:4096])
ds.PixelData = encapsulate([stream])
ds['PixelData'].VR = 'OB'
ds['PixelData'].is_undefined_length = True
ds.PhotometricInterpretation = 'YBR_PARTIAL_420'
ds.SamplesPerPixel = 3
ds.PlanarConfiguration = 0
ds.file_meta.TransferSyntaxUID = '1.2.840.10008.1.2.4.102'
ds.save_as(sys.argv[1], enforce_file_format=True)
";
    let out = std::process::Command::new(python())
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("pydicom in .venv (./deploy/test.sh installs it)");
    assert!(out.status.success(), "{out:?}");
}

/// A file of pydicom's test data (written by others, not by our generator).
fn pydicom_file(name: &str) -> String {
    let out = std::process::Command::new(python())
        .args([
            "-c",
            "import sys; from pydicom.data import get_testdata_file; print(get_testdata_file(sys.argv[1]))",
            name,
        ])
        .output()
        .expect("pydicom in .venv (./deploy/test.sh installs it)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn add_user(server: &Server, name: &str, role: &str, institution: &str) {
    server.person(name, role, institution, PASSWORD);
}

fn sign_in(browser: &Browser, name: &str) {
    browser.sign_in(name, PASSWORD);
}

fn sign_out(browser: &Browser) {
    browser.click("form[action='/logout'] button");
    browser.wait_path(|p| p == "/login");
}

/// The status of a request the page's own session makes, without the anti-forgery token.
fn forged_post(browser: &Browser, path: &str) -> i64 {
    browser
        .script_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {method: 'POST', credentials: 'same-origin'})
               .then(r => done(r.status), e => done(String(e)));",
            json!([path]),
        )
        .as_i64()
        .unwrap_or(0)
}

/// The first bytes and status of a download the page links to, fetched with the session.
fn download(browser: &Browser, css: &str) -> (i64, String) {
    browser.find(css);
    let result = browser.script_async(
        "const done = arguments[arguments.length - 1];
         const link = document.querySelector(arguments[0]);
         fetch(link.href, {credentials: 'same-origin'})
           .then(r => r.text().then(t => done([r.status, t.slice(0, 5)])), e => done([0, String(e)]));",
        json!([css]),
    );
    (
        result[0].as_i64().unwrap_or(0),
        result[1].as_str().unwrap_or_default().to_owned(),
    )
}

fn pages(db: Db) {
    let server = start(db);
    add_user(&server, "slaugytoja", "clinic", "demo");
    add_user(&server, "kita", "clinic", "other");
    add_user(&server, "dr-a", "cardiologist", "demo-centre");
    add_user(&server, "admin", "admin", "");
    add_user(&server, "auditorius", "auditor", "");
    let out = server.cli(&[
        "user",
        "profile",
        "dr-a",
        "--full-name",
        "Aušra Žilinskienė",
        "--licence",
        "MPL-100",
    ]);
    assert!(out.status.success(), "{out:?}");
    let tag = format!("{db:?}").to_lowercase();
    // Every page photographed is also checked for accessibility (in Lithuanian: once is
    // enough, the structure is the same in both languages).
    let shot = |browser: &Browser, name: &str, lang: &str| {
        let png = browser.screenshot(&format!("{tag}-{name}-{lang}"));
        assert!(png.starts_with(b"\x89PNG"), "a screenshot of {name}");
        if lang == "lt" {
            let violations = browser.accessibility_violations();
            assert!(violations.is_empty(), "{name}: {violations:#?}");
        }
    };
    let browser = Browser::start(server.http_port, "lt-LT,lt");

    // A browser without a session lands on the sign-in page, in its language.
    browser.goto("/");
    assert_eq!(browser.path(), "/login");
    let page = browser.source();
    assert!(page.contains("<html lang=\"lt\""), "{page}");
    assert!(page.contains("Prisijungti"), "{page}");
    shot(&browser, "login", "lt");
    browser.click("a[lang=en]");
    browser.wait_text("button[type=submit]", |t| t == "Sign in");
    shot(&browser, "login", "en");
    browser.click("a[lang=lt]");
    browser.wait_text("button[type=submit]", |t| t == "Prisijungti");

    // A wrong password is refused on the page, in Lithuanian.
    browser.type_into("#name", "slaugytoja");
    browser.type_into("#password", "neteisingas");
    browser.click("button[type=submit]");
    browser.wait_text("p.error", |t| t.contains("Neteisingas naudotojo vardas"));

    // The clinic user lands on the clinic's cases and sends a referral and a study.
    sign_in(&browser, "slaugytoja");
    assert_eq!(browser.path(), "/clinic");
    browser.goto("/clinic/send");
    let dir = tempfile::tempdir().unwrap();
    let referral = dir.path().join("siuntimas.xml");
    std::fs::write(&referral, VALID).unwrap();
    browser.choose_files("#referral-file", std::slice::from_ref(&referral));
    browser.click("#referral-form button");
    let said = browser.wait_text("#referral-result", |t| t.contains("E027-2026-0001"));
    assert!(said.starts_with("Siuntimas gautas"), "{said}");
    let study = study_of(
        dir.path(),
        "tyrimas.dcm",
        "48507120013",
        "E027-2026-0001",
        "2.25.7001",
    );
    // The echo clip (multi-frame), a 12-lead ECG and a Holter recording of the same
    // examination, each in a series of its own.
    let clip = same_examination(dir.path(), "us-multiframe-echo.dcm", "klipas.dcm", 2);
    let ecg = same_examination(dir.path(), "ecg-12lead.dcm", "ekg.dcm", 3);
    let holter = same_examination(dir.path(), "holter-ambulatory.dcm", "holteris.dcm", 4);
    let junk = dir.path().join("ne-dicom.txt");
    std::fs::write(&junk, "tai ne DICOM failas").unwrap();
    browser.choose_files("#study-files", &[study, clip, ecg, holter, junk]);
    browser.click("#study-form button");
    let total = browser.wait_text("#total-text", |t| t.contains("Išsiųsta ne viskas"));
    assert!(total.contains("4 / 5"), "{total}");
    let rows = browser.script(
        "return Array.from(document.querySelectorAll('#study-list tbody tr'))
           .map(r => [r.cells[0].textContent, r.cells[2].textContent, r.cells[2].className]);",
        json!([]),
    );
    let rows = rows.as_array().unwrap();
    let stored = rows.iter().find(|r| r[0] == "tyrimas.dcm").unwrap();
    assert_eq!(stored[1], "Išsaugota", "{rows:?}");
    let refused = rows.iter().find(|r| r[0] == "ne-dicom.txt").unwrap();
    assert!(
        refused[1].as_str().unwrap().starts_with("Atmesta: ") && refused[2] == "error",
        "a refused file says why: {rows:?}"
    );
    shot(&browser, "clinic-send", "lt");

    // The case appears, routed to the reader, with the patient's name intact.
    wait_for(Duration::from_secs(30), || {
        browser.goto("/clinic");
        browser.source().contains("Paskirta konsultantui")
    });
    assert!(browser.text("#cases tbody").contains("Rūta Žukauskienė"));
    shot(&browser, "clinic-cases", "lt");
    let case_path = browser
        .script(
            "return document.querySelector('#cases tbody a').getAttribute('href');",
            json!([]),
        )
        .as_str()
        .unwrap()
        .to_owned();
    assert!(case_path.starts_with("/cases/"), "{case_path}");
    let case_id = case_path.trim_start_matches("/cases/").to_owned();
    // A change without the anti-forgery token is refused even with a valid session.
    assert_eq!(forged_post(&browser, "/api/logout"), 403);
    sign_out(&browser);

    // The cardiologist claims the case from the worklist and opens it.
    sign_in(&browser, "dr-a");
    assert_eq!(browser.path(), "/worklist");
    assert!(browser.text("#cases").contains("Rūta Žukauskienė"));
    shot(&browser, "worklist", "lt");
    // Claimed from the keyboard alone: Tab to the button, Enter.
    browser.tab_to(&format!("button[data-claim='{case_id}']"));
    browser.press("\u{E007}");
    browser.find(&format!("button[data-release='{case_id}']"));
    browser.click(&format!("#cases a[href='{case_path}']"));
    browser.wait_path(|p| p == case_path);
    let referral_text = browser.text("dl.document");
    assert!(
        referral_text.contains("aortos vožtuvo stenozė") && referral_text.contains("Kairys"),
        "{referral_text}"
    );
    // The series shows a picture rendered from the stored pixels.
    browser.find("#series img");
    let rendered = browser.script_async(
        "const done = arguments[arguments.length - 1];
         const img = document.querySelector('#series img');
         const check = () => img.complete ? done(img.naturalWidth) : setTimeout(check, 100);
         check();",
        json!([]),
    );
    assert!(rendered.as_i64().unwrap_or(0) > 0, "thumbnail: {rendered}");
    // The study opens in the diagnostic viewer, which draws the image from our DICOMweb.
    browser.click("#open-viewer");
    browser.wait_path(|p| p.starts_with("/viewer/"));
    let viewport = "[data-viewport-uid] canvas, .cornerstone-canvas";
    browser.find(viewport);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let png = browser.element_screenshot(viewport, &format!("{tag}-viewer-viewport"));
        let levels = common::browser::distinct_levels(&png);
        if levels > 16 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the viewport stays uniform ({levels} grey levels)"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // (The viewer is OHIF's application, not one of our pages: photographed, not axe-checked.)
    browser.screenshot(&format!("{tag}-viewer-lt"));
    // The clip as sent (native) and as a modality may compress it: each shows a picture, and
    // the clip moves (cine).
    let mut variants = Vec::new();
    for (n, tool, options) in [
        (5, "dcmcjpeg", &["+eb"][..]),
        (6, "dcmcjpls", &[][..]),
        (7, "dcmcrle", &[][..]),
    ] {
        let source = same_examination(
            dir.path(),
            "us-multiframe-echo.dcm",
            &format!("v{n}.dcm"),
            n,
        );
        let out = dir.path().join(format!("v{n}-{tool}.dcm"));
        let mut compress = dcmtk(tool);
        compress.args(options).arg(&source).arg(&out);
        let (ok, log) = run(compress);
        assert!(ok, "{tool}: {log}");
        variants.push(out);
    }
    let (ok, log) = dcmsend(server.dicom_port, &variants);
    assert!(ok, "{log}");
    for (series, syntax) in [
        (2, "native"),
        (5, "jpeg-baseline"),
        (6, "jpeg-ls"),
        (7, "rle"),
    ] {
        browser.goto(&format!(
            "/viewer/viewer?StudyInstanceUIDs=2.25.7001&SeriesInstanceUIDs=2.25.7001.{series}"
        ));
        browser.find(viewport);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let first = loop {
            let png = browser.element_screenshot(viewport, &format!("{tag}-viewer-{syntax}"));
            if common::browser::distinct_levels(&png) > 16 {
                break png;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{syntax}: the viewport stays uniform"
            );
            std::thread::sleep(Duration::from_millis(500));
        };
        if browser.script(
            "return document.querySelector('[data-cy=\"cine-player-play-pause\"]') !== null;",
            json!([]),
        ) == true
        {
            browser.click("[data-cy=\"cine-player-play-pause\"]");
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let later =
                browser.element_screenshot(viewport, &format!("{tag}-viewer-{syntax}-later"));
            if later != first {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{syntax}: the clip does not play"
            );
        }
        // At the clip's recorded rate (Recommended Display Frame Rate 30, Frame Time 33.3 ms).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rate = browser.script(
                "const play = document.querySelector('[data-cy=\"cine-player-play-pause\"]');
                 if (!play) return '';
                 let box = play.parentElement;
                 while (box && !box.textContent.includes('FPS')) box = box.parentElement;
                 if (!box) return '';
                 const values = Array.from(box.querySelectorAll('input')).map(i => i.value).join(' ');
                 return values + ' ' + box.textContent;",
                json!([]),
            );
            let rate = rate.as_str().unwrap_or_default().to_owned();
            if rate.chars().any(|c| c.is_ascii_digit()) {
                assert!(rate.contains("30"), "{syntax}: cine at {rate}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{syntax}: no frame rate shown ({rate})"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // What OHIF cannot show, the case page says so instead of leaving an empty viewport: a
    // Holter summary PDF, and a clip as a cart sends video (MPEG-4 AVC). No encoder is here to
    // make a real H.264 stream; the page decides from the transfer syntax, as OHIF fails on any.
    let pdf = same_examination(dir.path(), "holter-summary-pdf.dcm", "santrauka.dcm", 9);
    let video = same_examination(dir.path(), "us-multiframe-echo.dcm", "video.dcm", 10);
    as_video(&video);
    let (ok, log) = dcmsend(server.dicom_port, &[pdf, video]);
    assert!(ok, "{log}");
    browser.goto(&case_path);
    let notes = browser.wait_text("#series", |t| {
        t.matches("diagnostinė peržiūros programa").count() == 2
    });
    assert!(
        notes.contains("Dokumentas (PDF)") && notes.contains("Vaizdo įrašas (MPEG)"),
        "{notes}"
    );
    assert!(browser
        .text("#viewer-note")
        .starts_with("Ne kiekviena serija"));
    // The document itself is there to download, as the PDF it is.
    let (status, start) = download(&browser, "#series a[download]");
    assert_eq!((status, start.as_str()), (200, "%PDF-"));
    // Our thumbnail renderer has no JPEG-LS decoder (OHIF has): that series says so in words.
    browser.wait_text("#series", |t| t.contains("Paveikslėlio čia nėra"));
    shot(&browser, "case-series", "lt");
    browser.click("a[lang=en]");
    browser.wait_text("#series", |t| {
        t.contains("Video (MPEG): the diagnostic viewer cannot play it here.")
    });
    shot(&browser, "case-series", "en");
    browser.click("a[lang=lt]");
    browser.wait_text("#series", |t| t.contains("Vaizdo įrašas"));

    // The 12-lead ECG in our waveform viewer: traces on the millimetre grid, 3×4 and rhythm.
    browser.goto("/waveform/2.25.7001/2.25.7001.3/2.25.7001.3.1");
    browser.wait_text("#wave-info", |t| t.starts_with("12 derivacijų EKG"));
    let png = browser.element_screenshot("#wave-strip", &format!("{tag}-ecg-strip"));
    let (grid, ink) = common::browser::grid_and_ink(&png);
    assert!(
        grid > 10_000 && ink > 2_000,
        "grid {grid} px, traces {ink} px"
    );
    shot(&browser, "ecg", "lt");
    // The Holter recording: the whole of it as an overview, a strip at paper speed.
    browser.goto("/waveform/2.25.7001/2.25.7001.4/2.25.7001.4.1");
    browser.wait_text("#wave-info", |t| t.starts_with("Ilgalaikis įrašas"));
    browser.type_into("#wave-jump", "00:05:00");
    browser.click("#wave-go");
    // The patient pressed the event button half-way: marked on the strip and said in words.
    browser.wait_text("#wave-info", |t| {
        t.contains("00:05:00–00:05:10") && t.contains("Žymos: Paciento įvykis: širdies plakimas")
    });
    let png = browser.element_screenshot("#wave-strip", &format!("{tag}-holter-strip"));
    let (grid, ink) = common::browser::grid_and_ink(&png);
    assert!(
        grid > 10_000 && ink > 1_000,
        "grid {grid} px, traces {ink} px"
    );
    shot(&browser, "holter", "lt");
    // The analyser's ventricular run, chosen from the list of annotations, is shown in context;
    // its measurement of the whole recording is listed.
    browser.script(
        "document.getElementById('wave-events').value = '1';",
        json!([]),
    );
    browser.click("#wave-event-go");
    browser.wait_text("#wave-info", |t| {
        t.contains("00:02:58–00:03:08") && t.contains("Ventricular tachycardia")
    });
    let listed = browser.script(
        "return document.querySelector('#wave-notes').textContent;",
        json!([]),
    );
    assert!(
        listed.as_str().unwrap().contains("Heart rate: 72 /min"),
        "{listed}"
    );
    // A real 12-lead from elsewhere: pydicom's waveform_ecg.dcm (1000 Hz, two groups).
    let real = same_examination(
        dir.path(),
        &pydicom_file("waveform_ecg.dcm"),
        "real-ecg.dcm",
        8,
    );
    let (ok, log) = dcmsend(server.dicom_port, &[real]);
    assert!(ok, "{log}");
    browser.goto("/waveform/2.25.7001/2.25.7001.8/2.25.7001.8.1");
    let said = browser.wait_text("#wave-info", |t| t.starts_with("12 derivacijų EKG"));
    assert!(said.contains("1000 Hz"), "{said}");
    // Its maker's statements and measurements (in ISO 8859-1) are listed as they were made.
    let listed = browser.script(
        "return document.querySelector('#wave-notes').textContent;",
        json!([]),
    );
    let listed = listed.as_str().unwrap();
    assert!(
        listed.contains("RITMO SINUSALE") && listed.contains("RR Interval: 982 ms"),
        "{listed}"
    );
    let png = browser.element_screenshot("#wave-strip", &format!("{tag}-real-ecg-strip"));
    let (grid, ink) = common::browser::grid_and_ink(&png);
    assert!(
        grid > 10_000 && ink > 2_000,
        "grid {grid} px, traces {ink} px"
    );
    // The waveform pages in English too, then back to Lithuanian.
    browser.click("a[lang=en]");
    browser.wait_text("#wave-info", |t| t.starts_with("12-lead ECG"));
    shot(&browser, "ecg", "en");
    browser.goto("/waveform/2.25.7001/2.25.7001.4/2.25.7001.4.1");
    browser.wait_text("#wave-info", |t| t.starts_with("Long recording"));
    shot(&browser, "holter", "en");
    browser.click("a[lang=lt]");
    browser.wait_text("#wave-info", |t| t.starts_with("Ilgalaikis"));
    // What the viewer is fed: the ECG raw, the Holter's whole 10 minutes as 100 min/max pairs.
    let fetch_json = |path: &str| {
        browser.script_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.json()).then(done);",
            json!([path]),
        )
    };
    let ecg =
        fetch_json("/api/waveforms/2.25.7001/2.25.7001.3/2.25.7001.3.1?seconds=10&points=20000");
    assert_eq!(
        ecg["groups"][0]["channels"].as_array().unwrap().len(),
        12,
        "{}",
        ecg["groups"]
    );
    assert_eq!(ecg["groups"][0]["frequency"], 500.0);
    assert_eq!(ecg["mode"], "raw");
    assert_eq!(ecg["values"][0].as_array().unwrap().len(), 5000);
    let holter = fetch_json("/api/waveforms/2.25.7001/2.25.7001.4/2.25.7001.4.1?points=100");
    assert_eq!(holter["mode"], "minmax");
    assert_eq!(holter["samples"], 120_000);
    assert_eq!(holter["samples_per_point"], 1200);
    assert_eq!(holter["values"][2].as_array().unwrap().len(), 200);
    assert_eq!(holter["annotations_total"], 3);
    assert_eq!(holter["annotations"][1]["start"], 180.0);
    assert_eq!(holter["annotations"][1]["end"], 186.0);
    assert_eq!(
        holter["annotations"][1]["channels"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // A strip carries only its own annotations (and those about the whole recording).
    let strip = fetch_json("/api/waveforms/2.25.7001/2.25.7001.4/2.25.7001.4.1?start=0&seconds=10");
    let labels: Vec<&str> = strip["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Heart rate: 72 /min"]);
    let real = fetch_json("/api/waveforms/2.25.7001/2.25.7001.8/2.25.7001.8.1?points=10");
    assert_eq!(real["annotations_total"], 77, "{}", real["annotations"]);
    browser.goto(&case_path);
    // Drafting is saved as one types.
    browser.type_into("#findings", "Kairiojo skilvelio išstūmimo frakcija 60 %.");
    browser.type_into("#conclusion", "Aortos vožtuvo stenozės nėra.");
    browser.wait_text("#save-state", |t| t.starts_with("Juodraštis išsaugotas"));
    shot(&browser, "case-editor", "lt");
    // Signing asks first, naming the signer and licence; the editor, the viewer button and
    // signing are all reachable by keyboard.
    for control in ["#open-viewer", "#findings", "#conclusion", "#save"] {
        browser.tab_to(control);
    }
    browser.tab_to("#sign");
    browser.press("\u{E007}");
    let confirm = browser.text("#sign-dialog .signer");
    assert!(
        confirm.contains("Aušra Žilinskienė") && confirm.contains("MPL-100"),
        "{confirm}"
    );
    shot(&browser, "case-sign", "lt");
    // The same in English: the draft survives the switch (it was saved), and the signing
    // question names the signer in English words.
    browser.click("#sign-no");
    browser.click("a[lang=en]");
    browser.wait_text("a[lang=lt]", |t| t == "Lietuvių");
    shot(&browser, "case-editor", "en");
    browser.click("#sign");
    browser.wait_text("#sign-dialog .signer", |t| t.contains("MPL-100"));
    shot(&browser, "case-sign", "en");
    browser.click("#sign-yes");
    let report = browser.text("article.report");
    assert!(
        report.contains("Version 1") && report.contains("Aortos vožtuvo stenozės nėra."),
        "{report}"
    );
    browser.click("a[lang=lt]");
    browser.wait_text("a[lang=en]", |t| t == "English");
    // An amendment needs its reason and becomes version 2.
    browser.type_into("#conclusion", " Kontrolė po metų.");
    browser.type_into("#amendment_reason", "Papildyta rekomendacija");
    browser.wait_text("#save-state", |t| t.starts_with("Juodraštis išsaugotas"));
    browser.click("#sign");
    browser.click("#sign-yes");
    browser.find("article.report:nth-of-type(2)");
    assert!(browser.source().contains("Papildyta rekomendacija"));
    shot(&browser, "case-reported", "lt");
    sign_out(&browser);

    // The clinic user downloads the signed report and the answer.
    sign_in(&browser, "slaugytoja");
    browser.goto(&case_path);
    let (status, start) = download(&browser, "a[href$='/pdf']");
    assert_eq!((status, start.as_str()), (200, "%PDF-"));
    let (status, start) = download(&browser, "a[href$='/answer']");
    assert_eq!((status, start.as_str()), (200, "<?xml"));
    shot(&browser, "clinic-case", "lt");

    // Every page again in English, switched from the page itself.
    browser.click("a[lang=en]");
    browser.wait_text("a[lang=lt]", |t| t == "Lietuvių");
    assert!(browser.source().contains("<html lang=\"en\""));
    shot(&browser, "clinic-case", "en");
    for (path, name) in [("/clinic", "clinic-cases"), ("/clinic/send", "clinic-send")] {
        browser.goto(path);
        shot(&browser, name, "en");
    }
    sign_out(&browser);
    sign_in(&browser, "dr-a");
    shot(&browser, "worklist", "en");
    browser.goto(&case_path);
    assert!(browser.source().contains("Download the report (PDF)"));
    shot(&browser, "case-reported", "en");
    sign_out(&browser);

    // Another clinic cannot open the case page: not found, and the attempt is audited.
    sign_in(&browser, "kita");
    browser.goto(&case_path);
    assert!(browser.source().contains("There is no such case"));
    assert!(!browser.source().contains("Žukauskienė"));
    let refused = server
        .audit_events("case_read")
        .into_iter()
        .filter(|(actor, _, outcome)| actor == "kita" && outcome.contains("not found"))
        .count();
    assert!(refused >= 1, "the refused case page is audited");
    // Nor the study behind it through the viewer's DICOMweb requests.
    browser.goto("/viewer/viewer?StudyInstanceUIDs=2.25.7001");
    browser.wait_path(|p| p.starts_with("/viewer/notfoundstudy"));
    let status = browser.script_async(
        "const done = arguments[arguments.length - 1];
         fetch('/dicom-web/studies/2.25.7001/metadata', {credentials: 'same-origin',
               headers: {Accept: 'application/dicom+json'}}).then(r => done(r.status));",
        json!([]),
    );
    assert_eq!(status, 404);
    let status = browser.script_async(
        "const done = arguments[arguments.length - 1];
         fetch('/api/waveforms/2.25.7001/2.25.7001.3/2.25.7001.3.1', {credentials: 'same-origin'})
           .then(r => done(r.status));",
        json!([]),
    );
    assert_eq!(status, 404, "another clinic's ECG");
    browser.goto("/clinic");
    let retrieves = server.audit_events("retrieve");
    assert!(
        retrieves
            .iter()
            .any(|(actor, _, outcome)| actor == "kita" && outcome.starts_with("denied")),
        "{retrieves:?}"
    );
    sign_out(&browser);

    // The auditor finds that refusal by the patient's code and exports the search as CSV.
    sign_in(&browser, "auditorius");
    assert_eq!(browser.path(), "/audit");
    // The language chosen earlier in this browser is remembered; back to Lithuanian.
    browser.click("a[lang=lt]");
    browser.wait_text("a[lang=en]", |t| t == "English");
    let archive = browser.text("#archive");
    assert!(archive.contains("demo"), "{archive}");
    browser.type_into("#a-patient", "48507120013");
    browser.script(
        "document.getElementById('a-outcome').value = 'refused';",
        json!([]),
    );
    browser.click("button[name=format][value='']");
    browser.find("#events");
    let events = browser.text("#events");
    assert!(
        events.contains("kita") && events.contains("Atsisakyta"),
        "{events}"
    );
    assert!(!events.contains("slaugytoja"), "only refusals: {events}");
    assert_eq!(
        browser.path(),
        "/audit",
        "the code searched for is not in the address"
    );
    shot(&browser, "audit", "lt");
    let exported = browser.script_async(
        "const done = arguments[arguments.length - 1];
         const form = document.querySelector('form[action=\"/audit\"]');
         const body = new URLSearchParams(new FormData(form));
         body.set('format', 'csv');
         fetch('/audit', {method: 'POST', body, credentials: 'same-origin'})
           .then(r => r.text().then(t => done([r.headers.get('content-type'), t])));",
        json!([]),
    );
    assert!(
        exported[0].as_str().unwrap().starts_with("text/csv"),
        "{exported}"
    );
    let csv = exported[1].as_str().unwrap();
    assert!(csv.starts_with("at,kind,actor"), "{csv}");
    assert!(
        csv.contains(",kita,") && csv.contains("48507120013"),
        "{csv}"
    );
    browser.click("a[lang=en]");
    browser.wait_text("a[lang=lt]", |t| t == "Lietuvių");
    shot(&browser, "audit", "en");
    sign_out(&browser);

    // A study arrives without a referral; the administrator routes it by the rules, with a
    // reason, from the administrators' page.
    let lone = study_of(
        dir.path(),
        "be-siuntimo.dcm",
        "39001010000",
        "NO-REFERRAL-1",
        "2.25.7002",
    );
    let (ok, log) = storescu(server.dicom_port, &[lone]);
    assert!(ok, "{log}");
    sign_in(&browser, "admin");
    assert_eq!(browser.path(), "/admin");
    browser.click("a[lang=lt]");
    browser.wait_text("a[lang=en]", |t| t == "English");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !browser.source().contains("NO-REFERRAL-1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the study without a referral is not listed: {}",
            browser.text("main")
        );
        std::thread::sleep(Duration::from_millis(300));
        browser.goto("/admin");
    }
    assert!(browser.text("#rules").contains("demo-centre"));
    assert!(browser.text("#users").contains("Aušra Žilinskienė"));
    shot(&browser, "admin", "lt");
    browser.click("#unlinked button");
    browser.wait_text("#action-result", |t| t.contains("Nurodykite priežastį"));
    browser.type_into("#unlinked input[name=reason]", "Skubus tyrimas be siuntimo");
    browser.click("#unlinked button");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while browser.source().contains("NO-REFERRAL-1") {
        assert!(
            std::time::Instant::now() < deadline,
            "the study is still unrouted: {}",
            browser.text("#action-result")
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The reported case has left the open worklist; the routed study is on it.
    browser.goto("/worklist");
    let open = browser.script(
        "return document.querySelectorAll('#cases tbody tr').length;",
        json!([]),
    );
    assert_eq!(open, 1, "{}", browser.text("main"));
    // Accounts from the same page: add a cardiologist with name and licence, issue a token
    // (shown once, and it works), then disable the account (after a confirmation).
    browser.goto("/admin");
    browser.type_into("#nu-name", "naujas");
    browser.script(
        "document.getElementById('nu-role').value = 'cardiologist';",
        json!([]),
    );
    browser.type_into("#nu-inst", "demo-centre");
    browser.type_into("#nu-full", "Jūratė Ąžuolienė");
    browser.type_into("#nu-licence", "MPL-200");
    browser.type_into("#nu-password", PASSWORD);
    browser.click("#new-user button");
    browser.wait_text("#users", |t| t.contains("Jūratė Ąžuolienė"));
    browser.click("button[data-post='/api/users/naujas/tokens']");
    let said = browser.wait_text("#action-result", |t| t.contains("tc_"));
    let token = said.split_whitespace().last().unwrap().to_owned();
    let me_with_token = || {
        request(
            server.http_port,
            "GET",
            "/api/me",
            &[("Authorization", &format!("Bearer {token}"))],
            b"",
        )
    };
    let me = me_with_token();
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["institution"], "demo-centre");
    browser.click("button[data-post='/api/users/naujas/disable']");
    browser.accept_dialog();
    browser.wait_text("#users", |t| t.contains("Išjungtas"));
    let me = me_with_token();
    assert_eq!(me.status, 401, "a disabled account's token stops working");
    let added_here = server
        .audit_events("user_added")
        .into_iter()
        .filter(|(actor, _, _)| actor == "admin")
        .count();
    assert_eq!(
        added_here, 1,
        "the page's addition is audited under the administrator"
    );
    browser.goto("/admin");
    browser.click("a[lang=en]");
    browser.wait_text("a[lang=lt]", |t| t == "Lietuvių");
    shot(&browser, "admin", "en");
    sign_out(&browser);

    // A long worklist comes in pages of 200: 250 routine cases waiting at the centre.
    server.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
         INSERT INTO cases (id, referral_id, study_uid, clinic_id, centre_id, reader, status,
           examination, urgency, patient_id, patient_name, birth_date, rule, claimed_by,
           claim_expires_at, referral_written, referral_at, data_at, ready_at, routed_at,
           claimed_at, created_at, updated_at)
         SELECT 'bulk-' || i, 'bulk-ref-' || i, '2.25.99.' || i, 'demo', 'demo-centre', '',
           'new', 'echo', 'routine', 'P' || i, 'Eilė^Nr' || i, '19700101', 'bulk', '', NULL,
           '20261120', 1000000 * i, 1000000 * i, 1000000 * i, 1000000 * i, NULL,
           1000000 * i, 1000000 * i
         FROM n",
    );
    sign_in(&browser, "dr-a");
    browser.goto("/worklist");
    assert_eq!(browser.text("nav.pages span"), "Cases 1–200");
    assert_eq!(
        browser.script(
            "return document.querySelectorAll('#cases tbody tr').length;",
            json!([])
        ),
        200
    );
    // The 250 and whatever the walk above left open (an administrator's routing).
    let open = browser.script_async(
        "const done = arguments[arguments.length - 1];
         fetch('/api/worklist', {credentials: 'same-origin'})
           .then(r => r.json()).then(j => done(j.cases.length));",
        json!([]),
    );
    let open = open.as_i64().unwrap();
    assert!((250..260).contains(&open), "{open} open cases");
    browser.click("nav.pages a[rel=next]");
    browser.wait_text("nav.pages span", |t| t == format!("Cases 201–{open}"));
    assert!(
        browser.text("#cases").contains("Nr250 Eilė"),
        "the most recent last"
    );
    assert!(
        !browser.source().contains("rel=\"next\""),
        "no page after the last"
    );
    shot(&browser, "worklist-page-2", "en");
    browser.click("nav.pages a[rel=prev]");
    browser.wait_text("nav.pages span", |t| t == "Cases 1–200");
    // No personal code or name in any address the pages used.
    let log = server.log();
    assert!(!log.contains("48507120013"), "personal code in the log");
    assert!(!log.contains("Žukauskienė"), "patient name in the log");
}

#[test]
fn pages_sqlite() {
    pages(Db::Sqlite);
}

#[test]
fn pages_postgres() {
    pages(Db::Postgres);
}
