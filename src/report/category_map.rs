//! Which diagnosis categories mean the same thing, for concordance (`wsiview consolidate`).
//!
//! Sites in one network do not all use the same vocabulary: one reports a breast core as "B5a",
//! another as "malignant". A [`CategoryMap`] sends each category (trimmed, case ignored) to a
//! *group*; two reports of a slide agree when their categories are equal or their groups are.
//!
//! The built-in map ([`BUILT_IN`]) is deliberately small — five groups, ordered from least to most
//! worrying:
//!
//! | group                  | categories                                                           |
//! |------------------------|----------------------------------------------------------------------|
//! | `normal_or_inadequate` | B1, C1, non-diagnostic, nondiagnostic, inadequate, unsatisfactory     |
//! | `benign`               | B2, C2, benign, negative                                              |
//! | `uncertain`            | B3, C3, uncertain, atypical, atypia, indeterminate                    |
//! | `suspicious`           | B4, C4, suspicious                                                    |
//! | `malignant`            | B5, B5a, B5b, B5c, C5, malignant, positive                            |
//!
//! Why these groups: they are the five tiers the UK breast B-codes (and the C-codes of breast
//! cytology) already define, and the common word scales fold into them without loss. B1 covers
//! both normal tissue and an unsatisfactory sample, so it cannot be split: "inadequate" and
//! "non-diagnostic" join it in `normal_or_inadequate` rather than making B1 against "inadequate"
//! a disagreement. B5a (in situ), B5b (invasive) and B5c (not assessable) are all `malignant`:
//! concordance asks whether sites agree on the tier, and a B5a/B5b difference is a grading
//! question the pairs list cannot settle. "Normal" alone is not mapped: whether it means B1 or
//! benign differs between sites.
//!
//! A site's own file (`--category-map FILE`) extends the built-in map and overrides it where they
//! name the same category; mapping a category to `null` removes it, so it is not comparable.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a category map's content is not usable (without the file name).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidCategoryMap {
    /// Not parseable as JSON (serde's message names line and column).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// The top level is not an object.
    #[error("expected an object {{\"groups\": {{...}}}}")]
    NotObject,
    /// A top-level key other than `groups` and `comment`.
    #[error("unknown key {0:?} (expected \"groups\" and optionally \"comment\")")]
    UnknownKey(String),
    /// No `groups` object.
    #[error("no \"groups\" object mapping categories to groups")]
    NoGroups,
    /// A category name that is empty once trimmed.
    #[error("an empty category name")]
    EmptyCategory,
    /// A category mapped to an empty group name.
    #[error("category {0:?} has an empty group")]
    EmptyGroup(String),
    /// A category mapped to something other than a string or `null`.
    #[error("category {category:?}: group {value} is not a string or null")]
    NotAGroup {
        /// The category as written.
        category: String,
        /// The value found, as JSON.
        value: String,
    },
    /// Two spellings of one category (case is ignored) mapped to different groups.
    #[error("categories {first:?} and {second:?} are the same (case is ignored) but map to different groups")]
    Conflict {
        /// The first spelling.
        first: String,
        /// The second spelling.
        second: String,
    },
}

/// Why a category map file (`--category-map FILE`) cannot be used. Names the file.
#[derive(Debug, thiserror::Error)]
pub enum CategoryMapError {
    /// The file could not be opened or read.
    #[error("{}: category map: cannot read: {error}", path.display())]
    Io {
        /// The map file.
        path: PathBuf,
        /// What the system said.
        error: std::io::Error,
    },
    /// Larger than [`Limits::category_map_bytes`](crate::Limits::category_map_bytes): not read.
    #[error("{}: category map: larger than {} MiB", path.display(), crate::Limits::DEFAULT.category_map_bytes >> 20)]
    TooLarge {
        /// The map file.
        path: PathBuf,
    },
    /// Read, but not a valid map.
    #[error("{}: category map: {problem}", path.display())]
    Invalid {
        /// The map file.
        path: PathBuf,
        /// What is wrong with it.
        problem: InvalidCategoryMap,
    },
}

