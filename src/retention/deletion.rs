//! Deletion after the retention date, by two people: an administrator proposes, an auditor
//! approves (every check made again in one transaction) or rejects; tombstones stay forever.

use super::{dates, required, today, Deletion, Retention, RetentionError, StudyRetention};
use crate::access::{Action, Principal};
use crate::archive::{keys, ObjectKey};
use crate::index::{now_micros, DeletionRequestRow, Removal, TombstoneRow};

impl Retention {
    /// An administrator proposes deleting an expired, unheld study; an auditor decides.
    pub async fn propose(
        &self,
        who: &Principal,
        study_uid: &str,
        reason: &str,
    ) -> Result<DeletionRequestRow, RetentionError> {
        let event = self
            .permit(who, Action::GovernArchive, "deletion_proposed", study_uid)
            .await?;
        let proposed = async {
            let reason = required("reason", reason)?;
            let state = self.state_of(study_uid).await?;
            deletable(&state)?;
            let row = DeletionRequestRow {
                id: uuid::Uuid::now_v7().to_string(),
                study_uid: study_uid.to_owned(),
                reason,
                proposed_by: who.name.clone(),
                proposed_at: now_micros(),
                state: "proposed".into(),
                decided_by: String::new(),
                decided_at: None,
                decision_note: String::new(),
                done_at: None,
            };
            if !self.index.propose_deletion(&row).await? {
                return Err(RetentionError::AlreadyProposed(study_uid.to_owned()));
            }
            Ok(row)
        };
        match proposed.await {
            Ok(row) => {
                self.done(event, format!("request {}: {}", row.id, row.reason))
                    .await;
                Ok(row)
            }
            Err(e) => Err(self.refused(event, e).await),
        }
    }

    /// An auditor rejects a proposal.
    pub async fn reject(
        &self,
        who: &Principal,
        request_id: &str,
        note: &str,
    ) -> Result<DeletionRequestRow, RetentionError> {
        let mut event = self
            .permit(who, Action::ApproveDeletion, "deletion_rejected", "")
            .await?;
        let rejected = async {
            let note = required("note", note)?;
            let request = self.waiting(request_id, who).await?;
            if !self
                .index
                .reject_deletion(request_id, &who.name, now_micros(), &note)
                .await?
            {
                return Err(RetentionError::Decided {
                    id: request_id.to_owned(),
                    state: "decided".into(),
                });
            }
            Ok(request)
        };
        match rejected.await {
            Ok(request) => {
                event.study_uid = request.study_uid.clone();
                self.done(event, format!("request {request_id}")).await;
                self.request(request_id).await
            }
            Err(e) => Err(self.refused(event, e).await),
        }
    }

    /// An auditor approves a proposal: every check is made again, the study's index rows are
    /// replaced by tombstones in one transaction, the record is kept in the store, then the
    /// objects are removed.
    pub async fn approve(
        &self,
        who: &Principal,
        request_id: &str,
        note: &str,
    ) -> Result<Deletion, RetentionError> {
        let mut event = self
            .permit(who, Action::ApproveDeletion, "deletion_approved", "")
            .await?;
        let approved = async {
            let request = self.waiting(request_id, who).await?;
            let study = request.study_uid.clone();
            let state = self.state_of(&study).await?;
            deletable(&state)?;
            let approved_at = now_micros();
            let mut tombstones = Vec::with_capacity(state.objects.len());
            for o in &state.objects {
                let bytes = match self.archive.size(&ObjectKey::from(o.key.as_str())).await {
                    Ok(n) => i64::try_from(n).unwrap_or(i64::MAX),
                    Err(e) if e.is_not_found() => 0,
                    Err(e) => return Err(e.into()),
                };
                tombstones.push(TombstoneRow {
                    object_key: o.key.clone(),
                    request_id: request.id.clone(),
                    kind: o.kind.clone(),
                    study_uid: study.clone(),
                    sha256: o.sha256.clone(),
                    bytes,
                    received_at: o.received_at,
                    retain_until: o.retain_until.clone(),
                    reason: request.reason.clone(),
                    proposed_by: request.proposed_by.clone(),
                    proposed_at: request.proposed_at,
                    approved_by: who.name.clone(),
                    approved_at,
                    removed_at: None,
                });
            }
            let today = today().to_string();
            match self
                .index
                .approve_deletion(request_id, &today, &tombstones, note.trim())
                .await?
            {
                Removal::Approved(_) => Ok(study),
                Removal::NotProposed(state) => Err(RetentionError::Decided {
                    id: request_id.to_owned(),
                    state,
                }),
                Removal::NoStudy => Err(RetentionError::NoSuchStudy(study)),
                Removal::Held(n) => Err(RetentionError::Held {
                    study,
                    holds: usize::try_from(n).unwrap_or(usize::MAX),
                }),
                Removal::Extended(until) => Err(RetentionError::Retained {
                    first_day: dates::day_after(&until),
                    study,
                    until,
                }),
                Removal::Changed => Err(RetentionError::Changed(study)),
            }
        };
        match approved.await {
            Ok(study) => {
                event.study_uid = study;
                self.done(event, format!("request {request_id}")).await;
                self.finish(request_id).await
            }
            Err(e) => Err(self.refused(event, e).await),
        }
    }

