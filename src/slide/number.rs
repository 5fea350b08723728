//! Numbers in vendor metadata (Aperio `key = value` pairs, OME-XML attributes, the XML of other
//! scanners), as the scanner's locale wrote them. One parser for all of them, so that
//! `MPP = 0,500000` (ImageScope under a comma-decimal locale) reads as 0.5, as OpenSlide 4 reads
//! it, and what cannot be read is said, not silently dropped.
//!
//! The rule: a plain decimal number (`0.5`, `20`, `2.5e-1`, leading and trailing spaces ignored)
//! reads as written. A number with one comma and no dot (`0,5`, `0,500000`) has a decimal comma:
//! the writers of slide metadata print numbers with `printf`-style formatting, which never groups
//! thousands, so the comma can only be the decimal separator. Anything else (`1,234.5`, `1.234,5`,
//! `0,5,1`, text, infinities, NaN) is refused with the reason.

/// Why a metadata value is not a usable number. Displayed as one line for a
/// `wsiview.warning.*` property; text quoted from the file is made printable
/// ([`crate::error::printable`]).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NumberError {
    /// The value is empty or only spaces.
    #[error("empty value")]
    Empty,
    /// More than one comma, or a comma and a dot (`1,234.5`, `1.234,5`): the decimal separator
    /// cannot be told. Holds the value as written (printable).
    #[error("\"{0}\" is not a number (ambiguous separators)")]
    AmbiguousSeparators(String),
    /// Not a finite decimal number (text, `inf`, `NaN`, an overflow). Holds the value as written.
    #[error("\"{0}\" is not a number")]
    NotANumber(String),
    /// A number, but zero or negative where a positive one is needed.
    #[error("{0} is not positive")]
    NotPositive(f64),
}

/// Read a number from vendor metadata; `Err` says why it is not one (for a warning property).
pub fn parse_vendor_number(text: &str) -> Result<f64, NumberError> {
    let t = text.trim();
    let quoted = crate::error::printable(t);
    if t.is_empty() {
        return Err(NumberError::Empty);
    }
    let commas = t.matches(',').count();
    let normalised = match (commas, t.contains('.')) {
        (0, _) => t.to_string(),
        (1, false) => t.replace(',', "."),
        _ => return Err(NumberError::AmbiguousSeparators(quoted)),
    };
    // Only digits, one sign, one decimal point and an exponent: `str::parse` alone would also take
    // "inf" and "NaN".
    let plain = normalised.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    match normalised.parse::<f64>() {
        Ok(v) if plain && v.is_finite() => Ok(v),
        _ => Err(NumberError::NotANumber(quoted)),
    }
}

/// A positive number from vendor metadata (a pixel size, a magnification).
pub fn parse_positive(text: &str) -> Result<f64, NumberError> {
    let v = parse_vendor_number(text)?;
    if v > 0.0 {
        Ok(v)
    } else {
        Err(NumberError::NotPositive(v))
    }
}

/// [`parse_positive`], or `None` with a `wsiview.warning.KEY` property in `values` saying why
/// the value of `key` was not used.
pub fn positive_or_warn(text: &str, key: &str, values: &mut std::collections::BTreeMap<String, String>) -> Option<f64> {
    match parse_positive(text) {
        Ok(v) => Some(v),
        Err(why) => {
            values.insert(format!("wsiview.warning.{key}"), format!("not used: {why}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_points_and_commas() {
        for (text, value) in [
            ("0.5", 0.5),
            (" 0.499 ", 0.499),
            ("20", 20.0),
            ("0,500000", 0.5),
            ("0,2527", 0.2527),
            ("40,0", 40.0),
            ("2.5e-1", 0.25),
            ("2,5e-1", 0.25),
            ("-1,5", -1.5),
        ] {
            assert_eq!(parse_vendor_number(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn what_cannot_be_read_says_why() {
        for text in ["", "  ", "1,234.5", "1.234,5", "0,5,1", "abc", "inf", "NaN", "0.5µm", "1e999"] {
            assert!(parse_vendor_number(text).is_err(), "{text:?} was read");
        }
        assert!(parse_vendor_number("1.234,5").unwrap_err().to_string().contains("ambiguous"));
        assert!(parse_positive("0").unwrap_err().to_string().contains("not positive"));
        assert!(parse_positive("-0,25").is_err());
        // Control bytes from the file are escaped in the message.
        assert!(!parse_vendor_number("0\u{1e}5").unwrap_err().to_string().contains('\u{1e}'));
    }
}
