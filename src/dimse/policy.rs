//! Who may open an association, and how many at once.
//!
//! The decision is taken on the A-ASSOCIATE-RQ header before dicom-ul negotiates, so that a
//! refusal carries the right reason: calling or called AE not recognised (permanent) or local
//! limit exceeded (transient). Every refusal is logged and written to the audit trail by the
//! caller.

use std::net::IpAddr;
use std::sync::Arc;

use dicom_ul::pdu::{
    AssociationRJ, AssociationRJResult, AssociationRJServiceProviderPresentationReason,
    AssociationRJServiceUserReason, AssociationRJSource,
};

use crate::config::{Config, Institution};
use crate::slots::{Full, Slot, Slots};

/// Why an association is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    CalledAeUnknown(String),
    CallingAeUnknown(String),
    AddressNotAllowed {
        institution: String,
    },
    TooManyAssociations,
    TooManyForInstitution {
        institution: String,
    },
    /// Over TLS: the client certificate carries none of the calling institution's names.
    CertificateNotBound {
        institution: String,
    },
}

impl Refusal {
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::CalledAeUnknown(_) => "called_ae_unknown",
            Refusal::CallingAeUnknown(_) => "calling_ae_unknown",
            Refusal::AddressNotAllowed { .. } => "address_not_allowed",
            Refusal::TooManyAssociations => "limit_total",
            Refusal::TooManyForInstitution { .. } => "limit_institution",
            Refusal::CertificateNotBound { .. } => "certificate_not_bound",
        }
    }

    pub fn institution(&self) -> &str {
        match self {
            Refusal::AddressNotAllowed { institution }
            | Refusal::TooManyForInstitution { institution }
            | Refusal::CertificateNotBound { institution } => institution,
            _ => "",
        }
    }

    /// The A-ASSOCIATE-RJ for this refusal (PS3.8 9.3.4).
    pub fn pdu(&self) -> AssociationRJ {
        let (result, source) = match self {
            Refusal::CalledAeUnknown(_) => (
                AssociationRJResult::Permanent,
                AssociationRJSource::ServiceUser(
                    AssociationRJServiceUserReason::CalledAETitleNotRecognized,
                ),
            ),
            Refusal::CallingAeUnknown(_)
            | Refusal::AddressNotAllowed { .. }
            | Refusal::CertificateNotBound { .. } => (
                AssociationRJResult::Permanent,
                AssociationRJSource::ServiceUser(
                    AssociationRJServiceUserReason::CallingAETitleNotRecognized,
                ),
            ),
            Refusal::TooManyAssociations | Refusal::TooManyForInstitution { .. } => (
                AssociationRJResult::Transient,
                AssociationRJSource::ServiceProviderPresentation(
                    AssociationRJServiceProviderPresentationReason::LocalLimitExceeded,
                ),
            ),
        };
        AssociationRJ { result, source }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::CalledAeUnknown(ae) => write!(f, "called AE title `{ae}` is not ours"),
            Refusal::CallingAeUnknown(ae) => write!(f, "calling AE title `{ae}` is not declared"),
            Refusal::AddressNotAllowed { institution } => {
                write!(f, "address is outside the networks of `{institution}`")
            }
            Refusal::TooManyAssociations => f.write_str("association limit reached"),
            Refusal::TooManyForInstitution { institution } => {
                write!(f, "association limit of `{institution}` reached")
            }
            Refusal::CertificateNotBound { institution } => write!(
                f,
                "the client certificate carries none of the certificate_names of `{institution}`"
            ),
        }
    }
}

/// Admission policy; cheap to clone, shared by all listeners.
#[derive(Clone)]
pub struct Admission {
    config: Arc<Config>,
    /// Associations open, by institution.
    slots: Slots<String>,
}

/// Holds an association's place in the limits until dropped.
pub struct Admitted {
    pub institution: Institution,
    _slot: Slot<String>,
}

