//! When the examination an object belongs to was done (clock T1 of the indicators): the latest
//! of its acquisition and content times, and for a waveform (a Holter recording) the start of
//! the recording plus its duration.
//!
//! DICOM dates and times are local unless the object says otherwise (PS3.3 C.12.1.1.8): an
//! offset in Timezone Offset From UTC, or one at the end of a DT value, is taken; without one
//! the time is read in Vilnius, where every sending clinic is.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{Offset, TimeZone};

use super::scanner::{tag, Kept, Tag, WAVEFORM_SEQUENCE};

pub const ACQUISITION_DATE: Tag = tag(0x0008, 0x0022);
pub const CONTENT_DATE: Tag = tag(0x0008, 0x0023);
pub const ACQUISITION_DATE_TIME: Tag = tag(0x0008, 0x002A);
pub const ACQUISITION_TIME: Tag = tag(0x0008, 0x0032);
pub const CONTENT_TIME: Tag = tag(0x0008, 0x0033);
pub const TIMEZONE_OFFSET_FROM_UTC: Tag = tag(0x0008, 0x0201);
/// In the items of the Waveform Sequence: each multiplex group's samples and frequency.
pub const NUMBER_OF_WAVEFORM_SAMPLES: Tag = tag(0x003A, 0x0010);
pub const SAMPLING_FREQUENCY: Tag = tag(0x003A, 0x001A);

/// Top-level tags T1 is read from.
pub fn wanted(t: Tag) -> bool {
    matches!(
        t,
        ACQUISITION_DATE
            | CONTENT_DATE
            | ACQUISITION_DATE_TIME
            | ACQUISITION_TIME
            | CONTENT_TIME
            | TIMEZONE_OFFSET_FROM_UTC
    )
}

/// T1 of one object in microseconds since the epoch, when it carries any time at all.
pub fn examined_at(kept: &Kept) -> Option<i64> {
    let text = |t: Tag| {
        kept.top.get(&t).map(|raw| {
            String::from_utf8_lossy(raw)
                .trim_matches(|c: char| c == ' ' || c == '\0')
                .to_owned()
        })
    };
    let zone = text(TIMEZONE_OFFSET_FROM_UTC)
        .and_then(|o| offset(&o))
        .map_or_else(vilnius, TimeZone::fixed);
    let acquired = match text(ACQUISITION_DATE_TIME).filter(|v| !v.is_empty()) {
        Some(dt) => date_time(&dt, &zone),
        None => {
            text(ACQUISITION_DATE).and_then(|d| date_and_time(&d, text(ACQUISITION_TIME), &zone))
        }
    };
    let content = text(CONTENT_DATE).and_then(|d| date_and_time(&d, text(CONTENT_TIME), &zone));
    let recorded = acquired.and_then(|start| Some(start + duration_micros(kept)?));
    [acquired, content, recorded].into_iter().flatten().max()
}

/// A DT or HL7 TS value (`YYYYMMDD[HHMM[SS[.F]]][+ZZZZ]`), local to Vilnius unless it carries
/// its offset: the date a referral was written (T0).
pub fn written_at(value: &str) -> Option<i64> {
    date_time(value.trim(), &vilnius())
}

/// Read once from the bundled database: every object asks.
fn vilnius() -> TimeZone {
    static ZONE: std::sync::LazyLock<TimeZone> =
        std::sync::LazyLock::new(|| TimeZone::get("Europe/Vilnius").unwrap_or(TimeZone::UTC));
    ZONE.clone()
}

/// `+0200` or `-0500`.
fn offset(text: &str) -> Option<Offset> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    if hours > 14 || minutes > 59 {
        return None;
    }
    Offset::from_seconds(sign * (hours * 3600 + minutes * 60)).ok()
}

/// A DT value, `YYYYMMDDHHMMSS.FFFFFF&ZZXX` with everything after the day optional.
fn date_time(value: &str, zone: &TimeZone) -> Option<i64> {
    let (local, zone) = match value.find(['+', '-']) {
        Some(at) if at >= 8 => (&value[..at], offset(&value[at..]).map(TimeZone::fixed)?),
        _ => (value, zone.clone()),
    };
    let date = date(local.get(..8)?)?;
    let time = time(local.get(8..).unwrap_or(""))?;
    instant(date.to_datetime(time), &zone)
}

/// A DA value and an optional TM value.
fn date_and_time(day: &str, at: Option<String>, zone: &TimeZone) -> Option<i64> {
    let date = date(day)?;
    let time = time(at.as_deref().unwrap_or(""))?;
    instant(date.to_datetime(time), zone)
}

fn date(text: &str) -> Option<Date> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Date::new(
        text[..4].parse().ok()?,
        text[4..6].parse().ok()?,
        text[6..8].parse().ok()?,
    )
    .ok()
}

