//! Report rows: drafts and signed versions of a case's description. Who may write or sign
//! what lives in `reports`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::cases::{insert_case_row, CaseRow};
use super::deliveries::{enqueue, supersede, Push};
use super::referrals::journal_if;
use super::{now_micros, Index, IndexError, JournalEntry};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    pub id: String,
    pub case_id: String,
    pub version: i64,
    pub status: String,
    pub findings: String,
    pub conclusion: String,
    pub recommendations: String,
    pub free_text: String,
    pub author: String,
    pub amends: String,
    pub amendment_reason: String,
    pub signer: String,
    pub signer_name: String,
    pub signer_licence: String,
    pub signer_centre: String,
    pub signed_at: Option<i64>,
    pub content_key: String,
    pub content_sha256: String,
    pub answer_key: String,
    pub answer_sha256: String,
    /// The report as a DICOM Encapsulated PDF in the study (SOP Instance UID, stored object).
    pub document_uid: String,
    pub document_key: String,
    /// Read as non-diagnostic, a repeat requested (indicator TC-07).
    pub non_diagnostic: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, case_id, version, status, findings, conclusion, recommendations,
    free_text, author, amends, amendment_reason, signer, signer_name, signer_licence,
    signer_centre, signed_at, content_key, content_sha256, created_at, updated_at, answer_key,
    answer_sha256, document_uid, document_key, non_diagnostic";

fn report_row(r: &AnyRow) -> Result<ReportRow, sqlx::Error> {
    Ok(ReportRow {
        id: r.try_get(0)?,
        case_id: r.try_get(1)?,
        version: r.try_get(2)?,
        status: r.try_get(3)?,
        findings: r.try_get(4)?,
        conclusion: r.try_get(5)?,
        recommendations: r.try_get(6)?,
        free_text: r.try_get(7)?,
        author: r.try_get(8)?,
        amends: r.try_get(9)?,
        amendment_reason: r.try_get(10)?,
        signer: r.try_get(11)?,
        signer_name: r.try_get(12)?,
        signer_licence: r.try_get(13)?,
        signer_centre: r.try_get(14)?,
        signed_at: r.try_get(15)?,
        content_key: r.try_get(16)?,
        content_sha256: r.try_get(17)?,
        created_at: r.try_get(18)?,
        updated_at: r.try_get(19)?,
        answer_key: r.try_get(20)?,
        answer_sha256: r.try_get(21)?,
        document_uid: r.try_get(22)?,
        document_key: r.try_get(23)?,
        non_diagnostic: r.try_get::<i64, _>(24)? != 0,
    })
}

/// What saving a draft found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Created,
    Updated,
    /// Another author's draft is open on the case.
    Taken {
        author: String,
    },
    /// The draft is being signed: it stays as it is.
    Signing,
}

