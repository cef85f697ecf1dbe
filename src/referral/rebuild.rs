//! Referrals filed again from their stored bytes, when the index is rebuilt from the object
//! store alone. A form 027 document names its performing clinic (custodian), an HL7 v2 order
//! its sending facility; with the configuration that is enough to file each one as it was
//! received, at the time the store wrote it, through the same validation, HL7-order pairing
//! and study linking as on arrival. Nothing is stored: the bytes are already in the store.

use std::collections::BTreeMap;

use super::cda::{self, Document027};
use super::{validate, Filing, ReferralError, Referrals, Source, Stored, ORDER_DOCUMENT_ROOT};
use crate::access::{Principal, Role, Via};
use crate::index::ReferralRow;

/// Referral ids signed reports name, by (clinic, order number): a referral filed again takes
/// the id its reports were signed under, so they find it.
pub type KnownIds = BTreeMap<(String, String), String>;

/// The name rebuilt rows give as who received them.
pub const REBUILDER: &str = "rebuild-index";

/// How a referral filed again came out.
#[derive(Debug, Clone)]
pub enum Refiled {
    Filed(ReferralRow),
    /// The document became the document of an HL7 v2 order's referral, as it did on arrival.
    Enriched(ReferralRow),
    /// A referral with the same document id is filed already (a copy of the document).
    Duplicate(ReferralRow),
}

fn rebuilder(clinic: &str) -> Principal {
    Principal {
        name: REBUILDER.into(),
        role: Role::Clinic,
        institution: clinic.to_owned(),
        via: Via::Cli,
        address: "local".into(),
        pixel_access: false,
    }
}

fn filing(known: &KnownIds, clinic: &str, order_number: &str, at: i64) -> Filing {
    let id = known
        .get(&(clinic.to_owned(), order_number.to_owned()))
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    Filing { at, id }
}

impl Referrals {
    /// Files the stored form 027 document `bytes` (under `key`, its SHA-256 `sha256`, received
    /// at `at`) again, for the clinic its custodian names.
    pub async fn refile_document(
        &self,
        key: &str,
        sha256: &str,
        bytes: &[u8],
        at: i64,
        known: &KnownIds,
    ) -> Result<Refiled, ReferralError> {
        let read = cda::read(bytes)?;
        let valid = validate::validate(&read, &self.config.referral.oids)?;
        let clinic = valid.custodian.clone();
        if self.config.clinics.iter().all(|c| c.id != clinic) {
            return Err(ReferralError::Conflict(format!(
                "the document names performing clinic `{clinic}`, which the configuration does \
                 not know: its sender cannot be told from the store"
            )));
        }
        if valid.document_id.starts_with(ORDER_DOCUMENT_ROOT) {
            return Err(ReferralError::Conflict(format!(
                "document id `{}` is reserved for referrals made from HL7 v2 orders",
                valid.document_id
            )));
        }
        if let Some(existing) = self.index.referral_by_document(&valid.document_id).await? {
            return Ok(Refiled::Duplicate(existing));
        }
        let stored = Stored {
            key: key.to_owned(),
            sha256: sha256.to_owned(),
        };
        let who = rebuilder(&clinic);
        match self.waiting_order(&clinic, &valid).await? {
            Some(order) => Ok(Refiled::Enriched(
                self.enrich(&who, order, valid, stored, at).await?.referral,
            )),
            None => {
                let filing = filing(known, &clinic, &valid.order_number, at);
                let received = self
                    .file(&who, valid, Source::Store, stored, false, filing)
                    .await?;
                Ok(Refiled::Filed(received.referral))
            }
        }
    }

    /// Files the referral of a stored HL7 v2 order again: `order` as read from the message
    /// under `key` for `clinic`, received at `at`.
    pub async fn refile_order(
        &self,
        clinic: &str,
        order: &Document027,
        key: &str,
        sha256: &str,
        at: i64,
        known: &KnownIds,
    ) -> Result<Refiled, ReferralError> {
        let valid = validate::validate(order, &self.config.referral.oids)?;
        if let Some(existing) = self
            .index
            .referrals_of_order(clinic, &valid.order_number)
            .await?
            .into_iter()
            .next()
        {
            return Ok(Refiled::Duplicate(existing));
        }
        let stored = Stored {
            key: key.to_owned(),
            sha256: sha256.to_owned(),
        };
        let filing = filing(known, clinic, &valid.order_number, at);
        let received = self
            .file(&rebuilder(clinic), valid, Source::Hl7, stored, true, filing)
            .await?;
        Ok(Refiled::Filed(received.referral))
    }
}
