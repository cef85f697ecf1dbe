//! A recording as the standard copy needs it, whichever format it came in: when it started,
//! its rate, its length, each channel's lead and scale; and its samples as interleaved
//! instants. ISHNE already stores them so; EDF stores a record of each signal in turn, so
//! the ECG signals are picked and interleaved one record at a time.

use std::io::Read;

use jiff::civil::DateTime;

use super::dicom::Channel;
use super::{edf, ishne, HolterError, Instants, LeadSite};

#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// `ISHNE 1.0`, `EDF` or `EDF+`.
    pub format: &'static str,
    /// Local time at the recorder.
    pub start: DateTime,
    /// Samples per second, per channel.
    pub rate: u32,
    /// Samples per channel.
    pub instants: u64,
    pub channels: Vec<Channel>,
    /// The patient as the file names them: free text, compared with the referral, never
    /// trusted for identity.
    pub patient_id: String,
    pub patient_name: String,
    /// Signals recorded but not carried into the copy (respiration, position, …).
    pub left_out: Vec<String>,
}

/// CID 3001 (MDC) for a lead site, where there is one.
pub fn lead_code(site: LeadSite) -> Option<(&'static str, &'static str)> {
    Some(match site {
        LeadSite::Limb("I") => ("2:1", "Lead I"),
        LeadSite::Limb("II") => ("2:2", "Lead II"),
        LeadSite::Limb("III") => ("2:61", "Lead III"),
        LeadSite::Limb("aVR") => ("2:62", "aVR, augmented voltage, right"),
        LeadSite::Limb("aVL") => ("2:63", "aVL, augmented voltage, left"),
        LeadSite::Limb("aVF") => ("2:64", "aVF, augmented voltage, foot"),
        LeadSite::Precordial(n @ 1..=6) => (
            ["2:3", "2:4", "2:5", "2:6", "2:7", "2:8"][usize::from(n - 1)],
            [
                "Lead V1", "Lead V2", "Lead V3", "Lead V4", "Lead V5", "Lead V6",
            ][usize::from(n - 1)],
        ),
        LeadSite::Orthogonal('X') => ("2:16", "Lead X"),
        LeadSite::Orthogonal('Y') => ("2:17", "Lead Y"),
        LeadSite::Orthogonal('Z') => ("2:18", "Lead Z"),
        LeadSite::HolterBipolar("ES") => ("2:131", "Lead ES"),
        LeadSite::HolterBipolar("AS") => ("2:132", "Lead AS"),
        LeadSite::HolterBipolar("AI") => ("2:133", "Lead AI"),
        _ => return None,
    })
}

/// The lead an EDF label names: `ECG II`, `EKG V5`, `II`, `ES`.
pub fn site_of_label(label: &str) -> LeadSite {
    let upper = label.trim().to_ascii_uppercase();
    let lead = upper
        .trim_start_matches("ECG")
        .trim_start_matches("EKG")
        .trim();
    match lead {
        "I" => LeadSite::Limb("I"),
        "II" => LeadSite::Limb("II"),
        "III" => LeadSite::Limb("III"),
        "AVR" => LeadSite::Limb("aVR"),
        "AVL" => LeadSite::Limb("aVL"),
        "AVF" => LeadSite::Limb("aVF"),
        "V1" | "V2" | "V3" | "V4" | "V5" | "V6" => LeadSite::Precordial(lead.as_bytes()[1] - b'0'),
        "X" => LeadSite::Orthogonal('X'),
        "Y" => LeadSite::Orthogonal('Y'),
        "Z" => LeadSite::Orthogonal('Z'),
        "ES" => LeadSite::HolterBipolar("ES"),
        "AS" => LeadSite::HolterBipolar("AS"),
        "AI" => LeadSite::HolterBipolar("AI"),
        _ => LeadSite::Unknown,
    }
}

