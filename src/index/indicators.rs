//! What the quality indicators read: the clocks and facts of every case with anything in a
//! period, the report versions signed in it, the studies received in it and the fixity tally
//! of its days. Plain rows; what they mean is the `indicators` module's business.

use sqlx::Row;

use super::{Index, IndexError};

/// One case as the indicators see it; clocks in microseconds since the epoch (UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseClocks {
    pub id: String,
    pub clinic_id: String,
    pub centre_id: String,
    pub examination: String,
    pub urgency: String,
    pub status: String,
    pub referral_id: String,
    /// The national personal code the referral names ('' without a referral).
    pub personal_code: String,
    pub patient_id: String,
    pub issuer: String,
    /// T0 as the referral wrote it (CDA/HL7 TS text).
    pub referral_written: String,
    pub examined_at: Option<i64>,
    pub data_at: i64,
    pub ready_at: i64,
    pub claimed_at: Option<i64>,
    pub signed_at: Option<i64>,
    pub delivered_at: Option<i64>,
    /// A signed version of its report says the study was non-diagnostic.
    pub non_diagnostic: bool,
}

/// A signed report version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignedVersion {
    pub case_id: String,
    pub signed_at: i64,
    pub amendment: bool,
}

/// A study received, and whether linking it to its referral needed a person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedStudy {
    pub clinic_id: String,
    pub received_at: i64,
    pub reconciled: bool,
}

/// One UTC day of fixity checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixityDay {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub objects: i64,
    pub failures: i64,
}

impl Index {
    /// Every case with a clock (T1 … T6) or a signed version in `[from, to)`.
    pub async fn indicator_cases(&self, from: i64, to: i64) -> Result<Vec<CaseClocks>, IndexError> {
        let rows = sqlx::query(
            "SELECT c.id, c.clinic_id, c.centre_id, c.examination, c.urgency, c.status,
               c.referral_id, COALESCE(r.personal_code, ''), c.patient_id, COALESCE(s.issuer, ''),
               c.referral_written, s.examined_at, c.data_at, c.ready_at, c.claimed_at,
               c.signed_at, c.delivered_at,
               CAST(COALESCE((SELECT MAX(v.non_diagnostic) FROM reports v
                              WHERE v.case_id = c.id AND v.status = 'signed'), 0) AS BIGINT)
             FROM cases c
             LEFT JOIN referrals r ON r.id = c.referral_id
             LEFT JOIN studies s ON s.study_uid = c.study_uid
             WHERE (s.examined_at >= $1 AND s.examined_at < $2)
               OR (c.data_at >= $1 AND c.data_at < $2)
               OR (c.ready_at >= $1 AND c.ready_at < $2)
               OR (c.claimed_at >= $1 AND c.claimed_at < $2)
               OR (c.signed_at >= $1 AND c.signed_at < $2)
               OR (c.delivered_at >= $1 AND c.delivered_at < $2)
               OR c.id IN (SELECT v.case_id FROM reports v
                           WHERE v.status = 'signed' AND v.signed_at >= $1 AND v.signed_at < $2)
             ORDER BY c.id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("indicator cases"))?;
        rows.iter()
            .map(|r| {
                Ok(CaseClocks {
                    id: r.try_get(0)?,
                    clinic_id: r.try_get(1)?,
                    centre_id: r.try_get(2)?,
                    examination: r.try_get(3)?,
                    urgency: r.try_get(4)?,
                    status: r.try_get(5)?,
                    referral_id: r.try_get(6)?,
                    personal_code: r.try_get(7)?,
                    patient_id: r.try_get(8)?,
                    issuer: r.try_get(9)?,
                    referral_written: r.try_get(10)?,
                    examined_at: r.try_get(11)?,
                    data_at: r.try_get(12)?,
                    ready_at: r.try_get(13)?,
                    claimed_at: r.try_get(14)?,
                    signed_at: r.try_get(15)?,
                    delivered_at: r.try_get(16)?,
                    non_diagnostic: r.try_get::<i64, _>(17)? != 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read indicator case"))
    }

    /// The report versions signed in `[from, to)`.
    pub async fn indicator_versions(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<SignedVersion>, IndexError> {
        let rows = sqlx::query(
            "SELECT case_id, signed_at, amends FROM reports
             WHERE status = 'signed' AND signed_at >= $1 AND signed_at < $2
             ORDER BY case_id, version",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("indicator versions"))?;
        rows.iter()
            .map(|r| {
                Ok(SignedVersion {
                    case_id: r.try_get(0)?,
                    signed_at: r.try_get(1)?,
                    amendment: !r.try_get::<String, _>(2)?.is_empty(),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read indicator version"))
    }

    /// The studies first received in `[from, to)`; reconciled when linking it raised an
    /// exception a person had to decide.
    pub async fn indicator_studies(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<ReceivedStudy>, IndexError> {
        let rows = sqlx::query(
            "SELECT s.clinic_id, s.first_received_at,
               CAST(CASE WHEN EXISTS (SELECT 1 FROM link_exceptions e
                                      WHERE e.study_uid = s.study_uid)
                 THEN 1 ELSE 0 END AS BIGINT)
             FROM studies s WHERE s.first_received_at >= $1 AND s.first_received_at < $2
             ORDER BY s.study_uid",
        )
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("indicator studies"))?;
        rows.iter()
            .map(|r| {
                Ok(ReceivedStudy {
                    clinic_id: r.try_get(0)?,
                    received_at: r.try_get(1)?,
                    reconciled: r.try_get::<i64, _>(2)? != 0,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read indicator study"))
    }

    /// The fixity tally of the UTC days `first ..= last` (`YYYY-MM-DD`).
    pub async fn indicator_fixity(
        &self,
        first: &str,
        last: &str,
    ) -> Result<Vec<FixityDay>, IndexError> {
        let rows = sqlx::query(
            "SELECT day, objects, failures FROM fixity_tally
             WHERE day >= $1 AND day <= $2 ORDER BY day",
        )
        .bind(first)
        .bind(last)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("indicator fixity"))?;
        rows.iter()
            .map(|r| {
                Ok(FixityDay {
                    day: r.try_get(0)?,
                    objects: r.try_get(1)?,
                    failures: r.try_get(2)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read indicator fixity"))
    }
}
