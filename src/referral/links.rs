//! Linking referrals and studies (point 13.2): a study belongs to the referral whose order
//! number is its accession number, within the same clinic, when the patient agrees.
//!
//! Links are made whichever side arrives first: a referral received looks for its study, the
//! first object of a series looks for its referral. Nothing doubtful is decided here: a
//! patient who does not agree, or two referrals claiming one study, becomes an exception for
//! an administrator, with the reason. Every link and every series received is journaled.

use super::personal_code;
use super::{patient_key, ReferralError, Referrals};
use crate::access::{Action, Principal};
use crate::index::{
    other_ids, IndexError, JournalEntry, LinkException, ReferralRow, Resolved, StudyForLink,
};
use crate::ingest::meta::InstanceMeta;

/// Why a referral and a study cannot be linked without a person's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doubt {
    pub kind: &'static str,
    pub reason: String,
}

/// Whether the study's patient is the referral's: the study's Patient ID or one of its Other
/// Patient IDs is the referral's personal code or insured person's code.
pub fn agree(referral: &ReferralRow, study: &StudyForLink) -> Result<(), Doubt> {
    let theirs: Vec<&str> = std::iter::once(study.patient_id.as_str())
        .chain(other_ids(&study.other_ids).map(|(id, _)| id))
        .filter(|id| !id.is_empty())
        .collect();
    let ours: Vec<&str> = [
        referral.personal_code.as_str(),
        referral.insured_code.as_str(),
    ]
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect();
    if theirs.iter().any(|id| ours.contains(id)) {
        return Ok(());
    }
    let study_code = theirs
        .iter()
        .find(|id| personal_code::parse(id).is_ok())
        .copied();
    match study_code {
        Some(code) if !referral.personal_code.is_empty() => Err(Doubt {
            kind: "personal_code_mismatch",
            reason: format!(
                "study {} carries personal code {code}, referral {} carries {}",
                study.study_uid, referral.id, referral.personal_code
            ),
        }),
        _ => Err(Doubt {
            kind: "patient_mismatch",
            reason: format!(
                "study {} is of patient {} ({}), not of the referral's patient ({})",
                study.study_uid,
                study.patient_id,
                study.patient_name,
                ours.join(" / ")
            ),
        }),
    }
}

impl Referrals {
    /// After a referral is received: link it to the study its order number names, if that
    /// study is already here.
    pub(super) async fn link_referral(
        &self,
        referral: &ReferralRow,
        actor: &str,
    ) -> Result<(), IndexError> {
        let studies = self
            .index
            .studies_with_accession(&referral.clinic_id, &referral.order_number)
            .await?;
        for study in studies {
            self.try_link(referral, &study, actor).await?;
        }
        Ok(())
    }

    /// After the first object of a series is stored (its journal entry is already written
    /// with it): link its study to the referral its accession number names, if the study has
    /// none yet. Costs one indexed read when no referral carries that order.
    pub async fn on_new_series(
        &self,
        sender: &Principal,
        meta: &InstanceMeta,
    ) -> Result<(), IndexError> {
        if meta.accession_number.is_empty() {
            return Ok(());
        }
        let referrals = self
            .index
            .referrals_with_order(&sender.institution, &meta.accession_number)
            .await?;
        if referrals.is_empty() || referrals.iter().any(|r| r.study_uid == meta.study_uid) {
            return Ok(());
        }
        let Some(study) = self.index.study_for_link(&meta.study_uid).await? else {
            return Ok(());
        };
        for referral in referrals {
            self.try_link(&referral, &study, &sender.name).await?;
        }
        Ok(())
    }

    /// Links one referral and one study, or records why not.
    async fn try_link(
        &self,
        referral: &ReferralRow,
        study: &StudyForLink,
        actor: &str,
    ) -> Result<(), IndexError> {
        if referral.study_uid == study.study_uid {
            return Ok(());
        }
        let rivals: Vec<ReferralRow> = self
            .index
            .referrals_with_order(&referral.clinic_id, &referral.order_number)
            .await?
            .into_iter()
            .filter(|r| r.id != referral.id)
            .collect();
        let holder = self.index.referral_of_study(&study.study_uid).await?;
        let doubt = if let Some(holder) = holder.filter(|h| h.id != referral.id) {
            Some(Doubt {
                kind: "duplicate_claim",
                reason: format!(
                    "study {} is already linked to referral {}; referral {} claims it too \
                     (order {})",
                    study.study_uid, holder.id, referral.id, referral.order_number
                ),
            })
        } else if !rivals.is_empty() {
            Some(Doubt {
                kind: "duplicate_claim",
                reason: format!(
                    "referrals {} and {} both carry order {} of study {}",
                    referral.id,
                    rivals
                        .iter()
                        .map(|r| r.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    referral.order_number,
                    study.study_uid
                ),
            })
        } else if !referral.study_uid.is_empty() {
            Some(Doubt {
                kind: "duplicate_claim",
                reason: format!(
                    "referral {} is already linked to study {}; study {} carries its order {} too",
                    referral.id, referral.study_uid, study.study_uid, referral.order_number
                ),
            })
        } else {
            agree(referral, study).err()
        };
        if let Some(doubt) = doubt {
            let exception = LinkException {
                id: uuid::Uuid::now_v7().to_string(),
                kind: doubt.kind.to_owned(),
                clinic_id: referral.clinic_id.clone(),
                referral_id: referral.id.clone(),
                study_uid: study.study_uid.clone(),
                reason: doubt.reason.clone(),
                ..LinkException::default()
            };
            if self.index.add_link_exception(&exception).await? {
                tracing::warn!(kind = doubt.kind, reason = %doubt.reason, "link left to an administrator");
            }
            return Ok(());
        }
        let entry = JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: 0,
            kind: "linked".into(),
            clinic_id: referral.clinic_id.clone(),
            institution: referral.clinic_id.clone(),
            actor: actor.to_owned(),
            patient_id: patient_key(&referral.personal_code, &referral.insured_code),
            referral_id: referral.id.clone(),
            study_uid: study.study_uid.clone(),
            report_id: String::new(),
            detail: format!(
                "order {} = accession of study {}",
                referral.order_number, study.study_uid
            ),
        };
        if self
            .index
            .link(&referral.id, &study.study_uid, &entry)
            .await?
        {
            tracing::info!(referral = %referral.id, study = %study.study_uid, "referral linked");
        }
        Ok(())
    }
}

