//! Malformed and hostile C-STOREs, crafted byte by byte with dicom-ul's client (no foreign tool
//! sends broken data on purpose): each gets the right failure status, a log line, nothing
//! stored, and the server keeps serving.

mod common;

use std::net::TcpStream;

use common::*;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::association::client::ClientAssociation;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use dicom_ul::ClientAssociationOptions;

const US_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.6.1";
const ECG_12_LEAD: &str = "1.2.840.10008.5.1.4.1.1.9.1.1";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";
const STUDY: &str = "1.2.826.0.1.3680043.10.99.1";
const SERIES: &str = "1.2.826.0.1.3680043.10.99.1.1";

fn el(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&element.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
    out
}

fn ui(value: &str) -> Vec<u8> {
    let mut v = value.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    v
}

struct Fields<'a> {
    sop_class: &'a str,
    sop_instance: Option<&'a str>,
    study: &'a str,
    series: &'a str,
}

fn dataset(f: &Fields) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend(el(0x0008, 0x0016, b"UI", &ui(f.sop_class)));
    if let Some(uid) = f.sop_instance {
        d.extend(el(0x0008, 0x0018, b"UI", &ui(uid)));
    }
    d.extend(el(0x0008, 0x0060, b"CS", b"US"));
    d.extend(el(0x0010, 0x0010, b"PN", b"Test^Bad "));
    d.extend(el(0x0010, 0x0020, b"LO", b"BAD-1 "));
    d.extend(el(0x0020, 0x000D, b"UI", &ui(f.study)));
    d.extend(el(0x0020, 0x000E, b"UI", &ui(f.series)));
    d.extend(el(0x7FE0, 0x0010, b"OB", &[7u8; 64]));
    d
}

fn valid(uid: &str) -> Vec<u8> {
    dataset(&Fields {
        sop_class: US_IMAGE,
        sop_instance: Some(uid),
        study: STUDY,
        series: SERIES,
    })
}

fn connect(port: u16) -> ClientAssociation<TcpStream> {
    ClientAssociationOptions::new()
        .calling_ae_title(CLINIC_AE)
        .called_ae_title(AE)
        .with_presentation_context(US_IMAGE, vec![EXPLICIT_LE])
        .with_presentation_context(ECG_12_LEAD, vec![EXPLICIT_LE])
        .establish(("127.0.0.1", port))
        .expect("association")
}

fn context_id(assoc: &ClientAssociation<TcpStream>, sop_class: &str) -> u8 {
    assoc
        .presentation_contexts()
        .iter()
        .find(|pc| pc.abstract_syntax == sop_class)
        .expect("context accepted")
        .id
}

fn command(sop_class: &str, sop_instance: &str, message_id: u16) -> Vec<u8> {
    let mut obj = InMemDicomObject::new_empty();
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(sop_class),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(0x0001u16),
    ));
    obj.put(DataElement::new(
        tags::MESSAGE_ID,
        VR::US,
        PrimitiveValue::from(message_id),
    ));
    obj.put(DataElement::new(
        tags::PRIORITY,
        VR::US,
        PrimitiveValue::from(0u16),
    ));
    obj.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(0x0000u16),
    ));
    obj.put(DataElement::new(
        tags::AFFECTED_SOP_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(sop_instance),
    ));
    let mut body = Vec::new();
    obj.write_dataset_with_ts(&mut body, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .unwrap();
    let mut out = vec![0, 0, 0, 0, 4, 0, 0, 0];
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

/// Sends one C-STORE on the context of `context_class` and returns the response status.
fn store(
    assoc: &mut ClientAssociation<TcpStream>,
    context_class: &str,
    sop_class: &str,
    sop_instance: &str,
    data: &[u8],
) -> u16 {
    let pc = context_id(assoc, context_class);
    assoc
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command(sop_class, sop_instance, 1),
            }],
        })
        .unwrap();
    let chunks: Vec<&[u8]> = data.chunks(16 * 1024).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        assoc
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Data,
                    is_last: i + 1 == chunks.len(),
                    data: chunk.to_vec(),
                }],
            })
            .unwrap();
    }
    match assoc.receive().unwrap() {
        Pdu::PData { data } => {
            let obj = InMemDicomObject::read_dataset_with_ts(
                &data[0].data[..],
                &IMPLICIT_VR_LITTLE_ENDIAN.erased(),
            )
            .unwrap();
            obj.element(tags::STATUS).unwrap().to_int::<u16>().unwrap()
        }
        other => panic!("unexpected {other:?}"),
    }
}

fn stored_objects(server: &Server) -> Vec<String> {
    let root = server.data_dir().join("objects");
    files_under(&root)
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect()
}

/// What is wrong, presentation context class, request class, instance UID, data, status.
type Case<'a> = (&'a str, &'a str, &'a str, String, Vec<u8>, u16);