impl Index {
    pub async fn report(&self, id: &str) -> Result<Option<ReportRow>, IndexError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM reports WHERE id = $1"
        )))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("report"))?;
        rows.first()
            .map(report_row)
            .transpose()
            .map_err(IndexError::query("read report"))
    }

    /// Every version of a case's report, oldest first (the open draft last).
    pub async fn reports_of_case(&self, case_id: &str) -> Result<Vec<ReportRow>, IndexError> {
        let sql = format!("SELECT {COLUMNS} FROM reports WHERE case_id = $1 ORDER BY version");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(case_id)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("select reports"))?;
        rows.iter()
            .map(report_row)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read report"))
    }

    /// Creates the case's draft (the version after the last) or updates the author's own.
    pub async fn save_draft(&self, d: &ReportRow) -> Result<Saved, IndexError> {
        let now = now_micros();
        // Single statements, no transaction: a concurrent second draft is stopped by the unique
        // indexes, and the update touches only the author's own open draft.
        let open =
            sqlx::query("SELECT id, author FROM reports WHERE case_id = $1 AND status = 'draft'")
                .bind(&d.case_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(IndexError::query("open draft"))?;
        let saved = match open {
            Some(row) => {
                let id: String = row.try_get(0).map_err(IndexError::query("read draft"))?;
                let author: String = row.try_get(1).map_err(IndexError::query("read draft"))?;
                if author != d.author {
                    return Ok(Saved::Taken { author });
                }
                let updated = sqlx::query(
                    "UPDATE reports SET findings = $2, conclusion = $3, recommendations = $4,
                       free_text = $5, updated_at = $6, non_diagnostic = $7
                     WHERE id = $1 AND status = 'draft'
                       AND (signing_until IS NULL OR signing_until < $6)",
                )
                .bind(&id)
                .bind(&d.findings)
                .bind(&d.conclusion)
                .bind(&d.recommendations)
                .bind(&d.free_text)
                .bind(now)
                .bind(i64::from(d.non_diagnostic))
                .execute(&self.pool)
                .await
                .map_err(IndexError::query("update draft"))?
                .rows_affected();
                if updated == 1 {
                    Saved::Updated
                } else {
                    Saved::Signing
                }
            }
            None => {
                // The unique indexes on (case, version) and on the open draft make a concurrent
                // second draft fail here rather than slip in.
                sqlx::query(
                    "INSERT INTO reports (id, case_id, version, status, findings, conclusion,
                       recommendations, free_text, author, amends, amendment_reason, signer,
                       signer_name, signer_licence, signer_centre, signed_at, content_key,
                       content_sha256, answer_key, answer_sha256, created_at, updated_at,
                       non_diagnostic)
                     VALUES ($1, $2,
                       (SELECT COALESCE(MAX(version), 0) + 1 FROM reports WHERE case_id = $2),
                       'draft', $3, $4, $5, $6, $7, $8, $9, '', '', '', '', NULL, '', '', '', '', $10,
                       $10, $11)",
                )
                .bind(&d.id)
                .bind(&d.case_id)
                .bind(&d.findings)
                .bind(&d.conclusion)
                .bind(&d.recommendations)
                .bind(&d.free_text)
                .bind(&d.author)
                .bind(&d.amends)
                .bind(&d.amendment_reason)
                .bind(now)
                .bind(i64::from(d.non_diagnostic))
                .execute(&self.pool)
                .await
                .map_err(IndexError::query("insert draft"))?;
                Saved::Created
            }
        };
        Ok(saved)
    }

    /// Signs the author's draft: frozen content, signer, time; the case becomes reported (its
    /// claim ends; an amendment must be delivered again) and keeps the first signing time. Journaled; `false` if there was no such
    /// draft.
    /// Reserves the author's unchanged draft for a signature until `until` (microseconds);
    /// `false` if it changed, was signed, or another signature holds it.
    pub async fn reserve_signing(
        &self,
        id: &str,
        author: &str,
        updated_at: i64,
        until: i64,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        Ok(sqlx::query(
            "UPDATE reports SET signing_until = $4
             WHERE id = $1 AND author = $2 AND status = 'draft' AND updated_at = $3
               AND (signing_until IS NULL OR signing_until < $5)",
        )
        .bind(id)
        .bind(author)
        .bind(updated_at)
        .bind(until)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("reserve signing"))?
        .rows_affected()
            == 1)
    }

    /// Ends a reservation whose signature failed.
    pub async fn release_signing(&self, id: &str, until: i64) -> Result<(), IndexError> {
        sqlx::query(
            "UPDATE reports SET signing_until = NULL
             WHERE id = $1 AND status = 'draft' AND signing_until = $2",
        )
        .bind(id)
        .bind(until)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("release signing"))?;
        Ok(())
    }

    /// The pushes are queued in the same transaction, so a signed report is never left
    /// without its deliveries.
    pub async fn sign_report(
        &self,
        signed: &ReportRow,
        journal: &JournalEntry,
        clinic_id: &str,
        pushes: &[Push],
    ) -> Result<bool, IndexError> {
        let now = signed.signed_at.unwrap_or_else(now_micros);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin sign"))?;
        let changed = sqlx::query(
            "UPDATE reports SET status = 'signed', signer = $3, signer_name = $4,
               signer_licence = $5, signer_centre = $6, signed_at = $7, content_key = $8,
               content_sha256 = $9, answer_key = $10, answer_sha256 = $11, updated_at = $7,
               document_uid = $13, document_key = $14, signing_until = NULL
             WHERE id = $1 AND author = $2 AND status = 'draft' AND updated_at = $12",
        )
        .bind(&signed.id)
        .bind(&signed.signer)
        .bind(&signed.signer)
        .bind(&signed.signer_name)
        .bind(&signed.signer_licence)
        .bind(&signed.signer_centre)
        .bind(now)
        .bind(&signed.content_key)
        .bind(&signed.content_sha256)
        .bind(&signed.answer_key)
        .bind(&signed.answer_sha256)
        // The draft as it was read for signing: a save since then means the frozen text would
        // not be the text marked signed.
        .bind(signed.updated_at)
        .bind(&signed.document_uid)
        .bind(&signed.document_key)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("sign report"))?
        .rows_affected()
            == 1;
        if changed {
            sqlx::query(
                "UPDATE cases SET status = 'reported',
                   signed_at = COALESCE(signed_at, $2), claimed_by = '',
                   claim_expires_at = NULL, report_version = $3, updated_at = $2
                 WHERE id = $1",
            )
            .bind(&signed.case_id)
            .bind(now)
            .bind(signed.version)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("case reported"))?;
            supersede(&mut tx, &signed.id, &signed.case_id, pushes, now).await?;
            enqueue(
                &mut tx,
                &signed.id,
                &signed.case_id,
                clinic_id,
                pushes,
                &signed.signer,
                now,
            )
            .await?;
        }
        journal_if(tx, changed, Some(journal)).await
    }
}

