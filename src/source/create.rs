//! Creating new migration files (`strata new`) in the directory's layout.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Format, Migration};

/// Why a migration could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name has no usable characters.
    #[error(
        "migration name `{0}` has no letters or digits\n  help: use a name like add_users_table"
    )]
    BadName(String),
    /// A file would be overwritten.
    #[error("{0} already exists\n  help: pick another name, or wait a second for a new timestamp")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Turns "Add users table!" into `add_users_table`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_owned()
}

/// The next version: a UTC timestamp `YYYYMMDDHHMMSS`, or, where the
/// directory already uses zero-padded sequential numbers, the next number
/// with the same width.
pub fn next_version(existing: &[Migration], now: DateTime<Utc>) -> String {
    let versioned: Vec<&str> = existing
        .iter()
        .filter(|m| m.kind == super::MigrationKind::Versioned)
        .map(|m| m.version.as_str())
        .collect();
    let sequential = !versioned.is_empty()
        && versioned
            .iter()
            .all(|v| v.len() < 14 && v.bytes().all(|b| b.is_ascii_digit()))
        && versioned.iter().any(|v| v.starts_with('0'));
    if sequential {
        let width = versioned.iter().map(|v| v.len()).max().unwrap_or(4);
        let next = versioned
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        return format!("{next:0width$}");
    }
    now.format("%Y%m%d%H%M%S").to_string()
}

/// Creates the files of a new migration and returns their paths.
pub fn create(
    dir: &Path,
    format: Format,
    existing: &[Migration],
    name: &str,
    now: DateTime<Utc>,
) -> Result<Vec<PathBuf>, CreateError> {
    let slug = slug(name);
    if slug.is_empty() {
        return Err(CreateError::BadName(name.to_owned()));
    }
    let version = next_version(existing, now);
    let up_body = format!("-- Migration: {name}\n-- Write the forward change here.\n");
    let down_body = format!("-- Revert: {name}\n-- Undo the forward change here.\n");
    let files: Vec<(PathBuf, String)> = match format {
        Format::Native | Format::Sqlx => vec![
            (dir.join(format!("{version}_{slug}.up.sql")), up_body),
            (dir.join(format!("{version}_{slug}.down.sql")), down_body),
        ],
        Format::Goose => vec![(
            dir.join(format!("{version}_{slug}.sql")),
            format!("-- +goose Up\n{up_body}\n-- +goose Down\n{down_body}"),
        )],
        Format::Diesel => {
            let folder = dir.join(format!("{}_{slug}", now.format("%Y-%m-%d-%H%M%S")));
            vec![
                (folder.join("up.sql"), up_body),
                (folder.join("down.sql"), down_body),
            ]
        }
        Format::Flyway => {
            let v = if existing.is_empty() {
                "1".to_owned()
            } else {
                flyway_next(existing)
            };
            vec![
                (dir.join(format!("V{v}__{slug}.sql")), up_body),
                (dir.join(format!("U{v}__{slug}.sql")), down_body),
            ]
        }
    };
    for (path, _) in &files {
        if path.exists() {
            return Err(CreateError::Exists(path.clone()));
        }
    }
    for (path, body) in &files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CreateError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(path, body).map_err(|source| CreateError::Io {
            path: path.clone(),
            source,
        })?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}

fn flyway_next(existing: &[Migration]) -> String {
    let major = existing
        .iter()
        .filter_map(|m| m.version.as_str().split('.').next()?.parse::<u128>().ok())
        .max()
        .unwrap_or(0);
    // After the largest major Flyway can have, the next minor (never a panic).
    major
        .checked_add(1)
        .map_or_else(|| format!("{major}.1"), |next| next.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Add users table!"), "add_users_table");
        assert_eq!(slug("  --  "), "");
    }

    #[test]
    fn continues_zero_padded_sequences_and_defaults_to_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let now = DateTime::parse_from_rfc3339("2024-03-05T06:07:08Z")
            .unwrap()
            .with_timezone(&Utc);
        let first = create(dir.path(), Format::Native, &[], "init", now).unwrap();
        assert!(first[0].ends_with("20240305060708_init.up.sql"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("0007_x.up.sql"), "SELECT 1;").unwrap();
        let loaded = crate::source::load(dir.path(), None);
        let files = create(
            dir.path(),
            Format::Native,
            &loaded.migrations,
            "next one",
            now,
        )
        .unwrap();
        assert!(files[0].ends_with("0008_next_one.up.sql"), "{files:?}");
        assert!(files[1].ends_with("0008_next_one.down.sql"));
    }
}
