//! EDF and EDF+ recordings (Kemp et al., 1992 and 2003): an ASCII header of 256 bytes plus
//! 256 per signal, then data records, each holding every signal's samples for the record's
//! duration as little-endian i16. EDF+ adds an annotations signal ("EDF Annotations") of
//! time-stamped texts and may be discontinuous (`EDF+D`: each record says when it starts).
//!
//! The header is checked against the file before a sample is read: a record count that the
//! file's size contradicts, digital or physical ranges that cannot scale, sample counts that
//! do not fit a record. The reader hands out one data record at a time.

use std::io::Read;

use jiff::civil::{Date, DateTime, Time};

use super::HolterError;

/// The fixed part of the header; each signal adds 256 bytes.
pub const FIXED: usize = 256;

/// More signals than this is not a recording but a damaged header.
const MAX_SIGNALS: usize = 512;

/// Continuous or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Edf,
    /// EDF+ continuous.
    PlusContinuous,
    /// EDF+ discontinuous: records carry their own start times.
    PlusDiscontinuous,
}

/// One signal of the header.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    pub label: String,
    pub transducer: String,
    /// `uV`, `mV`, `V` for ECG.
    pub physical_dimension: String,
    pub physical_min: f64,
    pub physical_max: f64,
    pub digital_min: i32,
    pub digital_max: i32,
    pub prefiltering: String,
    pub samples_per_record: usize,
}

impl Signal {
    /// Physical units per digital unit.
    pub fn gain(&self) -> f64 {
        (self.physical_max - self.physical_min) / f64::from(self.digital_max - self.digital_min)
    }

    /// The physical value of digital 0.
    pub fn offset(&self) -> f64 {
        self.physical_min - self.gain() * f64::from(self.digital_min)
    }

    /// EDF+'s annotations channel, not a signal.
    pub fn is_annotations(&self) -> bool {
        self.label == "EDF Annotations"
    }

    /// An electrocardiogram lead, by its EDF+ standard label (`ECG II`, `ECG V5`) or a
    /// recorder's plain one (`ECG`, `EKG`, `II`, `V1`), measured in volts.
    pub fn is_ecg(&self) -> bool {
        let volts = matches!(self.physical_dimension.as_str(), "uV" | "mV" | "V" | "nV");
        let label = self.label.to_ascii_uppercase();
        let lead = label
            .trim_start_matches("ECG")
            .trim_start_matches("EKG")
            .trim();
        let known = [
            "", "I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6", "ES",
            "AS", "AI", "X", "Y", "Z",
        ];
        volts && (label.starts_with("ECG") || label.starts_with("EKG") || known.contains(&lead))
    }
}

/// What the header says, checked against the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub variant: Variant,
    pub patient: String,
    pub recording: String,
    /// Local time at the recorder; EDF has no zone.
    pub start: DateTime,
    pub records: u64,
    /// Seconds per data record.
    pub record_seconds: f64,
    pub signals: Vec<Signal>,
    /// Bytes per data record.
    pub record_bytes: usize,
    pub data_offset: u64,
}

fn field(field: &'static str, problem: impl Into<String>) -> HolterError {
    HolterError::field(field, problem)
}

/// ASCII fields in a row: the header's own layout.
struct Ascii<'a>(&'a [u8]);

impl Ascii<'_> {
    fn text(&self, at: usize, len: usize) -> String {
        self.0[at..at + len]
            .iter()
            .map(|b| char::from(*b))
            .collect::<String>()
            .trim()
            .to_owned()
    }

    fn number<T: std::str::FromStr>(
        &self,
        at: usize,
        len: usize,
        name: &'static str,
    ) -> Result<T, HolterError> {
        let text = self.text(at, len);
        text.parse()
            .map_err(|_| field(name, format!("{text:?} is not a number")))
    }
}

