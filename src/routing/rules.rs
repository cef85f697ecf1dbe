//! Matching a case against the routing rules: pure, so every rule kind is testable alone.

use crate::config::{AgeGroup, Config, RoutingRule};

/// What routing looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub clinic_id: String,
    pub examination: String,
    pub urgency: String,
    /// Whole years at the referral; `None` when the birth date is unknown (then only rules
    /// for any age match: an age is never guessed).
    pub age: Option<u32>,
}

/// The first rule that routes `facts`, within a contract (its centre reads the clinic).
pub fn first_match<'c>(config: &'c Config, facts: &Facts) -> Option<&'c RoutingRule> {
    config.routing.rules.iter().find(|rule| {
        let contracted = config
            .centre(&rule.centre)
            .is_some_and(|c| c.reads.contains(&facts.clinic_id));
        let listed =
            |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        let age = match (rule.patients, facts.age) {
            (AgeGroup::Any, _) => true,
            (AgeGroup::Paediatric, Some(years)) => years < 18,
            (AgeGroup::Adult, Some(years)) => years >= 18,
            (_, None) => false,
        };
        contracted
            && listed(&rule.clinics, &facts.clinic_id)
            && listed(&rule.examinations, &facts.examination)
            && listed(&rule.urgencies, &facts.urgency)
            && age
    })
}

/// Whole years from a `YYYYMMDD` birth date to `on` (`YYYYMMDD`); `None` if either is not a date.
pub fn age_on(birth_date: &str, on: &str) -> Option<u32> {
    let parse = |d: &str| -> Option<(u32, u32, u32)> {
        if d.len() < 8 || !d.as_bytes()[..8].iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n = |r: std::ops::Range<usize>| d[r].parse::<u32>().ok();
        let (y, m, day) = (n(0..4)?, n(4..6)?, n(6..8)?);
        ((1..=12).contains(&m) && day <= 31).then_some((y, m, day))
    };
    let (by, bm, bd) = parse(birth_date)?;
    let (y, m, d) = parse(on)?;
    if y < by {
        return None;
    }
    let before_birthday = (m, d) < (bm, bd.max(1));
    Some(y - by - u32::from(before_birthday))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;
    use std::path::Path;

    fn config(rules: &str) -> Config {
        let text = include_str!("../../config/telecardio.toml");
        let env = [
            (
                "TELECARDIO_CLINICS".to_string(),
                r#"[{id="demo", name="D", ae_titles=["DEMO_CLINIC"], networks=[]},
                    {id="north", name="N", ae_titles=["NORTH"], networks=[]},
                    {id="far", name="F", ae_titles=["FAR"], networks=[]}]"#
                    .to_string(),
            ),
            (
                "TELECARDIO_CENTRES".to_string(),
                r#"[{id="demo-centre", name="C", reads=["demo", "north"], ae_titles=[], networks=[]},
                    {id="kids", name="K", reads=["demo"], ae_titles=[], networks=[]}]"#
                    .to_string(),
            ),
            ("TELECARDIO_ROUTING__RULES".to_string(), rules.to_string()),
        ];
        Config::from_toml(text, Path::new("t"), env, &Overrides::default()).unwrap()
    }

    fn rule(name: &str, extra: &str) -> String {
        format!(
            r#"{{name="{name}", clinics=[], examinations=[], urgencies=[], patients="any", centre="demo-centre", readers=[], assign="pool"{extra}}}"#
        )
    }

    fn facts(clinic: &str, exam: &str, urgency: &str, age: Option<u32>) -> Facts {
        Facts {
            clinic_id: clinic.into(),
            examination: exam.into(),
            urgency: urgency.into(),
            age,
        }
    }

    fn routed(c: &Config, f: &Facts) -> Option<String> {
        first_match(c, f).map(|r| r.name.clone())
    }

    #[test]
    fn each_rule_kind_routes_its_cases_first_match_wins() {
        let rules = format!(
            "[{}, {}, {}, {}, {}]",
            r#"{name="kids", clinics=[], examinations=[], urgencies=[], patients="paediatric",
                centre="kids", readers=["dr-kid"], assign="balance"}"#,
            rule("urgent", r#", urgencies=["urgent", "emergency"]"#)
                .replace(r#"urgencies=[], "#, ""),
            rule("holter", r#", examinations=["holter"]"#).replace(r#"examinations=[], "#, ""),
            rule("north", r#", clinics=["north"]"#).replace(r#"clinics=[], "#, ""),
            rule("adults", r#", patients="adult""#).replace(r#"patients="any", "#, ""),
        );
        let c = config(&rules);
        assert_eq!(
            routed(&c, &facts("demo", "echo", "routine", Some(9))).as_deref(),
            Some("kids")
        );
        // The paediatric centre has no contract with `north`: the next rule takes it.
        assert_eq!(
            routed(&c, &facts("north", "echo", "routine", Some(9))).as_deref(),
            Some("north")
        );
        assert_eq!(
            routed(&c, &facts("demo", "echo", "urgent", Some(40))).as_deref(),
            Some("urgent")
        );
        assert_eq!(
            routed(&c, &facts("demo", "holter", "routine", Some(40))).as_deref(),
            Some("holter")
        );
        assert_eq!(
            routed(&c, &facts("demo", "echo", "routine", Some(40))).as_deref(),
            Some("adults")
        );
        // Unknown age: neither paediatric nor adult; no contract at all: nothing.
        assert_eq!(routed(&c, &facts("demo", "echo", "routine", None)), None);
        assert_eq!(routed(&c, &facts("far", "echo", "urgent", Some(40))), None);
    }

    #[test]
    fn a_rule_outside_a_contract_or_with_unknown_values_is_a_configuration_error() {
        let text = include_str!("../../config/telecardio.toml");
        for (rules, key) in [
            (
                rule("x", "").replace("clinics=[]", r#"clinics=["nowhere"]"#),
                "routing.rules[0].clinics",
            ),
            (
                rule("x", "").replace("examinations=[]", r#"examinations=["mri"]"#),
                "routing.rules[0].examinations",
            ),
            (
                rule("x", "").replace("demo-centre", "nowhere"),
                "routing.rules[0].centre",
            ),
        ] {
            let env = [(
                "TELECARDIO_ROUTING__RULES".to_string(),
                format!("[{rules}]"),
            )];
            let err = Config::from_toml(text, Path::new("t"), env, &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{err}");
        }
    }

    #[test]
    fn ages_are_whole_years() {
        assert_eq!(age_on("20080512", "20261130"), Some(18));
        assert_eq!(age_on("20081201", "20261130"), Some(17));
        assert_eq!(age_on("20081130", "20261130"), Some(18));
        assert_eq!(age_on("", "20261130"), None);
        assert_eq!(age_on("2008", "20261130"), None);
    }
}
