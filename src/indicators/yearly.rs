//! Reports kept as generated: a period's report frozen in the object store (the JSON report and
//! its FHIR Bundle, under their SHA-256), one immutable version after another. Computing a
//! period again makes a new version only when a value changed, and the version says what did.
//! Last year's report is frozen in January and delivered to the quality platform through the
//! delivery queue, and again whenever someone asks.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::watch;

use super::export::{render, Format};
use super::period::{day_of, Period};
use super::report::Indicators;
use super::IndicatorError;
use crate::archive::{keys, ObjectKey};
use crate::index::{now_micros, DeliveryRow, IndicatorReportRow};

/// A freeze: the version that stands, and whether this freeze made it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Frozen {
    pub report: IndicatorReportRow,
    pub created: bool,
}

/// Changes listed in a version, at most; the rest are counted.
const MAX_CHANGES: usize = 200;

impl Indicators {
    /// Freezes the report of `period` as it computes now: a new version when it differs from
    /// the latest one (or there is none), else the latest one.
    pub async fn freeze(&self, period: &Period, by: &str) -> Result<Frozen, IndicatorError> {
        let report = self.report(period).await?;
        let content = render(self, &report, Format::Json, true);
        let latest = self
            .index()
            .indicator_reports(Some(&period.name))
            .await?
            .into_iter()
            .next();
        let changes = match &latest {
            None => String::new(),
            Some(previous) => {
                let before = self.frozen_content(previous).await?;
                let after: Json = serde_json::from_str(&content).unwrap_or_default();
                let changes = differences(&before, &after);
                if changes.is_empty() {
                    return Ok(Frozen {
                        report: previous.clone(),
                        created: false,
                    });
                }
                changes.join("\n")
            }
        };
        let bundle = render(self, &report, Format::Fhir, false);
        let archive = self.archive()?;
        let (content_key, content_sha256) = archive
            .keep(content.as_bytes(), keys::indicator_report)
            .await
            .map_err(|e| IndicatorError::Store(e.to_string()))?;
        let (bundle_key, bundle_sha256) = archive
            .keep(bundle.as_bytes(), keys::indicator_report)
            .await
            .map_err(|e| IndicatorError::Store(e.to_string()))?;
        let row = IndicatorReportRow {
            id: uuid::Uuid::now_v7().to_string(),
            period: period.name.clone(),
            version: latest.as_ref().map_or(1, |l| l.version + 1),
            generated_at: now_micros(),
            generated_by: by.to_owned(),
            definitions_version: self.version().to_owned(),
            content_key,
            content_sha256,
            bundle_key,
            bundle_sha256,
            changes,
        };
        if !self.index().insert_indicator_report(&row).await? {
            return Err(IndicatorError::Conflict(format!(
                "version {} of {} was frozen at the same moment elsewhere; ask again",
                row.version, period.name
            )));
        }
        tracing::info!(period = %row.period, version = row.version, by, "indicator report frozen");
        Ok(Frozen {
            report: row,
            created: true,
        })
    }

    /// The frozen JSON report of a version, as stored.
    pub async fn frozen_content(&self, row: &IndicatorReportRow) -> Result<Json, IndicatorError> {
        let bytes = self.frozen(&row.content_key).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| IndicatorError::Store(format!("{}: {e}", row.content_key)))
    }

    /// A frozen object (report or bundle) by key.
    pub async fn frozen(&self, key: &str) -> Result<bytes::Bytes, IndicatorError> {
        self.archive()?
            .read(&ObjectKey::from(key))
            .await
            .map_err(|e| IndicatorError::Store(format!("{key}: {e}")))
    }

    /// Queues delivery of a frozen version to the platform.
    pub async fn deliver(&self, report_id: &str, by: &str) -> Result<DeliveryRow, IndicatorError> {
        let url = self.config().indicators.platform.url.clone();
        if url.is_empty() {
            return Err(IndicatorError::Conflict(
                "no quality platform is configured (indicators.platform.url)".into(),
            ));
        }
        let Some(report) = self.index().indicator_report(report_id).await? else {
            return Err(IndicatorError::NotFound(format!(
                "no indicator report {report_id}"
            )));
        };
        let row = self
            .index()
            .queue_platform_delivery(&report.id, &url, by)
            .await?;
        self.wake_deliveries();
        tracing::info!(period = %report.period, version = report.version, delivery = %row.id, "indicator report queued for the quality platform");
        Ok(row)
    }

    /// The yearly calendar: from the configured day of January on, last year's report is
    /// frozen (once) and delivered, if nothing was delivered for that year yet. Looked at
    /// hourly; the index says what was done, so a restart or a second node does nothing twice.
    pub async fn run_yearly(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(e) = self.yearly_due(now_micros()).await {
                tracing::warn!(error = %e, "yearly indicator report not done yet; tried again in an hour");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
                _ = shutdown.changed() => {}
            }
            if *shutdown.borrow() {
                break;
            }
        }
    }

    /// Freezes and delivers last year's report when it is due and not done.
    pub async fn yearly_due(&self, now: i64) -> Result<(), IndicatorError> {
        let platform = &self.config().indicators.platform;
        if platform.url.is_empty() {
            return Ok(());
        }
        let Some(year) = due_year(day_of(now), platform.freeze_day) else {
            return Ok(());
        };
        let year = year.to_string();
        let versions = self.index().indicator_reports(Some(&year)).await?;
        for v in &versions {
            if !self.index().platform_deliveries(&v.id).await?.is_empty() {
                return Ok(());
            }
        }
        let period = Period::parse(&year)?;
        let frozen = match versions.first() {
            Some(latest) => latest.clone(),
            None => self.freeze(&period, "telecardio").await?.report,
        };
        self.deliver(&frozen.id, "telecardio").await?;
        Ok(())
    }
}

