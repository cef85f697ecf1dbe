//! The Lithuanian personal code (asmens kodas): `G YYMMDD NNN K`, eleven digits.
//!
//! G gives sex and century, YYMMDD the birth date, NNN a serial and K a check digit over the
//! first ten (weights 1..9,1, mod 11; if 10, weights 3..9,1,2,3, mod 11; if 10 again, 0). Real
//! codes exist that start with 9 or carry 00 for an unknown month or day: those are accepted
//! with a warning, since refusing them would refuse real patients.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("a personal code has 11 digits, `{0}` does not")]
    Shape(String),
    #[error("the first digit of `{0}` (sex and century) must be 1 to 6, or 9")]
    Century(String),
    #[error("`{code}` carries no valid birth date ({why})")]
    Date { code: String, why: &'static str },
    #[error("the check digit of `{code}` should be {expected}")]
    Checksum { code: String, expected: u8 },
}

/// A personal code that passed the checks, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalCode {
    pub code: String,
    /// `M` or `F`; empty for codes starting with 9.
    pub sex: &'static str,
    /// `YYYYMMDD`, with `00` where the code leaves month or day unknown; empty for 9-codes.
    pub birth_date: String,
    /// Why the code, though accepted, is unusual.
    pub warning: Option<String>,
}

/// The check digit of the first ten digits.
pub fn check_digit(digits: &[u8; 10]) -> u8 {
    let weighted = |weights: [u8; 10]| -> u32 {
        digits
            .iter()
            .zip(weights)
            .map(|(d, w)| u32::from(*d) * u32::from(w))
            .sum::<u32>()
            % 11
    };
    let first = weighted([1, 2, 3, 4, 5, 6, 7, 8, 9, 1]);
    if first != 10 {
        return first as u8;
    }
    let second = weighted([3, 4, 5, 6, 7, 8, 9, 1, 2, 3]);
    if second != 10 {
        second as u8
    } else {
        0
    }
}

pub fn parse(code: &str) -> Result<PersonalCode, CodeError> {
    let code = code.trim();
    if code.len() != 11 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodeError::Shape(code.to_owned()));
    }
    let d: Vec<u8> = code.bytes().map(|b| b - b'0').collect();
    let mut first_ten = [0u8; 10];
    first_ten.copy_from_slice(&d[..10]);
    let expected = check_digit(&first_ten);
    if d[10] != expected {
        return Err(CodeError::Checksum {
            code: code.to_owned(),
            expected,
        });
    }
    if d[0] == 9 {
        return Ok(PersonalCode {
            code: code.to_owned(),
            sex: "",
            birth_date: String::new(),
            warning: Some(
                "a personal code starting with 9 carries neither sex nor birth date".into(),
            ),
        });
    }
    let (century, sex) = match d[0] {
        1 => (1800, "M"),
        2 => (1800, "F"),
        3 => (1900, "M"),
        4 => (1900, "F"),
        5 => (2000, "M"),
        6 => (2000, "F"),
        _ => return Err(CodeError::Century(code.to_owned())),
    };
    let year = century + u32::from(d[1]) * 10 + u32::from(d[2]);
    let month = u32::from(d[3]) * 10 + u32::from(d[4]);
    let day = u32::from(d[5]) * 10 + u32::from(d[6]);
    let bad = |why| CodeError::Date {
        code: code.to_owned(),
        why,
    };
    let mut warning = None;
    if month == 0 || day == 0 {
        warning = Some("the birth month or day is recorded as unknown (00)".to_owned());
        if month > 12 || day > 31 {
            return Err(bad("month or day out of range"));
        }
    } else {
        let month_enum = time::Month::try_from(month as u8).map_err(|_| bad("no such month"))?;
        time::Date::from_calendar_date(year as i32, month_enum, day as u8)
            .map_err(|_| bad("no such day"))?;
    }
    Ok(PersonalCode {
        code: code.to_owned(),
        sex,
        birth_date: format!("{year:04}{month:02}{day:02}"),
        warning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a valid code from its first ten digits.
    fn with_check(ten: &str) -> String {
        let mut digits = [0u8; 10];
        for (i, b) in ten.bytes().enumerate() {
            digits[i] = b - b'0';
        }
        format!("{ten}{}", check_digit(&digits))
    }

    #[test]
    fn valid_codes_give_sex_and_birth_date() {
        // The order's own example: 33309240064 (a man born 1933-09-24).
        let p = parse("33309240064").unwrap();
        assert_eq!((p.sex, p.birth_date.as_str()), ("M", "19330924"));
        assert_eq!(p.warning, None);
        let p = parse(&with_check("4850712001")).unwrap();
        assert_eq!((p.sex, p.birth_date.as_str()), ("F", "19850712"));
        let p = parse(&with_check("6120229123")).unwrap();
        assert_eq!((p.sex, p.birth_date.as_str()), ("F", "20120229"));
    }

    #[test]
    fn both_weightings_ten_give_zero() {
        // Search the serials of one birth date for a code whose two sums are both 10 mod 11.
        let found = (0..1000).find_map(|serial| {
            let ten = format!("3850712{serial:03}");
            let digits: Vec<u32> = ten.bytes().map(|b| u32::from(b - b'0')).collect();
            let sum = |w: [u32; 10]| digits.iter().zip(w).map(|(d, w)| d * w).sum::<u32>() % 11;
            (sum([1, 2, 3, 4, 5, 6, 7, 8, 9, 1]) == 10 && sum([3, 4, 5, 6, 7, 8, 9, 1, 2, 3]) == 10)
                .then_some(ten)
        });
        let ten = found.expect("such a serial exists for this date");
        assert!(with_check(&ten).ends_with('0'));
        assert!(parse(&with_check(&ten)).is_ok());
        assert!(
            parse(&with_check("3850230001")).is_err(),
            "1985-02-30 does not exist"
        );
    }

    #[test]
    fn refusals_say_why() {
        assert!(matches!(parse("1234"), Err(CodeError::Shape(_))));
        assert!(matches!(parse("3330924006x"), Err(CodeError::Shape(_))));
        assert!(matches!(
            parse("33309240065"),
            Err(CodeError::Checksum { expected: 4, .. })
        ));
        assert!(matches!(
            parse(&with_check("7850712001")),
            Err(CodeError::Century(_))
        ));
        assert!(matches!(
            parse(&with_check("3850230001")),
            Err(CodeError::Date { .. })
        ));
        assert!(matches!(
            parse(&with_check("3851301001")),
            Err(CodeError::Date { .. })
        ));
    }

    #[test]
    fn unusual_codes_pass_with_a_warning() {
        let p = parse(&with_check("3850700001")).unwrap();
        assert!(p.warning.is_some());
        assert_eq!(p.birth_date, "19850700");
        let p = parse(&with_check("9000000001")).unwrap();
        assert!(p.warning.is_some());
        assert_eq!(p.sex, "");
    }
}
