//! ISHNE 1.0 Holter files (Badilini et al., 1998): a 522-byte header with its CRC, a
//! variable-length block, then the samples as little-endian i16, one per lead for each instant.
//!
//! What real files and readers get wrong, and how it is met here: the header's sample count
//! is per lead in some software and over all leads in others, so the count is taken from the
//! file's size and the header must agree with one of the two readings; dates are day, month,
//! year with no time zone (the recording's local time is kept as such); −32768 marks a lead
//! fault; the patient fields are free text that never proves identity (the referral does).

use std::io::Read;

use jiff::civil::{Date, DateTime, Time};

use super::{HolterError, Lead, LeadSite};

/// The fixed header: magic, CRC and 512 bytes of fields.
pub const FIXED: usize = 522;

/// A variable block larger than this is not a Holter header but a damaged file.
const MAX_VAR_BLOCK: i32 = 16 * 1024 * 1024;

const MAGIC: &[u8; 8] = b"ISHNE1.0";

/// Everything the header says, checked against the file it heads.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub file_version: i16,
    pub first_name: String,
    pub last_name: String,
    pub patient_id: String,
    /// 0 unknown, 1 male, 2 female.
    pub sex: i16,
    pub birth_date: Option<Date>,
    /// Local time at the recorder; the file has no zone.
    pub start: DateTime,
    pub file_date: Option<Date>,
    pub leads: Vec<Lead>,
    /// 0 none, 1 unknown type, 2–5 single or dual chamber, unipolar or bipolar.
    pub pacemaker: i16,
    pub recorder: String,
    /// Samples per second, per lead.
    pub sampling_rate: u16,
    /// Samples per lead, from the file's size.
    pub samples_per_lead: u64,
    /// The variable-length block as the recorder wrote it.
    pub var_block: Vec<u8>,
    /// Where the samples start.
    pub data_offset: u64,
}

impl Header {
    /// The recording's length in seconds.
    pub fn duration_seconds(&self) -> f64 {
        self.samples_per_lead as f64 / f64::from(self.sampling_rate)
    }
}

/// Little-endian fields of the fixed header, at their byte offsets in the file.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn i16(&self, at: usize) -> i16 {
        i16::from_le_bytes([self.0[at], self.0[at + 1]])
    }

    fn i32(&self, at: usize) -> i32 {
        i32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }

    /// A NUL-padded text field: UTF-8 where it is, Latin-1 otherwise (older recorders).
    fn text(&self, at: usize, len: usize) -> String {
        let raw = &self.0[at..at + len];
        let raw = &raw[..raw.iter().position(|b| *b == 0).unwrap_or(len)];
        match std::str::from_utf8(raw) {
            Ok(text) => text.trim().to_owned(),
            Err(_) => raw
                .iter()
                .map(|b| char::from(*b))
                .collect::<String>()
                .trim()
                .to_owned(),
        }
    }

    /// Day, month, year; zeros or −9 (the format's "absent") give none.
    fn date(&self, at: usize, field: &'static str) -> Result<Option<Date>, HolterError> {
        let (d, m, y) = (self.i16(at), self.i16(at + 2), self.i16(at + 4));
        if [d, m, y].iter().all(|v| *v == 0 || *v == -9) {
            return Ok(None);
        }
        let date = i8::try_from(m)
            .ok()
            .zip(i8::try_from(d).ok())
            .and_then(|(m, d)| Date::new(y, m, d).ok())
            .ok_or_else(|| HolterError::field(field, format!("{d}.{m}.{y} is not a date")))?;
        Ok(Some(date))
    }
}