impl Admission {
    pub fn new(config: Arc<Config>) -> Admission {
        Admission {
            config,
            slots: Slots::default(),
        }
    }

    /// Decides on an association from `addr` calling `called` as `calling`.
    pub fn admit(&self, called: &str, calling: &str, addr: IpAddr) -> Result<Admitted, Refusal> {
        let institution = self.identify(called, calling, addr)?;
        let dicom = &self.config.dicom;
        let slot = self
            .slots
            .take(
                institution.id.clone(),
                dicom.max_associations,
                dicom.max_associations_per_clinic,
            )
            .map_err(|full| match full {
                Full::Total => Refusal::TooManyAssociations,
                Full::Key => Refusal::TooManyForInstitution {
                    institution: institution.id.clone(),
                },
            })?;
        Ok(Admitted {
            institution,
            _slot: slot,
        })
    }

    /// The clinic or centre speaking, if the titles and the address agree with the
    /// configuration.
    pub fn identify(
        &self,
        called: &str,
        calling: &str,
        addr: IpAddr,
    ) -> Result<Institution, Refusal> {
        let (called, calling) = (called.trim(), calling.trim());
        if called != self.config.dicom.ae_title.trim() {
            return Err(Refusal::CalledAeUnknown(called.to_owned()));
        }
        let institution = self
            .config
            .institution_by_ae(calling)
            .ok_or_else(|| Refusal::CallingAeUnknown(calling.to_owned()))?;
        if !institution.allows_address(addr) {
            return Err(Refusal::AddressNotAllowed {
                institution: institution.id.clone(),
            });
        }
        Ok(institution)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::path::Path;

    fn admission(env: &[(&str, &str)]) -> Admission {
        let text = include_str!("../../config/telecardio.toml");
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let config = Config::from_toml(text, Path::new("t"), env, &Overrides::default()).unwrap();
        Admission::new(Arc::new(config))
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn demo_clinic_admitted_from_loopback_only() {
        let a = admission(&[]);
        assert_eq!(
            a.admit("TELECARDIO", "DEMO_CLINIC", LOOPBACK)
                .unwrap()
                .institution
                .id,
            "demo"
        );
        let reader = a.admit("TELECARDIO", "DEMO_READER", LOOPBACK).unwrap();
        assert_eq!(reader.institution.id, "demo-centre");
        assert_eq!(
            reader.institution.kind,
            crate::config::InstitutionKind::Centre
        );
        let outside: IpAddr = "198.51.100.7".parse().unwrap();
        assert!(matches!(
            a.admit("TELECARDIO", "DEMO_CLINIC", outside),
            Err(Refusal::AddressNotAllowed { .. })
        ));
    }

    #[test]
    fn unknown_titles_refused_permanently() {
        let a = admission(&[]);
        let e = a.admit("TELECARDIO", "STRANGER", LOOPBACK).err().unwrap();
        assert_eq!(e, Refusal::CallingAeUnknown("STRANGER".into()));
        assert_eq!(e.pdu().result, AssociationRJResult::Permanent);
        let e = a
            .admit("SOMEONE_ELSE", "DEMO_CLINIC", LOOPBACK)
            .err()
            .unwrap();
        assert!(matches!(e, Refusal::CalledAeUnknown(_)));
    }

    #[test]
    fn limits_are_transient_and_released_on_drop() {
        let a = admission(&[("TELECARDIO_DICOM__MAX_ASSOCIATIONS_PER_CLINIC", "2")]);
        let first = a.admit("TELECARDIO", "DEMO_CLINIC", LOOPBACK).unwrap();
        let _second = a.admit("TELECARDIO", "DEMO_CLINIC", LOOPBACK).unwrap();
        let e = a
            .admit("TELECARDIO", "DEMO_CLINIC", LOOPBACK)
            .err()
            .unwrap();
        assert_eq!(e.pdu().result, AssociationRJResult::Transient);
        drop(first);
        assert!(a.admit("TELECARDIO", "DEMO_CLINIC", LOOPBACK).is_ok());
    }
}
