//! Migration versions and their ordering.
//!
//! Each layout orders versions the way its own tool does: golang-migrate,
//! goose and sqlx compare integers (so `0002` and `2` are the same version and
//! `10` sorts after `9`); Flyway compares dotted numbers part by part
//! (`1.10` after `1.9`, and `1.0` equal to `1`); diesel compares the version
//! *string* (the name up to the first `_`, dashes removed), which is why
//! projects that mix 14- and 18-digit versions sort lexicographically there.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// How a version compares with others of the same layout.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum VersionKey {
    /// Numeric parts with trailing zero parts removed (`1.0` → `[1]`).
    Numeric(Vec<u128>),
    /// Compared as a string (diesel, and the description of repeatables).
    Text(String),
}

/// A migration version: the text as written plus the key it sorts by.
/// (Serialized for embedded migrations, see `super::embedded`.)
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Version {
    text: String,
    key: VersionKey,
}

impl Version {
    /// An integer version (golang-migrate, goose, sqlx).
    pub fn integer(text: &str) -> Option<Version> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let value: u128 = text.parse().ok()?;
        Some(Version {
            text: text.to_owned(),
            key: VersionKey::Numeric(trim_zero_parts(vec![value])),
        })
    }

    /// A Flyway version: numbers separated by `.` or `_`.
    pub fn dotted(text: &str) -> Option<Version> {
        let parts: Option<Vec<u128>> = text
            .split(['.', '_'])
            .map(|part| {
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    None
                } else {
                    part.parse().ok()
                }
            })
            .collect();
        Some(Version {
            text: text.replace('_', "."),
            key: VersionKey::Numeric(trim_zero_parts(parts?)),
        })
    }

    /// A diesel version: the text with dashes removed, compared as a string.
    pub fn diesel(text: &str) -> Option<Version> {
        let stripped: String = text.chars().filter(|c| *c != '-').collect();
        if stripped.is_empty() || !stripped.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Version {
            text: stripped.clone(),
            key: VersionKey::Text(stripped),
        })
    }

    /// The pseudo-version of a repeatable migration: its description.
    pub fn repeatable(description: &str) -> Version {
        Version {
            text: description.to_owned(),
            key: VersionKey::Text(description.to_owned()),
        }
    }

    /// The version as written in the file name.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The key this version sorts by.
    pub fn key(&self) -> &VersionKey {
        &self.key
    }

    /// The form stored in the history table. Two spellings of one version
    /// (`0002` and `2`) have the same canonical form.
    pub fn canonical(&self) -> String {
        match &self.key {
            VersionKey::Numeric(parts) => parts
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("."),
            VersionKey::Text(text) => text.clone(),
        }
    }
}

fn trim_zero_parts(mut parts: Vec<u128>) -> Vec<u128> {
    while parts.len() > 1 && parts.last() == Some(&0) {
        parts.pop();
    }
    parts
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut versions: Vec<Version>) -> Vec<String> {
        versions.sort();
        versions.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn integers_sort_numerically_and_ignore_zero_padding() {
        let v = |s| Version::integer(s).unwrap();
        assert_eq!(
            sorted(vec![v("10"), v("9"), v("0002")]),
            ["0002", "9", "10"]
        );
        assert_eq!(v("0002"), v("2"));
        assert_eq!(v("0002").canonical(), "2");
        assert!(Version::integer("12a").is_none());
    }

    #[test]
    fn flyway_versions_compare_part_by_part() {
        let v = |s| Version::dotted(s).unwrap();
        assert_eq!(
            sorted(vec![v("1.10"), v("1.9"), v("2"), v("1_1")]),
            ["1.1", "1.9", "1.10", "2"]
        );
        assert_eq!(v("1.0"), v("1"));
        assert_eq!(v("13.1").canonical(), "13.1");
        assert!(Version::dotted("1..2").is_none());
    }

    #[test]
    fn diesel_versions_compare_as_strings_without_dashes() {
        let v = |s| Version::diesel(s).unwrap();
        // 14- and 18-digit versions mixed: diesel compares the strings.
        assert_eq!(
            sorted(vec![
                v("2023-05-01-120000"),
                v("2023-05-01-120000-1234"),
                v("2022-12-31-235959"),
                v("00000000000000"),
            ]),
            [
                "00000000000000",
                "20221231235959",
                "20230501120000",
                "202305011200001234"
            ]
        );
    }
}