impl Index {
    /// A signed version filed again from its frozen content when the index is rebuilt from
    /// the store, with the case it belongs to (filed with its first version found) marked
    /// reported: at its first signature, with its latest version. No delivery is queued: what
    /// reached the clinic is not in the store, and a report years old is not sent again
    /// unasked. `false` when the version is in the index already.
    pub async fn restore_signed(
        &self,
        case: &CaseRow,
        signed: &ReportRow,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let at = signed.signed_at.unwrap_or(case.created_at);
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin restore report"))?;
        insert_case_row(&mut tx, case).await?;
        let inserted = sqlx::query(
            "INSERT INTO reports (id, case_id, version, status, findings, conclusion,
               recommendations, free_text, author, amends, amendment_reason, signer, signer_name,
               signer_licence, signer_centre, signed_at, content_key, content_sha256, answer_key,
               answer_sha256, document_uid, document_key, created_at, updated_at, non_diagnostic)
             VALUES ($1, $2, $3, 'signed', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
               $16, $17, $18, $19, $20, $21, $15, $15, $22)
             ON CONFLICT DO NOTHING",
        )
        .bind(&signed.id)
        .bind(&signed.case_id)
        .bind(signed.version)
        .bind(&signed.findings)
        .bind(&signed.conclusion)
        .bind(&signed.recommendations)
        .bind(&signed.free_text)
        .bind(&signed.author)
        .bind(&signed.amends)
        .bind(&signed.amendment_reason)
        .bind(&signed.signer)
        .bind(&signed.signer_name)
        .bind(&signed.signer_licence)
        .bind(&signed.signer_centre)
        .bind(at)
        .bind(&signed.content_key)
        .bind(&signed.content_sha256)
        .bind(&signed.answer_key)
        .bind(&signed.answer_sha256)
        .bind(&signed.document_uid)
        .bind(&signed.document_key)
        .bind(i64::from(signed.non_diagnostic))
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("restore report"))?
        .rows_affected()
            == 1;
        if inserted {
            sqlx::query(
                "UPDATE cases SET status = 'reported',
                   signed_at = CASE WHEN signed_at IS NULL OR signed_at > $2 THEN $2
                                    ELSE signed_at END,
                   report_version = CASE WHEN report_version IS NULL OR report_version < $3
                                         THEN $3 ELSE report_version END,
                   updated_at = CASE WHEN updated_at < $2 THEN $2 ELSE updated_at END
                 WHERE id = $1",
            )
            .bind(&signed.case_id)
            .bind(at)
            .bind(signed.version)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("restore case reported"))?;
        }
        journal_if(tx, inserted, Some(journal)).await
    }
}

