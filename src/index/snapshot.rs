//! The whole index as data: every table's rows read in one consistent snapshot, and loaded
//! back into an empty index. The form is the same whichever engine wrote it, so a backup of a
//! PostgreSQL index restores into SQLite and the other way round.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{Engine, Index, IndexError};

/// How a column's values are kept: the schema uses only integers and text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnKind {
    Int,
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDump {
    pub name: String,
    pub columns: Vec<(String, ColumnKind)>,
    /// Each row's values in column order: numbers, strings or null.
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// Tables the service keeps no data of its own in.
const SKIPPED: &[&str] = &["_sqlx_migrations"];

/// Tables whose rows mean the index already holds an archive.
const HOLDS_AN_ARCHIVE: &[&str] = &["studies", "referrals", "users", "audit_events"];

impl Index {
    /// This archive's id, made the first time the index is opened.
    pub async fn archive_id(&self) -> Result<String, IndexError> {
        let what = "archive identity";
        sqlx::query(
            "INSERT INTO archive_identity (id, archive_id, created_at) VALUES (1, $1, $2)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(uuid::Uuid::new_v4().to_string())
        .bind(super::now_micros())
        .execute(&self.pool)
        .await
        .map_err(IndexError::query(what))?;
        sqlx::query("SELECT archive_id FROM archive_identity WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query(what))
    }

    /// The schema's version: the last migration applied.
    pub async fn schema_version(&self) -> Result<i64, IndexError> {
        sqlx::query("SELECT CAST(MAX(version) AS BIGINT) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get(0))
            .map_err(IndexError::query("schema version"))
    }

    /// Rows in the tables that make an archive; none means a fresh index.
    pub async fn archive_rows(&self) -> Result<i64, IndexError> {
        let mut total = 0;
        for table in HOLDS_AN_ARCHIVE {
            let n: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                .fetch_one(&self.pool)
                .await
                .and_then(|r| r.try_get(0))
                .map_err(IndexError::query("count archive rows"))?;
            total += n;
        }
        Ok(total)
    }

    /// Every table, parents before the tables that refer to them, with its columns.
    async fn tables(&self) -> Result<Vec<(String, Vec<(String, ColumnKind)>)>, IndexError> {
        let what = "list the index's tables";
        let (tables_sql, columns_sql, keys_sql) = match self.engine {
            Engine::Sqlite => (
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY name",
                "SELECT name, type FROM pragma_table_info($1) ORDER BY cid",
                "SELECT m.name, p.\"table\" FROM sqlite_master m
                 JOIN pragma_foreign_key_list(m.name) p WHERE m.type = 'table'",
            ),
            Engine::Postgres => (
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'
                 ORDER BY table_name",
                "SELECT CAST(column_name AS TEXT), CAST(data_type AS TEXT)
                 FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = $1
                 ORDER BY ordinal_position",
                "SELECT CAST(tc.table_name AS TEXT), CAST(ccu.table_name AS TEXT)
                 FROM information_schema.table_constraints tc
                 JOIN information_schema.constraint_column_usage ccu
                   ON ccu.constraint_name = tc.constraint_name
                  AND ccu.table_schema = tc.table_schema
                 WHERE tc.constraint_type = 'FOREIGN KEY'
                   AND tc.table_schema = current_schema()",
            ),
        };
        let names: Vec<String> = sqlx::query(tables_sql)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query(what))?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(IndexError::query(what))?;
        let names: Vec<String> = names
            .into_iter()
            .filter(|n| !SKIPPED.contains(&n.as_str()))
            .collect();
        let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for r in sqlx::query(keys_sql)
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query(what))?
        {
            let child: String = r.try_get(0).map_err(IndexError::query(what))?;
            let parent: String = r.try_get(1).map_err(IndexError::query(what))?;
            if child != parent {
                parents.entry(child).or_default().insert(parent);
            }
        }
        let mut ordered: Vec<String> = Vec::with_capacity(names.len());
        while ordered.len() < names.len() {
            let before = ordered.len();
            for n in &names {
                let ready = parents
                    .get(n)
                    .is_none_or(|ps| ps.iter().all(|p| ordered.contains(p) || !names.contains(p)));
                if !ordered.contains(n) && ready {
                    ordered.push(n.clone());
                }
            }
            if ordered.len() == before {
                // A cycle of references: the rest in name order (the schema has none).
                ordered.extend(
                    names
                        .iter()
                        .filter(|n| !ordered.contains(n))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        let mut out = Vec::with_capacity(ordered.len());
        for name in ordered {
            let columns = sqlx::query(columns_sql)
                .bind(&name)
                .fetch_all(&self.pool)
                .await
                .map_err(IndexError::query(what))?
                .iter()
                .map(|r| {
                    let column: String = r.try_get(0)?;
                    let kind: String = r.try_get(1)?;
                    let kind = kind.to_ascii_lowercase();
                    Ok((
                        column,
                        if kind.contains("int") {
                            ColumnKind::Int
                        } else {
                            ColumnKind::Text
                        },
                    ))
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(IndexError::query(what))?;
            out.push((name, columns));
        }
        Ok(out)
    }

    /// Every table's rows, read in one transaction so that they agree with each other even
    /// while the service writes (PostgreSQL: repeatable read; SQLite: the read snapshot).
    pub async fn snapshot(&self) -> Result<Vec<TableDump>, IndexError> {
        let what = "snapshot the index";
        let tables = self.tables().await?;
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        if self.engine == Engine::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(IndexError::query(what))?;
        }
        let mut dumps = Vec::with_capacity(tables.len());
        for (name, columns) in tables {
            let list = columns
                .iter()
                .map(|(c, kind)| match kind {
                    ColumnKind::Int => format!("CAST(\"{c}\" AS BIGINT)"),
                    ColumnKind::Text => format!("\"{c}\""),
                })
                .collect::<Vec<_>>()
                .join(", ");
            // Only names the database itself gave are formatted in.
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {list} FROM \"{name}\""
            )))
            .fetch_all(&mut *tx)
            .await
            .map_err(IndexError::query(what))?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut values = Vec::with_capacity(columns.len());
                for (i, (_, kind)) in columns.iter().enumerate() {
                    let value = match kind {
                        ColumnKind::Int => r
                            .try_get::<Option<i64>, _>(i)
                            .map(|v| v.map_or(serde_json::Value::Null, Into::into)),
                        ColumnKind::Text => r
                            .try_get::<Option<String>, _>(i)
                            .map(|v| v.map_or(serde_json::Value::Null, Into::into)),
                    }
                    .map_err(IndexError::query(what))?;
                    values.push(value);
                }
                out.push(values);
            }
            dumps.push(TableDump {
                name,
                columns,
                rows: out,
            });
        }
        tx.commit().await.map_err(IndexError::query(what))?;
        Ok(dumps)
    }

    /// Replaces everything in the index with `dumps`, in one transaction. Tables the dump
    /// does not name are emptied; columns the dump lacks take their defaults.
    pub async fn load_snapshot(&self, dumps: &[TableDump]) -> Result<u64, IndexError> {
        let what = "load an index snapshot";
        let tables = self.tables().await?;
        let mut tx = self.pool.begin().await.map_err(IndexError::query(what))?;
        for (name, _) in tables.iter().rev() {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM \"{name}\"")))
                .execute(&mut *tx)
                .await
                .map_err(IndexError::query(what))?;
        }
        let mut loaded = 0u64;
        for (name, known) in &tables {
            let Some(dump) = dumps.iter().find(|d| &d.name == name) else {
                continue;
            };
            if dump.columns.is_empty() || dump.rows.is_empty() {
                continue;
            }
            // Only columns this schema has; the names come from the database, not the dump.
            let columns: Vec<(usize, &str, ColumnKind)> = dump
                .columns
                .iter()
                .enumerate()
                .filter_map(|(i, (c, _))| {
                    known
                        .iter()
                        .find(|(k, _)| k == c)
                        .map(|(k, kind)| (i, k.as_str(), *kind))
                })
                .collect();
            let list = columns
                .iter()
                .map(|(_, c, _)| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let per_statement = (4_000 / columns.len().max(1)).max(1);
            for chunk in dump.rows.chunks(per_statement) {
                let mut placeholders = Vec::with_capacity(chunk.len());
                let mut n = 0;
                for _ in chunk {
                    let row: Vec<String> = columns
                        .iter()
                        .map(|_| {
                            n += 1;
                            format!("${n}")
                        })
                        .collect();
                    placeholders.push(format!("({})", row.join(", ")));
                }
                let sql = format!(
                    "INSERT INTO \"{name}\" ({list}) VALUES {}",
                    placeholders.join(", ")
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for row in chunk {
                    for (i, _, kind) in &columns {
                        let value = row.get(*i).unwrap_or(&serde_json::Value::Null);
                        query = match kind {
                            ColumnKind::Int => query.bind(value.as_i64()),
                            ColumnKind::Text => query.bind(value.as_str().map(str::to_owned)),
                        };
                    }
                }
                query
                    .execute(&mut *tx)
                    .await
                    .map_err(IndexError::query(what))?;
                loaded += chunk.len() as u64;
            }
        }
        tx.commit().await.map_err(IndexError::query(what))?;
        Ok(loaded)
    }
}