/// What an administrator does with an exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Link the referral and the study despite the doubt (the administrator checked them).
    Link,
    /// Leave them apart.
    Reject,
}

impl Referrals {
    /// An administrator's decision on an exception, with their note; audited and journaled.
    pub async fn resolve(
        &self,
        who: &Principal,
        exception_id: &str,
        decision: Decision,
        note: &str,
    ) -> Result<LinkException, ReferralError> {
        let mut event = crate::catalog::event(who, "link_exception_resolved");
        event.detail = format!("exception {exception_id}: {decision:?}; {note}");
        let outcome = self.decide(who, exception_id, decision, note).await;
        event.outcome = match &outcome {
            Ok(e) => {
                event.study_uid = e.study_uid.clone();
                "done".to_owned()
            }
            Err(e) => format!("refused: {e}"),
        };
        self.audit.record(event).await;
        outcome
    }

    async fn decide(
        &self,
        who: &Principal,
        exception_id: &str,
        decision: Decision,
        note: &str,
    ) -> Result<LinkException, ReferralError> {
        self.policy.permit(who, Action::Administer)?;
        let not_found = || ReferralError::NotFound(format!("exception {exception_id}"));
        let exception = self
            .index
            .link_exception(exception_id)
            .await?
            .ok_or_else(not_found)?;
        let referral = self
            .index
            .referral(&exception.referral_id)
            .await?
            .ok_or_else(not_found)?;
        let journal = JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: 0,
            kind: "linked".into(),
            clinic_id: referral.clinic_id.clone(),
            institution: who.institution.clone(),
            actor: who.name.clone(),
            patient_id: patient_key(&referral.personal_code, &referral.insured_code),
            referral_id: referral.id.clone(),
            study_uid: exception.study_uid.clone(),
            report_id: String::new(),
            detail: format!("by an administrator despite {}: {note}", exception.kind),
        };
        let (resolution, link) = match decision {
            Decision::Link => ("linked", Some(&journal)),
            Decision::Reject => ("rejected", None),
        };
        let resolution = if note.is_empty() {
            resolution.to_owned()
        } else {
            format!("{resolution}: {note}")
        };
        match self
            .index
            .resolve_exception(exception_id, &resolution, &who.name, link)
            .await?
        {
            Resolved::Done => {}
            Resolved::NotOpen => {
                return Err(ReferralError::Conflict(format!(
                    "exception {exception_id} is not open"
                )))
            }
            Resolved::Taken => {
                return Err(ReferralError::Conflict(format!(
                    "referral {} is no longer waiting, or study {} is linked to another \
                     referral; unlink first",
                    referral.id, exception.study_uid
                )))
            }
        }
        self.index
            .link_exception(exception_id)
            .await?
            .ok_or_else(not_found)
    }

    /// Undoes a referral's link (an administrator's correction); audited and journaled.
    pub async fn unlink(
        &self,
        who: &Principal,
        referral_id: &str,
        reason: &str,
    ) -> Result<ReferralRow, ReferralError> {
        let mut event = crate::catalog::event(who, "referral_unlinked");
        event.detail = format!("referral {referral_id}: {reason}");
        let outcome = async {
            self.policy.permit(who, Action::Administer)?;
            let referral = self
                .index
                .referral(referral_id)
                .await?
                .ok_or_else(|| ReferralError::NotFound(referral_id.to_owned()))?;
            let journal = JournalEntry {
                id: uuid::Uuid::now_v7().to_string(),
                at: 0,
                kind: "unlinked".into(),
                clinic_id: referral.clinic_id.clone(),
                institution: who.institution.clone(),
                actor: who.name.clone(),
                patient_id: patient_key(&referral.personal_code, &referral.insured_code),
                referral_id: referral.id.clone(),
                study_uid: referral.study_uid.clone(),
                report_id: String::new(),
                detail: reason.to_owned(),
            };
            if !self.index.unlink(referral_id, &journal).await? {
                return Err(ReferralError::Conflict(format!(
                    "referral {referral_id} is not linked"
                )));
            }
            self.index
                .referral(referral_id)
                .await?
                .ok_or_else(|| ReferralError::NotFound(referral_id.to_owned()))
        }
        .await;
        event.outcome = match &outcome {
            Ok(r) => {
                event.patient_id = r.personal_code.clone();
                "done".to_owned()
            }
            Err(e) => format!("refused: {e}"),
        };
        self.audit.record(event).await;
        outcome
    }
}