/// A signed report version as the clinic's pull list shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SignedReport {
    pub report_id: String,
    pub case_id: String,
    pub version: i64,
    pub amends: String,
    pub clinic_id: String,
    pub study_uid: String,
    pub referral_id: String,
    pub signer_name: String,
    pub signed_at: i64,
    /// When the clinic first fetched this version's answer.
    pub pulled_at: Option<i64>,
}

impl Index {
    /// Signed versions signed after `since`, and every one the clinic has not fetched yet
    /// whenever it was signed (a version can commit after a later-stamped one, so a cursor alone
    /// could pass it by), of the given clinics' cases (or centres'; `None`: any), oldest first.
    pub async fn signed_since(
        &self,
        since: i64,
        clinics: Option<&[String]>,
        centres: Option<&[String]>,
        limit: i64,
    ) -> Result<Vec<SignedReport>, IndexError> {
        let rows = sqlx::query(
            "SELECT r.id, r.case_id, r.version, r.amends, c.clinic_id, c.study_uid,
               c.referral_id, r.signer_name, r.signed_at, d.delivered_at, c.centre_id
             FROM reports r
             JOIN cases c ON c.id = r.case_id
             LEFT JOIN deliveries d ON d.report_id = r.id AND d.channel = 'pull'
             WHERE r.status = 'signed' AND (r.signed_at > $1 OR d.id IS NULL)
             ORDER BY r.signed_at, r.id",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("signed reports"))?;
        let mut out = Vec::new();
        for r in rows {
            let read = |e| IndexError::query("read signed report")(e);
            let clinic: String = r.try_get(4).map_err(read)?;
            let centre: String = r.try_get(10).map_err(read)?;
            if clinics.is_some_and(|l| !l.contains(&clinic))
                || centres.is_some_and(|l| !l.contains(&centre))
            {
                continue;
            }
            out.push(SignedReport {
                report_id: r.try_get(0).map_err(read)?,
                case_id: r.try_get(1).map_err(read)?,
                version: r.try_get(2).map_err(read)?,
                amends: r.try_get(3).map_err(read)?,
                clinic_id: clinic,
                study_uid: r.try_get(5).map_err(read)?,
                referral_id: r.try_get(6).map_err(read)?,
                signer_name: r.try_get(7).map_err(read)?,
                signed_at: r.try_get(8).map_err(read)?,
                pulled_at: r.try_get(9).map_err(read)?,
            });
            if out.len() as i64 >= limit.clamp(1, 10_000) {
                break;
            }
        }
        Ok(out)
    }

    /// Records that the clinic fetched a signed version's answer (once); the case is delivered
    /// when that version is its latest. Journaled the first time; `false` if already recorded.
    pub async fn record_pull(
        &self,
        report: &ReportRow,
        clinic_id: &str,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin pull"))?;
        let inserted = sqlx::query(
            "INSERT INTO deliveries (id, report_id, case_id, clinic_id, channel, status, attempts,
               last_error, delivered_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pull', 'delivered', 1, '', $5, $5, $5)
             ON CONFLICT (report_id) WHERE channel = 'pull' DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&report.id)
        .bind(&report.case_id)
        .bind(clinic_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("record pull"))?
        .rows_affected()
            == 1;
        if inserted {
            sqlx::query(
                "UPDATE cases SET status = 'delivered', delivered_at = COALESCE(delivered_at, $2),
                   updated_at = $2
                 WHERE id = $1 AND status = 'reported' AND report_version = $3",
            )
            .bind(&report.case_id)
            .bind(now)
            .bind(report.version)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("case delivered"))?;
        }
        journal_if(tx, inserted, Some(journal)).await
    }
}
