//! Patient maintenance sent by a clinic's HIS (HL7 v2 ADT^A08 and ADT^A40): demographics
//! updates and merges, applied to the index only (stored objects stay exactly as received),
//! each journaled and audited. A clinic maintains the patients of its own studies, nobody
//! else's.

use crate::access::{Action, Denied, Policy, Principal};
use crate::audit::AuditTrail;
use crate::catalog;
use crate::fault::Fault;
use crate::index::{Demographics, Index, IndexError, JournalEntry, Merge, Merged};
use crate::ingest::meta::search_form;

#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("no patient with identifier {0} among this clinic's studies")]
    Unknown(String),
    #[error("the prior and surviving patient are the same ({0})")]
    SelfMerge(String),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl PatientError {
    pub fn fault(&self) -> Fault {
        match self {
            PatientError::Denied(_) => Fault::Forbidden,
            PatientError::Unknown(_) => Fault::NotFound,
            PatientError::SelfMerge(_) => Fault::BadInput,
            PatientError::Index(_) => Fault::Unavailable,
        }
    }
}

/// New demographics as a message gives them; empty values change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub family_name: String,
    pub given_names: String,
    pub birth_date: String,
    pub sex: String,
}

impl Change {
    /// The DICOM PN form the index answers with (`Family^Given`).
    fn person_name(&self) -> String {
        match (self.family_name.is_empty(), self.given_names.is_empty()) {
            (true, true) => String::new(),
            (_, true) => self.family_name.clone(),
            _ => format!("{}^{}", self.family_name, self.given_names),
        }
    }

    fn demographics(&self, clinic_id: &str, patient_id: &str) -> Demographics {
        let name = self.person_name();
        Demographics {
            clinic_id: clinic_id.to_owned(),
            patient_id: patient_id.to_owned(),
            name_search: search_form(&name),
            name,
            birth_date: self.birth_date.clone(),
            sex: self.sex.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Patients {
    index: Index,
    policy: Policy,
    audit: AuditTrail,
}

impl Patients {
    pub fn new(index: Index, policy: Policy, audit: AuditTrail) -> Patients {
        Patients {
            index,
            policy,
            audit,
        }
    }

    /// ADT^A08: new demographics for the patient known by any of `ids`.
    pub async fn update(
        &self,
        who: &Principal,
        ids: &[String],
        change: &Change,
        message_id: &str,
    ) -> Result<u64, PatientError> {
        let mut event = catalog::event(who, "patient_updated");
        event.patient_id = ids.first().cloned().unwrap_or_default();
        event.detail = format!("HL7 message {message_id}; identifiers {}", ids.join(", "));
        let outcome = self.apply_update(who, ids, change, message_id).await;
        event.outcome = match &outcome {
            Ok(n) => format!("updated {n} patient record(s)"),
            Err(e) => format!("refused: {e}"),
        };
        self.audit.record(event).await;
        outcome
    }

    async fn apply_update(
        &self,
        who: &Principal,
        ids: &[String],
        change: &Change,
        message_id: &str,
    ) -> Result<u64, PatientError> {
        self.policy.permit(who, Action::Store)?;
        let mut updated = 0;
        for id in ids {
            let journal = self.entry(
                who,
                "patient_updated",
                id,
                format!("demographics updated by HL7 message {message_id}"),
            );
            updated += self
                .index
                .update_demographics(&change.demographics(&who.institution, id), &journal)
                .await?;
        }
        if updated == 0 {
            return Err(PatientError::Unknown(ids.join(", ")));
        }
        Ok(updated)
    }

    /// ADT^A40: the clinic's records of each of `prior` now belong to `survivor`.
    pub async fn merge(
        &self,
        who: &Principal,
        survivor: &str,
        prior: &[String],
        change: &Change,
        message_id: &str,
    ) -> Result<Merged, PatientError> {
        let mut event = catalog::event(who, "patient_merged");
        event.patient_id = survivor.to_owned();
        event.detail = format!(
            "HL7 message {message_id}; {} merged into {survivor}",
            prior.join(", ")
        );
        let outcome = self
            .apply_merge(who, survivor, prior, change, message_id)
            .await;
        event.outcome = match &outcome {
            Ok(m) => format!("merged; {} study record(s) moved", m.studies),
            Err(e) => format!("refused: {e}"),
        };
        self.audit.record(event).await;
        outcome
    }

    async fn apply_merge(
        &self,
        who: &Principal,
        survivor: &str,
        prior: &[String],
        change: &Change,
        message_id: &str,
    ) -> Result<Merged, PatientError> {
        self.policy.permit(who, Action::Store)?;
        if let Some(same) = prior.iter().find(|p| *p == survivor) {
            return Err(PatientError::SelfMerge(same.clone()));
        }
        if prior.is_empty() {
            return Err(PatientError::SelfMerge(survivor.to_owned()));
        }
        let mut total = Merged { studies: 0 };
        for prior_id in prior {
            let merge = Merge {
                id: uuid::Uuid::now_v7().to_string(),
                prior_id: prior_id.clone(),
                survivor: change.demographics(&who.institution, survivor),
                actor: who.name.clone(),
                message_id: message_id.to_owned(),
            };
            let journal = self.entry(
                who,
                "patient_merged",
                survivor,
                format!("{prior_id} merged into {survivor} by HL7 message {message_id}"),
            );
            // A merge of a patient we never held is still recorded: objects that arrive later
            // under the prior identifier must land with the survivor.
            total.studies += self.index.merge_patients(&merge, &journal).await?.studies;
        }
        Ok(total)
    }

    fn entry(&self, who: &Principal, kind: &str, patient_id: &str, detail: String) -> JournalEntry {
        JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: crate::index::now_micros(),
            kind: kind.to_owned(),
            clinic_id: who.institution.clone(),
            institution: who.institution.clone(),
            actor: who.name.clone(),
            patient_id: patient_id.to_owned(),
            detail,
            ..JournalEntry::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_the_dicom_form() {
        let c = Change {
            family_name: "Žemaitė".into(),
            given_names: "Julija".into(),
            ..Change::default()
        };
        assert_eq!(c.person_name(), "Žemaitė^Julija");
        assert_eq!(c.demographics("demo", "1").name_search, "zemaite^julija");
        assert_eq!(Change::default().person_name(), "");
    }
}