/// The year whose report is due on `today` (Vilnius): last year, from `freeze_day` of January
/// until the platform's deadline of 28 February; none otherwise, or when `freeze_day` is 0.
pub fn due_year(today: jiff::civil::Date, freeze_day: u8) -> Option<i16> {
    let from = i8::try_from(freeze_day).ok().filter(|d| *d > 0)?;
    let open = match today.month() {
        1 => today.day() >= from,
        2 => today.day() <= 28,
        _ => false,
    };
    open.then(|| today.year() - 1)
}

/// What differs between two frozen reports, one line a change: the values per indicator and
/// stratum, and the exceptions.
pub fn differences(before: &Json, after: &Json) -> Vec<String> {
    let values = |report: &Json| -> BTreeMap<String, Json> {
        report["values"]
            .as_array()
            .map(|all| {
                all.iter()
                    .map(|v| {
                        let stratum = match v["stratum"]["value"].as_str() {
                            Some(value) => {
                                format!("{} {value}", v["stratum"]["by"].as_str().unwrap_or(""))
                            }
                            None => v["stratum"]["by"].as_str().unwrap_or("").to_owned(),
                        };
                        (
                            format!("{} {stratum}", v["code"].as_str().unwrap_or("")),
                            v.clone(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (old, new) = (values(before), values(after));
    let mut out = Vec::new();
    for (key, v) in &new {
        match old.get(key) {
            None => out.push(format!("{key}: new")),
            Some(o) => {
                let fields = [
                    "b",
                    "p",
                    "score_pct",
                    "median_min",
                    "p90_min",
                    "excluded",
                    "persons_b",
                    "persons_p",
                    "target",
                    "target_met",
                ];
                let changed: Vec<String> = fields
                    .iter()
                    .filter(|f| o[**f] != v[**f])
                    .map(|f| format!("{f} {} → {}", o[*f], v[*f]))
                    .collect();
                if !changed.is_empty() {
                    out.push(format!("{key}: {}", changed.join(", ")));
                }
            }
        }
    }
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        out.push(format!("{key}: gone"));
    }
    if before["exceptions"] != after["exceptions"] {
        out.push(format!(
            "exceptions: {} → {}",
            before["exceptions"].as_array().map_or(0, Vec::len),
            after["exceptions"].as_array().map_or(0, Vec::len)
        ));
    }
    if out.len() > MAX_CHANGES {
        let more = out.len() - MAX_CHANGES;
        out.truncate(MAX_CHANGES);
        out.push(format!("… and {more} more"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(text: &str) -> jiff::civil::Date {
        text.parse().unwrap()
    }

    #[test]
    fn last_year_is_due_from_the_freeze_day_until_the_deadline() {
        assert_eq!(due_year(day("2027-01-14"), 15), None);
        assert_eq!(due_year(day("2027-01-15"), 15), Some(2026));
        assert_eq!(due_year(day("2027-02-28"), 15), Some(2026));
        // A leap year's 29 February is past the platform's deadline.
        assert_eq!(due_year(day("2028-02-29"), 15), None);
        assert_eq!(due_year(day("2027-03-01"), 15), None);
        assert_eq!(due_year(day("2027-12-31"), 15), None);
        assert_eq!(due_year(day("2027-01-20"), 0), None, "only on demand");
    }

    #[test]
    fn differences_name_each_changed_value() {
        let value = |b: u64, p: u64| json!({"code": "TC-02", "stratum": {"by": "clinic", "value": "a"}, "b": b, "p": p});
        let before = json!({"values": [value(10, 9)], "exceptions": []});
        assert!(differences(&before, &before).is_empty());
        let after = json!({"values": [value(10, 10), {"code": "TC-02", "stratum": {"by": "total"}, "b": 1}],
                           "exceptions": [{"case_id": "x"}]});
        let changes = differences(&before, &after);
        assert_eq!(
            changes,
            [
                "TC-02 clinic a: p 9 → 10",
                "TC-02 total: new",
                "exceptions: 0 → 1"
            ]
        );
    }
}
