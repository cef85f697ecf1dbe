//! Matching patients, studies, series and instances: the SQL behind C-FIND, QIDO-RS and the
//! retrieval services.
//!
//! A [`Search`] names a level, conditions on indexed fields and the [`Scope`] of clinics the
//! caller may see; there is no way to search without a scope. Rows stream out one at a time,
//! so a query that matches a whole archive never sits in memory. Study-level searches stay on
//! study rows (aggregates are kept there by ingest), so they cost the same at a million
//! instances as at a thousand.

use futures::stream::{BoxStream, StreamExt};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{Index, IndexError};

/// The clinics whose studies a caller may see. Built by the access policy, never by an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Everything,
    Clinics(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Patient,
    Study,
    Series,
    Instance,
}

/// An indexed attribute that can be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Matched in search form (lower case, no diacritics): callers fold the value first.
    PatientName,
    PatientId,
    PatientIssuer,
    BirthDate,
    Sex,
    StudyUid,
    StudyDate,
    StudyTime,
    AccessionNumber,
    StudyId,
    StudyDescription,
    /// Matched in search form like [`Field::PatientName`].
    ReferringPhysician,
    /// Matches a study that has a series of this modality.
    ModalitiesInStudy,
    SeriesUid,
    Modality,
    SeriesNumber,
    SeriesDescription,
    SopInstanceUid,
    SopClassUid,
    InstanceNumber,
    /// Issuer of Accession Number Sequence > Local Namespace Entity ID.
    AccessionIssuer,
    /// Other Patient IDs Sequence: takes [`Condition::Item`] on the two item fields below,
    /// which must hold in one item.
    OtherPatientIds,
    OtherPatientId,
    OtherPatientIssuer,
}

impl Field {
    pub fn level(self) -> Level {
        use Field::*;
        match self {
            PatientName | PatientId | PatientIssuer | BirthDate | Sex | OtherPatientIds
            | OtherPatientId | OtherPatientIssuer => Level::Patient,
            StudyUid | StudyDate | StudyTime | AccessionNumber | StudyId | StudyDescription
            | ReferringPhysician | ModalitiesInStudy | AccessionIssuer => Level::Study,
            SeriesUid | Modality | SeriesNumber | SeriesDescription => Level::Series,
            SopInstanceUid | SopClassUid | InstanceNumber => Level::Instance,
        }
    }

    fn column(self) -> &'static str {
        use Field::*;
        match self {
            PatientName => "p.name_search",
            PatientId => "p.patient_id",
            PatientIssuer => "p.issuer",
            BirthDate => "p.birth_date",
            Sex => "p.sex",
            StudyUid => "s.study_uid",
            StudyDate => "s.study_date",
            StudyTime => "s.study_time",
            AccessionNumber => "s.accession_number",
            StudyId => "s.study_id",
            StudyDescription => "s.description",
            ReferringPhysician => "s.referring_search",
            ModalitiesInStudy => "m.modality",
            SeriesUid => "r.series_uid",
            Modality => "r.modality",
            SeriesNumber => "r.series_number",
            SeriesDescription => "r.description",
            SopInstanceUid => "i.sop_instance_uid",
            SopClassUid => "i.sop_class_uid",
            InstanceNumber => "i.instance_number",
            AccessionIssuer => "s.accession_issuer",
            OtherPatientIds => "",
            OtherPatientId => "o.other_id",
            OtherPatientIssuer => "o.other_issuer",
        }
    }

    fn is_integer(self) -> bool {
        matches!(self, Field::SeriesNumber | Field::InstanceNumber)
    }
}

/// How a field must match. Text comparisons are exact (binary); callers fold names first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Equals(String),
    /// Any of these values (a list of UIDs, or a multi-valued key).
    AnyOf(Vec<String>),
    /// DICOM wildcards: `*` any run of characters, `?` exactly one.
    Wildcard(String),
    /// Inclusive bounds compared as text (dates and times in DICOM form sort as text).
    Range {
        from: Option<String>,
        to: Option<String>,
    },
    /// Sequence matching: one item must satisfy every filter (PS3.4 C.2.2.2.6).
    Item(Vec<Filter>),
    /// The identifier `id`, or the patient each (clinic, id) pair names in that clinic only:
    /// the survivors a clinic merged `id` into.
    Merged {
        id: String,
        survivors: Vec<(String, String)>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: Field,
    pub condition: Condition,
}

#[derive(Debug, Clone)]
pub struct Search {
    pub level: Level,
    pub filters: Vec<Filter>,
    pub scope: Scope,
    pub limit: Option<i64>,
    pub offset: i64,
}

