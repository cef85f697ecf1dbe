//! From the index's rows to the facts the indicators are computed over: clocks by name,
//! persons by their keyed hash, the fixity tally placed by day.

use std::collections::BTreeMap;

use super::compute::{CaseFacts, CheckFacts, Facts, StudyFacts, VersionFacts};
use super::definitions::Clock;
use super::persons::person_key;
use crate::index::{CaseClocks, FixityDay, ReceivedStudy, SignedVersion};
use crate::ingest::examined::written_at;
use crate::referral::personal_code;

/// A referral linked later than this after the data arrived counts as missing (TC-04).
const REFERRAL_LATE_MICROS: i64 = 24 * 3_600_000_000;

/// The facts of one case. A person is keyed by their national personal code when the
/// referral names a valid one; otherwise by the clinic's own patient identifier, a key no
/// other institution can share.
pub fn case_facts(c: &CaseClocks, secret: &[u8]) -> CaseFacts {
    let person = if personal_code::parse(&c.personal_code).is_ok() {
        person_key(secret, &c.personal_code)
    } else if personal_code::parse(&c.patient_id).is_ok() {
        person_key(secret, &c.patient_id)
    } else if c.patient_id.is_empty() {
        String::new()
    } else {
        person_key(
            secret,
            &format!(
                "local\u{1f}{}\u{1f}{}\u{1f}{}",
                c.clinic_id, c.issuer, c.patient_id
            ),
        )
    };
    let mut clocks = BTreeMap::new();
    let mut set = |k: Clock, v: Option<i64>| {
        if let Some(v) = v {
            clocks.insert(k, v);
        }
    };
    set(Clock::Written, written_at(&c.referral_written));
    set(Clock::Examined, c.examined_at);
    set(Clock::Received, Some(c.data_at));
    set(Clock::Ready, Some(c.ready_at));
    set(Clock::Claimed, c.claimed_at);
    set(Clock::Signed, c.signed_at);
    set(Clock::Delivered, c.delivered_at);
    CaseFacts {
        case_id: c.id.clone(),
        clinic: c.clinic_id.clone(),
        centre: c.centre_id.clone(),
        kind: c.examination.clone(),
        priority: c.urgency.clone(),
        person,
        cancelled: c.status == "cancelled",
        clocks,
        referral_late: c.referral_id.is_empty()
            || c.ready_at.saturating_sub(c.data_at) > REFERRAL_LATE_MICROS,
        non_diagnostic: c.non_diagnostic,
    }
}

/// Everything the index said of a period, as facts.
pub fn facts(
    cases: &[CaseClocks],
    versions: &[SignedVersion],
    studies: &[ReceivedStudy],
    days: &[FixityDay],
    secret: &[u8],
) -> Facts {
    Facts {
        cases: cases.iter().map(|c| case_facts(c, secret)).collect(),
        versions: versions
            .iter()
            .map(|v| VersionFacts {
                case_id: v.case_id.clone(),
                signed_at: v.signed_at,
                amendment: v.amendment,
            })
            .collect(),
        studies: studies
            .iter()
            .map(|s| StudyFacts {
                clinic: s.clinic_id.clone(),
                received_at: s.received_at,
                reconciled: s.reconciled,
            })
            .collect(),
        checks: days.iter().filter_map(check_of_day).collect(),
    }
}

/// A UTC day of the fixity tally, placed at its noon: 14:00 or 15:00 in Vilnius, always the
/// same calendar day there, so each day falls in the period its Vilnius date belongs to.
fn check_of_day(d: &FixityDay) -> Option<CheckFacts> {
    let noon = format!("{}T12:00:00Z", d.day)
        .parse::<jiff::Timestamp>()
        .ok()?;
    Some(CheckFacts {
        checked_at: noon.as_microsecond(),
        objects: u64::try_from(d.objects).unwrap_or(0),
        failed: u64::try_from(d.failures).unwrap_or(0),
    })
}
