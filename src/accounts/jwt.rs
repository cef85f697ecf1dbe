//! Bearer JWTs from a hospital's own identity provider (OIDC access tokens).
//!
//! Keys come from a JWKS file the deployment keeps current (no network fetch at request time,
//! so an unreachable IdP cannot stall or spoof us). A token is accepted when its signature,
//! issuer, audience and lifetime check out and its claims name a role and, for clinic and
//! cardiologist roles, an institution of the right kind declared in our configuration.

use std::str::FromStr;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::access::{Principal, Role, Via};
use crate::config::{Config, OidcConfig};

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("cannot read JWKS file {path}: {source}")]
    ReadJwks {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("JWKS file {path} is not a JWK set: {message}")]
    ParseJwks {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("JWKS file {0} holds no usable signing key")]
    NoKeys(std::path::PathBuf),
    #[error("token rejected: {0}")]
    Invalid(String),
    #[error("token claim `{claim}`: {why}")]
    Claim { claim: String, why: String },
}

struct Key {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

pub struct Validator {
    keys: Vec<Key>,
    issuer: String,
    audience: String,
    name_claim: String,
    role_claim: String,
    institution_claim: String,
}

impl Validator {
    pub fn from_config(oidc: &OidcConfig) -> Result<Validator, JwtError> {
        let path = &oidc.jwks_file;
        let text = std::fs::read_to_string(path).map_err(|source| JwtError::ReadJwks {
            path: path.clone(),
            source,
        })?;
        let set: JwkSet = serde_json::from_str(&text).map_err(|e| JwtError::ParseJwks {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let keys: Vec<Key> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                let algorithms = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                    (Some(alg), _) => vec![Algorithm::from_str(&alg.to_string()).ok()?],
                    (None, AlgorithmParameters::RSA(_)) => {
                        vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]
                    }
                    (None, AlgorithmParameters::EllipticCurve(_)) => {
                        vec![Algorithm::ES256, Algorithm::ES384]
                    }
                    (None, AlgorithmParameters::OctetKeyPair(_)) => vec![Algorithm::EdDSA],
                    // Shared secrets have no place in a file of public keys.
                    (None, AlgorithmParameters::OctetKey(_)) => return None,
                };
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some(Key {
                    kid: jwk.common.key_id.clone(),
                    key,
                    algorithms,
                })
            })
            .collect();
        if keys.is_empty() {
            return Err(JwtError::NoKeys(path.clone()));
        }
        Ok(Validator {
            keys,
            issuer: oidc.issuer.clone(),
            audience: oidc.audience.clone(),
            name_claim: oidc.name_claim.clone(),
            role_claim: oidc.role_claim.clone(),
            institution_claim: oidc.institution_claim.clone(),
        })
    }

    /// The principal a valid token speaks for.
    pub fn principal(
        &self,
        token: &str,
        address: &str,
        config: &Config,
    ) -> Result<Principal, JwtError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| JwtError::Invalid(e.to_string()))?;
        let key = self
            .keys
            .iter()
            .find(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (None, _) => k.algorithms.contains(&header.alg),
                _ => false,
            })
            .ok_or_else(|| JwtError::Invalid("no key for this token".into()))?;
        if !key.algorithms.contains(&header.alg) {
            return Err(JwtError::Invalid(format!(
                "algorithm {:?} not allowed for this key",
                header.alg
            )));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = key.algorithms.clone();
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key.key,
            &validation,
        )
        .map_err(|e| JwtError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let text = |claim: &str| -> Result<String, JwtError> {
            claims
                .get(claim)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
                .ok_or_else(|| JwtError::Claim {
                    claim: claim.to_owned(),
                    why: "missing or not a string".into(),
                })
        };
        let name = text(&self.name_claim)?;
        let role_name = text(&self.role_claim)?;
        let role = Role::parse(&role_name).ok_or_else(|| JwtError::Claim {
            claim: self.role_claim.clone(),
            why: format!("`{role_name}` is not a role"),
        })?;
        let institution = match role.institution_kind() {
            None => String::new(),
            Some(kind) => {
                let id = text(&self.institution_claim)?;
                match config.institution(&id) {
                    Some(i) if i.kind == kind => id,
                    _ => {
                        return Err(JwtError::Claim {
                            claim: self.institution_claim.clone(),
                            why: format!("`{id}` is not a declared institution of this role"),
                        })
                    }
                }
            }
        };
        Ok(Principal {
            name,
            role,
            institution,
            via: Via::Jwt,
            address: address.to_owned(),
            pixel_access: false,
        })
    }
}