/// Reads and checks the header from the start of `source`; `file_len` is the file's size.
/// On return `source` stands at the first data record.
pub fn read_header(source: &mut impl Read, file_len: u64) -> Result<Header, HolterError> {
    if file_len < FIXED as u64 {
        return Err(HolterError::Truncated(format!(
            "{file_len} bytes, shorter than the {FIXED}-byte EDF header"
        )));
    }
    let mut fixed = vec![0u8; FIXED];
    source.read_exact(&mut fixed)?;
    if &fixed[..8] != b"0       " {
        return Err(field(
            "version",
            format!(
                "{:?}; an EDF file starts with \"0\" and seven spaces",
                String::from_utf8_lossy(&fixed[..8])
            ),
        ));
    }
    let a = Ascii(&fixed);
    let count: usize = a.number(252, 4, "number_of_signals")?;
    if count == 0 || count > MAX_SIGNALS {
        return Err(field(
            "number_of_signals",
            format!("{count}; expected 1 to {MAX_SIGNALS}"),
        ));
    }
    let header_bytes: u64 = a.number(184, 8, "header_bytes")?;
    let expected = (FIXED + 256 * count) as u64;
    if header_bytes != expected {
        return Err(field(
            "header_bytes",
            format!("{header_bytes}, but {count} signals make a header of {expected}"),
        ));
    }
    if file_len < expected {
        return Err(HolterError::Truncated(format!(
            "{file_len} bytes, shorter than the {expected}-byte header"
        )));
    }
    let reserved = a.text(192, 44);
    let variant = match reserved.get(..5) {
        Some("EDF+C") => Variant::PlusContinuous,
        Some("EDF+D") => Variant::PlusDiscontinuous,
        _ => Variant::Edf,
    };
    let start = start(&a)?;
    let records: i64 = a.number(236, 8, "number_of_data_records")?;
    let record_seconds: f64 = a.number(244, 8, "data_record_duration")?;
    if !(record_seconds.is_finite() && record_seconds > 0.0) {
        return Err(field(
            "data_record_duration",
            format!("{record_seconds} s; a recording's records last a positive time"),
        ));
    }

    let mut rest = vec![0u8; 256 * count];
    source.read_exact(&mut rest)?;
    let s = Ascii(&rest);
    // Each field for every signal in turn: labels, then transducers, and so on.
    let column = |offset: usize, width: usize, i: usize| offset * count + width * i;
    let mut signals = Vec::with_capacity(count);
    for i in 0..count {
        let signal = Signal {
            label: s.text(column(0, 16, i), 16),
            transducer: s.text(column(16, 80, i), 80),
            physical_dimension: s.text(column(96, 8, i), 8),
            physical_min: s.number(column(104, 8, i), 8, "physical_minimum")?,
            physical_max: s.number(column(112, 8, i), 8, "physical_maximum")?,
            digital_min: s.number(column(120, 8, i), 8, "digital_minimum")?,
            digital_max: s.number(column(128, 8, i), 8, "digital_maximum")?,
            prefiltering: s.text(column(136, 80, i), 80),
            samples_per_record: s.number(column(216, 8, i), 8, "samples_per_record")?,
        };
        check(&signal, i)?;
        signals.push(signal);
    }
    let record_bytes: usize = signals.iter().map(|s| 2 * s.samples_per_record).sum();
    if record_bytes == 0 {
        return Err(field("samples_per_record", "no signal has samples"));
    }
    let data = file_len - expected;
    if !data.is_multiple_of(record_bytes as u64) {
        return Err(HolterError::Truncated(format!(
            "{data} bytes of data records are not whole records of {record_bytes} bytes"
        )));
    }
    let held = data / record_bytes as u64;
    // −1 means the recorder did not know when it stopped; the file's size then tells.
    let records = match records {
        -1 => held,
        n if u64::try_from(n).ok() == Some(held) => held,
        n => {
            return Err(field(
                "number_of_data_records",
                format!(
                    "the header says {n}; the file holds {held} records of {record_bytes} bytes"
                ),
            ))
        }
    };
    if records == 0 {
        return Err(field(
            "number_of_data_records",
            "the recording has no data records",
        ));
    }
    Ok(Header {
        variant,
        patient: a.text(8, 80),
        recording: a.text(88, 80),
        start,
        records,
        record_seconds,
        signals,
        record_bytes,
        data_offset: expected,
    })
}

