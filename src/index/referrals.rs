//! Referral rows and the patient registration journal: rows only. Reading CDA, validating and
//! deciding links live in `referral`.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_micros, Index, IndexError, Scope};

/// One referral as kept in the index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReferralRow {
    pub id: String,
    pub document_id: String,
    pub set_id: String,
    pub version: i64,
    pub effective_time: String,
    pub personal_code: String,
    pub insured_code: String,
    pub statistical_card: String,
    pub family_name: String,
    pub given_names: String,
    pub sex: String,
    pub birth_date: String,
    pub author_id: String,
    pub author_name: String,
    pub author_organisation: String,
    pub custodian: String,
    pub clinic_id: String,
    pub order_number: String,
    pub examination: String,
    /// JSON list of the codes the examination was read from.
    pub examination_codes: String,
    pub urgency: String,
    pub reason: String,
    /// JSON list of warnings.
    pub warnings: String,
    pub source: String,
    pub document_key: String,
    pub document_sha256: String,
    pub status: String,
    pub study_uid: String,
    pub received_by: String,
    pub received_at: i64,
    pub updated_at: i64,
    /// The HL7 v2 order message the referral was made from; '' for a CDA referral.
    pub order_message_key: String,
}

const COLUMNS: &str = "id, document_id, set_id, version, effective_time, personal_code,
    insured_code, statistical_card, family_name, given_names, sex, birth_date, author_id,
    author_name, author_organisation, custodian, clinic_id, order_number, examination,
    examination_codes, urgency, reason, warnings, source, document_key, document_sha256, status,
    study_uid, received_by, received_at, updated_at, order_message_key";

fn row(r: &AnyRow) -> Result<ReferralRow, sqlx::Error> {
    Ok(ReferralRow {
        id: r.try_get(0)?,
        document_id: r.try_get(1)?,
        set_id: r.try_get(2)?,
        version: r.try_get(3)?,
        effective_time: r.try_get(4)?,
        personal_code: r.try_get(5)?,
        insured_code: r.try_get(6)?,
        statistical_card: r.try_get(7)?,
        family_name: r.try_get(8)?,
        given_names: r.try_get(9)?,
        sex: r.try_get(10)?,
        birth_date: r.try_get(11)?,
        author_id: r.try_get(12)?,
        author_name: r.try_get(13)?,
        author_organisation: r.try_get(14)?,
        custodian: r.try_get(15)?,
        clinic_id: r.try_get(16)?,
        order_number: r.try_get(17)?,
        examination: r.try_get(18)?,
        examination_codes: r.try_get(19)?,
        urgency: r.try_get(20)?,
        reason: r.try_get(21)?,
        warnings: r.try_get(22)?,
        source: r.try_get(23)?,
        document_key: r.try_get(24)?,
        document_sha256: r.try_get(25)?,
        status: r.try_get(26)?,
        study_uid: r.try_get(27)?,
        received_by: r.try_get(28)?,
        received_at: r.try_get(29)?,
        updated_at: r.try_get(30)?,
        order_message_key: r.try_get(31)?,
    })
}

/// One entry of the patient registration journal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JournalEntry {
    pub id: String,
    pub at: i64,
    /// referral_received, data_received, linked, routed, report_signed, report_delivered.
    pub kind: String,
    pub clinic_id: String,
    pub institution: String,
    pub actor: String,
    pub patient_id: String,
    pub referral_id: String,
    pub study_uid: String,
    pub report_id: String,
    pub detail: String,
}

impl JournalEntry {
    /// An entry about a case (its clinic, patient, referral and study), stamped now.
    pub fn of_case(
        case: &super::CaseRow,
        kind: &str,
        institution: &str,
        actor: &str,
        report_id: &str,
        detail: String,
    ) -> JournalEntry {
        JournalEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: now_micros(),
            kind: kind.to_owned(),
            clinic_id: case.clinic_id.clone(),
            institution: institution.to_owned(),
            actor: actor.to_owned(),
            patient_id: case.patient_id.clone(),
            referral_id: case.referral_id.clone(),
            study_uid: case.study_uid.clone(),
            report_id: report_id.to_owned(),
            detail,
        }
    }
}

/// What a referral insert found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inserted {
    New(ReferralRow),
    /// The same document (by document id) was already received: the existing row.
    Existing(ReferralRow),
}

