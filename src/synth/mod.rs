//! Deterministic, realistic test objects: the committed set in `test-images/`, larger corpora
//! for benchmarks, and single very large objects for streaming tests.
//!
//! Everything is synthetic (no real patient) and byte-for-byte reproducible: UIDs derive from
//! names, dates are fixed, pixels and samples are computed. Nothing here is used by the service
//! itself.

pub(crate) mod iod;
mod pdf;
mod signal;

use std::io::Write;
use std::path::{Path, PathBuf};

use iod::{StudyRef, Subject};

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {message}")]
    Encode { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Set {
    /// The small committed set of `test-images/`.
    Committed,
    /// A benchmark corpus of `--count` objects of `--kind`.
    Corpus,
    /// One multi-frame echo object of at least `--size-mib` MiB, streamed to disk.
    Big,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Single-frame echo images and 12-lead ECGs (tens to hundreds of KB).
    Small,
    /// Multi-frame echo clips and Holter recordings (tens of MB).
    Large,
    /// 16×16 echo images (about 1 KB), grouped like an archive: a patient every hundred
    /// objects, a study every twenty; for query benchmarks.
    Tiny,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Directory to write into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_enum, default_value_t = Set::Committed)]
    pub set: Set,
    #[arg(long, value_enum, default_value_t = Kind::Small)]
    pub kind: Kind,
    /// Objects in a corpus.
    #[arg(long, default_value_t = 100)]
    pub count: usize,
    /// Size of the `big` object in MiB.
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
}

/// Writes the requested set and returns how many objects were written.
pub fn generate(args: &GenerateArgs) -> Result<usize, SynthError> {
    std::fs::create_dir_all(&args.out).map_err(|source| SynthError::Io {
        path: args.out.clone(),
        source,
    })?;
    match args.set {
        Set::Committed => committed(&args.out),
        Set::Corpus => corpus(&args.out, args.kind, args.count),
        Set::Big => {
            big(&args.out.join("us-multiframe-big.dcm"), args.size_mib << 20)?;
            Ok(1)
        }
    }
}

fn committed(out: &Path) -> Result<usize, SynthError> {
    let subject = Subject::demo();
    let study = StudyRef::new("committed-study", "E027-2026-0001");
    let objects = [
        (
            "us-multiframe-echo.dcm",
            iod::us_multiframe(&subject, &study, "echo-clip", 1, 30, 256, 256),
        ),
        (
            "us-single.dcm",
            iod::us_single(&subject, &study, "echo-still", 2, 480, 640),
        ),
        (
            "ecg-12lead.dcm",
            iod::ecg_12_lead(&subject, &study, "ecg-rest", 3),
        ),
        (
            "holter-ambulatory.dcm",
            iod::ambulatory_ecg(&subject, &study, "holter", 4, 10),
        ),
        (
            "holter-summary-pdf.dcm",
            iod::encapsulated_pdf(&subject, &study, "holter-summary", 5),
        ),
    ];
    for (name, object) in &objects {
        iod::write(object, &out.join(name))?;
    }
    Ok(objects.len())
}

fn corpus(out: &Path, kind: Kind, count: usize) -> Result<usize, SynthError> {
    for i in 0..count {
        // Ten patients, each with studies of up to twenty objects: realistic grouping that
        // exercises patient, study and series rows alike.
        let subject = if kind == Kind::Tiny {
            Subject::numbered(i / 100)
        } else {
            Subject::numbered(i % 10)
        };
        let study = StudyRef::new(
            &format!("corpus-{kind:?}-study-{}", i / 20),
            &format!("E027-B-{:05}", i / 20),
        );
        let name = format!("{kind:?}-{i:05}").to_lowercase();
        let object = match (kind, i % 2) {
            (Kind::Small, 0) => iod::us_single(&subject, &study, &name, i, 240, 320),
            (Kind::Small, _) => iod::ecg_12_lead(&subject, &study, &name, i),
            (Kind::Large, 0) => iod::us_multiframe(&subject, &study, &name, i, 60, 480, 640),
            (Kind::Large, _) => iod::ambulatory_ecg(&subject, &study, &name, i, 180),
            (Kind::Tiny, _) => iod::us_single(&subject, &study, &name, i, 16, 16),
        };
        iod::write(&object, &out.join(format!("{name}.dcm")))?;
    }
    Ok(count)
}

/// One multi-frame object of at least `bytes`, written without holding its pixels in memory:
/// the data set up to Pixel Data by dicom-object, then the Pixel Data element streamed.
fn big(path: &Path, bytes: u64) -> Result<(), SynthError> {
    let (rows, cols) = (480u64, 640u64);
    let frame = rows * cols;
    let frames = bytes.div_ceil(frame).max(1);
    let subject = Subject::demo();
    let study = StudyRef::new("big-study", "E027-BIG-0001");
    let head = iod::us_multiframe_header(
        &subject,
        &study,
        "big",
        1,
        frames as u32,
        rows as u16,
        cols as u16,
    );
    let io = |source| SynthError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file =
        std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path).map_err(io)?);
    iod::write_to(&head, &mut file, path)?;
    let length = frames * frame;
    let length = u32::try_from(length).map_err(|_| SynthError::Encode {
        path: path.to_owned(),
        message: format!("{length} bytes do not fit one Pixel Data element"),
    })?;
    // (7FE0,0010) OB, explicit VR little endian.
    file.write_all(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0])
        .map_err(io)?;
    file.write_all(&length.to_le_bytes()).map_err(io)?;
    // One cardiac cycle of frames, computed once and repeated: a loop of a real clip.
    let cycle: Vec<Vec<u8>> = (0..30)
        .map(|f| {
            let mut buffer = vec![0u8; frame as usize];
            signal::echo_frame(&mut buffer, rows as usize, cols as usize, f);
            buffer
        })
        .collect();
    for f in 0..frames as usize {
        file.write_all(&cycle[f % cycle.len()]).map_err(io)?;
    }
    file.flush().map_err(io)
}

