//! DICOM over TLS with client certificates, tested with DCMTK's TLS-enabled `storescu`: a
//! certificate is bound to the institution whose names it carries, and calls only as its AEs.

mod common;

use std::path::Path;

use common::*;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn storescu_over_tls_with_client_certificate() {
    let pki_dir = tempfile::tempdir().unwrap();
    let d = pki_dir.path();
    let pki = pki();
    let ca = write(d, "ca.pem", &pki.ca);
    let cert = write(d, "server.pem", &pki.server_cert);
    let key = write(d, "server.key", &pki.server_key);
    let client_cert = write(d, "client.pem", &pki.client_cert);
    let client_key = write(d, "client.key", &pki.client_key);
    let tls_port = free_port();
    let listen = format!("127.0.0.1:{tls_port}");
    // Two clinics on the same network; the client certificate carries the demo clinic's name.
    let clinics = format!(
        r#"[{{id="demo", name="Demo", ae_titles=["{CLINIC_AE}"], networks=[],
              certificate_names=["{CLINIC_CERTIFICATE_NAME}"]}},
            {{id="other", name="Other", ae_titles=["OTHER_CLINIC"], networks=[],
              certificate_names=["other-clinic.telecardio.test"]}}]"#
    );
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[
            ("TELECARDIO_CLINICS", clinics.as_str()),
            ("TELECARDIO_DICOM__TLS__ENABLED", "true"),
            ("TELECARDIO_DICOM__TLS__LISTEN", &listen),
            ("TELECARDIO_DICOM__TLS__CERTIFICATE", &cert),
            ("TELECARDIO_DICOM__TLS__PRIVATE_KEY", &key),
            ("TELECARDIO_DICOM__TLS__CLIENT_CA", &ca),
        ],
    );
    let file = test_image("us-single.dcm");
    let port = tls_port.to_string();

    let (ok, out) = run({
        let mut c = dcmtk("storescu");
        c.args(["-v", "+tls", &client_key, &client_cert, "+cf", &ca]);
        c.args(["-aet", CLINIC_AE, "-aec", AE, "127.0.0.1", &port])
            .arg(&file);
        c
    });
    assert!(
        ok && out.contains("Received Store Response (Success)"),
        "{out}"
    );
    assert_eq!(server.instances().len(), 1);

    // The demo clinic's certificate calling as the other clinic's AE is refused, and nothing
    // of it is stored.
    let (ok, out) = run({
        let mut c = dcmtk("storescu");
        c.args(["-v", "+tls", &client_key, &client_cert, "+cf", &ca]);
        c.args(["-aet", "OTHER_CLINIC", "-aec", AE, "127.0.0.1", &port])
            .arg(&file);
        c
    });
    assert!(
        !out.contains("Received Store Response (Success)"),
        "a certificate of one clinic called as another's AE:\n{out}"
    );
    assert!(!ok || !out.contains("Success"), "{out}");
    assert!(
        server.log().contains("certificate_names of `other`"),
        "{}",
        server.log()
    );
    // Audited as a security event, as a rejection on the plain port is.
    assert!(
        server
            .audit_events("dicom_association_rejected")
            .iter()
            .any(
                |(actor, _, outcome)| actor == "OTHER_CLINIC" && outcome == "certificate_not_bound"
            ),
        "{:?}",
        server.audit_events("dicom_association_rejected")
    );

    // Without a client certificate the handshake is refused and nothing is stored.
    let (ok, out) = run({
        let mut c = dcmtk("storescu");
        c.args([
            "+tla",
            "+cf",
            &ca,
            "-aet",
            CLINIC_AE,
            "-aec",
            AE,
            "127.0.0.1",
            &port,
        ]);
        c.arg(&file);
        c
    });
    assert!(!ok, "accepted without a client certificate:\n{out}");
    // Plain DICOM to the TLS port does not get through either.
    let (ok, _) = storescu(tls_port, std::slice::from_ref(&file));
    assert!(!ok);
    assert_eq!(server.instances().len(), 1);
}