/// A signal's ranges must scale: digital maximum above minimum within i16, physical range
/// not empty.
fn check(s: &Signal, i: usize) -> Result<(), HolterError> {
    let name = format!("signal {} ({})", i + 1, s.label);
    let i16s = i32::from(i16::MIN)..=i32::from(i16::MAX);
    if !(i16s.contains(&s.digital_min) && i16s.contains(&s.digital_max))
        || s.digital_max <= s.digital_min
    {
        return Err(field(
            "digital_minimum",
            format!(
                "{name}: {} to {} is not a range of 16-bit samples",
                s.digital_min, s.digital_max
            ),
        ));
    }
    if s.physical_max == s.physical_min
        || !s.physical_min.is_finite()
        || !s.physical_max.is_finite()
    {
        return Err(field(
            "physical_minimum",
            format!(
                "{name}: {} to {} cannot scale",
                s.physical_min, s.physical_max
            ),
        ));
    }
    if s.samples_per_record > 1_000_000 {
        return Err(field(
            "samples_per_record",
            format!("{name}: {} per record", s.samples_per_record),
        ));
    }
    Ok(())
}

/// The start: `dd.mm.yy` and `hh.mm.ss`; EDF+ writes the full year in the recording field
/// (`Startdate 06-MAR-2026 …`), plain EDF leaves two digits (85–99 are the 1900s).
fn start(a: &Ascii) -> Result<DateTime, HolterError> {
    let date = a.text(168, 8);
    let time = a.text(176, 8);
    let parts = |text: &str| -> Option<[i8; 3]> {
        let mut it = text.split('.').map(|p| p.parse::<i8>().ok());
        let out = [it.next()??, it.next()??, it.next()??];
        it.next().is_none().then_some(out)
    };
    let [d, m, yy] =
        parts(&date).ok_or_else(|| field("startdate", format!("{date:?} is not dd.mm.yy")))?;
    let mut year = if yy >= 85 { 1900 } else { 2000 } + i16::from(yy);
    let recording = a.text(88, 80);
    if let Some(full) = recording
        .strip_prefix("Startdate ")
        .and_then(|r| r.split(' ').next())
        .and_then(|d| d.rsplit('-').next())
        .and_then(|y| y.parse::<i16>().ok())
    {
        year = full;
    }
    let date =
        Date::new(year, m, d).map_err(|_| field("startdate", format!("{date:?} is not a date")))?;
    let [h, mi, s] =
        parts(&time).ok_or_else(|| field("starttime", format!("{time:?} is not hh.mm.ss")))?;
    let time = Time::new(h, mi, s, 0)
        .map_err(|_| field("starttime", format!("{time:?} is not a time of day")))?;
    Ok(date.to_datetime(time))
}

/// The data records after the header, one at a time.
pub struct Records<R> {
    source: R,
    left: u64,
    bytes: Vec<u8>,
    counts: Vec<usize>,
}

impl<R: Read> Records<R> {
    pub fn new(source: R, header: &Header) -> Records<R> {
        Records {
            source,
            left: header.records,
            bytes: vec![0; header.record_bytes],
            counts: header
                .signals
                .iter()
                .map(|s| s.samples_per_record)
                .collect(),
        }
    }

