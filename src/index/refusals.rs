//! Writes refused because they named another clinic's study, series or SOP instance: kept for
//! administrators to follow up (a misconfigured modality, a copied study, or an attempt).
//! Append-only.

use serde::Serialize;
use sqlx::Row;

use super::{Index, IndexError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub at: i64,
    /// The clinic the object came from.
    pub clinic_id: String,
    /// The institution that owns what the object named.
    pub owner_id: String,
    /// `study`, `series` or `instance`.
    pub what: String,
    pub uid: String,
    pub sop_instance_uid: String,
    /// `C-STORE`, `STOW-RS`, `report object`, …
    pub door: String,
    pub actor: String,
    pub address: String,
}

impl Index {
    pub async fn record_refusal(&self, r: &Refusal) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO ownership_refusals (id, at, clinic_id, owner_id, what, uid,
               sop_instance_uid, door, actor, address)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(r.at)
        .bind(&r.clinic_id)
        .bind(&r.owner_id)
        .bind(&r.what)
        .bind(&r.uid)
        .bind(&r.sop_instance_uid)
        .bind(&r.door)
        .bind(&r.actor)
        .bind(&r.address)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("insert ownership refusal"))?;
        Ok(())
    }

    /// Refusals since `since` (microseconds), newest first.
    pub async fn refusals(&self, since: i64, limit: i64) -> Result<Vec<Refusal>, IndexError> {
        let rows = sqlx::query(
            "SELECT at, clinic_id, owner_id, what, uid, sop_instance_uid, door, actor, address
             FROM ownership_refusals WHERE at >= $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(since)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("select ownership refusals"))?;
        rows.iter()
            .map(|r| {
                Ok(Refusal {
                    at: r.try_get(0)?,
                    clinic_id: r.try_get(1)?,
                    owner_id: r.try_get(2)?,
                    what: r.try_get(3)?,
                    uid: r.try_get(4)?,
                    sop_instance_uid: r.try_get(5)?,
                    door: r.try_get(6)?,
                    actor: r.try_get(7)?,
                    address: r.try_get(8)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(IndexError::query("read ownership refusal"))
    }
}
