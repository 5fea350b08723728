//! Text written into documents: HTML and XML escaping, CSV fields, grouped digits. One definition of each for the
//! whole crate (report pages, consolidation summaries, ASAP XML, measurement tables).
//!
//! Imports nothing of the crate.

#![warn(missing_docs)]

/// Escape text for HTML or XML content and attribute values: `& < > " '` as references
/// (`&#39;` for the apostrophe, which both HTML 4 and XML 1.0 know). Control characters that
/// XML 1.0 cannot hold at all (below U+0020 other than tab, line feed and carriage return, and
/// U+FFFE/U+FFFF) are dropped; tab and line breaks are kept as they are.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180 section 2).
pub fn csv_field(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_csv_field(&mut out, text);
    out
}

/// [`csv_field`] appended to `out` (no allocation for a field that needs no quotes).
pub fn push_csv_field(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    if memchr::memchr3(b',', b'"', b'\n', bytes).is_some() || memchr::memchr(b'\r', bytes).is_some() {
        out.push('"');
        for part in text.split('"').enumerate() {
            if part.0 > 0 {
                out.push_str("\"\"");
            }
            out.push_str(part.1);
        }
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Text from another source (a report from another hospital) as a CSV field that a spreadsheet
/// shows as text: a cell beginning with `=`, `+`, `-`, `@`, tab or carriage return would run as a
/// formula, so it gets a leading apostrophe (OWASP "CSV injection"), then [`csv_field`].
pub fn csv_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_csv_text(&mut out, text);
    out
}

/// [`csv_text`] appended to `out`.
pub fn push_csv_text(out: &mut String, text: &str) {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        push_csv_field(out, &format!("'{text}"));
    } else {
        push_csv_field(out, text);
    }
}

/// Digits in groups of three: 1234567 → "1,234,567". Counts, sizes and measurements are shown
/// this way in the viewer and on the report page (one helper, so both read the same).
pub fn group_digits(n: u64) -> String {
    group_integer_text(&n.to_string())
}

/// A run of ASCII digits with a comma before every third from the right.
fn group_integer_text(digits: &str) -> String {
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

/// 12345.678 → "12,345.7" (one decimal; measurement precision beyond that is noise). Not finite
/// values are shown as Rust prints them ("NaN", "inf").
pub fn group_thousands(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v:.1}");
    }
    let s = format!("{:.1}", v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "0"));
    let grouped = group_integer_text(int);
    // "-0.0" would read as a negative measurement.
    let negative = v < 0.0 && s != "0.0";
    format!("{}{grouped}.{frac}", if negative { "-" } else { "" })
}

/// `%XX`-decoded text of a URL part (user information, a path segment); `None` when an escape is
/// malformed or the result is not UTF-8 (RFC 3986 section 2.1). Shared by DICOMweb credentials
/// and registry URIs.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped_and_xml_illegal_characters_dropped() {
        assert_eq!(escape_markup("<script>a&b</script>"), "&lt;script&gt;a&amp;b&lt;/script&gt;");
        assert_eq!(escape_markup("\"x\" 'y'"), "&quot;x&quot; &#39;y&#39;");
        assert_eq!(escape_markup("a\u{1}b\u{fffe}\tc\nd"), "ab\tc\nd");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_text("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(csv_text("-1,2"), "\"'-1,2\"");
        assert_eq!(csv_text("B5b"), "B5b");
    }

    #[test]
    fn thousands() {
        assert_eq!(group_thousands(1234567.891), "1,234,567.9");
        assert_eq!(group_thousands(12.0), "12.0");
        assert_eq!(group_thousands(999.96), "1,000.0");
        assert_eq!(group_thousands(-1000.0), "-1,000.0");
        assert_eq!(group_thousands(-0.01), "0.0");
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(12345), "12,345");
        assert_eq!(group_digits(1_000_000), "1,000,000");
    }
}