fn every_bad_input_refused_with_nothing_stored(db: Db) {
    let server = Server::start_with(
        db,
        Store::Local,
        &[("TELECARDIO_INGEST__MAX_OBJECT_BYTES", "65536")],
    );
    let mut assoc = connect(server.dicom_port);

    let good = "1.2.826.0.1.3680043.10.99.1.1.1";
    assert_eq!(
        store(&mut assoc, US_IMAGE, US_IMAGE, good, &valid(good)),
        0x0000
    );

    let uid = "1.2.826.0.1.3680043.10.99.1.1.2";
    let full = valid(uid);
    let too_long = format!("1.2.{}", "3".repeat(64));
    let oversize = {
        let mut d = valid(uid);
        d.truncate(d.len() - 76); // drop the pixel data
        d.extend(el(0x7FE0, 0x0010, b"OB", &vec![0u8; 128 * 1024]));
        d
    };
    let stray_delimiter = {
        let mut d = valid(uid);
        d.splice(0..0, [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        d
    };
    let past_end = {
        let mut d = valid(uid);
        d.extend([0x42, 0x00, 0x11, 0x00, b'O', b'B', 0, 0, 0xE8, 0x03, 0, 0]);
        d.extend([0u8; 10]);
        d
    };
    let cases: Vec<Case> = vec![
        (
            "truncated mid-element",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            full[..full.len() - 30].to_vec(),
            0xC000,
        ),
        (
            "stray sequence delimiter",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            stray_delimiter,
            0xC000,
        ),
        (
            "value length past the end",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            past_end,
            0xC000,
        ),
        (
            "SOP Instance UID missing from the data set",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            dataset(&Fields {
                sop_class: US_IMAGE,
                sop_instance: None,
                study: STUDY,
                series: SERIES,
            }),
            0xC000,
        ),
        (
            "letters in a UID",
            US_IMAGE,
            US_IMAGE,
            "1.2.abc".into(),
            dataset(&Fields {
                sop_class: US_IMAGE,
                sop_instance: Some("1.2.abc"),
                study: STUDY,
                series: SERIES,
            }),
            0xC000,
        ),
        (
            "UID over 64 characters",
            US_IMAGE,
            US_IMAGE,
            too_long.clone(),
            dataset(&Fields {
                sop_class: US_IMAGE,
                sop_instance: Some(&too_long),
                study: STUDY,
                series: SERIES,
            }),
            0xC000,
        ),
        (
            "path climbing in the Study UID",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            dataset(&Fields {
                sop_class: US_IMAGE,
                sop_instance: Some(uid),
                study: "../../etc",
                series: SERIES,
            }),
            0xC000,
        ),
        (
            "empty UID component",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            dataset(&Fields {
                sop_class: US_IMAGE,
                sop_instance: Some(uid),
                study: STUDY,
                series: "1..2",
            }),
            0xC000,
        ),
        (
            "data set SOP class contradicts its presentation context",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            dataset(&Fields {
                sop_class: ECG_12_LEAD,
                sop_instance: Some(uid),
                study: STUDY,
                series: SERIES,
            }),
            0xA900,
        ),
        (
            "request SOP class contradicts its presentation context",
            US_IMAGE,
            ECG_12_LEAD,
            uid.into(),
            valid(uid),
            0xA900,
        ),
        (
            "SOP Instance UID differs from the request",
            US_IMAGE,
            US_IMAGE,
            "1.2.3.4".into(),
            valid(uid),
            0xA900,
        ),
        (
            "element over the object size limit",
            US_IMAGE,
            US_IMAGE,
            uid.into(),
            oversize,
            0xA700,
        ),
    ];
    for (what, context, sop_class, instance, data, expected) in &cases {
        let status = store(&mut assoc, context, sop_class, instance, data);
        assert_eq!(status, *expected, "{what}: got {status:#06X}");
    }
    // Still serving on the same association, and on a new one.
    let good2 = "1.2.826.0.1.3680043.10.99.1.1.3";
    assert_eq!(
        store(&mut assoc, US_IMAGE, US_IMAGE, good2, &valid(good2)),
        0x0000
    );
    assoc.release().unwrap();
    let (ok, out) = echo(server.dicom_port);
    assert!(ok, "{out}");

    let objects = stored_objects(&server);
    assert_eq!(
        objects.len(),
        2,
        "only the two valid objects are stored: {objects:?}"
    );
    assert!(
        objects.iter().all(|o| o.starts_with("dicom/")),
        "{objects:?}"
    );
    let uids: Vec<String> = server
        .instances()
        .iter()
        .map(|i| i["sop_instance_uid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uids.len(), 2, "{uids:?}");
    let log = server.log();
    for needle in [
        "malformed data set",
        "invalid",
        "contradicts",
        "exceeds the configured maximum",
    ] {
        assert!(log.contains(needle), "log lacks `{needle}`:\n{log}");
    }
}

#[test]
fn every_bad_input_refused_with_nothing_stored_sqlite() {
    every_bad_input_refused_with_nothing_stored(Db::Sqlite)
}

#[test]
fn every_bad_input_refused_with_nothing_stored_postgres() {
    every_bad_input_refused_with_nothing_stored(Db::Postgres)
}

#[test]
fn aborted_association_leaves_nothing_behind() {
    let server = Server::start_with(
        Db::Sqlite,
        Store::Local,
        &[("TELECARDIO_STORE__INLINE_PUT_MAX_BYTES", "1024")],
    );
    let mut assoc = connect(server.dicom_port);
    let uid = "1.2.826.0.1.3680043.10.99.1.1.9";
    let pc = context_id(&assoc, US_IMAGE);
    assoc
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command(US_IMAGE, uid, 1),
            }],
        })
        .unwrap();
    // Enough to start a streamed (multipart) upload, then abort mid-object.
    let mut data = valid(uid);
    data.truncate(data.len() - 76);
    data.extend(el(0x7FE0, 0x0010, b"OB", &vec![1u8; 64 * 1024]));
    for chunk in data[..40 * 1024].chunks(8 * 1024) {
        assoc
            .send(&Pdu::PData {
                data: vec![PDataValue {
                    presentation_context_id: pc,
                    value_type: PDataValueType::Data,
                    is_last: false,
                    data: chunk.to_vec(),
                }],
            })
            .unwrap();
    }
    assoc.abort().unwrap();
    wait_for(std::time::Duration::from_secs(10), || {
        server.log().contains("peer aborted")
    });
    assert!(
        stored_objects(&server).is_empty(),
        "{:?}",
        stored_objects(&server)
    );
    assert!(server.studies().is_empty());
}