    /// Keeps the deletion's record in the store, removes its objects and marks it done;
    /// also resumes a deletion a stopped node left half done.
    async fn finish(&self, request_id: &str) -> Result<Deletion, RetentionError> {
        let request = self.request(request_id).await?;
        let tombstones = self.index.tombstones(request_id, "").await?;
        let id = uuid::Uuid::parse_str(request_id)
            .map_err(|_| RetentionError::NoSuchRequest(request_id.to_owned()))?;
        let record = serde_json::json!({
            "request": request,
            "tombstones": tombstones,
        });
        let body = serde_json::to_vec_pretty(&record).unwrap_or_default();
        let mut writer = self.archive.writer();
        writer.write(&body).await?;
        writer.commit(&keys::tombstone_record(&id)).await?;
        let mut left_in_store = Vec::new();
        for t in tombstones.iter().filter(|t| t.removed_at.is_none()) {
            match self
                .archive
                .remove_expired(&ObjectKey::from(t.object_key.as_str()))
                .await
            {
                Ok(()) => {
                    self.index
                        .tombstone_removed(&t.object_key, now_micros())
                        .await?
                }
                Err(e) => {
                    tracing::error!(
                        alert = "deletion_incomplete",
                        key = %t.object_key,
                        error = %e,
                        "the store did not remove an object whose deletion was approved"
                    );
                    left_in_store.push(t.object_key.clone());
                }
            }
        }
        self.index.deletion_done(request_id, now_micros()).await?;
        Ok(Deletion {
            request: self.request(request_id).await?,
            tombstones: self.index.tombstones(request_id, "").await?,
            left_in_store,
        })
    }

    /// Finishes approved deletions whose objects are not all removed yet.
    pub async fn resume(&self) -> Result<usize, RetentionError> {
        let pending = self.index.deletion_requests("approved").await?;
        for r in &pending {
            self.finish(&r.id).await?;
        }
        Ok(pending.len())
    }

    async fn request(&self, id: &str) -> Result<DeletionRequestRow, RetentionError> {
        self.index
            .deletion_request(id)
            .await?
            .ok_or_else(|| RetentionError::NoSuchRequest(id.to_owned()))
    }

    /// A request waiting for a decision by someone other than its proposer.
    async fn waiting(
        &self,
        id: &str,
        who: &Principal,
    ) -> Result<DeletionRequestRow, RetentionError> {
        let request = self.request(id).await?;
        if request.state != "proposed" {
            return Err(RetentionError::Decided {
                id: id.to_owned(),
                state: request.state,
            });
        }
        if request.proposed_by == who.name {
            return Err(RetentionError::SamePerson(request.proposed_by));
        }
        Ok(request)
    }

    /// Deletion requests in a state ('' for all), for administrators and auditors.
    pub async fn requests(
        &self,
        who: &Principal,
        state: &str,
    ) -> Result<Vec<DeletionRequestRow>, RetentionError> {
        let event = self
            .permit(who, Action::ReadAudit, "deletion_requests_read", "")
            .await?;
        let rows = self.index.deletion_requests(state).await?;
        self.done(event, format!("state={state}")).await;
        Ok(rows)
    }

    /// Tombstones of a study ('' for all).
    pub async fn tombstones(
        &self,
        who: &Principal,
        study_uid: &str,
    ) -> Result<Vec<TombstoneRow>, RetentionError> {
        let event = self
            .permit(who, Action::ReadAudit, "tombstones_read", study_uid)
            .await?;
        let rows = self.index.tombstones("", study_uid).await?;
        self.done(event, String::new()).await;
        Ok(rows)
    }
}

/// Whether a study may be deleted now: past its date and under no hold.
fn deletable(state: &StudyRetention) -> Result<(), RetentionError> {
    if !state.expired {
        return Err(RetentionError::Retained {
            study: state.study_uid.clone(),
            first_day: dates::day_after(&state.retain_until),
            until: state.retain_until.clone(),
        });
    }
    if state.open_holds > 0 {
        return Err(RetentionError::Held {
            study: state.study_uid.clone(),
            holds: state.open_holds,
        });
    }
    Ok(())
}
