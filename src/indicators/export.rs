//! A report in the format asked for: JSON (the report as computed), CSV (the platform's
//! exchange columns) or FHIR R4 (a Bundle of Measures and MeasureReports).

use super::report::{Indicators, Report};
use super::{csv, fhir, IndicatorError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Fhir,
    /// CSV of the examinations read per centre, clinic and kind, with their cases.
    Settlement,
}

impl Format {
    pub fn parse(text: &str) -> Result<Format, IndicatorError> {
        match text {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "fhir" => Ok(Format::Fhir),
            "settlement" => Ok(Format::Settlement),
            other => Err(IndicatorError::Format(format!(
                "`{other}` is not offered: json, csv, fhir or settlement"
            ))),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv | Format::Settlement => "text/csv; charset=utf-8",
            Format::Fhir => "application/fhir+json",
        }
    }
}

/// The report as text. The persons' keys (what institutions pool) are in JSON only when
/// asked for: a year has as many as it has persons.
pub fn render(
    indicators: &Indicators,
    report: &Report,
    format: Format,
    person_keys: bool,
) -> String {
    match format {
        Format::Json => {
            let mut value = serde_json::to_value(report).unwrap_or_default();
            if !person_keys {
                strip_person_keys(&mut value);
            }
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        Format::Csv => csv::render(report),
        Format::Settlement => csv::settlement(report),
        Format::Fhir => serde_json::to_string_pretty(&fhir::bundle(
            report,
            &indicators.institutions(),
            indicators.version(),
        ))
        .unwrap_or_default(),
    }
}

fn strip_person_keys(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("person_keys");
            map.values_mut().for_each(strip_person_keys);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_person_keys),
        _ => {}
    }
}
