//! Who is asking and what they may do: principals, roles, and the scope of what they see.
//!
//! Every edge turns its caller into a [`Principal`] (a DICOM peer by its AE title, an HTTP
//! caller by session, token or identity-provider JWT) and every read of patient data asks the
//! [`Policy`] for a permission and a [`Scope`]. The scope is built here and nowhere else; the
//! index takes one on every query that returns patient data. This module never reads the
//! database or the network.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::config::{Config, Destination, Institution, InstitutionKind};
use crate::index::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Staff of one performing clinic: sees and sends its own clinic's studies.
    Clinic,
    /// A consulting doctor at one centre: sees the studies of the clinics the centre reads.
    Cardiologist,
    /// Reads everything including the audit trail; pixel data only when granted.
    Auditor,
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Clinic, Role::Cardiologist, Role::Auditor, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Clinic => "clinic",
            Role::Cardiologist => "cardiologist",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Which kind of institution an account of this role must belong to, if any.
    pub fn institution_kind(self) -> Option<InstitutionKind> {
        match self {
            Role::Clinic => Some(InstitutionKind::Clinic),
            Role::Cardiologist => Some(InstitutionKind::Centre),
            Role::Auditor | Role::Admin => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// A DICOM association from a declared AE title (and address, and certificate with TLS).
    Dicom,
    /// A browser session cookie.
    Session,
    /// A bearer API token.
    Token,
    /// A bearer JWT from the hospital's identity provider.
    Jwt,
    /// An HL7 v2 message over MLLP from a declared sending facility (and address).
    Hl7,
    /// The operator at this machine's command line, who holds its data files anyway.
    Cli,
}

/// The caller of one request or association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    /// User name, or calling AE title for DICOM peers.
    pub name: String,
    pub role: Role,
    /// Clinic or centre id; empty for auditors and admins.
    pub institution: String,
    pub via: Via,
    /// Network address of the caller.
    pub address: String,
    /// An auditor's grant to see pixel data.
    pub pixel_access: bool,
}

impl Principal {
    /// The operator of a command run on this machine, as an administrator.
    pub fn operator(name: &str) -> Principal {
        Principal {
            name: format!("cli:{name}"),
            role: Role::Admin,
            institution: String::new(),
            via: Via::Cli,
            address: "local".into(),
            pixel_access: false,
        }
    }

    /// The principal a DICOM peer acts as: its institution's AE speaks for the clinic, or for
    /// the centre's cardiologists.
    pub fn dicom_peer(calling_ae: &str, institution: &Institution, address: &str) -> Principal {
        Principal {
            name: calling_ae.to_owned(),
            role: match institution.kind {
                InstitutionKind::Clinic => Role::Clinic,
                InstitutionKind::Centre => Role::Cardiologist,
            },
            institution: institution.id.clone(),
            via: Via::Dicom,
            address: address.to_owned(),
            pixel_access: false,
        }
    }
}

/// Things a principal may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Find patients, studies, series, instances (attributes only).
    Query,
    /// Read full data set headers (WADO-RS metadata).
    ReadMetadata,
    /// Retrieve objects, frames, bulk data or rendered images.
    ReadPixels,
    /// Send objects to the archive.
    Store,
    /// Bring a recorder's file (ISHNE, EDF) in for a clinic's referral: the clinic itself, or
    /// an operator at the service's command line on its behalf.
    ImportRecording,
    /// Read the audit trail.
    ReadAudit,
    /// Manage users, tokens and configuration-backed resources.
    Administer,
    /// Place and release legal holds, extend retention, propose deleting an expired study.
    GovernArchive,
    /// Approve or reject a proposed deletion: the second person, never an administrator.
    ApproveDeletion,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Query => "query",
            Action::ReadMetadata => "read metadata",
            Action::ReadPixels => "read pixel data",
            Action::Store => "store",
            Action::ImportRecording => "import a recording",
            Action::ReadAudit => "read the audit trail",
            Action::Administer => "administer",
            Action::GovernArchive => "place holds on, extend or propose deleting archived data",
            Action::ApproveDeletion => "approve deleting archived data",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{role} `{name}` may not {action}")]
pub struct Denied {
    pub name: String,
    pub role: Role,
    pub action: &'static str,
}

/// The access rules, from the configuration's institutions and contracts.
#[derive(Debug, Clone)]
pub struct Policy {
    config: Arc<Config>,
}

impl Policy {
    pub fn new(config: Arc<Config>) -> Policy {
        Policy { config }
    }

