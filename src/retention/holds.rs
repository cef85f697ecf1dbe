//! Legal holds and extensions: what keeps a study past its date, placed by administrators.

use super::{required, Retention, RetentionError, StudyRetention};
use crate::access::{Action, Principal};
use crate::index::{now_micros, ExtensionRow, HoldRow};

impl Retention {
    /// Places a legal hold on a study (administrators).
    pub async fn place_hold(
        &self,
        who: &Principal,
        study_uid: &str,
        reason: &str,
    ) -> Result<HoldRow, RetentionError> {
        let event = self
            .permit(who, Action::GovernArchive, "legal_hold_placed", study_uid)
            .await?;
        let placed = async {
            let reason = required("reason", reason)?;
            self.state_of(study_uid).await?;
            let row = HoldRow {
                id: uuid::Uuid::now_v7().to_string(),
                study_uid: study_uid.to_owned(),
                reason,
                placed_by: who.name.clone(),
                placed_at: now_micros(),
                released_by: String::new(),
                released_at: None,
                release_reason: String::new(),
            };
            if !self.index.place_hold(&row).await? {
                return Err(RetentionError::NoSuchStudy(study_uid.to_owned()));
            }
            Ok(row)
        };
        match placed.await {
            Ok(row) => {
                self.done(event, format!("hold {}: {}", row.id, row.reason))
                    .await;
                Ok(row)
            }
            Err(e) => Err(self.refused(event, e).await),
        }
    }

    /// Releases a legal hold (administrators); the hold stays on record.
    pub async fn release_hold(
        &self,
        who: &Principal,
        hold_id: &str,
        reason: &str,
    ) -> Result<HoldRow, RetentionError> {
        let event = self
            .permit(who, Action::GovernArchive, "legal_hold_released", "")
            .await?;
        let released = async {
            let reason = required("reason", reason)?;
            match self
                .index
                .release_hold(hold_id, &who.name, now_micros(), &reason)
                .await?
            {
                None => Err(RetentionError::NoSuchHold(hold_id.to_owned())),
                Some((_, false)) => Err(RetentionError::AlreadyReleased(hold_id.to_owned())),
                Some((row, true)) => Ok(row),
            }
        };
        match released.await {
            Ok(row) => {
                let mut event = event;
                event.study_uid = row.study_uid.clone();
                self.done(event, format!("hold {}: {}", row.id, row.release_reason))
                    .await;
                Ok(row)
            }
            Err(e) => Err(self.refused(event, e).await),
        }
    }

    /// Keeps a study until `until_day` at least (administrators); a day before the date in
    /// force is refused, since a retention date is never shortened.
    pub async fn extend(
        &self,
        who: &Principal,
        study_uid: &str,
        until_day: &str,
        reason: &str,
    ) -> Result<StudyRetention, RetentionError> {
        let event = self
            .permit(who, Action::GovernArchive, "retention_extended", study_uid)
            .await?;
        let extended = async {
            let reason = required("reason", reason)?;
            let day: jiff::civil::Date =
                until_day
                    .trim()
                    .parse()
                    .map_err(|_| RetentionError::Invalid {
                        field: "until",
                        why: format!("`{until_day}` is not a date (YYYY-MM-DD)"),
                    })?;
            let day = day.to_string();
            let state = self.state_of(study_uid).await?;
            if day <= state.retain_until {
                return Err(RetentionError::Shortening {
                    study: study_uid.to_owned(),
                    until: state.retain_until,
                    asked: day,
                });
            }
            let row = ExtensionRow {
                id: uuid::Uuid::now_v7().to_string(),
                study_uid: study_uid.to_owned(),
                until_day: day.clone(),
                reason,
                set_by: who.name.clone(),
                set_at: now_micros(),
            };
            match self.index.add_extension(&row).await? {
                None => Err(RetentionError::NoSuchStudy(study_uid.to_owned())),
                Some(false) => Err(RetentionError::Shortening {
                    study: study_uid.to_owned(),
                    until: self.state_of(study_uid).await?.retain_until,
                    asked: day,
                }),
                Some(true) => self.state_of(study_uid).await,
            }
        };
        match extended.await {
            Ok(state) => {
                self.done(event, format!("until {}", state.retain_until))
                    .await;
                Ok(state)
            }
            Err(e) => Err(self.refused(event, e).await),
        }
    }
}
