//! Retention dates: calendar days in Vilnius, where the order's 15 years are counted.

use jiff::civil::Date;
use jiff::tz::TimeZone;

fn vilnius() -> TimeZone {
    TimeZone::get("Europe/Vilnius").unwrap_or(TimeZone::UTC)
}

/// The day (Vilnius) an index time falls on.
fn day_of(micros: i64) -> Date {
    jiff::Timestamp::from_microsecond(micros)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(vilnius())
        .date()
}

/// Today in Vilnius.
pub fn today() -> Date {
    jiff::Timestamp::now().to_zoned_datetime(vilnius()).date()
}

/// The last day something received at `received_micros` is kept: the day of receipt plus
/// `years`. A receipt on 29 February is kept to 1 March of a common year, never to
/// 28 February: rounding goes the safe way.
pub fn retain_until(received_micros: i64, years: u32) -> Date {
    let received = day_of(received_micros);
    let Ok(later) = received.checked_add(jiff::Span::new().years(i64::from(years))) else {
        return Date::MAX;
    };
    if later.day() != received.day() {
        later.tomorrow().unwrap_or(Date::MAX)
    } else {
        later
    }
}

/// The first day after `day` (`YYYY-MM-DD`), when deletion becomes possible.
pub fn day_after(day: &str) -> String {
    day.parse::<Date>()
        .ok()
        .and_then(|d| d.tomorrow().ok())
        .map(|d| d.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(day: &str, hour: i8) -> i64 {
        let date: Date = day.parse().unwrap();
        date.at(hour, 0, 0, 0)
            .to_zoned_datetime(vilnius())
            .unwrap()
            .timestamp()
            .as_microsecond()
    }

    #[test]
    fn fifteen_years_from_the_day_received_in_vilnius() {
        assert_eq!(
            retain_until(micros("2026-12-03", 12), 15).to_string(),
            "2041-12-03"
        );
        // 00:30 in Vilnius is still the previous day in UTC: the Vilnius day counts.
        assert_eq!(
            retain_until(micros("2026-01-01", 0) + 30 * 60_000_000, 15).to_string(),
            "2041-01-01"
        );
    }

    #[test]
    fn a_leap_day_rounds_later_not_earlier() {
        assert_eq!(
            retain_until(micros("2028-02-29", 10), 15).to_string(),
            "2043-03-01"
        );
        assert_eq!(
            retain_until(micros("2028-02-29", 10), 4).to_string(),
            "2032-02-29"
        );
    }

    #[test]
    fn the_day_after() {
        assert_eq!(day_after("2041-12-31"), "2042-01-01");
        assert_eq!(day_after("not a day"), "");
    }
}
