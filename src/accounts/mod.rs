//! Local accounts and authentication: who a caller is, proven by password (browser sessions),
//! API token (machines) or identity-provider JWT (hospitals with their own IdP).
//!
//! Owns account rules (names, roles, institutions, password length) and the formats of tokens
//! and session cookies; turns a proven identity into an [`access::Principal`]. What a principal
//! may then do is `access`'s business, not this module's.

pub mod jwt;
pub mod secret;
mod throttle;

use std::sync::Arc;

use crate::access::{Principal, Role, Via};
use crate::config::Config;
use crate::fault::Fault;
use crate::index::{Created, Index, IndexError, TokenRow, UserRow};
use secret::SecretError;

/// Prefix of every API token we issue, so leaked tokens are recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "tc_";

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("user name `{0}` must be 1-64 characters: letters, digits, '.', '_', '-', '@'")]
    BadName(String),
    #[error("role `{0}` is not one of clinic, cardiologist, auditor, admin")]
    UnknownRole(String),
    #[error("a {role} account needs --institution naming a declared {kind}")]
    InstitutionRequired { role: Role, kind: &'static str },
    #[error("`{institution}` is not a declared {kind}")]
    InstitutionUnknown {
        institution: String,
        kind: &'static str,
    },
    #[error("a {0} account belongs to no institution")]
    InstitutionNotAllowed(Role),
    #[error("the password must be at least {0} characters")]
    WeakPassword(usize),
    #[error("user `{0}` already exists")]
    Exists(String),
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("no token `{0}`")]
    NoToken(String),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl AccountError {
    pub fn fault(&self) -> Fault {
        match self {
            AccountError::NoUser(_) | AccountError::NoToken(_) => Fault::NotFound,
            AccountError::Index(_) => Fault::Unavailable,
            AccountError::Secret(_) => Fault::Bug,
            _ => Fault::BadInput,
        }
    }
}