    /// Whether `who` may do `action` at all (the scope then limits which data).
    pub fn permit(&self, who: &Principal, action: Action) -> Result<(), Denied> {
        let allowed = match (who.role, action) {
            // Objects belong to the clinic that sent them: only a clinic's principals store.
            (Role::Admin, Action::Store) => false,
            // Deletion takes two people: administrators propose, auditors approve.
            (Role::Admin, Action::ApproveDeletion) => false,
            (Role::Admin, Action::ImportRecording) => who.via == Via::Cli,
            (Role::Auditor, Action::ApproveDeletion) => true,
            (_, Action::ApproveDeletion) => false,
            (Role::Auditor | Role::Clinic | Role::Cardiologist, Action::GovernArchive) => false,
            (Role::Admin, _) => true,
            (Role::Auditor, Action::ReadPixels) => who.pixel_access,
            (Role::Auditor, Action::Store | Action::ImportRecording | Action::Administer) => false,
            (Role::Auditor, _) => true,
            (Role::Clinic, Action::ReadAudit | Action::Administer) => false,
            (Role::Clinic, _) => true,
            (
                Role::Cardiologist,
                Action::Store | Action::ImportRecording | Action::ReadAudit | Action::Administer,
            ) => false,
            (Role::Cardiologist, _) => true,
        };
        if allowed {
            Ok(())
        } else {
            Err(Denied {
                name: who.name.clone(),
                role: who.role,
                action: action.as_str(),
            })
        }
    }

    /// The clinics whose studies `who` may see.
    pub fn scope(&self, who: &Principal) -> Scope {
        match who.role {
            Role::Admin | Role::Auditor => Scope::Everything,
            Role::Clinic => {
                if self.config.clinics.iter().any(|c| c.id == who.institution) {
                    Scope::Clinics(vec![who.institution.clone()])
                } else {
                    Scope::Clinics(Vec::new())
                }
            }
            Role::Cardiologist => match self.config.centre(&who.institution) {
                Some(centre) => Scope::Clinics(centre.reads.clone()),
                None => Scope::Clinics(Vec::new()),
            },
        }
    }

    /// Whether studies of `clinic_id` are within `who`'s scope.
    pub fn sees_clinic(&self, who: &Principal, clinic_id: &str) -> bool {
        match self.scope(who) {
            Scope::Everything => true,
            Scope::Clinics(list) => list.iter().any(|c| c == clinic_id),
        }
    }

    /// The C-MOVE destination `ae_title`, if `who` may send data there: a destination belongs
    /// to one institution and only that institution (or an admin) may use it.
    pub fn move_destination(&self, who: &Principal, ae_title: &str) -> Option<&Destination> {
        let dest = self.config.destination(ae_title)?;
        (who.role == Role::Admin || dest.institution == who.institution).then_some(dest)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::path::Path;

    fn policy() -> Policy {
        let text = include_str!("../../config/telecardio.toml");
        let env = [(
            "TELECARDIO_CLINICS".to_string(),
            r#"[{id="demo", name="D", ae_titles=["DEMO_CLINIC"], networks=[]},
                {id="other", name="O", ae_titles=["OTHER"], networks=[]}]"#
                .to_string(),
        )];
        let config = Config::from_toml(text, Path::new("t"), env, &Overrides::default()).unwrap();
        Policy::new(Arc::new(config))
    }

    fn who(role: Role, institution: &str) -> Principal {
        Principal {
            name: "u".into(),
            role,
            institution: institution.into(),
            via: Via::Session,
            address: "127.0.0.1".into(),
            pixel_access: false,
        }
    }

    #[test]
    fn scopes_follow_institutions_and_contracts() {
        let p = policy();
        assert_eq!(
            p.scope(&who(Role::Clinic, "demo")),
            Scope::Clinics(vec!["demo".into()])
        );
        assert_eq!(
            p.scope(&who(Role::Cardiologist, "demo-centre")),
            Scope::Clinics(vec!["demo".into()])
        );
        assert_eq!(p.scope(&who(Role::Auditor, "")), Scope::Everything);
        // An account pointing at an institution that no longer exists sees nothing.
        assert_eq!(p.scope(&who(Role::Clinic, "gone")), Scope::Clinics(vec![]));
        assert_eq!(
            p.scope(&who(Role::Cardiologist, "demo")),
            Scope::Clinics(vec![])
        );
        assert!(!p.sees_clinic(&who(Role::Clinic, "demo"), "other"));
    }

    #[test]
    fn permissions_by_role() {
        let p = policy();
        let auditor = who(Role::Auditor, "");
        assert!(p.permit(&auditor, Action::Query).is_ok());
        assert!(p.permit(&auditor, Action::ReadAudit).is_ok());
        assert!(p.permit(&auditor, Action::Store).is_err());
        assert!(p.permit(&auditor, Action::ReadPixels).is_err());
        let granted = Principal {
            pixel_access: true,
            ..auditor
        };
        assert!(p.permit(&granted, Action::ReadPixels).is_ok());
        let reader = who(Role::Cardiologist, "demo-centre");
        assert!(p.permit(&reader, Action::ReadPixels).is_ok());
        assert!(p.permit(&reader, Action::Store).is_err());
        let clinic = who(Role::Clinic, "demo");
        assert!(p.permit(&clinic, Action::Store).is_ok());
        assert!(p.permit(&clinic, Action::ReadAudit).is_err());
        assert!(p.permit(&who(Role::Admin, ""), Action::Store).is_err());
    }
}
