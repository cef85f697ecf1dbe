//! Words people read, in Lithuanian and English: one message catalogue
//! (`assets/i18n/messages.toml`, built into the binary), the caller's language, and dates,
//! times and numbers as each language writes them. Times are shown in Europe/Vilnius whatever
//! the server's zone.

use std::collections::HashMap;
use std::sync::OnceLock;

const CATALOGUE: &str = include_str!("../../assets/i18n/messages.toml");

/// A language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Lt,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Lt, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Lt => "lt",
            Lang::En => "en",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The first language of an `Accept-Language` header we have; Lithuanian otherwise.
    pub fn from_accept(header: &str) -> Lang {
        let mut ranked: Vec<(f32, &str)> = header
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.trim().split(';');
                let tag = pieces.next()?.trim();
                let q = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.parse().ok())
                    .unwrap_or(1.0);
                Some((q, tag))
            })
            .collect();
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
        ranked
            .iter()
            .find_map(|(_, tag)| Lang::parse(&tag.get(..2)?.to_ascii_lowercase()))
            .unwrap_or(Lang::Lt)
    }
}

/// Every message, by key: `[lt, en]`.
pub struct Catalogue {
    messages: HashMap<String, [String; 2]>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("the message catalogue is not TOML: {0}")]
    Toml(String),
    #[error("message `{key}` {problem}")]
    Message { key: String, problem: &'static str },
}

impl Catalogue {
    /// The catalogue built into the binary (checked by the test suite, so it always loads).
    pub fn get() -> &'static Catalogue {
        static CATALOGUE_LOADED: OnceLock<Catalogue> = OnceLock::new();
        CATALOGUE_LOADED.get_or_init(|| match Catalogue::parse(CATALOGUE) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "message catalogue unreadable; pages show keys");
                Catalogue {
                    messages: HashMap::new(),
                }
            }
        })
    }

    /// Reads a catalogue: nested tables whose leaves are `{ lt = "…", en = "…" }`, keyed by
    /// their dotted path. A leaf without both languages is an error.
    pub fn parse(text: &str) -> Result<Catalogue, CatalogueError> {
        let root: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| CatalogueError::Toml(e.to_string()))?;
        let mut messages = HashMap::new();
        walk(&root, "", &mut messages)?;
        Ok(Catalogue { messages })
    }

    /// The message, or its key when the catalogue lacks it (a test keeps that from shipping).
    pub fn text<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        match self.messages.get(key) {
            Some(both) => &both[lang as usize],
            None => key,
        }
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.messages.keys().map(String::as_str)
    }

    /// Every message of one language, for scripts.
    pub fn of(&self, lang: Lang) -> serde_json::Map<String, serde_json::Value> {
        self.messages
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v[lang as usize].clone())))
            .collect()
    }
}

fn walk(
    table: &toml::Table,
    prefix: &str,
    out: &mut HashMap<String, [String; 2]>,
) -> Result<(), CatalogueError> {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let toml::Value::Table(inner) = value else {
            return Err(CatalogueError::Message {
                key,
                problem: "is not a table of languages",
            });
        };
        if inner.contains_key("lt") || inner.contains_key("en") {
            let text = |lang: &str| match inner.get(lang) {
                Some(toml::Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
                _ => Err(CatalogueError::Message {
                    key: key.clone(),
                    problem: "lacks a language (lt and en are both needed)",
                }),
            };
            let both = [text("lt")?, text("en")?];
            if inner.len() != 2 {
                return Err(CatalogueError::Message {
                    key,
                    problem: "has keys besides lt and en",
                });
            }
            out.insert(key.clone(), both);
        } else {
            walk(inner, &key, out)?;
        }
    }
    Ok(())
}

/// Words and formats of one language, for one page.
#[derive(Clone, Copy)]
pub struct Words {
    pub lang: Lang,
    catalogue: &'static Catalogue,
}

impl Words {
    pub fn new(lang: Lang) -> Words {
        Words {
            lang,
            catalogue: Catalogue::get(),
        }
    }