/// One matching row: every attribute of its level and the levels above it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hit {
    pub patient_name: String,
    pub patient_id: String,
    pub patient_issuer: String,
    pub birth_date: String,
    pub sex: String,
    /// Patient level only: related studies, series and instances within the scope.
    pub patient_studies: i64,
    pub patient_series: i64,
    pub patient_instances: i64,
    pub study_uid: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub study_id: String,
    pub study_description: String,
    pub referring_physician: String,
    pub modalities: String,
    pub study_series: i64,
    pub study_instances: i64,
    pub clinic_id: String,
    pub series_uid: String,
    pub modality: String,
    pub series_number: Option<i64>,
    pub series_description: String,
    pub series_instances: i64,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    pub instance_number: Option<i64>,
    pub number_of_frames: Option<i64>,
    pub transfer_syntax: String,
    pub object_key: String,
    pub size_bytes: i64,
    /// `id^^^issuer` items joined by `\\` (see [`super::other_ids`]).
    pub other_patient_ids: String,
    pub accession_issuer: String,
}

const PATIENT_COLUMNS: &str = "p.name, p.patient_id, p.issuer, p.birth_date, p.sex";
const STUDY_COLUMNS: &str = "s.study_uid, s.study_date, s.study_time, s.accession_number,
    s.study_id, s.description, s.referring_physician, s.modalities, s.num_series,
    s.num_instances, s.clinic_id";
const SERIES_COLUMNS: &str =
    "r.series_uid, r.modality, r.series_number, r.description, r.num_instances";
const SEQUENCE_COLUMNS_PATIENT: &str = "p.other_ids AS seq_other_ids";
const SEQUENCE_COLUMNS: &str =
    "p.other_ids AS seq_other_ids, s.accession_issuer AS seq_accession_issuer";
const INSTANCE_COLUMNS: &str = "i.sop_instance_uid, i.sop_class_uid, i.instance_number,
    i.number_of_frames, i.transfer_syntax, i.object_key, i.size_bytes";

/// SQL text with its arguments, built together so placeholders and binds cannot drift apart.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

enum Arg {
    Text(String),
    Int(i64),
}

