//! Referrals from HL7 v2 orders (ORM^O01, OMG^O19), for HIS systems that send no CDA.
//!
//! The HL7 edge reads the order into the same [`Document027`] a CDA document becomes, so one
//! validation (point 12.3) judges both. The message is kept byte for byte like a document. An
//! order is one referral per clinic and order number: a resend answers the referral it made;
//! the CDA document that may follow for the same order becomes that referral's document.

use super::cda::Document027;
use super::{
    patient_key, validate, Filing, Invalid, Received, ReferralError, ReferralRow, Referrals, Source,
};
use crate::access::{Action, Principal};
use crate::archive::keys;
use crate::catalog;

impl Referrals {
    /// Takes in an order read from an HL7 v2 message, `message` being its bytes as received.
    pub async fn receive_order(
        &self,
        who: &Principal,
        order: &Document027,
        message: &[u8],
    ) -> Result<Received, ReferralError> {
        let mut event = catalog::event(who, "referral_received");
        event.detail = format!("via hl7v2, order {}", order.order_id.extension);
        let outcome = self.take_order(who, order, message).await;
        event.outcome = match &outcome {
            Ok(r) if r.created => "accepted".to_owned(),
            Ok(_) => "already received".to_owned(),
            Err(e) => format!("refused: {e}"),
        };
        if let Ok(r) = &outcome {
            event.patient_id = patient_key(&r.referral.personal_code, &r.referral.insured_code);
            event.detail = format!("{}; referral {}", event.detail, r.referral.id);
        }
        self.audit.record(event).await;
        outcome
    }

    async fn take_order(
        &self,
        who: &Principal,
        order: &Document027,
        message: &[u8],
    ) -> Result<Received, ReferralError> {
        self.policy.permit(who, Action::Store)?;
        let valid = validate::validate(order, &self.config.referral.oids)?;
        if let Some(existing) = self
            .index
            .referrals_of_order(&who.institution, &valid.order_number)
            .await?
            .into_iter()
            .next()
        {
            return if same_patient(&existing, &valid) {
                Ok(Received {
                    referral: existing,
                    created: false,
                    enriched: false,
                })
            } else {
                Err(Invalid {
                    field: "order_number".into(),
                    message: format!(
                        "order {} is already a referral for a patient with other identifiers",
                        valid.order_number
                    ),
                }
                .into())
            };
        }
        let stored = self.keep(message, keys::hl7_message).await?;
        self.file(who, valid, Source::Hl7, stored, true, Filing::now())
            .await
    }
}

fn same_patient(existing: &ReferralRow, valid: &validate::Valid) -> bool {
    let same = |a: &str, b: &str| !a.is_empty() && a == b;
    same(&existing.personal_code, &valid.personal_code)
        || same(&existing.insured_code, &valid.insured_code)
}
