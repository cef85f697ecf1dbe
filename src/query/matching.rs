//! Turning one key's matching value into an index condition (PS3.4 C.2.2.2): universal,
//! single value, list of UIDs, wildcard and range matching.

use crate::index::Condition;
use crate::ingest::meta::search_form;

use super::attributes::Matching;
use super::QueryError;

/// The condition for `value` under `matching`, or `None` for universal matching.
pub fn condition(
    keyword: &str,
    matching: Matching,
    value: &str,
) -> Result<Option<Condition>, QueryError> {
    let value = value.trim_matches(|c: char| c == ' ' || c == '\0');
    if value.is_empty() || matching == Matching::ReturnOnly {
        return Ok(None);
    }
    let bad = |why: &str| QueryError::BadValue {
        keyword: keyword.to_owned(),
        value: value.to_owned(),
        why: why.to_owned(),
    };
    Ok(Some(match matching {
        Matching::Uid => {
            let uids: Vec<String> = value
                .split('\\')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect();
            if uids.iter().any(|u| !crate::archive::keys::is_valid_uid(u)) {
                return Err(bad("not a UID or a list of UIDs"));
            }
            one_or_many(uids)
        }
        Matching::Date => range_or_single(value, normalise_date).map_err(&bad)?,
        Matching::Time => time_condition(value).map_err(&bad)?,
        Matching::Integer => {
            let values: Vec<String> = value.split('\\').map(|v| v.trim().to_owned()).collect();
            if values.iter().any(|v| v.parse::<i64>().is_err()) {
                return Err(bad("not an integer string"));
            }
            one_or_many(values)
        }
        Matching::Name => {
            // Trailing empty components do not change a name ("SMITH^^^" is "SMITH").
            let folded: Vec<String> = value
                .split('\\')
                .map(|v| search_form(first_group(v).trim_end_matches('^')))
                .collect();
            text_condition(folded)
        }
        Matching::Text => text_condition(value.split('\\').map(str::to_owned).collect()),
        // Sequence keys are matched through their items' keys (`item_filters`).
        Matching::ReturnOnly | Matching::Sequence => return Ok(None),
    }))
}

/// A person name's alphabetic group: the ideographic and phonetic ones are not indexed.
fn first_group(name: &str) -> &str {
    name.split('=').next().unwrap_or("")
}

fn has_wildcard(v: &str) -> bool {
    v.contains(['*', '?'])
}

fn text_condition(values: Vec<String>) -> Condition {
    if values.len() == 1 {
        let v = values.into_iter().next().unwrap_or_default();
        if has_wildcard(&v) {
            Condition::Wildcard(v)
        } else {
            Condition::Equals(v)
        }
    } else if values.iter().any(|v| has_wildcard(v)) {
        // Wildcards inside a list: keep the first value's pattern (rare; PS3.4 leaves it to us).
        Condition::Wildcard(values.into_iter().next().unwrap_or_default())
    } else {
        Condition::AnyOf(values)
    }
}

fn one_or_many(mut values: Vec<String>) -> Condition {
    if values.len() == 1 {
        Condition::Equals(values.remove(0))
    } else {
        Condition::AnyOf(values)
    }
}

/// Dates in DICOM form (`YYYYMMDD`); the ACR-NEMA form `YYYY.MM.DD` is accepted too.
fn normalise_date(v: &str) -> Result<String, &'static str> {
    let digits: String = v.chars().filter(|c| *c != '.').collect();
    let valid = digits.len() == 8
        && digits.chars().all(|c| c.is_ascii_digit())
        && (1..=12).contains(&digits[4..6].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&digits[6..8].parse::<u32>().unwrap_or(0));
    if valid {
        Ok(digits)
    } else {
        Err("not a date (YYYYMMDD) or a date range")
    }
}

fn range_or_single(
    value: &str,
    normalise: fn(&str) -> Result<String, &'static str>,
) -> Result<Condition, &'static str> {
    match value.split_once('-') {
        None => Ok(Condition::Equals(normalise(value)?)),
        Some((from, to)) => {
            let from = from.trim();
            let to = to.trim();
            if from.is_empty() && to.is_empty() {
                return Err("a range needs at least one bound");
            }
            Ok(Condition::Range {
                from: (!from.is_empty()).then(|| normalise(from)).transpose()?,
                to: (!to.is_empty()).then(|| normalise(to)).transpose()?,
            })
        }
    }
}

