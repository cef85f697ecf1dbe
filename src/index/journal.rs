//! Reading the patient registration journal across cases: by patient and period, within the
//! caller's scope, oldest first.

use sqlx::Row;

use super::referrals::journal_row;
use super::{Index, IndexError, JournalEntry, Scope};

/// Which entries: `patients` (any of these identifiers; with `merged`, the identifiers merged
/// into them, each in its own clinic only; both empty for all), from and to as microseconds
/// since the epoch (inclusive; `None` for open ends).
#[derive(Debug, Clone)]
pub struct JournalQuery {
    pub scope: Scope,
    pub patients: Vec<String>,
    /// (clinic, prior identifier) pairs.
    pub merged: Vec<(String, String)>,
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
        if !q.patients.is_empty() || !q.merged.is_empty() {
            let mut any: Vec<String> = Vec::new();
            for p in &q.patients {
                texts.push(p.clone());
                any.push(format!("patient_id = {}", placeholder(texts.len())));
            }
            for (clinic, prior) in &q.merged {
                texts.push(clinic.clone());
                texts.push(prior.clone());
                any.push(format!(
                    "(clinic_id = {} AND patient_id = {})",
                    placeholder(texts.len() - 1),
                    placeholder(texts.len())
                ));
            }
            conditions.push(format!("({})", any.join(" OR ")));
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

    /// The (clinic, identifier) pairs merged into `survivor` (ADT^A40) by clinics within
    /// `scope`, whose journal in that clinic is the survivor's too.
    pub async fn merged_from(
        &self,
        survivor: &str,
        scope: &Scope,
    ) -> Result<Vec<(String, String)>, IndexError> {
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
            let pair = (clinic, prior);
            if within && !out.contains(&pair) {
                out.push(pair);
            }
        }
        Ok(out)
    }
}