/// An ISHNE recording: resolution in nV becomes sensitivity in µV.
pub fn from_ishne(h: &ishne::Header) -> Recording {
    Recording {
        format: "ISHNE 1.0",
        start: h.start,
        rate: u32::from(h.sampling_rate),
        instants: h.samples_per_lead,
        channels: h
            .leads
            .iter()
            .map(|l| Channel {
                label: l.site.label(),
                source: lead_code(l.site),
                sensitivity_uv: f64::from(l.resolution_nv) / 1000.0,
                baseline_uv: 0.0,
            })
            .collect(),
        patient_id: h.patient_id.clone(),
        patient_name: format!("{} {}", h.first_name, h.last_name)
            .trim()
            .to_owned(),
        left_out: Vec::new(),
    }
}

/// Microvolts per unit of an EDF physical dimension.
fn microvolts(dimension: &str) -> Option<f64> {
    match dimension {
        "uV" => Some(1.0),
        "mV" => Some(1000.0),
        "V" => Some(1_000_000.0),
        "nV" => Some(0.001),
        _ => None,
    }
}

/// An EDF recording's ECG signals (by label and unit), which must share one whole rate; and
/// the indices of those signals.
pub fn from_edf(h: &edf::Header) -> Result<(Recording, Vec<usize>), HolterError> {
    let picks: Vec<usize> = (0..h.signals.len())
        .filter(|i| h.signals[*i].is_ecg())
        .collect();
    if picks.is_empty() {
        return Err(HolterError::field(
            "signals",
            format!(
                "no ECG signal among {}",
                h.signals
                    .iter()
                    .map(|s| s.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let per_record = h.signals[picks[0]].samples_per_record;
    if let Some(other) = picks
        .iter()
        .find(|i| h.signals[**i].samples_per_record != per_record)
    {
        return Err(HolterError::field(
            "samples_per_record",
            format!(
                "ECG signals at different rates ({} and {} samples a record)",
                per_record, h.signals[*other].samples_per_record
            ),
        ));
    }
    let rate = per_record as f64 / h.record_seconds;
    if (rate - rate.round()).abs() > 1e-6 || rate < 1.0 {
        return Err(HolterError::field(
            "data_record_duration",
            format!(
                "{per_record} samples in {} s is not a whole rate",
                h.record_seconds
            ),
        ));
    }
    let channels = picks
        .iter()
        .map(|i| {
            let s = &h.signals[*i];
            let scale = microvolts(&s.physical_dimension).unwrap_or(1.0);
            Channel {
                label: s.label.clone(),
                source: lead_code(site_of_label(&s.label)),
                sensitivity_uv: s.gain() * scale,
                baseline_uv: s.offset() * scale,
            }
        })
        .collect();
    let recording = Recording {
        format: match h.variant {
            edf::Variant::Edf => "EDF",
            _ => "EDF+",
        },
        start: h.start,
        rate: rate.round() as u32,
        instants: h.records * per_record as u64,
        channels,
        // EDF+ patient field: code, sex, birth date, name (spaces become underscores).
        patient_id: h.patient.split(' ').next().unwrap_or_default().to_owned(),
        patient_name: h
            .patient
            .split(' ')
            .nth(3)
            .unwrap_or_default()
            .replace('_', " "),
        left_out: h
            .signals
            .iter()
            .enumerate()
            .filter(|(i, s)| !picks.contains(i) && !s.is_annotations())
            .map(|(_, s)| s.label.clone())
            .collect(),
    };
    Ok((recording, picks))
}

/// The ECG signals of an EDF file as interleaved instants, a record at a time.
pub struct EdfInstants<R> {
    records: edf::Records<R>,
    picks: Vec<usize>,
    record: Vec<Vec<i16>>,
    /// The next instant of the current record.
    at: usize,
    per_record: usize,
}

impl<R: Read> EdfInstants<R> {
    pub fn new(records: edf::Records<R>, header: &edf::Header, picks: Vec<usize>) -> Self {
        let per_record = picks
            .first()
            .map_or(0, |i| header.signals[*i].samples_per_record);
        EdfInstants {
            records,
            picks,
            record: Vec::new(),
            at: per_record,
            per_record,
        }
    }
}

impl<R: Read> Instants for EdfInstants<R> {
    fn next_instants(&mut self, max: usize, out: &mut Vec<i16>) -> Result<usize, HolterError> {
        out.clear();
        let mut n = 0;
        while n < max {
            if self.at == self.per_record {
                if !self.records.next_record(&mut self.record)? {
                    break;
                }
                self.at = 0;
            }
            let take = (max - n).min(self.per_record - self.at);
            for k in self.at..self.at + take {
                out.extend(self.picks.iter().map(|p| self.record[*p][k]));
            }
            self.at += take;
            n += take;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_their_leads() {
        assert_eq!(lead_code(site_of_label("ECG II")), Some(("2:2", "Lead II")));
        assert_eq!(lead_code(site_of_label("EKG V5")), Some(("2:7", "Lead V5")));
        assert_eq!(lead_code(site_of_label("ES")), Some(("2:131", "Lead ES")));
        assert_eq!(lead_code(site_of_label("ECG")), None);
        assert_eq!(site_of_label("aVF"), LeadSite::Limb("aVF"));
    }

    #[test]
    fn ishne_resolution_becomes_microvolts() {
        let samples: Vec<i16> = (0..30).collect();
        let file = ishne::tests::write(&[(17, 2500), (6, 5000)], 200, &samples, true);
        let mut source = &file[..];
        let h = ishne::read_header(&mut source, file.len() as u64).unwrap();
        let r = from_ishne(&h);
        assert_eq!(r.rate, 200);
        assert_eq!(r.instants, 15);
        assert_eq!(r.channels[0].sensitivity_uv, 2.5);
        assert_eq!(r.channels[1].source, Some(("2:2", "Lead II")));
        assert_eq!(r.patient_id, "48507120013");
    }

    #[test]
    fn edf_ecg_signals_are_interleaved_across_records() {
        let (file, written) = edf::tests::write(
            &[
                ("ECG II", "mV", -5.0, 5.0, 200),
                ("Resp", "Ohm", 0.0, 100.0, 25),
                ("ECG V5", "uV", -3276.8, 3276.7, 200),
            ],
            3,
            3,
        );
        let mut source = &file[..];
        let h = edf::read_header(&mut source, file.len() as u64).unwrap();
        let (r, picks) = from_edf(&h).unwrap();
        assert_eq!(picks, [0, 2]);
        assert_eq!(r.rate, 200);
        assert_eq!(r.instants, 600);
        assert_eq!(r.left_out, ["Resp"]);
        // −32768 … 32767 onto −5 … 5 mV: 10 mV / 65535 a unit, in µV.
        assert!((r.channels[0].sensitivity_uv - 10_000.0 / 65_535.0).abs() < 1e-9);
        let records = edf::Records::new(source, &h);
        let mut instants = EdfInstants::new(records, &h, picks);
        let (mut all, mut block): (Vec<i16>, Vec<i16>) = (Vec::new(), Vec::new());
        // Blocks that straddle records.
        while instants.next_instants(77, &mut block).unwrap() > 0 {
            all.extend(&block);
        }
        let expected: Vec<i16> = (0..600)
            .flat_map(|k| [written[0][k], written[2][k]])
            .collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn edf_without_ecg_or_with_mixed_rates_is_refused() {
        let (resp, _) = edf::tests::write(&[("Resp", "Ohm", 0.0, 100.0, 25)], 1, 1);
        let mut source = &resp[..];
        let h = edf::read_header(&mut source, resp.len() as u64).unwrap();
        assert!(from_edf(&h)
            .unwrap_err()
            .to_string()
            .starts_with("signals: no ECG"));
        let (mixed, _) = edf::tests::write(
            &[
                ("ECG I", "uV", -1.0, 1.0, 200),
                ("ECG II", "uV", -1.0, 1.0, 250),
            ],
            1,
            1,
        );
        let mut source = &mixed[..];
        let h = edf::read_header(&mut source, mixed.len() as u64).unwrap();
        assert!(from_edf(&h)
            .unwrap_err()
            .to_string()
            .starts_with("samples_per_record: ECG signals at different rates"));
    }
}