/// A TM value, `HHMMSS.FFFFFF` with everything after the hour optional; empty is midnight.
fn time(text: &str) -> Option<Time> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.len() % 2 != 0 || whole.len() > 6 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let part = |n: usize| -> Option<i8> {
        whole
            .get(n * 2..n * 2 + 2)
            .map_or(Some(0), |p| p.parse().ok())
    };
    let micros = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(6).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<6}").parse::<i32>().ok()?
    };
    // A leap second (60) is read as the last second of its minute.
    Time::new(part(0)?, part(1)?, part(2)?.min(59), micros * 1000).ok()
}

fn instant(local: DateTime, zone: &TimeZone) -> Option<i64> {
    zone.to_ambiguous_timestamp(local)
        .compatible()
        .ok()
        .map(|t| t.as_microsecond())
}

/// How long the recording lasts: the longest multiplex group, samples over frequency.
fn duration_micros(kept: &Kept) -> Option<i64> {
    let mut groups: Vec<(usize, Option<f64>, Option<f64>)> = Vec::new();
    for v in kept
        .nested
        .iter()
        .filter(|v| v.sequence == WAVEFORM_SEQUENCE)
    {
        let pos = match groups.iter().position(|g| g.0 == v.item) {
            Some(p) => p,
            None => {
                groups.push((v.item, None, None));
                groups.len() - 1
            }
        };
        match v.tag {
            // UL, little endian (the only byte order we accept).
            NUMBER_OF_WAVEFORM_SAMPLES => {
                groups[pos].1 = v
                    .value
                    .get(..4)
                    .map(|b| f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            SAMPLING_FREQUENCY => {
                groups[pos].2 = String::from_utf8_lossy(&v.value)
                    .trim_matches(|c: char| c == ' ' || c == '\0')
                    .parse::<f64>()
                    .ok()
            }
            _ => {}
        }
    }
    groups
        .iter()
        .filter_map(|(_, samples, hz)| match (samples, hz) {
            (Some(n), Some(f)) if *f > 0.0 => Some(n / f),
            _ => None,
        })
        .map(|seconds| (seconds * 1_000_000.0).round() as i64)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::scanner::NestedValue;

    fn at(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    fn kept(values: &[(Tag, &str)]) -> Kept {
        Kept {
            top: values
                .iter()
                .map(|(t, v)| (*t, v.as_bytes().to_vec()))
                .collect(),
            nested: Vec::new(),
        }
    }

    #[test]
    fn local_times_are_read_in_vilnius() {
        // Winter: UTC+2; summer: UTC+3.
        let k = kept(&[(CONTENT_DATE, "20260115"), (CONTENT_TIME, "101500.5 ")]);
        assert_eq!(examined_at(&k), Some(at("2026-01-15T08:15:00.5Z")));
        let k = kept(&[(ACQUISITION_DATE, "20260715"), (ACQUISITION_TIME, "1015")]);
        assert_eq!(examined_at(&k), Some(at("2026-07-15T07:15:00Z")));
    }

    #[test]
    fn an_offset_wins_and_the_latest_time_counts() {
        let k = kept(&[
            (ACQUISITION_DATE_TIME, "20260115101500+0000"),
            (CONTENT_DATE, "20260115"),
            (CONTENT_TIME, "110000"),
        ]);
        // Content 11:00 Vilnius is 09:00 UTC, before the acquisition at 10:15 UTC.
        assert_eq!(examined_at(&k), Some(at("2026-01-15T10:15:00Z")));
        let k = kept(&[
            (TIMEZONE_OFFSET_FROM_UTC, "-0500"),
            (CONTENT_DATE, "20260115"),
            (CONTENT_TIME, "110000"),
        ]);
        assert_eq!(examined_at(&k), Some(at("2026-01-15T16:00:00Z")));
    }

    #[test]
    fn a_recording_ends_after_its_duration() {
        let mut k = kept(&[(ACQUISITION_DATE_TIME, "20260115080000")]);
        for (item, samples) in [(1usize, 36_000u32), (2, 60_000)] {
            k.nested.push(NestedValue {
                sequence: WAVEFORM_SEQUENCE,
                item,
                tag: NUMBER_OF_WAVEFORM_SAMPLES,
                value: samples.to_le_bytes().to_vec(),
            });
            k.nested.push(NestedValue {
                sequence: WAVEFORM_SEQUENCE,
                item,
                tag: SAMPLING_FREQUENCY,
                value: b"10".to_vec(),
            });
        }
        // 60,000 samples at 10 Hz: 100 minutes after 06:00 UTC.
        assert_eq!(examined_at(&k), Some(at("2026-01-15T07:40:00Z")));
    }

    #[test]
    fn nonsense_is_no_time() {
        for bad in ["2026011", "2026-01-15", "20261315", "20260115 25"] {
            let k = kept(&[(ACQUISITION_DATE_TIME, bad)]);
            assert_eq!(examined_at(&k), None, "{bad}");
        }
        let k = kept(&[(CONTENT_DATE, "20260115"), (CONTENT_TIME, "9999")]);
        assert_eq!(examined_at(&k), None);
    }
}
