//! Reading an original back: whoever may read the case's data may fetch the file the clinic
//! sent, byte for byte. Access is decided by the same policy as every read (permission, then
//! the clinic scope), answered as not found outside it, and audited either way.

use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path as ObjectKey;

use super::import::{Holter, ImportError};
use crate::access::{Action, Principal};
use crate::archive::ArchiveError;
use crate::index::HolterOriginal;

impl Holter {
    /// The original behind the copy `series_uid`, if `who` may do `action` on it.
    pub async fn original(
        &self,
        who: &Principal,
        series_uid: &str,
        action: Action,
    ) -> Result<HolterOriginal, ImportError> {
        let mut event = crate::catalog::event(who, "holter_original_read");
        let found = self.find(who, series_uid, action).await;
        match &found {
            Ok(o) => {
                event.outcome = "answered".into();
                event.study_uid = o.study_uid.clone();
                event.detail = format!(
                    "{} of series {series_uid}: `{}` ({})",
                    if action == Action::ReadPixels {
                        "download"
                    } else {
                        "description"
                    },
                    o.file_name,
                    o.object_key
                );
            }
            Err(e) => {
                event.outcome = "refused".into();
                event.detail = format!("series {series_uid}: {e}");
            }
        }
        // An access that cannot be audited is not answered.
        self.audit_required(event).await?;
        found
    }

    async fn find(
        &self,
        who: &Principal,
        series_uid: &str,
        action: Action,
    ) -> Result<HolterOriginal, ImportError> {
        self.policy.permit(who, action)?;
        match self.index.holter_original(series_uid).await? {
            Some(o) if self.policy.sees_clinic(who, &o.clinic_id) => Ok(o),
            _ => Err(ImportError::NoOriginal(series_uid.to_owned())),
        }
    }

    /// The original's bytes as stored.
    pub async fn original_bytes(
        &self,
        original: &HolterOriginal,
    ) -> Result<BoxStream<'static, Result<Bytes, ArchiveError>>, ImportError> {
        Ok(self
            .archive
            .stream(&ObjectKey::from(original.object_key.as_str()))
            .await?)
    }
}
