//! Holter recordings written by software nobody here wrote (PyPI `ishneholterlib` for ISHNE
//! 1.0, `pyedflib` for EDF+), read by our readers and copied into DICOM Ambulatory ECG by our
//! streaming writer, then decoded by pydicom: every sample of every lead over more than an
//! hour, so across the seam between two instances, equals what was written, and each
//! instance starts when the one before ended.

mod common;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use telecardio::holter::dicom::{parts, write_instance, AMBULATORY_ECG};
use telecardio::holter::recording::{from_edf, from_ishne, EdfInstants, Recording};
use telecardio::holter::{edf, ishne, Instants};

/// A little more than an hour: two instances, the second short.
const SECONDS: u64 = 3605;

fn head(recording: &Recording, index: usize, first: u64) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let mut put = |tag, vr, value: &str| {
        o.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    };
    put(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(tags::SOP_CLASS_UID, VR::UI, AMBULATORY_ECG);
    put(
        tags::SOP_INSTANCE_UID,
        VR::UI,
        &format!("2.25.1600{}{index}", recording.rate),
    );
    let at = recording.start
        + jiff::SignedDuration::from_micros((first * 1_000_000 / u64::from(recording.rate)) as i64);
    put(
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        &at.strftime("%Y%m%d%H%M%S").to_string(),
    );
    put(tags::PATIENT_NAME, VR::PN, "Žukauskienė^Rūta");
    put(tags::MODALITY, VR::CS, "ECG");
    put(tags::INSTANCE_NUMBER, VR::IS, &(index + 1).to_string());
    o
}

/// The recording copied into instances under `dir`; their paths.
fn copy(dir: &Path, name: &str, recording: &Recording, samples: &mut dyn Instants) -> Vec<PathBuf> {
    parts(recording.instants, recording.rate)
        .into_iter()
        .map(|part| {
            let path = dir.join(format!("{name}-{}.dcm", part.index));
            let mut file = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
            write_instance(
                &mut file,
                &head(recording, part.index, part.first),
                &recording.channels,
                recording.rate,
                part,
                samples,
            )
            .unwrap();
            std::io::Write::flush(&mut file).unwrap();
            path
        })
        .collect()
}

fn check(dir: &Path, prefix: &str, recording: &Recording, files: &[PathBuf]) -> String {
    let out = Command::new(python())
        .arg(repo().join("tests/holter/check.py"))
        .arg(dir.join(prefix))
        .arg(recording.channels.len().to_string())
        .arg(recording.rate.to_string())
        .arg(recording.start.strftime("%Y%m%d%H%M%S").to_string())
        .args(files)
        .output()
        .expect("run check.py");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn independent_recordings_copy_into_dicom_sample_for_sample() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(python())
        .arg(repo().join("tests/holter/write.py"))
        .arg(dir.path())
        .arg(SECONDS.to_string())
        .output()
        .expect("run write.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // ISHNE: three EASI leads at 200 Hz.
    let path = dir.path().join("recording.ecg");
    let len = std::fs::metadata(&path).unwrap().len();
    let mut source = BufReader::new(std::fs::File::open(&path).unwrap());
    let header = ishne::read_header(&mut source, len).unwrap();
    let recording = from_ishne(&header);
    assert_eq!(recording.instants, 200 * SECONDS);
    assert_eq!(recording.start.to_string(), "2026-03-06T08:30:15");
    assert_eq!(recording.patient_id, "48507120013");
    assert_eq!(recording.channels[2].sensitivity_uv, 5.0);
    let mut samples = ishne::Samples::new(source, &header);
    let files = copy(dir.path(), "ishne", &recording, &mut samples);
    assert_eq!(files.len(), 2);
    let said = check(dir.path(), "ishne", &recording, &files);
    assert!(said.contains("['ES', 'AS', 'AI']"), "{said}");

    // EDF+: two ECG signals at 250 Hz (µV and mV), respiration left out.
    let path = dir.path().join("recording.edf");
    let len = std::fs::metadata(&path).unwrap().len();
    let mut source = BufReader::new(std::fs::File::open(&path).unwrap());
    let header = edf::read_header(&mut source, len).unwrap();
    let (recording, picks) = from_edf(&header).unwrap();
    assert_eq!(recording.format, "EDF+");
    assert_eq!(recording.rate, 250);
    assert_eq!(recording.left_out, ["Resp"]);
    assert!((recording.channels[1].sensitivity_uv - 10_000.0 / 65_535.0).abs() < 1e-9);
    let records = edf::Records::new(source, &header);
    let mut samples = EdfInstants::new(records, &header, picks);
    let files = copy(dir.path(), "edf", &recording, &mut samples);
    assert_eq!(files.len(), 2);
    let said = check(dir.path(), "edf", &recording, &files);
    assert!(said.contains("['ECG II', 'ECG V5']"), "{said}");
}