impl Sql {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

impl Search {
    fn sql(&self) -> Sql {
        let mut sql = Sql {
            text: String::new(),
            args: Vec::new(),
        };
        let mut conditions = Vec::new();
        for filter in &self.filters {
            if let Some(c) = condition_sql(&mut sql, filter) {
                conditions.push(c);
            }
        }
        if let Some(c) = scope_sql(&mut sql, &self.scope) {
            conditions.push(c);
        }
        if self.level >= Level::Instance {
            conditions.push("i.shadowed = 0".into());
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let patient_join =
            "JOIN patients p ON p.clinic_id = s.clinic_id AND p.patient_id = s.patient_id
               AND p.issuer = s.issuer";
        // Sequence values come last and are read by name, so positions above stay put.
        let head = match self.level {
            Level::Patient => format!(
                "SELECT {PATIENT_COLUMNS}, COUNT(s.study_uid), CAST(SUM(s.num_series) AS BIGINT),
                   CAST(SUM(s.num_instances) AS BIGINT), {SEQUENCE_COLUMNS_PATIENT}
                 FROM studies s {patient_join}"
            ),
            Level::Study => format!(
                "SELECT {PATIENT_COLUMNS}, {STUDY_COLUMNS}, {SEQUENCE_COLUMNS}
                 FROM studies s {patient_join}"
            ),
            Level::Series => format!(
                "SELECT {PATIENT_COLUMNS}, {STUDY_COLUMNS}, {SERIES_COLUMNS}, {SEQUENCE_COLUMNS}
                 FROM series r JOIN studies s ON s.study_uid = r.study_uid {patient_join}"
            ),
            Level::Instance => format!(
                "SELECT {PATIENT_COLUMNS}, {STUDY_COLUMNS}, {SERIES_COLUMNS}, {INSTANCE_COLUMNS},
                   {SEQUENCE_COLUMNS}
                 FROM instances i JOIN series r ON r.series_uid = i.series_uid
                 JOIN studies s ON s.study_uid = i.study_uid {patient_join}"
            ),
        };
        let tail = match self.level {
            Level::Patient => {
                // One clinic's record is one patient: two clinics' records of one identifier
                // are two patients, each with its own clinic's demographics.
                " GROUP BY p.clinic_id, p.patient_id, p.issuer, p.name, p.birth_date, p.sex,
                    p.other_ids
                  ORDER BY p.patient_id, p.issuer, p.clinic_id"
            }
            Level::Study => " ORDER BY s.study_date DESC, s.study_time DESC, s.study_uid",
            Level::Series => " ORDER BY s.study_uid, r.series_number, r.series_uid",
            Level::Instance => {
                " ORDER BY s.study_uid, r.series_number, r.series_uid, i.instance_number,
                  i.sop_instance_uid"
            }
        };
        let mut text = format!("{head}{where_clause}{tail}");
        if let Some(limit) = self.limit {
            let limit = sql.arg(Arg::Int(limit));
            let offset = sql.arg(Arg::Int(self.offset));
            text.push_str(&format!(" LIMIT {limit} OFFSET {offset}"));
        } else if self.offset > 0 {
            // LIMIT -1 is SQLite's "no limit"; PostgreSQL takes LIMIT ALL. Both take a huge one.
            let offset = sql.arg(Arg::Int(self.offset));
            text.push_str(&format!(" LIMIT 9223372036854775807 OFFSET {offset}"));
        }
        sql.text = text;
        sql
    }
}

fn scope_sql(sql: &mut Sql, scope: &Scope) -> Option<String> {
    match scope {
        Scope::Everything => None,
        Scope::Clinics(clinics) if clinics.is_empty() => Some("1 = 0".into()),
        Scope::Clinics(clinics) => {
            let list: Vec<String> = clinics
                .iter()
                .map(|c| sql.arg(Arg::Text(c.clone())))
                .collect();
            Some(format!("s.clinic_id IN ({})", list.join(", ")))
        }
    }
}

fn condition_sql(sql: &mut Sql, filter: &Filter) -> Option<String> {
    if let Condition::Item(inner) = &filter.condition {
        let tests: Vec<String> = inner.iter().filter_map(|f| condition_sql(sql, f)).collect();
        let table = match filter.field {
            Field::OtherPatientIds => "patient_other_ids o",
            // Only Other Patient IDs is kept item by item.
            _ => return Some("1 = 0".into()),
        };
        let mut test =
            "o.clinic_id = p.clinic_id AND o.patient_id = p.patient_id AND o.issuer = p.issuer"
                .to_owned();
        for t in tests {
            test.push_str(" AND ");
            test.push_str(&t);
        }
        return Some(format!("EXISTS (SELECT 1 FROM {table} WHERE {test})"));
    }
    let column = filter.field.column();
    let value = |sql: &mut Sql, v: &str| -> Option<String> {
        if filter.field.is_integer() {
            // A key that is not a number matches nothing rather than failing the query.
            Some(match v.trim().parse::<i64>() {
                Ok(n) => sql.arg(Arg::Int(n)),
                Err(_) => return None,
            })
        } else {
            Some(sql.arg(Arg::Text(v.to_owned())))
        }
    };
    let test = match &filter.condition {
        Condition::Equals(v) => match value(sql, v) {
            Some(p) => format!("{column} = {p}"),
            None => "1 = 0".into(),
        },
        Condition::AnyOf(values) => {
            let list: Vec<String> = values.iter().filter_map(|v| value(sql, v)).collect();
            if list.is_empty() {
                "1 = 0".into()
            } else {
                format!("{column} IN ({})", list.join(", "))
            }
        }
        Condition::Wildcard(pattern) => {
            if pattern.chars().all(|c| c == '*') {
                return None;
            }
            let p = sql.arg(Arg::Text(like_pattern(pattern)));
            if filter.field.is_integer() {
                format!("CAST({column} AS TEXT) LIKE {p} ESCAPE '!'")
            } else {
                format!("{column} LIKE {p} ESCAPE '!'")
            }
        }
        Condition::Range { from, to } => {
            let mut parts = Vec::new();
            if let Some(from) = from {
                parts.push(format!("{column} >= {}", sql.arg(Arg::Text(from.clone()))));
            }
            if let Some(to) = to {
                parts.push(format!("{column} <= {}", sql.arg(Arg::Text(to.clone()))));
            }
            // An absent value never falls in a range.
            parts.push(format!("{column} <> ''"));
            parts.join(" AND ")
        }
        Condition::Item(_) => return Some("1 = 0".into()),
        Condition::Merged { id, survivors } => {
            let mut any = vec![format!("{column} = {}", sql.arg(Arg::Text(id.clone())))];
            for (clinic, survivor) in survivors {
                let clinic = sql.arg(Arg::Text(clinic.clone()));
                let survivor = sql.arg(Arg::Text(survivor.clone()));
                any.push(format!(
                    "(s.clinic_id = {clinic} AND {column} = {survivor})"
                ));
            }
            format!("({})", any.join(" OR "))
        }
    };
    if filter.field == Field::ModalitiesInStudy {
        return Some(format!(
            "EXISTS (SELECT 1 FROM series m WHERE m.study_uid = s.study_uid AND {test})"
        ));
    }
    Some(test)
}

/// DICOM wildcards as a LIKE pattern with `!` as the escape character.
fn like_pattern(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '!' => {
                out.push('!');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn hit(level: Level, row: &AnyRow) -> Result<Hit, sqlx::Error> {
    let mut h = Hit {
        patient_name: row.try_get(0)?,
        patient_id: row.try_get(1)?,
        patient_issuer: row.try_get(2)?,
        birth_date: row.try_get(3)?,
        sex: row.try_get(4)?,
        ..Hit::default()
    };
    h.other_patient_ids = row.try_get("seq_other_ids")?;
    if level == Level::Patient {
        h.patient_studies = row.try_get(5)?;
        h.patient_series = row.try_get::<Option<i64>, _>(6)?.unwrap_or(0);
        h.patient_instances = row.try_get::<Option<i64>, _>(7)?.unwrap_or(0);
        return Ok(h);
    }
    h.study_uid = row.try_get(5)?;
    h.study_date = row.try_get(6)?;
    h.study_time = row.try_get(7)?;
    h.accession_number = row.try_get(8)?;
    h.study_id = row.try_get(9)?;
    h.study_description = row.try_get(10)?;
    h.referring_physician = row.try_get(11)?;
    h.modalities = row.try_get(12)?;
    h.study_series = row.try_get(13)?;
    h.study_instances = row.try_get(14)?;
    h.clinic_id = row.try_get(15)?;
    h.accession_issuer = row.try_get("seq_accession_issuer")?;
    if level == Level::Study {
        return Ok(h);
    }
    h.series_uid = row.try_get(16)?;
    h.modality = row.try_get(17)?;
    h.series_number = row.try_get(18)?;
    h.series_description = row.try_get(19)?;
    h.series_instances = row.try_get(20)?;
    if level == Level::Series {
        return Ok(h);
    }
    h.sop_instance_uid = row.try_get(21)?;
    h.sop_class_uid = row.try_get(22)?;
    h.instance_number = row.try_get(23)?;
    h.number_of_frames = row.try_get(24)?;
    h.transfer_syntax = row.try_get(25)?;
    h.object_key = row.try_get(26)?;
    h.size_bytes = row.try_get(27)?;
    Ok(h)
}

impl Index {
    /// Streams the rows matching `search`, in a stable order.
    pub fn search(&self, search: &Search) -> BoxStream<'static, Result<Hit, IndexError>> {
        let Sql { text, args } = search.sql();
        let level = search.level;
        let pool = self.pool.clone();
        let stream = async_stream(pool, text, args, level);
        Box::pin(stream)
    }
}

/// Runs the query on a connection the stream owns, so the stream can outlive its caller's
/// borrow of the index (DIMSE sends each row while the next is fetched).
fn async_stream(
    pool: sqlx::AnyPool,
    text: String,
    args: Vec<Arg>,
    level: Level,
) -> impl futures::Stream<Item = Result<Hit, IndexError>> + Send + 'static {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Hit, IndexError>>(64);
    tokio::spawn(async move {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(text));
        for arg in args {
            query = match arg {
                Arg::Text(t) => query.bind(t),
                Arg::Int(n) => query.bind(n),
            };
        }
        let mut rows = query.fetch(&pool);
        while let Some(row) = rows.next().await {
            let item = row
                .and_then(|r| hit(level, &r))
                .map_err(IndexError::query("search"));
            let failed = item.is_err();
            // The receiver went away (cancelled or finished early): stop reading.
            if tx.send(item).await.is_err() || failed {
                return;
            }
        }
    });
    tokio_stream_from(rx)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_become_escaped_like_patterns() {
        assert_eq!(like_pattern("zuk*"), "zuk%");
        assert_eq!(like_pattern("a?c"), "a_c");
        assert_eq!(like_pattern("50%_!*"), "50!%!_!!%");
    }