    /// The next record's samples, one vector per signal (reused between calls); false at
    /// the end.
    pub fn next_record(&mut self, out: &mut Vec<Vec<i16>>) -> Result<bool, HolterError> {
        if self.left == 0 {
            return Ok(false);
        }
        self.source.read_exact(&mut self.bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                HolterError::Truncated(format!("the data end {} records early", self.left))
            } else {
                HolterError::Io(e)
            }
        })?;
        out.resize_with(self.counts.len(), Vec::new);
        let mut at = 0;
        for (signal, n) in out.iter_mut().zip(&self.counts) {
            signal.clear();
            signal.extend(
                self.bytes[at..at + 2 * n]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])),
            );
            at += 2 * n;
        }
        self.left -= 1;
        Ok(true)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn padded(text: &str, width: usize) -> Vec<u8> {
        let mut b = text.as_bytes().to_vec();
        b.resize(width, b' ');
        b
    }

    /// A signal to write: label, dimension, physical min, max, samples per record.
    pub type Spec = (&'static str, &'static str, f64, f64, usize);
    /// A header column: its width and what it says of a signal.
    type Column = (usize, fn(&Spec) -> String);

    /// An EDF+C file: signals as (label, dimension, physical min, max, samples per record),
    /// digital −32768 … 32767, `records` records of one second; then the bytes.
    pub fn write(signals: &[Spec], records: usize, stated: i64) -> (Vec<u8>, Vec<Vec<i16>>) {
        let n = signals.len();
        let mut h = Vec::new();
        h.extend(padded("0", 8));
        h.extend(padded("X F 12-JUL-1985 Ruta_Zukauskiene", 80));
        h.extend(padded("Startdate 06-MAR-2026 X X X", 80));
        h.extend(padded("06.03.26", 8));
        h.extend(padded("08.30.15", 8));
        h.extend(padded(&(256 + 256 * n).to_string(), 8));
        h.extend(padded("EDF+C", 44));
        h.extend(padded(&stated.to_string(), 8));
        h.extend(padded("1", 8));
        h.extend(padded(&n.to_string(), 4));
        let fields: [Column; 10] = [
            (16, |s| s.0.to_owned()),
            (80, |_| "AgAgCl electrode".to_owned()),
            (8, |s| s.1.to_owned()),
            (8, |s| s.2.to_string()),
            (8, |s| s.3.to_string()),
            (8, |_| "-32768".to_owned()),
            (8, |_| "32767".to_owned()),
            (80, |_| "HP:0.05Hz LP:40Hz".to_owned()),
            (8, |s| s.4.to_string()),
            (32, |_| String::new()),
        ];
        for (width, value) in &fields {
            for s in signals {
                h.extend(padded(&value(s), *width));
            }
        }
        let mut written = vec![Vec::new(); n];
        for r in 0..records {
            for (i, s) in signals.iter().enumerate() {
                for k in 0..s.4 {
                    let v = (((r * 1000 + k) * 7919 + i * 13) % 65_535) as i32 - 32_767;
                    written[i].push(v as i16);
                    h.extend((v as i16).to_le_bytes());
                }
            }
        }
        (h, written)
    }

    fn read_all(bytes: &[u8]) -> Result<(Header, Vec<Vec<i16>>), HolterError> {
        let mut source = bytes;
        let header = read_header(&mut source, bytes.len() as u64)?;
        let mut records = Records::new(source, &header);
        let mut all = vec![Vec::new(); header.signals.len()];
        let mut record = Vec::new();
        while records.next_record(&mut record)? {
            for (a, r) in all.iter_mut().zip(&record) {
                a.extend(r);
            }
        }
        Ok((header, all))
    }

    const SIGNALS: [(&str, &str, f64, f64, usize); 3] = [
        ("ECG II", "uV", -3276.8, 3276.7, 200),
        ("ECG V5", "mV", -5.0, 5.0, 200),
        ("Resp", "Ohm", 0.0, 100.0, 25),
    ];

    #[test]
    fn reads_header_and_records() {
        let (file, written) = write(&SIGNALS, 3, 3);
        let (h, read) = read_all(&file).unwrap();
        assert_eq!(read, written);
        assert_eq!(h.variant, Variant::PlusContinuous);
        assert_eq!(h.start.to_string(), "2026-03-06T08:30:15");
        assert_eq!(h.records, 3);
        assert_eq!(h.signals[0].label, "ECG II");
        assert!(h.signals[0].is_ecg() && h.signals[1].is_ecg() && !h.signals[2].is_ecg());
        // −32768 … 32767 onto −3276.8 … 3276.7 µV: 0.1 µV a unit, 0 at 0.
        assert!((h.signals[0].gain() - 0.1).abs() < 1e-12);
        assert!(h.signals[0].offset().abs() < 1e-9);
        // A recorder that did not know the count (−1): the file's size tells.
        let (unknown, _) = write(&SIGNALS, 2, -1);
        assert_eq!(read_all(&unknown).unwrap().0.records, 2);
    }

    #[test]
    fn lying_headers_are_refused() {
        let refused = |b: &[u8]| read_all(b).map(|_| ()).unwrap_err().to_string();
        let (more, _) = write(&SIGNALS, 3, 5);
        assert!(refused(&more).starts_with("number_of_data_records: the header says 5"));
        let (good, _) = write(&SIGNALS, 3, 3);
        assert!(refused(&good[..good.len() - 10]).contains("truncated"));
        let mut version = good.clone();
        version[0] = b'1';
        assert!(refused(&version).starts_with("version"));
        let mut date = good.clone();
        date[168..176].copy_from_slice(b"31.02.26");
        assert!(refused(&date).starts_with("startdate"));
        let (flat, _) = write(&[("ECG I", "uV", 5.0, 5.0, 10)], 1, 1);
        assert!(refused(&flat).contains("cannot scale"));
    }
}
