//! The second half of a rebuild: referrals and signed reports, once the DICOM objects are
//! indexed (a referral links to a study that is already there; a report's case is of one).

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use super::{Listing, RebuildReport, Unplaced};
use crate::archive::{keys, Archive, ObjectKey};
use crate::backup::BackupError;
use crate::config::Config;
use crate::index::Index;
use crate::referral::rebuild::{KnownIds, Refiled};
use crate::referral::Referrals;
use crate::reports::rebuild::{self as reports, Frozen, Kept};

/// A signed version read from the store: its content, signing time and object.
type Signed = (Frozen, i64, Kept);

pub(super) async fn rebuild(
    report: &mut RebuildReport,
    listing: Listing,
    index: &Index,
    store: &Archive,
    referrals: &Referrals,
    config: &Config,
) -> Result<(), BackupError> {
    let own_ae = config.dicom.ae_title.as_str();
    let mut signed: Vec<Signed> = Vec::new();
    report.report_objects = listing.reports.len() as u64;
    for (key, _) in &listing.reports {
        let outcome = match read_named(store, key).await {
            Ok((bytes, sha256)) => reports::frozen(&bytes)
                .map(|(f, at)| {
                    (
                        f,
                        at,
                        Kept {
                            key: key.clone(),
                            sha256,
                        },
                    )
                })
                .map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        match outcome {
            Ok(s) => signed.push(s),
            Err(why) => unplaced(report, key, why),
        }
    }
    let known = known_ids(index, &signed).await?;

    report.referral_objects = listing.referrals.len() as u64;
    let mut linked: BTreeSet<String> = BTreeSet::new();
    for (key, at) in &listing.referrals {
        let (bytes, sha256) = match read_named(store, key).await {
            Ok(read) => read,
            Err(why) => {
                unplaced(report, key, why);
                continue;
            }
        };
        let outcome = if key.starts_with(&format!("{}/", keys::HL7_PREFIX)) {
            match crate::hl7::stored_order(config, &bytes) {
                Ok((clinic, order)) => referrals
                    .refile_order(&clinic, &order, key, &sha256, *at, &known)
                    .await
                    .map_err(|e| e.to_string()),
                Err(problem) => Err(format!("HL7 order: {problem}")),
            }
        } else {
            referrals
                .refile_document(key, &sha256, &bytes, *at, &known)
                .await
                .map_err(|e| e.to_string())
        };
        match outcome {
            Ok(Refiled::Filed(r)) => {
                report.referrals += 1;
                if !r.study_uid.is_empty() {
                    linked.insert(r.study_uid);
                }
            }
            Ok(Refiled::Enriched(r)) => {
                if !r.study_uid.is_empty() {
                    linked.insert(r.study_uid);
                }
            }
            Ok(Refiled::Duplicate(_)) => {}
            Err(why) => unplaced(report, key, why),
        }
    }
    report.linked = linked.len() as u64;

    let mut answers = answers(report, store, &listing.answers).await;
    // Versions in order within each case, so a case is filed with its first.
    signed.sort_by(|a, b| (&a.0.case_id, a.0.version).cmp(&(&b.0.case_id, b.0.version)));
    let mut cases: BTreeSet<String> = BTreeSet::new();
    let mut reported: BTreeSet<String> = BTreeSet::new();
    for (f, at, content) in signed {
        let answer = answers.remove(&reports::answer_oid(&f.report_id));
        let key = content.key.clone();
        match reports::refile(index, store, own_ae, (&f, at), content, answer).await {
            Ok(_) => {
                report.reports += 1;
                cases.insert(f.case_id.clone());
                reported.insert(f.study_uid.clone());
            }
            Err(e) => unplaced(report, &key, e.to_string()),
        }
    }
    report.cases = cases.len() as u64;
    report.to_route = linked.difference(&reported).count() as u64;
    for (_, kept) in answers {
        unplaced(
            report,
            &kept.key,
            "an answer document of no signed report version in the store".into(),
        );
    }
    Ok(())
}

fn unplaced(report: &mut RebuildReport, key: &str, why: String) {
    report.unplaced.push(Unplaced {
        key: key.to_owned(),
        why,
    });
}

/// The bytes of an object whose name is its SHA-256 (`{prefix}/{sha256}.{ext}`), and that
/// hash; an error when they no longer match: an altered object is not filed again.
async fn read_named(store: &Archive, key: &str) -> Result<(Vec<u8>, String), String> {
    let bytes = store
        .read(&ObjectKey::from(key))
        .await
        .map_err(|e| format!("unreadable: {e}"))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let named = keys::hash_in_key(key);
    if named != sha256 {
        return Err(format!(
            "altered: its bytes hash to {sha256}, its name says {named}"
        ));
    }
    Ok((bytes.to_vec(), sha256))
}

/// The referral id each signed version names, by its clinic and the order number of its
/// study (a study's accession number is its referral's order number).
async fn known_ids(index: &Index, signed: &[Signed]) -> Result<KnownIds, BackupError> {
    let mut known = KnownIds::new();
    for (f, _, _) in signed {
        if f.referral_id.is_empty() {
            continue;
        }
        if let Some(study) = index.study(&f.study_uid).await? {
            let order = study.study.accession_number.clone();
            if !order.is_empty() {
                known.insert((f.clinic_id.clone(), order), f.referral_id.clone());
            }
        }
    }
    Ok(known)
}

/// The answer documents in the store, by the id they give themselves.
async fn answers(
    report: &mut RebuildReport,
    store: &Archive,
    listed: &[(String, i64)],
) -> BTreeMap<String, Kept> {
    let mut found = BTreeMap::new();
    for (key, _) in listed {
        match read_named(store, key).await {
            Ok((bytes, sha256)) => match reports::answer_id(&bytes) {
                Some(id) => {
                    found.insert(
                        id,
                        Kept {
                            key: key.clone(),
                            sha256,
                        },
                    );
                }
                None => unplaced(report, key, "not an answer document: it has no id".into()),
            },
            Err(why) => unplaced(report, key, why),
        }
    }
    found
}