    #[test]
    fn every_search_is_scoped() {
        let search = Search {
            level: Level::Study,
            filters: vec![Filter {
                field: Field::PatientId,
                condition: Condition::Equals("123".into()),
            }],
            scope: Scope::Clinics(vec!["a".into(), "b".into()]),
            limit: Some(10),
            offset: 5,
        };
        let sql = search.sql();
        assert!(sql.text.contains("p.patient_id = $1"), "{}", sql.text);
        assert!(sql.text.contains("s.clinic_id IN ($2, $3)"), "{}", sql.text);
        assert!(sql.text.contains("LIMIT $4 OFFSET $5"), "{}", sql.text);
        let nothing = Search {
            scope: Scope::Clinics(vec![]),
            ..search
        };
        assert!(nothing.sql().text.contains("1 = 0"));
    }

    #[test]
    fn integer_keys_that_are_not_numbers_match_nothing() {
        let search = Search {
            level: Level::Series,
            filters: vec![Filter {
                field: Field::SeriesNumber,
                condition: Condition::Equals("x".into()),
            }],
            scope: Scope::Everything,
            limit: None,
            offset: 0,
        };
        let sql = search.sql();
        assert!(sql.text.contains("1 = 0"), "{}", sql.text);
        assert!(sql.args.is_empty());
    }
}
