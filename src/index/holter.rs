//! Holter originals: the file a clinic sent and the DICOM series made from it, so the copy
//! leads back to the bytes it came from and their hash.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Index, IndexError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HolterOriginal {
    pub series_uid: String,
    pub object_key: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// `ISHNE 1.0`, `EDF` or `EDF+`.
    pub format: String,
    pub file_name: String,
    pub clinic_id: String,
    pub referral_id: String,
    pub study_uid: String,
    pub instances: i64,
    pub channels: i64,
    pub rate: i64,
    /// Samples per channel.
    pub samples: i64,
    /// The recorder's local start time, ISO 8601 without a zone.
    pub started: String,
    pub annotations: i64,
    pub received_by: String,
    pub received_at: i64,
}

/// The patient and study attributes an object added to an existing study must repeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StudyPatient {
    pub patient_id: String,
    pub issuer: String,
    pub name: String,
    pub birth_date: String,
    pub sex: String,
    pub study_date: String,
    pub study_time: String,
    pub study_id: String,
    pub description: String,
    pub referring_physician: String,
}

const COLUMNS: &str = "series_uid, object_key, sha256, size_bytes, format, file_name, clinic_id,
    referral_id, study_uid, instances, channels, rate, samples, started, annotations,
    received_by, received_at";

fn original(r: &AnyRow) -> Result<HolterOriginal, sqlx::Error> {
    Ok(HolterOriginal {
        series_uid: r.try_get(0)?,
        object_key: r.try_get(1)?,
        sha256: r.try_get(2)?,
        size_bytes: r.try_get(3)?,
        format: r.try_get(4)?,
        file_name: r.try_get(5)?,
        clinic_id: r.try_get(6)?,
        referral_id: r.try_get(7)?,
        study_uid: r.try_get(8)?,
        instances: r.try_get(9)?,
        channels: r.try_get(10)?,
        rate: r.try_get(11)?,
        samples: r.try_get(12)?,
        started: r.try_get(13)?,
        annotations: r.try_get(14)?,
        received_by: r.try_get(15)?,
        received_at: r.try_get(16)?,
    })
}

impl Index {
    /// Records a copy; false when that series was recorded already (the same file imported
    /// again for the same referral), which leaves the first record as it was.
    pub async fn record_holter_original(&self, o: &HolterOriginal) -> Result<bool, IndexError> {
        let sql = format!(
            "INSERT INTO holter_originals ({COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
             ON CONFLICT (series_uid) DO NOTHING"
        );
        let done = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&o.series_uid)
            .bind(&o.object_key)
            .bind(&o.sha256)
            .bind(o.size_bytes)
            .bind(&o.format)
            .bind(&o.file_name)
            .bind(&o.clinic_id)
            .bind(&o.referral_id)
            .bind(&o.study_uid)
            .bind(o.instances)
            .bind(o.channels)
            .bind(o.rate)
            .bind(o.samples)
            .bind(&o.started)
            .bind(o.annotations)
            .bind(&o.received_by)
            .bind(super::now_micros())
            .execute(&self.pool)
            .await
            .map_err(IndexError::query("insert holter original"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The copy whose DICOM series is `series_uid`.
    pub async fn holter_original(
        &self,
        series_uid: &str,
    ) -> Result<Option<HolterOriginal>, IndexError> {
        let sql = format!("SELECT {COLUMNS} FROM holter_originals WHERE series_uid = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(series_uid)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select holter original"))?;
        row.as_ref()
            .map(original)
            .transpose()
            .map_err(IndexError::query("read holter original"))
    }

    /// The copies made into `study_uid`, oldest first.
    pub async fn holter_originals_of_study(
        &self,
        study_uid: &str,
    ) -> Result<Vec<HolterOriginal>, IndexError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM holter_originals WHERE study_uid = $1
             ORDER BY received_at, series_uid"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(study_uid)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("select holter originals"))?;
        rows.iter()
            .map(original)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read holter original"))
    }

    /// The patient and study attributes of a stored study, as its clinic's index holds them.
    pub async fn study_patient(&self, study_uid: &str) -> Result<Option<StudyPatient>, IndexError> {
        let row = sqlx::query(
            "SELECT s.patient_id, s.issuer, p.name, p.birth_date, p.sex, s.study_date,
                    s.study_time, s.study_id, s.description, s.referring_physician
             FROM studies s
             LEFT JOIN patients p ON p.clinic_id = s.clinic_id
               AND p.patient_id = s.patient_id AND p.issuer = s.issuer
             WHERE s.study_uid = $1",
        )
        .bind(study_uid)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("select study patient"))?;
        let Some(r) = row else { return Ok(None) };
        let text = |i: usize| -> Result<String, sqlx::Error> {
            Ok(r.try_get::<Option<String>, _>(i)?.unwrap_or_default())
        };
        let read = || -> Result<StudyPatient, sqlx::Error> {
            Ok(StudyPatient {
                patient_id: text(0)?,
                issuer: text(1)?,
                name: text(2)?,
                birth_date: text(3)?,
                sex: text(4)?,
                study_date: text(5)?,
                study_time: text(6)?,
                study_id: text(7)?,
                description: text(8)?,
                referring_physician: text(9)?,
            })
        };
        read()
            .map(Some)
            .map_err(IndexError::query("read study patient"))
    }
}
