//! Which demographics a patient record keeps when a new source says something else.
//!
//! A record holds the best-known name, birth date and sex of one clinic's patient. Sources
//! disagree for two different reasons, and the rule tells them apart:
//! - a *worse copy* of the same name: a device whose character set lacks Lithuanian letters
//!   (ISO 8859-1 has no Ž, ė, ū) folds them to their base letter, replaces them with `?`, or
//!   drops them. Such a name never replaces the one held, whoever sends it; the held name, once
//!   it is itself a worse copy of the new one, is replaced by it (letters restored) whoever
//!   sends it.
//! - a *different* value (a corrected birth date, a new family name): the clinic's HIS is the
//!   authority once it has spoken; until then the latest object wins. An empty value never
//!   replaces a known one.

use unicode_normalization::UnicodeNormalization;

/// Who says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A stored object, received from the clinic.
    Object,
    /// The clinic's HIS (HL7 v2 ADT).
    His,
    /// A source that may only restore letters a modality lost, and changes nothing else: the
    /// referral (form 027) linked to one of the patient's studies (written in UTF-8 by the
    /// clinic's information system; linking already checked that it names the same person), an
    /// object filed under the survivor of a merge, the prior record of a merge, and the
    /// objects the service makes itself.
    Witness,
}

/// The demographics a record holds, or a source sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    pub name: String,
    pub name_search: String,
    pub birth_date: String,
    pub sex: String,
    /// `hl7` once the clinic's HIS maintains the record, '' while objects do.
    pub maintained_by: String,
}

/// What the record should hold after `incoming` from `source`; `None` when nothing changes.
pub fn merge(held: &Held, incoming: &Held, source: Source) -> Option<Held> {
    let authority = match source {
        Source::His => true,
        Source::Object => held.maintained_by.is_empty(),
        Source::Witness => false,
    };
    let mut next = held.clone();
    if incoming.name != held.name && !incoming.name.is_empty() {
        let restores = worse_copy(&held.name, &incoming.name);
        let degrades = worse_copy(&incoming.name, &held.name);
        if restores || held.name.is_empty() || (authority && !degrades) {
            next.name = incoming.name.clone();
            next.name_search = incoming.name_search.clone();
        }
    }
    if authority {
        for (mine, theirs) in [
            (&mut next.birth_date, &incoming.birth_date),
            (&mut next.sex, &incoming.sex),
        ] {
            if !theirs.is_empty() {
                mine.clone_from(theirs);
            }
        }
    }
    if source == Source::His {
        next.maintained_by = "hl7".into();
    }
    (next != *held).then_some(next)
}

/// The form of a name used for matching: lower case, without diacritics, so that "zukauskas"
/// and "ŽUKAUSKAS" both find "Žukauskas^Rūta".
pub fn search_form(name: &str) -> String {
    name.nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether `worse` is `better` with some of its non-ASCII letters lost: folded to their base
/// letter, replaced by `?`, or dropped, and nothing else changed but letter case.
pub fn worse_copy(worse: &str, better: &str) -> bool {
    let w: Vec<char> = worse.chars().collect();
    let b: Vec<char> = better.chars().collect();
    let lost = |c: char| !c.is_ascii();
    if w == b || b.iter().filter(|c| lost(**c)).count() <= w.iter().filter(|c| lost(**c)).count() {
        return false;
    }
    // reach[i][j]: the first i letters of `better` can become the first j of `worse`.
    let mut reach = vec![vec![false; w.len() + 1]; b.len() + 1];
    reach[0][0] = true;
    for i in 0..=b.len() {
        for j in 0..=w.len() {
            if !reach[i][j] || i == b.len() {
                continue;
            }
            let c = b[i];
            if lost(c) {
                reach[i + 1][j] = true;
            }
            if j < w.len() && same_letter(c, w[j]) {
                reach[i + 1][j + 1] = true;
            }
        }
    }
    reach[b.len()][w.len()]
}

/// Whether `copy` can stand for `original` in a worse copy: the same letter in any case, its
/// base letter, or a `?` for a letter the copy's character set lacked.
fn same_letter(original: char, copy: char) -> bool {
    let lower = |c: char| c.to_lowercase().next().unwrap_or(c);
    if lower(original) == lower(copy) {
        return true;
    }
    if original.is_ascii() {
        return false;
    }
    copy == '?'
        || original
            .nfd()
            .next()
            .is_some_and(|base| lower(base) == lower(copy))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RICH: &str = "Žukauskienė^Rūta";

    #[test]
    fn lost_letters_make_a_worse_copy() {
        for worse in [
            "Zukauskiene^Ruta",
            "ZUKAUSKIENE^RUTA",
            "?ukauskien?^R?ta",
            "ukauskien^Rta",
            "Žukauskiene^Ruta",
        ] {
            assert!(worse_copy(worse, RICH), "{worse}");
            assert!(!worse_copy(RICH, worse), "{worse}");
        }
    }

    #[test]
    fn other_names_and_equal_ones_are_not_copies() {
        for other in [
            RICH,
            "ŽUKAUSKIENĖ^RŪTA",
            "Petraitienė^Rūta",
            "Zukauskaite^Ruta",
            "",
        ] {
            assert!(!worse_copy(other, RICH), "{other}");
        }
        assert!(!worse_copy("Jonas", "Jonas"));
    }

    fn held(name: &str, birth: &str, by: &str) -> Held {
        Held {
            name: name.into(),
            name_search: name.to_lowercase(),
            birth_date: birth.into(),
            sex: "F".into(),
            maintained_by: by.into(),
        }
    }

    #[test]
    fn objects_never_degrade_and_restore_letters() {
        let rich = held(RICH, "19700101", "");
        let folded = held("Zukauskiene^Ruta", "19700101", "");
        assert_eq!(merge(&rich, &folded, Source::Object), None);
        assert_eq!(
            merge(&folded, &rich, Source::Object).map(|h| h.name),
            Some(RICH.into())
        );
        let renamed = held("Petraitienė^Rūta", "", "");
        let next = merge(&rich, &renamed, Source::Object).unwrap();
        assert_eq!(next.name, "Petraitienė^Rūta");
        assert_eq!(next.birth_date, "19700101", "an empty value never replaces");
    }

    #[test]
    fn a_witness_only_restores_letters() {
        let folded = held("Zukauskiene^Ruta", "19700101", "hl7");
        let referral = held(RICH, "19800101", "");
        let next = merge(&folded, &referral, Source::Witness).unwrap();
        assert_eq!(next.name, RICH);
        assert_eq!(next.birth_date, "19700101");
        assert_eq!(next.maintained_by, "hl7");
        let other = held("Petraitienė^Rūta", "", "");
        assert_eq!(merge(&folded, &other, Source::Witness), None);
    }

    #[test]
    fn the_his_is_the_authority_once_it_has_spoken() {
        let his = held(RICH, "19700101", "hl7");
        let object = held("Petraitienė^Rūta", "19710101", "");
        assert_eq!(merge(&his, &object, Source::Object), None);
        let restored = merge(
            &held("Zukauskiene^Ruta", "", "hl7"),
            &object,
            Source::Object,
        );
        assert_eq!(restored, None, "another name is not a restoration");
        let from_his = merge(&his, &held("Zukauskiene^Ruta", "19700102", ""), Source::His);
        let from_his = from_his.unwrap();
        assert_eq!(from_his.name, RICH, "not even the HIS degrades a name");
        assert_eq!(from_his.birth_date, "19700102");
        let first = merge(&held(RICH, "", ""), &held(RICH, "", ""), Source::His).unwrap();
        assert_eq!(first.maintained_by, "hl7");
    }
}