/// The built-in map: (category, group). See the module documentation for why.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("B1", "normal_or_inadequate"),
    ("C1", "normal_or_inadequate"),
    ("non-diagnostic", "normal_or_inadequate"),
    ("nondiagnostic", "normal_or_inadequate"),
    ("inadequate", "normal_or_inadequate"),
    ("unsatisfactory", "normal_or_inadequate"),
    ("B2", "benign"),
    ("C2", "benign"),
    ("benign", "benign"),
    ("negative", "benign"),
    ("B3", "uncertain"),
    ("C3", "uncertain"),
    ("uncertain", "uncertain"),
    ("atypical", "uncertain"),
    ("atypia", "uncertain"),
    ("indeterminate", "uncertain"),
    ("B4", "suspicious"),
    ("C4", "suspicious"),
    ("suspicious", "suspicious"),
    ("B5", "malignant"),
    ("B5a", "malignant"),
    ("B5b", "malignant"),
    ("B5c", "malignant"),
    ("C5", "malignant"),
    ("malignant", "malignant"),
    ("positive", "malignant"),
];

/// Categories and groups are compared trimmed and ignoring case.
pub fn normalise(text: &str) -> String {
    text.trim().to_lowercase()
}

/// Category (normalised) → group (normalised), and where the map came from.
#[derive(Clone, Debug, PartialEq)]
pub struct CategoryMap {
    groups: BTreeMap<String, String>,
    /// "built-in", or "built-in, extended by FILE".
    pub source: String,
}

impl Default for CategoryMap {
    fn default() -> Self {
        CategoryMap::built_in()
    }
}

impl CategoryMap {
    /// The map wsiview ships ([`BUILT_IN`]: five groups, B1–B5/C1–C5 and the common words),
    /// normalised; `source` is `"built-in"`. Also [`CategoryMap::default`].
    pub fn built_in() -> CategoryMap {
        let groups = BUILT_IN.iter().map(|(category, group)| (normalise(category), normalise(group))).collect();
        CategoryMap { groups, source: "built-in".into() }
    }

    /// The group of a category, compared trimmed and ignoring case; None when it is not mapped.
    pub fn group(&self, category: &str) -> Option<&str> {
        self.groups.get(&normalise(category)).map(String::as_str)
    }