    pub fn t<'k>(&self, key: &'k str) -> &'k str {
        self.catalogue.text(self.lang, key)
    }

    /// An index time (microseconds since the epoch) as a date and time in Vilnius.
    pub fn time(&self, micros: i64) -> String {
        vilnius(micros)
            .map(|z| z.strftime("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default()
    }

    /// An index time as a date in Vilnius.
    pub fn date(&self, micros: i64) -> String {
        vilnius(micros)
            .map(|z| z.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default()
    }

    /// A DICOM or HL7 date (`YYYYMMDD`) as the pages show dates.
    pub fn dicom_date(&self, text: &str) -> String {
        match (text.get(0..4), text.get(4..6), text.get(6..8)) {
            (Some(y), Some(m), Some(d)) if text.bytes().take(8).all(|b| b.is_ascii_digit()) => {
                format!("{y}-{m}-{d}")
            }
            _ => text.to_owned(),
        }
    }

    /// A span of minutes: `3 d. 4 val.`, `2 h 5 min`.
    pub fn minutes(&self, minutes: i64) -> String {
        let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
        let (day, hour, min) = match self.lang {
            Lang::Lt => ("d.", "val.", "min."),
            Lang::En => ("d", "h", "min"),
        };
        match (d, h) {
            (0, 0) => format!("{m} {min}"),
            (0, _) => format!("{h} {hour} {m} {min}"),
            _ => format!("{d} {day} {h} {hour}"),
        }
    }

    /// A number with `places` decimals and the language's decimal sign (`97,5` or `97.5`).
    pub fn decimal(&self, x: f64, places: usize) -> String {
        let text = format!("{x:.places$}");
        match self.lang {
            Lang::Lt => text.replace('.', ","),
            Lang::En => text,
        }
    }

    /// A share in per cent, one decimal: `97,5 %`.
    pub fn percent(&self, x: f64) -> String {
        format!("{}\u{a0}%", self.decimal(x, 1))
    }

    /// A whole number with the language's digit grouping (`12 345` or `12,345`).
    pub fn number(&self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let separator = match self.lang {
            Lang::Lt => '\u{a0}',
            Lang::En => ',',
        };
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(separator);
            }
            out.push(c);
        }
        if n < 0 {
            out.insert(0, '-');
        }
        out
    }

    /// A size in bytes, in the largest unit that keeps it above one.
    pub fn bytes(&self, n: i64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"];
        let mut value = n as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit < units.len() - 1 {
            value /= 1024.0;
            unit += 1;
        }
        let text = if unit == 0 {
            format!("{n}")
        } else {
            format!("{value:.1}")
        };
        let text = match self.lang {
            Lang::Lt => text.replace('.', ","),
            Lang::En => text,
        };
        format!("{text} {}", units[unit])
    }
}

/// The last `count` calendar months in Vilnius up to the one holding `now`, oldest first:
/// `(YYYY-MM, from, to)` with times in microseconds, `to` exclusive.
pub fn vilnius_months(now: i64, count: u32) -> Vec<(String, i64, i64)> {
    let Some(today) = vilnius(now) else {
        return Vec::new();
    };
    let first = today.date().first_of_month();
    (0..count)
        .rev()
        .filter_map(|back| {
            let month = first.checked_sub(jiff::Span::new().months(back)).ok()?;
            let next = month.checked_add(jiff::Span::new().months(1)).ok()?;
            Some((
                month.strftime("%Y-%m").to_string(),
                start_of(month)?,
                start_of(next)?,
            ))
        })
        .collect()
}

/// The start of a date (`YYYY-MM-DD`) in Vilnius, as microseconds since the epoch.
pub fn vilnius_day_start(date: &str) -> Option<i64> {
    start_of(date.trim().parse().ok()?)
}

/// Midnight of `date` in Vilnius, as microseconds since the epoch.
fn start_of(date: jiff::civil::Date) -> Option<i64> {
    let tz = jiff::tz::TimeZone::get("Europe/Vilnius").ok()?;
    let zoned = date
        .to_datetime(jiff::civil::Time::midnight())
        .to_zoned_datetime(tz)
        .ok()?;
    Some(zoned.timestamp().as_microsecond())
}

