//! Proving the audit trail after the fact: walking the hash chain, signing its head each day
//! and checking the signed heads.
//!
//! The chain (built by the index as events are appended) makes any change to an event, and
//! any removal, reordering or insertion, visible at that event, unless the rest of the chain
//! was recomputed too. The signed heads close that gap: each is the chain's position and hash
//! at a moment, signed with an Ed25519 key kept outside the database and stored create-only in
//! the object store, so a trail rewritten in the database no longer matches what was signed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::archive::{keys, Archive, ArchiveError};
use crate::index::{event_hash, now_micros, rfc3339, HeadRow, Index, IndexError};

/// The format name every signed head carries, and the first line of what is signed.
pub const HEAD_FORMAT: &str = "telecardio-audit-head/1";

#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("audit signing key {path}: {message}")]
    Key { path: PathBuf, message: String },
    #[error("public key `{0}` is not 64 hexadecimal digits (an Ed25519 public key)")]
    PublicKey(String),
}

/// The key that signs chain heads.
pub struct HeadSigner {
    pair: Ed25519KeyPair,
}

impl HeadSigner {
    /// Reads the PKCS#8 (PEM) key at `path`.
    pub fn load(path: &Path) -> Result<HeadSigner, ChainError> {
        let key_err = |message: String| ChainError::Key {
            path: path.to_owned(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| key_err(e.to_string()))?;
        let der = rustls_pemfile::private_key(&mut pem.as_slice())
            .map_err(|e| key_err(format!("not PEM: {e}")))?
            .ok_or_else(|| key_err("holds no private key".into()))?;
        let pair = Ed25519KeyPair::from_pkcs8(der.secret_der())
            .map_err(|e| key_err(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        Ok(HeadSigner { pair })
    }

    /// Reads the key at `path`, first making a new one there (readable by its owner only)
    /// when there is none; answers whether it was made.
    pub fn load_or_create(path: &Path) -> Result<(HeadSigner, bool), ChainError> {
        if path.exists() {
            return Ok((HeadSigner::load(path)?, false));
        }
        let key_err = |message: String| ChainError::Key {
            path: path.to_owned(),
            message,
        };
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| key_err("cannot generate a key".into()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| key_err(e.to_string()))?;
        }
        write_private(path, &pem("PRIVATE KEY", document.as_ref()))
            .map_err(|e| key_err(e.to_string()))?;
        Ok((HeadSigner::load(path)?, true))
    }

    /// The public key, hex: what an auditor keeps apart from the archive to check heads with.
    pub fn public_hex(&self) -> String {
        hex::encode(self.pair.public_key().as_ref())
    }

    fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A signed chain head, as stored in the object store.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignedHead {
    pub format: String,
    /// The day it was signed (UTC).
    pub day: String,
    /// The chain position it vouches for, and that event's hash.
    pub seq: i64,
    pub hash: String,
    /// When it was signed (RFC 3339, UTC).
    pub signed_at: String,
    /// Ed25519 public key, hex.
    pub public_key: String,
    /// Ed25519 signature of [`SignedHead::message`], hex.
    pub signature: String,
}

impl SignedHead {
    /// What is signed: the format, day, position, hash and time, one per line.
    pub fn message(&self) -> Vec<u8> {
        format!(
            "{}\n{}\n{}\n{}\n{}\n",
            HEAD_FORMAT, self.day, self.seq, self.hash, self.signed_at
        )
        .into_bytes()
    }

    /// Whether the signature is `public_key`'s over this head.
    pub fn signature_holds(&self, public_key: &[u8]) -> bool {
        let Ok(sig) = hex::decode(&self.signature) else {
            return false;
        };
        UnparsedPublicKey::new(&signature::ED25519, public_key)
            .verify(&self.message(), &sig)
            .is_ok()
    }
}

/// Parses an Ed25519 public key given as hex.
pub fn parse_public_key(text: &str) -> Result<Vec<u8>, ChainError> {
    match hex::decode(text.trim()) {
        Ok(bytes) if bytes.len() == 32 => Ok(bytes),
        _ => Err(ChainError::PublicKey(text.chars().take(80).collect())),
    }
}

/// The public key heads are checked with: `audit.public_key` when set, otherwise the signing
/// key's own; none when neither exists (a fresh archive never started).
pub fn trusted_key(config: &crate::config::Config) -> Result<Option<Vec<u8>>, ChainError> {
    let configured = config.audit.public_key.trim();
    if !configured.is_empty() {
        return parse_public_key(configured).map(Some);
    }
    let path = config.audit_signing_key();
    if !path.exists() {
        return Ok(None);
    }
    parse_public_key(&HeadSigner::load(&path)?.public_hex()).map(Some)
}

/// Signs the chain's head as it is now and stores it; answers the signed head, or nothing
/// while the trail is empty.
pub async fn sign_head(
    index: &Index,
    archive: &Archive,
    signer: &HeadSigner,
) -> Result<Option<SignedHead>, ChainError> {
    let (seq, hash) = index.audit_chain_head().await?;
    if seq == 0 {
        return Ok(None);
    }
    let now = now_micros();
    let day = rfc3339(now).chars().take(10).collect::<String>();
    let mut head = SignedHead {
        format: HEAD_FORMAT.to_owned(),
        day: day.clone(),
        seq,
        hash: hash.clone(),
        signed_at: rfc3339(now),
        public_key: signer.public_hex(),
        signature: String::new(),
    };
    head.signature = signer.sign(&head.message());
    let key = keys::audit_head(&day, seq);
    let body = serde_json::to_vec_pretty(&head).unwrap_or_default();
    let mut writer = archive.writer();
    writer.write(&body).await?;
    // Create-only: a head this node (or another) already signed at this position stays as it
    // was; the new record is then simply not kept.
    writer.commit(&key).await?;
    index
        .record_audit_head(&HeadRow {
            day,
            seq,
            hash,
            signed_at: now,
            object_key: key.to_string(),
        })
        .await?;
    Ok(Some(head))
}

/// Signs the chain's head once a day (UTC) while the service runs; with several nodes each
/// may sign, which only adds heads. A failure is an alert, and is tried again later.
pub async fn run_signer(
    index: Index,
    archive: Archive,
    signer: HeadSigner,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        match head_due(&index).await {
            Ok(true) => match sign_head(&index, &archive, &signer).await {
                Ok(Some(head)) => {
                    tracing::info!(seq = head.seq, hash = %head.hash, "audit chain head signed")
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(alert = "audit_signing", error = %e, "audit chain head not signed")
                }
            },
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "audit chain head signing deferred"),
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Whether today's (UTC) head still has to be signed.
pub async fn head_due(index: &Index) -> Result<bool, ChainError> {
    let today = rfc3339(now_micros()).chars().take(10).collect::<String>();
    Ok(index.last_signed_day().await?.is_none_or(|day| day < today))
}

/// What went wrong where the chain first breaks.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The event's fields no longer give its hash.
    Edited,
    /// Events are missing: removed from the middle or the end.
    Missing,
    /// Events are in another order than they were chained in.
    Reordered,
    /// An event is in the trail that was not appended through the chain.
    Inserted,
    /// A signed head does not match the chain, or its signature does not hold.
    SignedHead,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first event (chain position) where the trail is no longer what was recorded.
    pub seq: i64,
    pub kind: BreakKind,
    pub detail: String,
}

/// What `audit verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub intact: bool,
    pub started_at: String,
    pub finished_at: String,
    /// Events walked, from the first to `last_seq`.
    pub events: i64,
    pub last_seq: i64,
    pub last_hash: String,
    pub signed_heads: usize,
    pub last_signed_head: Option<String>,
    pub broken: Option<ChainBreak>,
    /// What could not be checked (no public key, unreadable head objects).
    pub warnings: Vec<String>,
}

/// Walks the whole chain and every signed head in the store, and names the first event
/// where the trail breaks. Heads are checked against `public_key` when given (the key the
/// auditor trusts), otherwise only for being consistent with the chain.
pub async fn verify_chain(
    index: &Index,
    archive: &Archive,
    public_key: Option<&[u8]>,
) -> Result<ChainReport, ChainError> {
    let started_at = rfc3339(now_micros());
    // Events appended while we walk are after this head and are left for the next check.
    let (head_seq, head_hash) = index.audit_chain_head().await?;
    let mut warnings = Vec::new();
    let mut breaks: Vec<ChainBreak> = Vec::new();
    let heads = read_heads(archive, public_key, &mut warnings, &mut breaks).await?;
    let last_signed_head = heads.values().last().map(|h| h.signed_at.clone());
    let signed_heads = heads.len();
    let by_seq: BTreeMap<i64, &SignedHead> = heads.values().map(|h| (h.seq, h)).collect();

    let mut prev_seq = 0i64;
    let mut prev_hash = String::new();
    let mut events = 0i64;
    'walk: loop {
        let page = index.audit_chain_after(prev_seq, 10_000).await?;
        if page.is_empty() {
            break;
        }
        for e in page {
            if e.seq > head_seq {
                break 'walk;
            }
            if e.seq != prev_seq + 1 {
                breaks.push(ChainBreak {
                    seq: prev_seq + 1,
                    kind: BreakKind::Missing,
                    detail: format!(
                        "events {} to {} are missing from the trail",
                        prev_seq + 1,
                        e.seq - 1
                    ),
                });
                break 'walk;
            }
            if event_hash(&e.prev_hash, &e.id, &e.event) != e.hash {
                breaks.push(ChainBreak {
                    seq: e.seq,
                    kind: BreakKind::Edited,
                    detail: format!(
                        "event {} ({}, {}) no longer matches the hash it was recorded with",
                        e.seq,
                        e.event.kind,
                        rfc3339(e.event.at)
                    ),
                });
                break 'walk;
            }
            if e.prev_hash != prev_hash {
                breaks.push(link_break(index, e.seq, &e.prev_hash).await?);
                break 'walk;
            }
            if let Some(head) = by_seq.get(&e.seq) {
                if head.hash != e.hash {
                    breaks.push(ChainBreak {
                        seq: e.seq,
                        kind: BreakKind::SignedHead,
                        detail: format!(
                            "the head signed on {} vouches for another event {} than the trail holds (the trail was rewritten up to here)",
                            head.day, e.seq
                        ),
                    });
                    break 'walk;
                }
            }
            prev_seq = e.seq;
            prev_hash = e.hash;
            events += 1;
        }
    }
    if breaks.is_empty() {
        if prev_seq < head_seq {
            breaks.push(ChainBreak {
                seq: prev_seq + 1,
                kind: BreakKind::Missing,
                detail: format!(
                    "the chain's head is event {head_seq}, but the trail ends at event {prev_seq}"
                ),
            });
        } else if prev_hash != head_hash {
            breaks.push(ChainBreak {
                seq: prev_seq,
                kind: BreakKind::Edited,
                detail: format!("event {prev_seq} is not the event the chain's head recorded"),
            });
        } else if let Some((seq, head)) = by_seq.range(prev_seq + 1..).next() {
            breaks.push(ChainBreak {
                seq: prev_seq + 1,
                kind: BreakKind::Missing,
                detail: format!(
                    "the head signed on {} vouches for event {seq}, but the trail ends at event {prev_seq}",
                    head.day
                ),
            });
        }
    }
    let unchained = index.audit_unchained_count().await?;
    if unchained > 0 && breaks.is_empty() {
        breaks.push(ChainBreak {
            seq: prev_seq + 1,
            kind: BreakKind::Inserted,
            detail: format!("{unchained} events in the trail were never appended to the chain"),
        });
    }
    // The earliest break is the one to report; a bad head found before the walk may be later.
    breaks.sort_by_key(|b| b.seq);
    let broken = breaks.into_iter().next();
    Ok(ChainReport {
        intact: broken.is_none(),
        started_at,
        finished_at: rfc3339(now_micros()),
        events,
        last_seq: prev_seq,
        last_hash: prev_hash,
        signed_heads,
        last_signed_head,
        broken,
        warnings,
    })
}

/// Explains an event whose recorded predecessor is not the event before it.
async fn link_break(
    index: &Index,
    seq: i64,
    recorded_prev: &str,
) -> Result<ChainBreak, ChainError> {
    let found = if recorded_prev.is_empty() {
        None
    } else {
        index.audit_seq_of_hash(recorded_prev).await?
    };
    Ok(match found {
        Some(at) if at >= seq => ChainBreak {
            seq,
            kind: BreakKind::Reordered,
            detail: format!("event {seq} was recorded after event {at}, but now stands before it"),
        },
        Some(at) => ChainBreak {
            seq: at + 1,
            kind: BreakKind::Missing,
            detail: format!(
                "event {seq} was recorded right after event {at}; what stood between them was removed"
            ),
        },
        None => ChainBreak {
            seq,
            kind: BreakKind::Inserted,
            detail: format!(
                "event {seq} does not follow the event before it: an event was put in or one before it replaced"
            ),
        },
    })
}

/// Every signed head in the store, by key; heads whose signature fails, or that cannot be
/// read, are reported as breaks or warnings.
async fn read_heads(
    archive: &Archive,
    public_key: Option<&[u8]>,
    warnings: &mut Vec<String>,
    breaks: &mut Vec<ChainBreak>,
) -> Result<BTreeMap<String, SignedHead>, ChainError> {
    let mut heads = BTreeMap::new();
    let mut listed = archive.list(keys::AUDIT_HEADS_PREFIX).await?;
    listed.sort();
    if public_key.is_none() && !listed.is_empty() {
        warnings.push(
            "no public key given: signed heads were checked against the chain, not their signatures"
                .to_owned(),
        );
    }
    for (key, _) in listed {
        let bytes = archive
            .read(&crate::archive::ObjectKey::from(key.as_str()))
            .await?;
        let head: SignedHead = match serde_json::from_slice(&bytes) {
            Ok(h) => h,
            Err(e) => {
                warnings.push(format!("signed head {key} cannot be read: {e}"));
                continue;
            }
        };
        if let Some(pk) = public_key {
            if hex::decode(&head.public_key).ok().as_deref() != Some(pk)
                || !head.signature_holds(pk)
            {
                breaks.push(ChainBreak {
                    seq: head.seq,
                    kind: BreakKind::SignedHead,
                    detail: format!(
                        "the signature of head {key} does not hold with the trusted key"
                    ),
                });
                continue;
            }
        }
        heads.insert(key, head);
    }
    Ok(heads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_signature_holds_only_for_its_content() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("k/signing.pem");
        let (signer, made) = HeadSigner::load_or_create(&path).expect("key");
        assert!(made);
        let (again, made) = HeadSigner::load_or_create(&path).expect("key again");
        assert!(!made);
        assert_eq!(signer.public_hex(), again.public_hex());
        let mut head = SignedHead {
            format: HEAD_FORMAT.into(),
            day: "2026-12-03".into(),
            seq: 42,
            hash: "ab".repeat(32),
            signed_at: "2026-12-03T00:00:00Z".into(),
            public_key: signer.public_hex(),
            signature: String::new(),
        };
        head.signature = signer.sign(&head.message());
        let pk = parse_public_key(&signer.public_hex()).expect("pk");
        assert!(head.signature_holds(&pk));
        head.seq = 41;
        assert!(!head.signature_holds(&pk));
        assert!(parse_public_key("xyz").is_err());
    }
}