/// Reads and checks the header from the start of `source`; `file_len` is the whole file's
/// size in bytes. On return `source` stands at the first sample.
pub fn read_header(source: &mut impl Read, file_len: u64) -> Result<Header, HolterError> {
    if file_len < FIXED as u64 {
        return Err(HolterError::Truncated(format!(
            "{file_len} bytes, shorter than the {FIXED}-byte header"
        )));
    }
    let mut fixed = vec![0u8; FIXED];
    source.read_exact(&mut fixed)?;
    if &fixed[..8] != MAGIC {
        return Err(HolterError::Magic(
            String::from_utf8_lossy(&fixed[..8]).into_owned(),
        ));
    }
    let f = Fields(&fixed);
    let var_size = f.i32(10);
    if !(0..=MAX_VAR_BLOCK).contains(&var_size) {
        return Err(HolterError::field(
            "var_block_size",
            format!("{var_size} bytes is out of range (0 to {MAX_VAR_BLOCK})"),
        ));
    }
    let stated_samples = f.i32(14);
    let var_offset = f.i32(18);
    if var_offset != FIXED as i32 {
        return Err(HolterError::field(
            "var_block_offset",
            format!("{var_offset}, where the format puts the variable block at {FIXED}"),
        ));
    }
    let data_offset = f.i32(22);
    if i64::from(data_offset) != FIXED as i64 + i64::from(var_size) {
        return Err(HolterError::field(
            "ecg_block_offset",
            format!(
                "{data_offset}, but the header ({FIXED} bytes) and the variable block \
                 ({var_size}) end at {}",
                FIXED as i64 + i64::from(var_size)
            ),
        ));
    }
    let data_offset = u64::from(data_offset.unsigned_abs());
    if data_offset > file_len {
        return Err(HolterError::Truncated(format!(
            "the samples should start at byte {data_offset}, the file has {file_len} bytes"
        )));
    }
    // The variable block is small by the check above, and part of the CRC.
    let mut var_block = vec![0u8; var_size.unsigned_abs() as usize];
    source.read_exact(&mut var_block)?;
    let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);
    let mut digest = crc.digest();
    digest.update(&fixed[10..]);
    digest.update(&var_block);
    let (stored, computed) = (u16::from_le_bytes([fixed[8], fixed[9]]), digest.finalize());
    if stored != computed {
        return Err(HolterError::Crc { stored, computed });
    }

    let count = f.i16(156);
    if !(1..=12).contains(&count) {
        return Err(HolterError::field(
            "number_of_leads",
            format!("{count}; an ISHNE file holds 1 to 12 leads"),
        ));
    }
    let leads = (0..count as usize)
        .map(|i| lead(&f, i))
        .collect::<Result<Vec<_>, _>>()?;
    let rate = f.i16(272);
    if rate <= 0 {
        return Err(HolterError::field(
            "sampling_rate",
            format!("{rate} Hz; it must be positive"),
        ));
    }
    let date = f
        .date(138, "recording_date")?
        .ok_or_else(|| HolterError::field("recording_date", "missing"))?;
    let (h, m, s) = (f.i16(150), f.i16(152), f.i16(154));
    let time = i8::try_from(h)
        .ok()
        .zip(i8::try_from(m).ok())
        .zip(i8::try_from(s).ok())
        .and_then(|((h, m), s)| Time::new(h, m, s, 0).ok())
        .ok_or_else(|| {
            HolterError::field("start_time", format!("{h}:{m}:{s} is not a time of day"))
        })?;

    let data = file_len - data_offset;
    let frame = 2 * leads.len() as u64;
    if !data.is_multiple_of(frame) {
        return Err(HolterError::Truncated(format!(
            "{data} bytes of samples are not whole instants of {} leads ({frame} bytes each)",
            leads.len()
        )));
    }
    let samples_per_lead = data / frame;
    if samples_per_lead == 0 {
        return Err(HolterError::field(
            "ecg_data",
            "the recording has no samples",
        ));
    }
    let stated = u64::try_from(stated_samples).unwrap_or(u64::MAX);
    if stated != samples_per_lead && stated != samples_per_lead * leads.len() as u64 {
        return Err(HolterError::field(
            "ecg_size",
            format!(
                "the header says {stated_samples} samples; the file holds {samples_per_lead} \
                 per lead ({} in all)",
                samples_per_lead * leads.len() as u64
            ),
        ));
    }
    Ok(Header {
        file_version: f.i16(26),
        first_name: f.text(28, 40),
        last_name: f.text(68, 40),
        patient_id: f.text(108, 20),
        sex: f.i16(128),
        birth_date: f.date(132, "birth_date").unwrap_or(None),
        start: date.to_datetime(time),
        file_date: f.date(144, "file_date").unwrap_or(None),
        leads,
        pacemaker: f.i16(230),
        recorder: f.text(232, 40),
        sampling_rate: rate.unsigned_abs(),
        samples_per_lead,
        var_block,
        data_offset,
    })
}

/// Lead `i` of the header: its site, quality and resolution.
fn lead(f: &Fields, i: usize) -> Result<Lead, HolterError> {
    let code = f.i16(158 + 2 * i);
    let site = match code {
        0 => LeadSite::Unknown,
        1 => LeadSite::GenericBipolar,
        2 => LeadSite::Orthogonal('X'),
        3 => LeadSite::Orthogonal('Y'),
        4 => LeadSite::Orthogonal('Z'),
        5..=10 => LeadSite::Limb(["I", "II", "III", "aVR", "aVL", "aVF"][(code - 5) as usize]),
        11..=16 => LeadSite::Precordial((code - 10) as u8),
        17..=19 => LeadSite::HolterBipolar(["ES", "AS", "AI"][(code - 17) as usize]),
        _ => {
            return Err(HolterError::field(
                "lead_specification",
                format!("lead {}: code {code} is not a lead (0 to 19)", i + 1),
            ))
        }
    };
    let resolution = f.i16(206 + 2 * i);
    if resolution <= 0 {
        return Err(HolterError::field(
            "amplitude_resolution",
            format!(
                "lead {}: {resolution} nV per unit; it must be positive",
                i + 1
            ),
        ));
    }
    Ok(Lead {
        site,
        code,
        resolution_nv: u32::from(resolution.unsigned_abs()),
        quality: f.i16(182 + 2 * i),
    })
}