/// Times compare as text: a lower bound as given (every time it prefixes sorts after it), an
/// upper one padded with nines, so "1000-1200" includes 12:00:59.
fn time_condition(value: &str) -> Result<Condition, &'static str> {
    let clean = |v: &str| -> Result<String, &'static str> {
        let v: String = v.chars().filter(|c| *c != ':').collect();
        let (whole, fraction) = v.split_once('.').unwrap_or((&v, ""));
        let valid = !whole.is_empty()
            && whole.len() <= 6
            && whole.len() % 2 == 0
            && whole.chars().all(|c| c.is_ascii_digit())
            && fraction.chars().all(|c| c.is_ascii_digit());
        if valid {
            Ok(v)
        } else {
            Err("not a time (HHMMSS.FFFFFF) or a time range")
        }
    };
    let low = |v: &str| v.to_owned();
    let high = |v: &str| pad(v, '9');
    match value.split_once('-') {
        None => {
            let v = clean(value)?;
            Ok(Condition::Range {
                from: Some(low(&v)),
                to: Some(high(&v)),
            })
        }
        Some((from, to)) => {
            if from.trim().is_empty() && to.trim().is_empty() {
                return Err("a range needs at least one bound");
            }
            let from = match from.trim() {
                "" => None,
                f => Some(low(&clean(f)?)),
            };
            let to = match to.trim() {
                "" => None,
                t => Some(high(&clean(t)?)),
            };
            Ok(Condition::Range { from, to })
        }
    }
}

/// Pads a time to `HHMMSS.FFFFFF` with `fill`.
fn pad(v: &str, fill: char) -> String {
    let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
    let mut out = whole.to_owned();
    while out.len() < 6 {
        out.push(fill);
    }
    out.push('.');
    out.push_str(fraction);
    while out.len() < 13 {
        out.push(fill);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(m: Matching, v: &str) -> Option<Condition> {
        condition("K", m, v).unwrap()
    }

    #[test]
    fn universal_and_single_values() {
        assert_eq!(cond(Matching::Text, ""), None);
        assert_eq!(cond(Matching::Text, "  "), None);
        assert_eq!(
            cond(Matching::Text, "ABC"),
            Some(Condition::Equals("ABC".into()))
        );
        assert_eq!(
            cond(Matching::Text, "A*C?"),
            Some(Condition::Wildcard("A*C?".into()))
        );
        assert_eq!(
            cond(Matching::Text, "US\\ECG"),
            Some(Condition::AnyOf(vec!["US".into(), "ECG".into()]))
        );
    }

    #[test]
    fn names_fold_case_and_diacritics() {
        assert_eq!(
            cond(Matching::Name, "ŽUKAUSKAS^RŪTA"),
            Some(Condition::Equals("zukauskas^ruta".into()))
        );
        assert_eq!(
            cond(Matching::Name, "Žuk*"),
            Some(Condition::Wildcard("zuk*".into()))
        );
        assert_eq!(
            cond(Matching::Name, "SMITH^^^"),
            Some(Condition::Equals("smith".into()))
        );
    }

    #[test]
    fn uid_lists_and_bad_uids() {
        assert_eq!(
            cond(Matching::Uid, "1.2.3\\1.2.4"),
            Some(Condition::AnyOf(vec!["1.2.3".into(), "1.2.4".into()]))
        );
        assert!(condition("StudyInstanceUID", Matching::Uid, "1.2.*").is_err());
    }

    #[test]
    fn date_ranges() {
        assert_eq!(
            cond(Matching::Date, "20240101-20241231"),
            Some(Condition::Range {
                from: Some("20240101".into()),
                to: Some("20241231".into())
            })
        );
        assert_eq!(
            cond(Matching::Date, "-20240101"),
            Some(Condition::Range {
                from: None,
                to: Some("20240101".into())
            })
        );
        assert_eq!(
            cond(Matching::Date, "2024.03.05"),
            Some(Condition::Equals("20240305".into()))
        );
        let err = condition("StudyDate", Matching::Date, "yesterday").unwrap_err();
        assert!(err.to_string().contains("StudyDate"), "{err}");
        assert!(condition("StudyDate", Matching::Date, "20241301").is_err());
    }

    #[test]
    fn time_ranges_cover_their_precision() {
        assert_eq!(
            cond(Matching::Time, "1000-1200"),
            Some(Condition::Range {
                from: Some("1000".into()),
                to: Some("120099.999999".into())
            })
        );
        assert_eq!(
            cond(Matching::Time, "10"),
            Some(Condition::Range {
                from: Some("10".into()),
                to: Some("109999.999999".into())
            })
        );
        assert!(condition("StudyTime", Matching::Time, "10x").is_err());
    }
}