impl Index {
    /// Inserts a referral and its journal entry in one transaction; a document already
    /// received is answered with the row it made.
    pub async fn insert_referral(
        &self,
        referral: &ReferralRow,
        journal: &JournalEntry,
    ) -> Result<Inserted, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin referral"))?;
        let inserted = sqlx::query(
            "INSERT INTO referrals (id, document_id, set_id, version, effective_time,
               personal_code, insured_code, statistical_card, family_name, given_names, sex,
               birth_date, author_id, author_name, author_organisation, custodian, clinic_id,
               order_number, examination, examination_codes, urgency, reason, warnings, source,
               document_key, document_sha256, status, study_uid, received_by, received_at,
               updated_at, order_message_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
               $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31, $32)
             ON CONFLICT (document_id) DO NOTHING",
        )
        .bind(&referral.id)
        .bind(&referral.document_id)
        .bind(&referral.set_id)
        .bind(referral.version)
        .bind(&referral.effective_time)
        .bind(&referral.personal_code)
        .bind(&referral.insured_code)
        .bind(&referral.statistical_card)
        .bind(&referral.family_name)
        .bind(&referral.given_names)
        .bind(&referral.sex)
        .bind(&referral.birth_date)
        .bind(&referral.author_id)
        .bind(&referral.author_name)
        .bind(&referral.author_organisation)
        .bind(&referral.custodian)
        .bind(&referral.clinic_id)
        .bind(&referral.order_number)
        .bind(&referral.examination)
        .bind(&referral.examination_codes)
        .bind(&referral.urgency)
        .bind(&referral.reason)
        .bind(&referral.warnings)
        .bind(&referral.source)
        .bind(&referral.document_key)
        .bind(&referral.document_sha256)
        .bind(&referral.status)
        .bind(&referral.study_uid)
        .bind(&referral.received_by)
        .bind(referral.received_at)
        .bind(referral.updated_at)
        .bind(&referral.order_message_key)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("insert referral"))?
        .rows_affected()
            == 1;
        if !inserted {
            tx.rollback()
                .await
                .map_err(IndexError::query("rollback referral"))?;
            let existing = self
                .referral_by_document(&referral.document_id)
                .await?
                .ok_or(IndexError::Query {
                    query: "referral by document after conflict",
                    source: sqlx::Error::RowNotFound,
                })?;
            return Ok(Inserted::Existing(existing));
        }
        insert_journal(&mut tx, journal).await?;
        tx.commit()
            .await
            .map_err(IndexError::query("commit referral"))?;
        Ok(Inserted::New(referral.clone()))
    }

    /// Referrals within `scope`, newest first.
    pub async fn referrals(
        &self,
        scope: &Scope,
        status: Option<&str>,
        order_number: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ReferralRow>, IndexError> {
        let mut conditions = Vec::new();
        let mut args: Vec<String> = Vec::new();
        let arg = |value: &str, args: &mut Vec<String>| {
            args.push(value.to_owned());
            format!("${}", args.len())
        };
        match scope {
            Scope::Everything => {}
            Scope::Clinics(clinics) if clinics.is_empty() => conditions.push("1 = 0".to_owned()),
            Scope::Clinics(clinics) => {
                let list: Vec<String> = clinics.iter().map(|c| arg(c, &mut args)).collect();
                conditions.push(format!("clinic_id IN ({})", list.join(", ")));
            }
        }
        if let Some(status) = status {
            conditions.push(format!("status = {}", arg(status, &mut args)));
        }
        if let Some(order) = order_number {
            conditions.push(format!("order_number = {}", arg(order, &mut args)));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        // Only constant text and numbered placeholders are formatted in; values are bound.
        let sql = format!(
            "SELECT {COLUMNS} FROM referrals{filter} ORDER BY received_at DESC, id LIMIT {}",
            limit.clamp(1, 10_000)
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        super::fetch_all_text(&self.pool, sql, &args, "select referrals", row).await
    }

    /// Referrals matching a fixed condition on numbered placeholders bound to `args`.
    pub(super) async fn referrals_where(
        &self,
        condition: &'static str,
        args: &[&str],
    ) -> Result<Vec<ReferralRow>, IndexError> {
        let sql =
            format!("SELECT {COLUMNS} FROM referrals WHERE {condition} ORDER BY received_at, id");
        super::fetch_all_text(&self.pool, sql, args, "select referrals where", row).await
    }

    pub async fn referral(&self, id: &str) -> Result<Option<ReferralRow>, IndexError> {
        // Only constant column names are formatted in; values are bound.
        let sql = format!("SELECT {COLUMNS} FROM referrals WHERE id = $1");
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select referral"))?;
        found
            .map(|r| row(&r))
            .transpose()
            .map_err(IndexError::query("read referral"))
    }

    pub async fn referral_by_document(
        &self,
        document_id: &str,
    ) -> Result<Option<ReferralRow>, IndexError> {
        let sql = format!("SELECT {COLUMNS} FROM referrals WHERE document_id = $1");
        let found = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(document_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select referral by document"))?;
        found
            .map(|r| row(&r))
            .transpose()
            .map_err(IndexError::query("read referral"))
    }

    /// The referrals of one clinic's order number, oldest first.
    pub async fn referrals_of_order(
        &self,
        clinic_id: &str,
        order_number: &str,
    ) -> Result<Vec<ReferralRow>, IndexError> {
        self.referrals_where(
            "clinic_id = $1 AND order_number = $2",
            &[clinic_id, order_number],
        )
        .await
    }

    /// Makes a CDA document the document of a referral that was made from an HL7 v2 order:
    /// what the document says replaces what the order said; the order number, the patient's
    /// codes, the link and the order message stay. Only a referral still without a document
    /// is enriched (`false` when another document got there first).
    pub async fn enrich_referral(
        &self,
        with: &ReferralRow,
        journal: &JournalEntry,
    ) -> Result<bool, IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin enrich"))?;
        let updated = sqlx::query(
            "UPDATE referrals SET document_id = $2, set_id = $3, version = $4,
               effective_time = $5, statistical_card = $6, family_name = $7, given_names = $8,
               sex = $9, birth_date = $10, author_id = $11, author_name = $12,
               author_organisation = $13, custodian = $14, examination = $15,
               examination_codes = $16, urgency = $17, reason = $18, warnings = $19,
               document_key = $20, document_sha256 = $21, updated_at = $22,
               insured_code = CASE WHEN insured_code = '' THEN $23 ELSE insured_code END
             WHERE id = $1 AND document_key = order_message_key",
        )
        .bind(&with.id)
        .bind(&with.document_id)
        .bind(&with.set_id)
        .bind(with.version)
        .bind(&with.effective_time)
        .bind(&with.statistical_card)
        .bind(&with.family_name)
        .bind(&with.given_names)
        .bind(&with.sex)
        .bind(&with.birth_date)
        .bind(&with.author_id)
        .bind(&with.author_name)
        .bind(&with.author_organisation)
        .bind(&with.custodian)
        .bind(&with.examination)
        .bind(&with.examination_codes)
        .bind(&with.urgency)
        .bind(&with.reason)
        .bind(&with.warnings)
        .bind(&with.document_key)
        .bind(&with.document_sha256)
        .bind(with.updated_at)
        .bind(&with.insured_code)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("enrich referral"))?
        .rows_affected()
            == 1;
        journal_if(tx, updated, Some(journal)).await
    }

    /// Appends one journal entry.
    pub async fn append_journal(&self, entry: &JournalEntry) -> Result<(), IndexError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin journal"))?;
        insert_journal(&mut tx, entry).await?;
        tx.commit()
            .await
            .map_err(IndexError::query("commit journal"))
    }

    /// Journal entries of a referral's case, oldest first: its own and those of its study.
    pub async fn journal_of_referral(
        &self,
        referral_id: &str,
    ) -> Result<Vec<JournalEntry>, IndexError> {
        let rows = sqlx::query(
            "SELECT id, at, kind, clinic_id, institution, actor, patient_id, referral_id,
               study_uid, report_id, detail
             FROM journal
             WHERE referral_id = $1
                OR study_uid IN (SELECT r.study_uid FROM referrals r
                                 WHERE r.id = $1 AND r.study_uid <> '')
             ORDER BY at, id",
        )
        .bind(referral_id)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("select journal"))?;
        rows.iter()
            .map(journal_row)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read journal"))
    }
}