/// The samples after the header, handed out a block of instants at a time.
pub struct Samples<R> {
    source: R,
    leads: usize,
    left: u64,
    bytes: Vec<u8>,
}

impl<R: Read> Samples<R> {
    /// The samples of `header` from `source`, which stands at the first of them.
    pub fn new(source: R, header: &Header) -> Samples<R> {
        Samples {
            source,
            leads: header.leads.len(),
            left: header.samples_per_lead,
            bytes: Vec::new(),
        }
    }

    /// Up to `instants` instants into `out` (replacing what it held), interleaved lead by
    /// lead as in the file; how many were read, 0 at the end. A file that ends before the
    /// header's count is an error, never a short recording.
    pub fn next_block(
        &mut self,
        instants: usize,
        out: &mut Vec<i16>,
    ) -> Result<usize, HolterError> {
        let n = instants.min(usize::try_from(self.left).unwrap_or(usize::MAX));
        out.clear();
        if n == 0 {
            return Ok(0);
        }
        self.bytes.resize(n * self.leads * 2, 0);
        self.source.read_exact(&mut self.bytes).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                HolterError::Truncated(format!("the samples end {} instants early", self.left))
            } else {
                HolterError::Io(e)
            }
        })?;
        out.extend(
            self.bytes
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        self.left -= n as u64;
        Ok(n)
    }
}

