//! Business days in Lithuania, for contract targets such as "by the end of the next business
//! day": Monday to Friday, except the public holidays of the Labour Code (art. 123), Easter
//! Monday included and All Souls' Day (2 November) from 2020, when it became one.

use jiff::civil::{Date, Weekday};

/// Western (Gregorian) Easter Sunday of `year` (the anonymous Gregorian algorithm).
pub fn easter(year: i16) -> Option<Date> {
    let y = i32::from(year);
    let a = y % 19;
    let b = y / 100;
    let c = y % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    Date::new(year, i8::try_from(month).ok()?, i8::try_from(day).ok()?).ok()
}

/// Whether `day` is a public holiday in Lithuania.
pub fn holiday(day: Date) -> bool {
    let fixed = [
        (1, 1),   // New Year
        (2, 16),  // Restoration of the State
        (3, 11),  // Restoration of Independence
        (5, 1),   // Labour Day
        (6, 24),  // Midsummer (Joninės)
        (7, 6),   // Statehood Day
        (8, 15),  // Assumption
        (11, 1),  // All Saints
        (12, 24), // Christmas Eve
        (12, 25),
        (12, 26),
    ];
    if fixed.contains(&(day.month(), day.day())) {
        return true;
    }
    if (day.month(), day.day()) == (11, 2) && day.year() >= 2020 {
        return true;
    }
    // Easter Sunday and Monday (the first Sundays of May and June are Sundays anyway).
    easter(day.year())
        .is_some_and(|sunday| day == sunday || sunday.tomorrow().is_ok_and(|monday| day == monday))
}

pub fn business_day(day: Date) -> bool {
    !matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday) && !holiday(day)
}

/// The `n`-th business day after `day` (`n` = 0: `day` itself if it is one, else the next).
pub fn business_days_after(day: Date, n: u32) -> Date {
    let mut current = day;
    let mut left = n;
    if n == 0 {
        while !business_day(current) {
            match current.tomorrow() {
                Ok(next) => current = next,
                Err(_) => return current,
            }
        }
        return current;
    }
    while left > 0 {
        match current.tomorrow() {
            Ok(next) => current = next,
            Err(_) => return current,
        }
        if business_day(current) {
            left -= 1;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[test]
    fn easter_sundays() {
        for (year, sunday) in [
            (2024, "2024-03-31"),
            (2025, "2025-04-20"),
            (2026, "2026-04-05"),
            (2027, "2027-03-28"),
            (2038, "2038-04-25"),
        ] {
            assert_eq!(easter(year), Some(d(sunday)), "{year}");
        }
    }

    #[test]
    fn holidays_and_business_days() {
        assert!(holiday(d("2026-02-16")));
        assert!(holiday(d("2026-04-06")), "Easter Monday");
        assert!(holiday(d("2026-11-02")));
        assert!(!holiday(d("2019-11-02")));
        assert!(!business_day(d("2026-12-24")));
        assert!(business_day(d("2026-12-23")));
        assert!(!business_day(d("2026-11-28")), "a Saturday");
        // Wednesday 23 December: the next business day is Monday 28th.
        assert_eq!(business_days_after(d("2026-12-23"), 1), d("2026-12-28"));
        // Thursday before Easter: Friday, then Tuesday after Easter Monday.
        assert_eq!(business_days_after(d("2026-04-02"), 2), d("2026-04-07"));
        assert_eq!(business_days_after(d("2026-11-28"), 0), d("2026-11-30"));
        assert_eq!(business_days_after(d("2026-11-30"), 0), d("2026-11-30"));
        assert_eq!(business_days_after(d("2026-11-27"), 3), d("2026-12-02"));
    }
}
