//! Reading the patient registration journal (point 13.2): a case's entries, or a patient's
//! over a period, within the reader's scope and audited like any access to patient data.

use super::{ReferralError, Referrals};
use crate::access::Principal;
use crate::index::{JournalEntry, JournalQuery};

/// Most entries one request answers.
pub const MAX_ENTRIES: i64 = 100_000;

impl Referrals {
    /// The journal of a referral's case that `who` may see.
    pub async fn journal(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Vec<JournalEntry>, ReferralError> {
        self.get(who, id).await?;
        Ok(self.index.journal_of_referral(id).await?)
    }

    /// Entries of the clinics `who` may see: of one patient (and of the identifiers merged into
    /// them) when `patient` is given, between `from` and `to` (microseconds, inclusive).
    pub async fn journal_search(
        &self,
        who: &Principal,
        patient: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
        limit: i64,
    ) -> Result<Vec<JournalEntry>, ReferralError> {
        let detail = format!(
            "patient={} from={} to={}",
            patient.unwrap_or("*"),
            from.map_or("*".into(), |t| t.to_string()),
            to.map_or("*".into(), |t| t.to_string())
        );
        self.reading(who, "journal_read", detail, patient.unwrap_or_default())
            .await?;
        let (mut patients, mut merged) = (Vec::new(), Vec::new());
        if let Some(p) = patient {
            patients.push(p.to_owned());
            merged = self.index.merged_from(p, &self.policy.scope(who)).await?;
        }
        Ok(self
            .index
            .journal(&JournalQuery {
                scope: self.policy.scope(who),
                patients,
                merged,
                from,
                to,
                limit: limit.clamp(1, MAX_ENTRIES),
            })
            .await?)
    }
}