/// Why a caller is not authenticated. Deliberately vague towards the caller (a wrong user name
/// and a wrong password look the same); the reason is logged.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("credentials not accepted: {0}")]
    Rejected(&'static str),
    #[error("too many failed sign-ins; try again in {0} seconds")]
    Throttled(u64),
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Jwt(#[from] jwt::JwtError),
}

/// A newly issued API token: the row, and the secret shown once.
pub struct IssuedToken {
    pub row: TokenRow,
    pub token: String,
}

#[derive(Clone)]
pub struct Accounts {
    index: Index,
    config: Arc<Config>,
    jwt: Option<Arc<jwt::Validator>>,
    throttle: Arc<throttle::Throttle>,
}

impl Accounts {
    pub fn new(index: Index, config: Arc<Config>) -> Result<Accounts, jwt::JwtError> {
        let jwt = if config.auth.oidc.enabled {
            Some(Arc::new(jwt::Validator::from_config(&config.auth.oidc)?))
        } else {
            None
        };
        let throttle = Arc::new(throttle::Throttle::new(
            config.auth.failed_logins_allowed,
            std::time::Duration::from_secs(config.auth.lockout_seconds),
        ));
        Ok(Accounts {
            index,
            config,
            jwt,
            throttle,
        })
    }

    fn check_account(&self, name: &str, role: Role, institution: &str) -> Result<(), AccountError> {
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if !valid_name {
            return Err(AccountError::BadName(name.to_owned()));
        }
        match role.institution_kind() {
            None if institution.is_empty() => Ok(()),
            None => Err(AccountError::InstitutionNotAllowed(role)),
            Some(kind) => {
                let kind_name = match kind {
                    crate::config::InstitutionKind::Clinic => "clinic",
                    crate::config::InstitutionKind::Centre => "centre",
                };
                if institution.is_empty() {
                    return Err(AccountError::InstitutionRequired {
                        role,
                        kind: kind_name,
                    });
                }
                match self.config.institution(institution) {
                    Some(i) if i.kind == kind => Ok(()),
                    _ => Err(AccountError::InstitutionUnknown {
                        institution: institution.to_owned(),
                        kind: kind_name,
                    }),
                }
            }
        }
    }

    fn check_password(&self, password: &str) -> Result<(), AccountError> {
        let min = self.config.auth.min_password_length;
        if password.chars().count() < min {
            return Err(AccountError::WeakPassword(min));
        }
        Ok(())
    }

    /// Creates an account; without a password it signs in with API tokens only.
    pub async fn add_user(
        &self,
        name: &str,
        role: &str,
        institution: &str,
        password: Option<&str>,
        pixel_access: bool,
    ) -> Result<UserRow, AccountError> {
        let role = Role::parse(role).ok_or_else(|| AccountError::UnknownRole(role.to_owned()))?;
        self.check_account(name, role, institution)?;
        let password_hash = match password {
            Some(p) => {
                self.check_password(p)?;
                hash(p.to_owned()).await?
            }
            None => String::new(),
        };
        let user = UserRow {
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            institution: institution.to_owned(),
            password_hash,
            pixel_access: pixel_access && role == Role::Auditor,
            disabled_at: None,
            created_at: 0,
            updated_at: 0,
            full_name: String::new(),
            licence: String::new(),
        };
        match self.index.create_user(&user).await? {
            Created::Created => Ok(user),
            Created::AlreadyExists => Err(AccountError::Exists(name.to_owned())),
        }
    }

    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), AccountError> {
        self.check_password(password)?;
        let hashed = hash(password.to_owned()).await?;
        if self.index.set_password_hash(name, &hashed).await? {
            Ok(())
        } else {
            Err(AccountError::NoUser(name.to_owned()))
        }
    }

    pub async fn disable(&self, name: &str) -> Result<(), AccountError> {
        if self.index.disable_user(name).await? {
            Ok(())
        } else {
            Err(AccountError::NoUser(name.to_owned()))
        }
    }

    /// The name and licence (or staff) number a user's signed reports carry.
    pub async fn set_profile(
        &self,
        name: &str,
        full_name: &str,
        licence: &str,
    ) -> Result<(), AccountError> {
        if self
            .index
            .set_profile(name, full_name.trim(), licence.trim())
            .await?
        {
            Ok(())
        } else {
            Err(AccountError::NoUser(name.to_owned()))
        }
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, AccountError> {
        Ok(self.index.users().await?)
    }

    /// Issues an API token for an existing, enabled account.
    pub async fn create_token(
        &self,
        user_name: &str,
        label: &str,
        valid_days: Option<u32>,
    ) -> Result<IssuedToken, AccountError> {
        match self.index.user(user_name).await? {
            Some(u) if u.disabled_at.is_none() => {}
            _ => return Err(AccountError::NoUser(user_name.to_owned())),
        }
        let id = secret::random_hex(8)?;
        let secret = secret::random_hex(32)?;
        let now = crate::index::now_micros();
        let row = TokenRow {
            id: id.clone(),
            user_name: user_name.to_owned(),
            label: label.to_owned(),
            secret_sha256: secret::sha256_hex(&secret),
            created_at: now,
            expires_at: valid_days.map(|d| now + i64::from(d) * 86_400_000_000),
            revoked_at: None,
            last_used_at: None,
        };
        self.index.insert_token(&row).await?;
        Ok(IssuedToken {
            row,
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
        })
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), AccountError> {
        if self.index.revoke_token(id).await? {
            Ok(())
        } else {
            Err(AccountError::NoToken(id.to_owned()))
        }
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, AccountError> {
        Ok(self.index.tokens().await?)
    }

    /// Checks a password and opens a browser session; returns the principal and the cookie
    /// secret (shown once, stored hashed).
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        address: &str,
    ) -> Result<(Principal, String), AuthError> {
        if let Some(wait) = self.throttle.wait(name, address) {
            return Err(AuthError::Throttled(wait.as_secs().max(1)));
        }
        let user = self.index.user(name).await?;
        let stored = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_default();
        // Verify even for unknown users, so timing does not tell which names exist.
        let matches = verify(password.to_owned(), stored).await;
        let user = match user {
            Some(u) if matches => u,
            _ => {
                self.throttle.failed(name, address);
                return Err(AuthError::Rejected("wrong user name or password"));
            }
        };
        self.throttle.succeeded(name);
        let principal = self.principal_of(&user, Via::Session, address)?;
        let secret = secret::random_hex(32).map_err(|_| AuthError::Rejected("no randomness"))?;
        let hours = i64::try_from(self.config.auth.session_hours).unwrap_or(12);
        let expires = crate::index::now_micros() + hours * 3_600_000_000;
        self.index
            .insert_session(&secret::sha256_hex(&secret), &user.name, expires)
            .await?;
        Ok((principal, secret))
    }

    pub async fn logout(&self, session_secret: &str) -> Result<(), AuthError> {
        self.index
            .delete_session(&secret::sha256_hex(session_secret))
            .await?;
        Ok(())
    }

    pub async fn session(&self, secret: &str, address: &str) -> Result<Principal, AuthError> {
        let name = self
            .index
            .session_user(&secret::sha256_hex(secret), self.config.auth.idle_micros())
            .await?
            .ok_or(AuthError::Rejected(
                "session unknown, expired or idle too long",
            ))?;
        let user = self
            .index
            .user(&name)
            .await?
            .ok_or(AuthError::Rejected("account removed"))?;
        self.principal_of(&user, Via::Session, address)
    }

    /// A bearer credential: one of our API tokens, or a JWT when OIDC is configured.
    pub async fn bearer(&self, credential: &str, address: &str) -> Result<Principal, AuthError> {
        if let Some(rest) = credential.strip_prefix(TOKEN_PREFIX) {
            return self.api_token(rest, address).await;
        }
        match &self.jwt {
            Some(validator) => Ok(validator.principal(credential, address, &self.config)?),
            None => Err(AuthError::Rejected("not a token of ours")),
        }
    }

    async fn api_token(&self, rest: &str, address: &str) -> Result<Principal, AuthError> {
        let (id, secret) = rest
            .split_once('_')
            .ok_or(AuthError::Rejected("malformed token"))?;
        let row = self
            .index
            .token(id)
            .await?
            .ok_or(AuthError::Rejected("unknown token"))?;
        if !secret::same_digest(&row.secret_sha256, &secret::sha256_hex(secret)) {
            return Err(AuthError::Rejected("wrong token secret"));
        }
        if row.revoked_at.is_some() {
            return Err(AuthError::Rejected("token revoked"));
        }
        if row
            .expires_at
            .is_some_and(|t| t < crate::index::now_micros())
        {
            return Err(AuthError::Rejected("token expired"));
        }
        let user = self
            .index
            .user(&row.user_name)
            .await?
            .ok_or(AuthError::Rejected("account removed"))?;
        let principal = self.principal_of(&user, Via::Token, address)?;
        if let Err(e) = self.index.touch_token(id).await {
            tracing::warn!(error = %e, "token use not recorded");
        }
        Ok(principal)
    }

    fn principal_of(
        &self,
        user: &UserRow,
        via: Via,
        address: &str,
    ) -> Result<Principal, AuthError> {
        if user.disabled_at.is_some() {
            return Err(AuthError::Rejected("account disabled"));
        }
        let role = Role::parse(&user.role).ok_or(AuthError::Rejected("account has no role"))?;
        Ok(Principal {
            name: user.name.clone(),
            role,
            institution: user.institution.clone(),
            via,
            address: address.to_owned(),
            pixel_access: user.pixel_access,
        })
    }
}

/// Argon2 takes tens of milliseconds of CPU: keep it off the async workers.
async fn hash(password: String) -> Result<String, SecretError> {
    tokio::task::spawn_blocking(move || secret::hash_password(&password))
        .await
        .map_err(|e| SecretError::Hash(e.to_string()))?
}

async fn verify(password: String, stored: String) -> bool {
    // A fixed dummy hash keeps the work equal when the user does not exist.
    const DUMMY: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$J5ZLHGNR1RGTc2bMRyLGFy8Pmu0XV1wzZWQ4E1vXDk0";
    tokio::task::spawn_blocking(move || {
        if stored.is_empty() {
            let _ = secret::verify_password(&password, DUMMY);
            false
        } else {
            secret::verify_password(&password, &stored)
        }
    })
    .await
    .unwrap_or(false)
}