impl<R: Read> super::Instants for Samples<R> {
    fn next_instants(&mut self, max: usize, out: &mut Vec<i16>) -> Result<usize, HolterError> {
        self.next_block(max, out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An ISHNE file as a recorder would write it: `leads` as (code, nV), `samples`
    /// interleaved; `per_lead` says which reading of the sample count the header takes.
    pub fn write(leads: &[(i16, i16)], rate: i16, samples: &[i16], per_lead: bool) -> Vec<u8> {
        let var = b"recorder notes\0".to_vec();
        let mut h = vec![0u8; FIXED];
        h[..8].copy_from_slice(MAGIC);
        let put16 =
            |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
        let put32 =
            |h: &mut Vec<u8>, at: usize, v: i32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put32(&mut h, 10, var.len() as i32);
        let count = samples.len() as i32 / if per_lead { leads.len() as i32 } else { 1 };
        put32(&mut h, 14, count);
        put32(&mut h, 18, FIXED as i32);
        put32(&mut h, 22, (FIXED + var.len()) as i32);
        put16(&mut h, 26, 1);
        h[28..28 + 5].copy_from_slice(b"Ruta\0");
        let family = "Žukauskienė".as_bytes();
        h[68..68 + family.len()].copy_from_slice(family);
        h[108..108 + 11].copy_from_slice(b"48507120013");
        put16(&mut h, 128, 2);
        for (i, v) in [12, 7, 1985, 6, 3, 2026, 7, 3, 2026, 8, 30, 15]
            .iter()
            .enumerate()
        {
            put16(&mut h, 132 + 2 * i, *v);
        }
        put16(&mut h, 156, leads.len() as i16);
        for i in 0..12 {
            let (code, nv) = leads.get(i).copied().unwrap_or((-9, -9));
            put16(&mut h, 158 + 2 * i, code);
            put16(&mut h, 182 + 2 * i, if i < leads.len() { 1 } else { -9 });
            put16(&mut h, 206 + 2 * i, nv);
        }
        put16(&mut h, 230, 0);
        h[232..232 + 7].copy_from_slice(b"digital");
        put16(&mut h, 272, rate);
        let crc = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740);
        let mut d = crc.digest();
        d.update(&h[10..]);
        d.update(&var);
        let sum = d.finalize();
        h[8..10].copy_from_slice(&sum.to_le_bytes());
        h.extend(&var);
        for s in samples {
            h.extend(s.to_le_bytes());
        }
        h
    }

    fn open(bytes: &[u8]) -> Result<(Header, Vec<i16>), HolterError> {
        let mut source = bytes;
        let header = read_header(&mut source, bytes.len() as u64)?;
        let mut samples = Samples::new(source, &header);
        let (mut all, mut block) = (Vec::new(), Vec::new());
        while samples.next_block(7, &mut block)? > 0 {
            all.extend(&block);
        }
        Ok((header, all))
    }

    /// Samples over the whole range, with a lead fault among them.
    fn interleaved(leads: usize, n: usize) -> Vec<i16> {
        let mut out: Vec<i16> = (0..n * leads)
            .map(|i| ((i * 7919) % 65_535) as i32 - 32_767)
            .map(|v| v as i16)
            .collect();
        if out.len() > 5 {
            out[5] = super::super::LEAD_FAULT;
        }
        out
    }

    #[test]
    fn reads_header_and_every_sample_in_blocks() {
        let samples = interleaved(3, 100);
        for per_lead in [true, false] {
            let file = write(
                &[(17, 2500), (18, 2500), (6, 5000)],
                200,
                &samples,
                per_lead,
            );
            let (h, read) = open(&file).unwrap();
            assert_eq!(read, samples);
            assert_eq!(h.samples_per_lead, 100);
            assert_eq!(h.sampling_rate, 200);
            assert_eq!(h.duration_seconds(), 0.5);
            assert_eq!(h.last_name, "Žukauskienė");
            assert_eq!(h.patient_id, "48507120013");
            assert_eq!(h.start.to_string(), "2026-03-06T08:30:15");
            assert_eq!(
                h.birth_date.map(|d| d.to_string()).as_deref(),
                Some("1985-07-12")
            );
            let labels: Vec<String> = h.leads.iter().map(|l| l.site.label()).collect();
            assert_eq!(labels, ["ES", "AS", "II"]);
            assert_eq!(h.leads[2].resolution_nv, 5000);
            assert_eq!(h.var_block, b"recorder notes\0");
        }
    }

    fn refused(file: &[u8]) -> String {
        open(file).map(|_| ()).unwrap_err().to_string()
    }

    /// Recomputes the CRC after a header field was changed, so the field's own check speaks.
    fn resealed(mut file: Vec<u8>) -> Vec<u8> {
        let var = i32::from_le_bytes([file[10], file[11], file[12], file[13]]).max(0) as usize;
        let end = (FIXED + var).min(file.len());
        let sum = crc::Crc::<u16>::new(&crc::CRC_16_IBM_3740).checksum(&file[10..end]);
        file[8..10].copy_from_slice(&sum.to_le_bytes());
        file
    }

    #[test]
    fn bad_files_are_refused_saying_what_is_wrong() {
        let good = write(&[(17, 2500), (18, 2500)], 200, &interleaved(2, 50), true);
        let mut wrong_magic = good.clone();
        wrong_magic[..8].copy_from_slice(b"ANN  1.0");
        assert!(refused(&wrong_magic).contains("not an ISHNE 1.0 file"));

        let mut bad_crc = good.clone();
        bad_crc[300] ^= 0x40;
        assert!(refused(&bad_crc).starts_with("header CRC"));

        let truncated = &good[..good.len() - 3];
        assert!(
            refused(truncated).contains("truncated"),
            "{}",
            refused(truncated)
        );
        assert!(refused(&good[..100]).contains("truncated"));

        let mut leads = good.clone();
        leads[156..158].copy_from_slice(&13i16.to_le_bytes());
        assert!(refused(&resealed(leads)).starts_with("number_of_leads: 13"));

        let mut resolution = good.clone();
        resolution[206..208].copy_from_slice(&0i16.to_le_bytes());
        assert!(refused(&resealed(resolution)).starts_with("amplitude_resolution: lead 1"));

        let mut code = good.clone();
        code[160..162].copy_from_slice(&(-9i16).to_le_bytes());
        assert!(refused(&resealed(code)).starts_with("lead_specification: lead 2"));

        let mut count = good.clone();
        count[14..18].copy_from_slice(&77i32.to_le_bytes());
        let said = refused(&resealed(count));
        assert!(said.starts_with("ecg_size: the header says 77"), "{said}");

        let mut rate = good.clone();
        rate[272..274].copy_from_slice(&0i16.to_le_bytes());
        assert!(refused(&resealed(rate)).starts_with("sampling_rate"));

        let mut date = good.clone();
        date[140..142].copy_from_slice(&13i16.to_le_bytes());
        assert!(refused(&resealed(date)).starts_with("recording_date: 6.13.2026"));

        let mut offset = good.clone();
        offset[22..26].copy_from_slice(&600i32.to_le_bytes());
        assert!(refused(&resealed(offset)).starts_with("ecg_block_offset"));

        let empty = write(&[(17, 2500)], 200, &[], true);
        assert!(refused(&empty).contains("no samples"));
    }
}
