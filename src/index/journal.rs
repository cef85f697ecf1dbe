//! Reading the patient registration journal across cases: by patient and period, within the
//! caller's scope, oldest first.

use sqlx::Row;

use super::referrals::journal_row;
use super::{Index, IndexError, JournalEntry, Scope};

/// Which entries: `patients` (any of these identifiers; empty for all), from and to as
/// microseconds since the epoch (inclusive; `None` for open ends).
#[derive(Debug, Clone)]
pub struct JournalQuery {
    pub scope: Scope,
    pub patients: Vec<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: i64,
}

impl Index {
    pub async fn journal(&self, q: &JournalQuery) -> Result<Vec<JournalEntry>, IndexError> {
        let mut conditions: Vec<String> = Vec::new();
        let mut texts: Vec<String> = Vec::new();
        let mut numbers: Vec<i64> = Vec::new();
        let placeholder = |n: usize| format!("${n}");
        match &q.scope {
            Scope::Everything => {}
            Scope::Clinics(list) if list.is_empty() => conditions.push("1 = 0".into()),
            Scope::Clinics(list) => {
                let marks: Vec<String> = list
                    .iter()
                    .map(|c| {
                        texts.push(c.clone());
                        placeholder(texts.len())
                    })
                    .collect();
                conditions.push(format!("clinic_id IN ({})", marks.join(", ")));
            }
        }
        if !q.patients.is_empty() {
            let marks: Vec<String> = q
                .patients
                .iter()
                .map(|p| {
                    texts.push(p.clone());
                    placeholder(texts.len())
                })
                .collect();
            conditions.push(format!("patient_id IN ({})", marks.join(", ")));
        }
        // Numbers are bound after every text, so their placeholders follow the texts'.
        let base = texts.len();
        if let Some(from) = q.from {
            numbers.push(from);
            conditions.push(format!("at >= ${}", base + numbers.len()));
        }
        if let Some(to) = q.to {
            numbers.push(to);
            conditions.push(format!("at <= ${}", base + numbers.len()));
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        // Only constant text and numbered placeholders are formatted in; values are bound.
        let sql = format!(
            "SELECT id, at, kind, clinic_id, institution, actor, patient_id, referral_id,
               study_uid, report_id, detail
             FROM journal{filter} ORDER BY at, id LIMIT {}",
            q.limit.clamp(1, 100_000)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for t in texts {
            query = query.bind(t);
        }
        for n in numbers {
            query = query.bind(n);
        }
        let rows = query
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("select journal"))?;
        rows.iter()
            .map(journal_row)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("read journal"))
    }

    /// The identifiers merged into `survivor` (ADT^A40) by clinics within `scope`, whose
    /// journal is the survivor's too.
    pub async fn merged_from(
        &self,
        survivor: &str,
        scope: &Scope,
    ) -> Result<Vec<String>, IndexError> {
        let rows = sqlx::query(
            "SELECT DISTINCT prior_id, clinic_id FROM patient_merges WHERE survivor_id = $1",
        )
        .bind(survivor)
        .fetch_all(&self.pool)
        .await
        .map_err(IndexError::query("merged from"))?;
        let mut out = Vec::new();
        for r in rows {
            let prior: String = r.try_get(0).map_err(IndexError::query("read merge"))?;
            let clinic: String = r.try_get(1).map_err(IndexError::query("read merge"))?;
            let within = match scope {
                Scope::Everything => true,
                Scope::Clinics(list) => list.contains(&clinic),
            };
            if within && !out.contains(&prior) {
                out.push(prior);
            }
        }
        Ok(out)
    }
}