fn vilnius(micros: i64) -> Option<jiff::ZonedDateTime> {
    let tz = jiff::tz::TimeZone::get("Europe/Vilnius").ok()?;
    let at = jiff::Timestamp::from_microsecond(micros).ok()?;
    Some(at.to_zoned_datetime(tz))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_has_both_languages() {
        let catalogue = Catalogue::parse(CATALOGUE).expect("the catalogue loads");
        assert!(catalogue.keys().count() > 50);
        let missing = Catalogue::parse("[a]\nlt = \"A\"\n").err().unwrap();
        assert!(
            missing.to_string().contains("lacks a language"),
            "{missing}"
        );
        let empty = Catalogue::parse("[a]\nlt = \"A\"\nen = \" \"\n")
            .err()
            .unwrap();
        assert!(empty.to_string().contains("lacks a language"), "{empty}");
    }

    /// Every key the templates and scripts ask for is in the catalogue.
    #[test]
    fn every_key_used_is_in_the_catalogue() {
        let catalogue = Catalogue::parse(CATALOGUE).unwrap();
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let sections: Vec<&str> = catalogue
            .keys()
            .filter_map(|k| k.split('.').next())
            .collect();
        let looks_like_key = |k: &str| {
            k.contains('.')
                && !k.starts_with('.')
                && !k.ends_with('.')
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.')
        };
        let mut used = Vec::new();
        for dir in ["templates", "assets/web", "src/pages"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                // Templates call t("…"), scripts t('…'); Rust code .t("…").
                for quote in ['"', '\''] {
                    let pattern = format!("t({quote}");
                    for (before, piece) in text.split(&pattern).zip(text.split(&pattern).skip(1)) {
                        let called = !before.ends_with(|c: char| c.is_alphanumeric() || c == '_');
                        if let Some(key) = piece.split(quote).next().filter(|k| looks_like_key(k)) {
                            if called {
                                used.push((path.display().to_string(), key.to_owned()));
                            }
                        }
                    }
                }
                // Rust code also hands keys around as literals ("problem.role"): every literal
                // shaped like a key of one of the catalogue's sections.
                if path.extension().is_some_and(|e| e == "rs") {
                    for literal in text.split('"').skip(1).step_by(2) {
                        let section = literal.split('.').next().unwrap_or_default();
                        let template = literal.ends_with(".html");
                        if looks_like_key(literal) && sections.contains(&section) && !template {
                            used.push((path.display().to_string(), literal.to_owned()));
                        }
                    }
                }
            }
        }
        assert!(used.len() > 20, "{used:?}");
        let keys: Vec<&str> = catalogue.keys().collect();
        for (file, key) in used {
            assert!(
                keys.contains(&key.as_str()),
                "{file} uses `{key}`, not in the catalogue"
            );
        }
    }

    #[test]
    fn formats_follow_the_language() {
        let lt = Words::new(Lang::Lt);
        let en = Words::new(Lang::En);
        assert_eq!(lt.number(1234567), "1\u{a0}234\u{a0}567");
        assert_eq!(en.number(1234567), "1,234,567");
        assert_eq!(lt.minutes(125), "2 val. 5 min.");
        assert_eq!(en.minutes(3000), "2 d 2 h");
        assert_eq!(lt.bytes(1536), "1,5 KB");
        // 2026-01-15 10:00 UTC is 12:00 in Vilnius (EET); 2026-07-15 10:00 UTC is 13:00 (EEST).
        assert_eq!(lt.time(1_768_471_200_000_000), "2026-01-15 12:00");
        assert_eq!(en.time(1_784_109_600_000_000), "2026-07-15 13:00");
        // 2026-03-31 23:33 UTC is already April in Vilnius. March there starts at
        // 2026-02-28 22:00 UTC (EET) and April at 2026-03-31 21:00 UTC (EEST).
        let months = vilnius_months(1_775_000_000_000_000, 2);
        assert_eq!(months[0].0, "2026-03");
        assert_eq!(months[1].0, "2026-04");
        assert_eq!(months[0].1, 1_772_316_000_000_000);
        assert_eq!(months[0].2, 1_774_990_800_000_000);
        assert_eq!(months[1].1, months[0].2);
        assert_eq!(vilnius_day_start("2026-03-01"), Some(1_772_316_000_000_000));
        assert_eq!(Lang::from_accept("en-GB,en;q=0.9,lt;q=0.8"), Lang::En);
        assert_eq!(Lang::from_accept("lt-LT,lt;q=0.9"), Lang::Lt);
        assert_eq!(Lang::from_accept("de-DE"), Lang::Lt);
        assert_eq!(Lang::from_accept("de;q=1,en;q=0.5"), Lang::En);
    }
}