    /// Every mapping, category → group, both normalised, sorted by category.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str)> {
        self.groups.iter().map(|(c, g)| (c.as_str(), g.as_str()))
    }

    /// The built-in map extended by `file` (see [`CategoryMap::extend_from_json`]). The error is
    /// one line naming the file.
    pub fn built_in_extended_by(file: &Path) -> Result<CategoryMap, CategoryMapError> {
        let mut bytes = Vec::new();
        crate::files::open_regular(file)
            .and_then(|f| f.take(crate::Limits::DEFAULT.category_map_bytes + 1).read_to_end(&mut bytes))
            .map_err(|error| CategoryMapError::Io { path: file.to_path_buf(), error })?;
        if bytes.len() as u64 > crate::Limits::DEFAULT.category_map_bytes {
            return Err(CategoryMapError::TooLarge { path: file.to_path_buf() });
        }
        let mut map = CategoryMap::built_in();
        map.extend_from_json(&bytes)
            .map_err(|problem| CategoryMapError::Invalid { path: file.to_path_buf(), problem })?;
        map.source = format!("built-in, extended by {}", file.display());
        Ok(map)
    }

    /// Add the mappings of a map file: `{"groups": {"CATEGORY": "GROUP" | null, ...}}`, with an
    /// optional `"comment"` string. A category already mapped takes the file's group; `null`
    /// removes it. Names are trimmed and case is ignored; empty names, other value types, other
    /// keys, and one category given two different groups (e.g. "B5a" and "b5a") are errors.
    pub fn extend_from_json(&mut self, bytes: &[u8]) -> Result<(), InvalidCategoryMap> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| InvalidCategoryMap::NotJson(crate::error::printable(&e.to_string())))?;
        let Value::Object(top) = value else {
            return Err(InvalidCategoryMap::NotObject);
        };
        if let Some(key) = top.keys().find(|k| !matches!(k.as_str(), "groups" | "comment")) {
            return Err(InvalidCategoryMap::UnknownKey(key.clone()));
        }
        let Some(Value::Object(entries)) = top.get("groups") else {
            return Err(InvalidCategoryMap::NoGroups);
        };
        let mut seen: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
        for (category, group) in entries {
            let key = normalise(category);
            if key.is_empty() {
                return Err(InvalidCategoryMap::EmptyCategory);
            }
            let group = match group {
                Value::Null => None,
                Value::String(g) if !g.trim().is_empty() => Some(normalise(g)),
                Value::String(_) => return Err(InvalidCategoryMap::EmptyGroup(category.clone())),
                other => {
                    return Err(InvalidCategoryMap::NotAGroup {
                        category: category.clone(),
                        value: crate::error::printable(&other.to_string()),
                    })
                }
            };
            if let Some((first, earlier)) = seen.get(&key) {
                if *earlier != group {
                    return Err(InvalidCategoryMap::Conflict { first: first.clone(), second: category.clone() });
                }
            }
            seen.insert(key, (category.clone(), group));
        }
        for (key, (_, group)) in seen {
            match group {
                Some(group) => self.groups.insert(key, group),
                None => self.groups.remove(&key),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_map_groups_b_codes_c_codes_and_words() {
        let map = CategoryMap::built_in();
        assert_eq!(map.group(" b5A "), Some("malignant"));
        assert_eq!(map.group("Malignant"), Some("malignant"));
        assert_eq!(map.group("positive"), Some("malignant"));
        assert_eq!(map.group("B2"), Some("benign"));
        assert_eq!(map.group("negative"), Some("benign"));
        assert_eq!(map.group("C3"), Some("uncertain"));
        assert_eq!(map.group("atypical"), Some("uncertain"));
        assert_eq!(map.group("B4"), Some("suspicious"));
        assert_eq!(map.group("B1"), Some("normal_or_inadequate"));
        assert_eq!(map.group("inadequate"), Some("normal_or_inadequate"));
        assert_eq!(map.group("normal"), None, "ambiguous between sites: not mapped");
        assert_eq!(map.group("weird"), None);
        assert_eq!(map.entries().count(), BUILT_IN.len(), "no category listed twice");
    }

    #[test]
    fn a_file_extends_overrides_and_removes() {
        let mut map = CategoryMap::built_in();
        let file = br#"{"comment": "RLH codes", "groups": {"B3": "Suspicious", "IDC": "malignant", "positive": null}}"#;
        map.extend_from_json(file).expect("valid");
        assert_eq!(map.group("b3"), Some("suspicious"), "overridden, group case ignored");
        assert_eq!(map.group("idc"), Some("malignant"), "added");
        assert_eq!(map.group("positive"), None, "removed");
        assert_eq!(map.group("B5a"), Some("malignant"), "the rest of the built-in map stays");
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let err = |bytes: &[u8]| CategoryMap::built_in().extend_from_json(bytes).unwrap_err().to_string();
        assert!(err(b"{").starts_with("not JSON"));
        assert!(err(b"[]").contains("expected an object"));
        assert!(err(br#"{"group": {}}"#).contains("unknown key \"group\""));
        assert!(err(br#"{"comment": "x"}"#).contains("no \"groups\""));
        assert!(err(br#"{"groups": {"B5a": 5}}"#).contains("\"B5a\": group 5 is not a string"));
        assert!(err(br#"{"groups": {"B5a": " "}}"#).contains("empty group"));
        assert!(err(br#"{"groups": {" ": "x"}}"#).contains("empty category"));
        assert!(err(br#"{"groups": {"B5a": "x", "b5a": "y"}}"#).contains("map to different groups"));
        let same = CategoryMap::built_in().extend_from_json(br#"{"groups": {"B5a": "x", "b5A ": "X"}}"#);
        assert!(same.is_ok(), "the same mapping twice is not a conflict");
    }

    #[test]
    fn files_are_bounded_and_errors_name_them() {
        let dir = tempfile::tempdir().expect("temp");
        let big = dir.path().join("big.json");
        std::fs::write(&big, vec![b' '; (crate::Limits::DEFAULT.category_map_bytes + 1) as usize]).expect("write");
        let err = CategoryMap::built_in_extended_by(&big).unwrap_err().to_string();
        assert!(err.contains("big.json: category map: larger than 1 MiB"), "{err}");
        let missing = dir.path().join("absent.json");
        let err = CategoryMap::built_in_extended_by(&missing).unwrap_err().to_string();
        assert!(err.contains("absent.json: category map: cannot read"), "{err}");
        let good = dir.path().join("map.json");
        std::fs::write(&good, br#"{"groups": {"X1": "benign"}}"#).expect("write");
        let map = CategoryMap::built_in_extended_by(&good).expect("valid");
        assert_eq!(map.group("x1"), Some("benign"));
        assert!(map.source.starts_with("built-in, extended by ") && map.source.ends_with("map.json"));
    }
}