pub(super) fn journal_row(r: &AnyRow) -> Result<JournalEntry, sqlx::Error> {
    Ok(JournalEntry {
        id: r.try_get(0)?,
        at: r.try_get(1)?,
        kind: r.try_get(2)?,
        clinic_id: r.try_get(3)?,
        institution: r.try_get(4)?,
        actor: r.try_get(5)?,
        patient_id: r.try_get(6)?,
        referral_id: r.try_get(7)?,
        study_uid: r.try_get(8)?,
        report_id: r.try_get(9)?,
        detail: r.try_get(10)?,
    })
}

/// Ends a transaction whose guarded change either happened (then journaled and committed
/// together) or found nothing to change (then rolled back); answers which.
pub(super) async fn journal_if(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    changed: bool,
    journal: Option<&JournalEntry>,
) -> Result<bool, IndexError> {
    if !changed {
        tx.rollback()
            .await
            .map_err(IndexError::query("rollback unchanged"))?;
        return Ok(false);
    }
    if let Some(journal) = journal {
        insert_journal(&mut tx, journal).await?;
    }
    tx.commit()
        .await
        .map_err(IndexError::query("commit journaled change"))?;
    Ok(true)
}

pub(super) async fn insert_journal(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    e: &JournalEntry,
) -> Result<(), IndexError> {
    let at = if e.at == 0 { now_micros() } else { e.at };
    sqlx::query(
        "INSERT INTO journal (id, at, kind, clinic_id, institution, actor, patient_id,
           referral_id, study_uid, report_id, detail)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&e.id)
    .bind(at)
    .bind(&e.kind)
    .bind(&e.clinic_id)
    .bind(&e.institution)
    .bind(&e.actor)
    .bind(&e.patient_id)
    .bind(&e.referral_id)
    .bind(&e.study_uid)
    .bind(&e.report_id)
    .bind(&e.detail)
    .execute(&mut **tx)
    .await
    .map_err(IndexError::query("insert journal entry"))?;
    Ok(())
}