/// The index rows the `tiny` corpus object number `i` would produce once received, without
/// writing any object: for loading query benchmarks with a million instances in minutes.
/// Same patients, studies, series and UIDs as `generate --set corpus --kind tiny`.
pub fn tiny_index_record(i: usize, clinic_id: &str) -> crate::index::InstanceRecord {
    use sha2::{Digest, Sha256};
    let subject = Subject::numbered(i / 100);
    let study = StudyRef::new(
        &format!("corpus-{:?}-study-{}", Kind::Tiny, i / 20),
        &format!("E027-B-{:05}", i / 20),
    );
    let name = format!("{:?}-{i:05}", Kind::Tiny).to_lowercase();
    let series_uid = iod::uid(&format!("{}/Echo images", study.name()));
    let sop_uid = iod::uid(&format!("{}/{name}", study.name()));
    let digest = hex::encode(Sha256::digest(sop_uid.as_bytes()));
    crate::index::InstanceRecord {
        object_key: format!("bench/{}/{series_uid}/{sop_uid}_{digest}.dcm", study.uid()),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.6.1".into(),
        sop_instance_uid: sop_uid,
        study_uid: study.uid().to_owned(),
        series_uid,
        transfer_syntax: "1.2.840.10008.1.2.1".into(),
        size_bytes: 1200,
        sha256: digest.clone(),
        dataset_sha256: digest,
        clinic_id: clinic_id.to_owned(),
        calling_ae: "BENCH".into(),
        made_here: false,
        received_at: None,
        patient_id: subject.id().to_owned(),
        patient_issuer: "LT-AK".into(),
        patient_name: subject.name().to_owned(),
        patient_name_search: crate::ingest::meta::search_form(subject.name()),
        birth_date: subject.birth_date().to_owned(),
        sex: subject.sex().to_owned(),
        other_patient_ids: String::new(),
        study_date: "20261120".into(),
        study_time: "093000".into(),
        accession_number: study.accession().to_owned(),
        accession_issuer: String::new(),
        study_id: "1".into(),
        study_description: "Širdies tyrimas / cardiac examination".into(),
        referring_physician: "Kairys^Vytautas".into(),
        referring_physician_search: "kairys^vytautas".into(),
        modality: "US".into(),
        series_number: Some(2),
        series_description: "Echo images".into(),
        instance_number: Some((i % 20) as i64 + 1),
        number_of_frames: None,
        examined_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(out: &Path, set: Set) -> GenerateArgs {
        GenerateArgs {
            out: out.to_owned(),
            set,
            kind: Kind::Small,
            count: 4,
            size_mib: 3,
        }
    }

    #[test]
    fn committed_set_is_reproducible() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        assert_eq!(generate(&args(a.path(), Set::Committed)).unwrap(), 5);
        generate(&args(b.path(), Set::Committed)).unwrap();
        for entry in std::fs::read_dir(a.path()).unwrap() {
            let entry = entry.unwrap();
            let other = std::fs::read(b.path().join(entry.file_name())).unwrap();
            assert_eq!(
                std::fs::read(entry.path()).unwrap(),
                other,
                "{:?}",
                entry.file_name()
            );
        }
    }

    #[test]
    fn ambulatory_ecg_respects_the_iod_limits() {
        use dicom_dictionary_std::tags;
        let dir = tempfile::tempdir().unwrap();
        generate(&args(dir.path(), Set::Committed)).unwrap();
        let obj = dicom_object::open_file(dir.path().join("holter-ambulatory.dcm")).unwrap();
        let groups = obj
            .element(tags::WAVEFORM_SEQUENCE)
            .unwrap()
            .items()
            .unwrap();
        assert_eq!(groups.len(), 1, "one multiplex group");
        let group = &groups[0];
        let channels = group
            .element(tags::NUMBER_OF_WAVEFORM_CHANNELS)
            .unwrap()
            .to_int::<u16>()
            .unwrap();
        assert!((1..=12).contains(&channels));
        let frequency = group
            .element(tags::SAMPLING_FREQUENCY)
            .unwrap()
            .to_float64()
            .unwrap();
        assert!((50.0..=1000.0).contains(&frequency));
        let samples = group
            .element(tags::NUMBER_OF_WAVEFORM_SAMPLES)
            .unwrap()
            .to_int::<u32>()
            .unwrap();
        let data = group
            .element(tags::WAVEFORM_DATA)
            .unwrap()
            .to_bytes()
            .unwrap();
        assert_eq!(data.len(), samples as usize * channels as usize * 2);
    }

    #[test]
    fn big_object_has_the_requested_size_and_a_consistent_pixel_data_length() {
        let dir = tempfile::tempdir().unwrap();
        generate(&args(dir.path(), Set::Big)).unwrap();
        let path = dir.path().join("us-multiframe-big.dcm");
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size >= 3 << 20);
        let obj = dicom_object::OpenFileOptions::new()
            .open_file(&path)
            .unwrap();
        let frames = obj
            .element(dicom_dictionary_std::tags::NUMBER_OF_FRAMES)
            .unwrap()
            .to_int::<u64>()
            .unwrap();
        let pixels = obj
            .element(dicom_dictionary_std::tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap();
        assert_eq!(pixels.len() as u64, frames * 480 * 640);
    }
}
