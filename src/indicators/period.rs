//! Reporting periods: a calendar year, quarter or month, or any range of days, cut at midnight
//! in Vilnius (where the platform's calendar years begin), as the UTC instants the clocks are
//! stored in.

use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::IndicatorError;

/// Vilnius time, read once from the bundled database (a lookup per clock is not free).
pub fn vilnius() -> TimeZone {
    static ZONE: std::sync::LazyLock<TimeZone> =
        std::sync::LazyLock::new(|| TimeZone::get("Europe/Vilnius").unwrap_or(TimeZone::UTC));
    ZONE.clone()
}

/// A period: its name as asked (`2026`, `2026-Q3`, `2026-11`, `2026-03-01..2026-04-30`), its
/// first and last day, and the instants it spans in microseconds since the epoch (`start`
/// inclusive, `end` exclusive).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Period {
    pub name: String,
    #[serde(serialize_with = "as_text")]
    pub first_day: Date,
    #[serde(serialize_with = "as_text")]
    pub last_day: Date,
    pub start: i64,
    pub end: i64,
}

impl Period {
    /// The period from its first to its last day (both included).
    pub fn days(name: String, first_day: Date, last_day: Date) -> Result<Period, IndicatorError> {
        if last_day < first_day {
            return Err(IndicatorError::Period(format!(
                "{name}: the last day {last_day} is before the first {first_day}"
            )));
        }
        let after = last_day
            .tomorrow()
            .map_err(|e| IndicatorError::Period(format!("{name}: {e}")))?;
        Ok(Period {
            start: midnight(first_day)?,
            end: midnight(after)?,
            name,
            first_day,
            last_day,
        })
    }

    /// `2026` (a year), `2026-Q3` (a quarter) or `2026-11` (a month).
    pub fn parse(text: &str) -> Result<Period, IndicatorError> {
        let bad = || {
            IndicatorError::Period(format!(
                "`{text}` is not a period: give a year (2026), a quarter (2026-Q3) or a month \
                 (2026-11)"
            ))
        };
        let (year, rest) = match text.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (text, None),
        };
        let year: i16 = year
            .parse()
            .ok()
            .filter(|y| (1900..=9998).contains(y))
            .ok_or_else(bad)?;
        let (first_month, months) = match rest {
            None => (1, 12),
            Some(q) if q.starts_with('Q') => {
                let q: i8 = q[1..]
                    .parse()
                    .ok()
                    .filter(|q| (1..=4).contains(q))
                    .ok_or_else(bad)?;
                ((q - 1) * 3 + 1, 3)
            }
            Some(m) if m.len() == 2 => {
                let m: i8 = m
                    .parse()
                    .ok()
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(bad)?;
                (m, 1)
            }
            Some(_) => return Err(bad()),
        };
        let first = Date::new(year, first_month, 1).map_err(|_| bad())?;
        let last = first
            .checked_add(jiff::Span::new().months(months))
            .and_then(|d| d.yesterday())
            .map_err(|_| bad())?;
        Period::days(text.to_owned(), first, last)
    }

    /// Any range of days, `from` and `to` as `YYYY-MM-DD` (both included).
    pub fn range(from: &str, to: &str) -> Result<Period, IndicatorError> {
        let day = |text: &str| {
            text.parse::<Date>()
                .map_err(|_| IndicatorError::Period(format!("`{text}` is not a day (YYYY-MM-DD)")))
        };
        Period::days(format!("{from}..{to}"), day(from)?, day(to)?)
    }

    /// The calendar year the period starts in: persons are counted once per calendar year.
    pub fn year(&self) -> i16 {
        self.first_day.year()
    }

    pub fn contains(&self, micros: i64) -> bool {
        (self.start..self.end).contains(&micros)
    }

    /// The months of the period, in order (for a dashboard's series).
    pub fn months(&self) -> Vec<Period> {
        let mut out = Vec::new();
        let mut first = self.first_day.first_of_month();
        while first <= self.last_day {
            let name = format!("{:04}-{:02}", first.year(), first.month());
            if let Ok(p) = Period::parse(&name) {
                out.push(p);
            }
            match first.checked_add(jiff::Span::new().months(1)) {
                Ok(next) => first = next,
                Err(_) => break,
            }
        }
        out
    }
}

fn as_text<S: serde::Serializer>(day: &Date, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(day)
}

/// Midnight at the start of `day` in Vilnius, as microseconds since the epoch.
fn midnight(day: Date) -> Result<i64, IndicatorError> {
    day.to_zoned_datetime(vilnius())
        .map(|z| z.timestamp().as_microsecond())
        .map_err(|e| IndicatorError::Period(format!("{day}: {e}")))
}

/// The day (in Vilnius) an instant falls on.
pub fn day_of(micros: i64) -> Date {
    jiff::Timestamp::from_microsecond(micros)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(vilnius())
        .date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    #[test]
    fn periods_are_cut_at_midnight_in_vilnius() {
        let year = Period::parse("2026").unwrap();
        // Winter: UTC+2.
        assert_eq!(year.start, utc("2025-12-31T22:00:00Z"));
        assert_eq!(year.end, utc("2026-12-31T22:00:00Z"));
        let q3 = Period::parse("2026-Q3").unwrap();
        // Summer: UTC+3.
        assert_eq!(q3.start, utc("2026-06-30T21:00:00Z"));
        assert_eq!(q3.end, utc("2026-09-30T21:00:00Z"));
        let march = Period::parse("2026-03").unwrap();
        assert_eq!(march.start, utc("2026-02-28T22:00:00Z"));
        // The clocks go forward on 29 March: the month ends at UTC+3.
        assert_eq!(march.end, utc("2026-03-31T21:00:00Z"));
        assert_eq!(march.last_day.to_string(), "2026-03-31");
        let february = Period::parse("2028-02").unwrap();
        assert_eq!(february.last_day.to_string(), "2028-02-29");
        let range = Period::range("2026-10-24", "2026-10-25").unwrap();
        // 25 October has 25 hours.
        assert_eq!(range.end - range.start, 49 * 3_600_000_000);
        assert!(year.contains(utc("2025-12-31T22:00:00Z")));
        assert!(!year.contains(utc("2025-12-31T21:59:59Z")));
        assert_eq!(year.months().len(), 12);
        assert_eq!(q3.months()[2].name, "2026-09");
        assert_eq!(
            day_of(utc("2026-12-31T22:30:00Z")).to_string(),
            "2027-01-01"
        );
    }

    #[test]
    fn bad_periods_say_what_is_expected() {
        for bad in [
            "",
            "26",
            "2026-Q5",
            "2026-13",
            "2026-1",
            "2026-Q",
            "x",
            "2026-11-01",
        ] {
            let e = Period::parse(bad).unwrap_err().to_string();
            assert!(e.contains("not a period"), "{bad}: {e}");
        }
        assert!(Period::range("2026-02-30", "2026-03-01").is_err());
        let e = Period::range("2026-03-02", "2026-03-01")
            .unwrap_err()
            .to_string();
        assert!(e.contains("before"), "{e}");
    }
}
