//! Reading studies back for administrators: the list of what arrived and one study in full.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Index, IndexError};

/// One line of `telecardio studies`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StudyRow {
    pub study_uid: String,
    pub patient_id: String,
    pub patient_issuer: String,
    pub patient_name: String,
    pub birth_date: String,
    pub sex: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub description: String,
    pub referring_physician: String,
    pub modalities: String,
    pub clinic_id: String,
    pub num_series: i64,
    pub num_instances: i64,
    pub total_bytes: i64,
    pub first_received_at: i64,
    pub last_received_at: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SeriesRow {
    pub series_uid: String,
    pub modality: String,
    pub series_number: Option<i64>,
    pub description: String,
    pub num_instances: i64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct InstanceRow {
    pub series_uid: String,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub transfer_syntax: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub object_key: String,
    pub clinic_id: String,
    pub calling_ae: String,
    pub received_at: i64,
}

/// `telecardio show`: a study with its series and instances.
#[derive(Debug, Clone, Serialize)]
pub struct StudyDetail {
    pub study: StudyRow,
    pub series: Vec<SeriesRow>,
    pub instances: Vec<InstanceRow>,
    pub conflicts: Vec<String>,
}

macro_rules! study_select {
    () => {
        "SELECT s.study_uid, s.patient_id, s.issuer, COALESCE(p.name, ''),
    COALESCE(p.birth_date, ''), COALESCE(p.sex, ''), s.study_date, s.study_time,
    s.accession_number, s.description, s.referring_physician, s.modalities, s.clinic_id,
    s.num_series, s.num_instances, s.total_bytes, s.first_received_at, s.last_received_at
        FROM studies s
        LEFT JOIN patients p ON p.clinic_id = s.clinic_id AND p.patient_id = s.patient_id
               AND p.issuer = s.issuer"
    };
}

fn study_row(row: &AnyRow) -> Result<StudyRow, sqlx::Error> {
    Ok(StudyRow {
        study_uid: row.try_get(0)?,
        patient_id: row.try_get(1)?,
        patient_issuer: row.try_get(2)?,
        patient_name: row.try_get(3)?,
        birth_date: row.try_get(4)?,
        sex: row.try_get(5)?,
        study_date: row.try_get(6)?,
        study_time: row.try_get(7)?,
        accession_number: row.try_get(8)?,
        description: row.try_get(9)?,
        referring_physician: row.try_get(10)?,
        modalities: row.try_get(11)?,
        clinic_id: row.try_get(12)?,
        num_series: row.try_get(13)?,
        num_instances: row.try_get(14)?,
        total_bytes: row.try_get(15)?,
        first_received_at: row.try_get(16)?,
        last_received_at: row.try_get(17)?,
    })
}

impl Index {
    /// Studies, most recently received first.
    pub async fn list_studies(&self, limit: i64) -> Result<Vec<StudyRow>, IndexError> {
        let sql = concat!(
            study_select!(),
            " ORDER BY s.last_received_at DESC, s.study_uid LIMIT $1"
        );
        let rows = sqlx::query(sql)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("list studies"))?;
        rows.iter()
            .map(study_row)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("decode study"))
    }

    pub async fn study(&self, study_uid: &str) -> Result<Option<StudyDetail>, IndexError> {
        let sql = concat!(study_select!(), " WHERE s.study_uid = $1");
        let Some(row) = sqlx::query(sql)
            .bind(study_uid)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select study"))?
        else {
            return Ok(None);
        };
        let study = study_row(&row).map_err(IndexError::query("decode study"))?;
        let series = self.series_of(study_uid).await?;
        let instances = self.instances_of(study_uid).await?;
        let conflicts = self.conflicts_in(study_uid).await?;
        Ok(Some(StudyDetail {
            study,
            series,
            instances,
            conflicts,
        }))
    }

    async fn series_of(&self, study_uid: &str) -> Result<Vec<SeriesRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT series_uid, modality, series_number, description, num_instances
             FROM series WHERE study_uid = $1 ORDER BY series_number, series_uid",
        )
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("select series"))?;
        rows.iter()
            .map(|r| {
                Ok(SeriesRow {
                    series_uid: r.try_get(0)?,
                    modality: r.try_get(1)?,
                    series_number: r.try_get(2)?,
                    description: r.try_get(3)?,
                    num_instances: r.try_get(4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("decode series"))
    }

    /// Instances of a study in series and instance order.
    pub async fn instances_of(&self, study_uid: &str) -> Result<Vec<InstanceRow>, IndexError> {
        let rows = sqlx::query(
            "SELECT series_uid, sop_instance_uid, sop_class_uid, instance_number,
               number_of_frames, transfer_syntax, size_bytes, sha256, object_key, clinic_id,
               calling_ae, received_at
             FROM instances WHERE study_uid = $1
             ORDER BY series_uid, instance_number, sop_instance_uid, received_at",
        )
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("select instances"))?;
        rows.iter()
            .map(|r| {
                Ok(InstanceRow {
                    series_uid: r.try_get(0)?,
                    sop_instance_uid: r.try_get(1)?,
                    sop_class_uid: r.try_get(2)?,
                    instance_number: r.try_get(3)?,
                    number_of_frames: r.try_get(4)?,
                    transfer_syntax: r.try_get(5)?,
                    size_bytes: r.try_get(6)?,
                    sha256: r.try_get(7)?,
                    object_key: r.try_get(8)?,
                    clinic_id: r.try_get(9)?,
                    calling_ae: r.try_get(10)?,
                    received_at: r.try_get(11)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("decode instance"))
    }

    async fn conflicts_in(&self, study_uid: &str) -> Result<Vec<String>, IndexError> {
        let rows = sqlx::query(
            "SELECT DISTINCT c.sop_instance_uid FROM instance_conflicts c
             JOIN instances i ON i.object_key = c.new_key
             WHERE i.study_uid = $1 ORDER BY c.sop_instance_uid",
        )
        .bind(study_uid)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("select conflicts"))?;
        rows.iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("decode conflict"))
    }

    /// Number of instance rows; for metrics and tests.
    pub async fn count_instances(&self) -> Result<i64, IndexError> {
        let row = sqlx::query("SELECT COUNT(*) FROM instances")
            .fetch_one(&self.pool)
            .await
            .map_err(IndexError::query("count instances"))?;
        row.try_get(0).map_err(IndexError::query("decode count"))
    }
}
