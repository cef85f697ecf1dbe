//! The index snapshot as a file: gzip-compressed JSON lines. The first line is the header;
//! then, per table, a line `{"table": name, "columns": [[name, "int"|"text"], …]}` followed
//! by one line per row, a JSON array of its values in column order. Readable with `zcat` and
//! any JSON tool.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::index::{ColumnKind, TableDump};

pub const FORMAT: &str = "telecardio-backup/1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub format: String,
    pub archive_id: String,
    /// The index schema (last migration) the rows are in.
    pub schema_version: i64,
    pub made_at: String,
}

/// The record of a completed backup, written last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub format: String,
    pub archive_id: String,
    pub made_at: String,
    pub index_key: String,
    pub index_sha256: String,
    pub index_rows: u64,
    pub objects: u64,
    /// Objects that could not be copied in this backup (see its report).
    pub failures: u64,
}

#[derive(Serialize, Deserialize)]
struct TableLine {
    table: String,
    columns: Vec<(String, ColumnKind)>,
}

/// A name for a backup that sorts in time order: `YYYYMMDDTHHMMSS.ffffffZ`.
pub fn stamp(micros: i64) -> String {
    let t = crate::index::rfc3339(micros);
    let digits: String = t
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T' || *c == '.')
        .collect();
    format!("{digits}Z")
}

pub fn encode(header: &SnapshotHeader, dumps: &[TableDump]) -> std::io::Result<Vec<u8>> {
    // Buffered: the compressor is slow when fed one small JSON value at a time.
    let mut gz = std::io::BufWriter::with_capacity(
        1 << 20,
        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()),
    );
    serde_json::to_writer(&mut gz, header)?;
    gz.write_all(b"\n")?;
    for d in dumps {
        serde_json::to_writer(
            &mut gz,
            &TableLine {
                table: d.name.clone(),
                columns: d.columns.clone(),
            },
        )?;
        gz.write_all(b"\n")?;
        for row in &d.rows {
            serde_json::to_writer(&mut gz, row)?;
            gz.write_all(b"\n")?;
        }
    }
    gz.into_inner().map_err(|e| e.into_error())?.finish()
}

pub fn decode(body: &[u8]) -> Result<(SnapshotHeader, Vec<TableDump>), String> {
    let reader = std::io::BufReader::new(flate2::read::GzDecoder::new(body));
    let mut lines = reader.lines();
    let first = lines
        .next()
        .ok_or("the snapshot is empty")?
        .map_err(|e| format!("the snapshot cannot be read: {e}"))?;
    let header: SnapshotHeader =
        serde_json::from_str(&first).map_err(|e| format!("snapshot header: {e}"))?;
    if header.format != FORMAT {
        return Err(format!(
            "snapshot format `{}` is not {FORMAT}",
            header.format
        ));
    }
    let mut dumps: Vec<TableDump> = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line.map_err(|e| format!("the snapshot cannot be read: {e}"))?;
        if line.starts_with('{') {
            let t: TableLine =
                serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 2))?;
            dumps.push(TableDump {
                name: t.table,
                columns: t.columns,
                rows: Vec::new(),
            });
        } else {
            let row: Vec<serde_json::Value> =
                serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", n + 2))?;
            let table = dumps
                .last_mut()
                .ok_or_else(|| format!("line {}: a row before any table", n + 2))?;
            if row.len() != table.columns.len() {
                return Err(format!(
                    "line {}: {} values for {} columns of {}",
                    n + 2,
                    row.len(),
                    table.columns.len(),
                    table.name
                ));
            }
            table.rows.push(row);
        }
    }
    Ok((header, dumps))
}

/// Values of `columns` in every row of `table`, as text.
fn column_values<'a>(dumps: &'a [TableDump], table: &str, columns: &[&str]) -> Vec<Vec<&'a str>> {
    let Some(d) = dumps.iter().find(|d| d.name == table) else {
        return Vec::new();
    };
    let at: Vec<Option<usize>> = columns
        .iter()
        .map(|c| d.columns.iter().position(|(name, _)| name == c))
        .collect();
    d.rows
        .iter()
        .map(|row| {
            at.iter()
                .map(|i| {
                    i.and_then(|i| row.get(i))
                        .and_then(|v| v.as_str())
                        .unwrap_or("")
                })
                .collect()
        })
        .collect()
}

/// The SHA-256 the index recorded for each DICOM object, by key.
pub fn dicom_hashes(dumps: &[TableDump]) -> HashMap<String, String> {
    column_values(dumps, "instances", &["object_key", "sha256"])
        .into_iter()
        .map(|v| (v[0].to_owned(), v[1].to_owned()))
        .collect()
}

/// Every object key the index names.
pub fn named_keys(dumps: &[TableDump]) -> HashSet<String> {
    let mut keys = HashSet::new();
    for (table, columns) in [
        ("instances", &["object_key"][..]),
        ("referrals", &["document_key", "order_message_key"][..]),
        ("reports", &["content_key", "answer_key"][..]),
        ("holter_originals", &["object_key"][..]),
    ] {
        for values in column_values(dumps, table, columns) {
            keys.extend(
                values
                    .into_iter()
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            );
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_reads_back_as_written() {
        let header = SnapshotHeader {
            format: FORMAT.into(),
            archive_id: "a".into(),
            schema_version: 15,
            made_at: "2026-12-03T00:00:00Z".into(),
        };
        let dumps = vec![TableDump {
            name: "instances".into(),
            columns: vec![
                ("object_key".into(), ColumnKind::Text),
                ("sha256".into(), ColumnKind::Text),
                ("received_at".into(), ColumnKind::Int),
            ],
            rows: vec![
                vec!["k".into(), "h".into(), 5.into()],
                vec!["Š\n".into(), serde_json::Value::Null, 6.into()],
            ],
        }];
        let body = encode(&header, &dumps).expect("encode");
        let (h, d) = decode(&body).expect("decode");
        assert_eq!((h, d.clone()), (header, dumps));
        assert_eq!(dicom_hashes(&d).get("k").map(String::as_str), Some("h"));
        assert!(named_keys(&d).contains("Š\n"));
        assert!(decode(b"not gzip").is_err());
        assert_eq!(stamp(0), "19700101T000000Z");
    }
}
