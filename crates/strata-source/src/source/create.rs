//! Creating new migration files (`strata new`) in the directory's layout.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Format, Migration};

mod templates;

pub use templates::Kind;

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
    /// `--sequential` (or `numbering = "sequential"`) in a directory whose
    /// versions are not small numbers.
    #[error("cannot number the migration sequentially: the directory already uses version `{0}`\n  help: sequential numbers (0001, 0002, …) can start only in an empty directory or continue a sequence; drop --sequential (or `numbering = \"sequential\"` in strata.toml)")]
    NotSequential(String),
    /// `--pattern` could not generate a plan from the flags given.
    #[error(transparent)]
    Pattern(#[from] crate::plan::generate::PatternError),
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

/// How `strata new` numbers a migration (`numbering` in strata.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Numbering {
    /// Continue what the directory uses; an empty directory gets a timestamp.
    #[default]
    Auto,
    /// Always a UTC timestamp `YYYYMMDDHHMMSS`.
    Timestamp,
    /// Zero-padded sequential numbers: an empty directory starts at `0001`.
    Sequential,
}

impl Numbering {
    /// Parses the value of `numbering` in strata.toml.
    pub fn from_name(name: &str) -> Option<Numbering> {
        match name {
            "auto" => Some(Numbering::Auto),
            "timestamp" => Some(Numbering::Timestamp),
            "sequential" => Some(Numbering::Sequential),
            _ => None,
        }
    }
}

/// What to create besides the name.
#[derive(Debug, Clone, Copy, Default)]
pub struct NewOptions {
    /// A typed template (`--type`); `None` writes empty scripts to fill in.
    pub kind: Option<Kind>,
    /// How to number the migration.
    pub numbering: Numbering,
}

/// Width of the first sequential number in an empty directory (`0001`).
const SEQUENTIAL_WIDTH: usize = 4;

/// The next version: a UTC timestamp `YYYYMMDDHHMMSS`, or, where the
/// directory already uses zero-padded sequential numbers (or `numbering`
/// asks for them), the next number with the same width.
///
/// `on_disk` are the version prefixes of the directory's entries: a file
/// that does not load yet (an unfilled goose file from the last `new`)
/// still holds its number.
pub fn next_version(
    existing: &[Migration],
    on_disk: &[String],
    now: DateTime<Utc>,
    numbering: Numbering,
) -> Result<String, CreateError> {
    let mut versioned: Vec<&str> = existing
        .iter()
        .filter(|m| m.kind == super::MigrationKind::Versioned)
        .map(|m| m.version.as_str())
        .chain(on_disk.iter().map(String::as_str))
        .collect();
    versioned.sort_unstable();
    versioned.dedup();
    let small_numbers = versioned
        .iter()
        .all(|v| v.len() < 14 && v.bytes().all(|b| b.is_ascii_digit()));
    let sequential = match numbering {
        Numbering::Timestamp => false,
        Numbering::Auto => {
            !versioned.is_empty() && small_numbers && versioned.iter().any(|v| v.starts_with('0'))
        }
        Numbering::Sequential if small_numbers => true,
        Numbering::Sequential => {
            let example = versioned
                .iter()
                .find(|v| v.len() >= 14 || !v.bytes().all(|b| b.is_ascii_digit()))
                .copied()
                .unwrap_or_default();
            return Err(CreateError::NotSequential(example.to_owned()));
        }
    };
    if sequential {
        let width = versioned
            .iter()
            .map(|v| v.len())
            .max()
            .unwrap_or(SEQUENTIAL_WIDTH);
        let next = versioned
            .iter()
            .filter_map(|v| v.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| CreateError::NotSequential(u64::MAX.to_string()))?;
        return Ok(format!("{next:0width$}"));
    }
    Ok(now.format("%Y%m%d%H%M%S").to_string())
}

/// Creates the files of a new migration and returns their paths.
pub fn create(
    dir: &Path,
    format: Format,
    existing: &[Migration],
    name: &str,
    now: DateTime<Utc>,
    options: NewOptions,
) -> Result<Vec<PathBuf>, CreateError> {
    let slug = slug(name);
    if slug.is_empty() {
        return Err(CreateError::BadName(name.to_owned()));
    }
    let files = files(dir, format, existing, name, &slug, now, options)?;
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

/// Writes a generated plan (`strata new NAME --pattern …`) as
/// `<version>_<name>.plan.toml`, numbered as the directory numbers new
/// migrations, and returns its path. `text` is the plan (see
/// [`crate::plan::generate`]).
pub fn create_plan(
    dir: &Path,
    format: Format,
    existing: &[Migration],
    name: &str,
    now: DateTime<Utc>,
    numbering: Numbering,
    text: &str,
) -> Result<PathBuf, CreateError> {
    let slug = slug(name);
    if slug.is_empty() {
        return Err(CreateError::BadName(name.to_owned()));
    }
    // A plan's version is digits before the first `_` in every layout
    // (`plans::load`): Flyway's next number without its `V`, diesel's
    // timestamp without dashes.
    let version = match format {
        Format::Flyway if existing.is_empty() => "1".to_owned(),
        Format::Flyway => flyway_next(existing),
        _ => next_version(existing, &versions_on_disk(dir), now, numbering)?,
    };
    let path = dir.join(format!("{version}_{slug}{}", super::plans::SUFFIX));
    if path.exists() {
        return Err(CreateError::Exists(path));
    }
    std::fs::create_dir_all(dir).map_err(|source| CreateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    std::fs::write(&path, text).map_err(|source| CreateError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The leading version digits of every entry of `dir` (`0003_x.sql`,
/// `2024-01-01-120000_x/` without its dashes).
fn versions_on_disk(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (prefix, _) = name.split_once('_')?;
            let digits = prefix.replace('-', "");
            (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
        })
        .collect()
}

/// The description line that starts every new migration: the name in
/// words (`add_users_table` → `Add users table`). `strata changelog` shows
/// the first comment paragraph of the up script as the description.
fn title(slug: &str) -> String {
    let words = slug.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// The up and down texts of a migration, without layout directives.
fn bodies(name: &str, slug: &str, kind: Option<Kind>, goose: bool) -> (String, String) {
    match kind {
        None => (
            format!("-- Migration: {name}\n-- Write the forward change here.\n"),
            format!("-- Revert: {name}\n-- Undo the forward change here.\n"),
        ),
        Some(kind) => {
            let t = templates::template(kind);
            let title = title(slug);
            (
                format!("-- {title}\n\n{}", templates::render(&t.up, goose)),
                format!(
                    "-- Revert: {title}\n\n{}",
                    templates::render(&t.down, goose)
                ),
            )
        }
    }
}

/// Every file to write: (path, content).
fn files(
    dir: &Path,
    format: Format,
    existing: &[Migration],
    name: &str,
    slug: &str,
    now: DateTime<Utc>,
    options: NewOptions,
) -> Result<Vec<(PathBuf, String)>, CreateError> {
    let on_disk = versions_on_disk(dir);
    let next = |numbering| next_version(existing, &on_disk, now, numbering);
    let no_tx = options
        .kind
        .is_some_and(|k| templates::template(k).no_transaction);
    let (up_body, down_body) = bodies(name, slug, options.kind, format == Format::Goose);
    // Each layout's own way to run a file outside a transaction, so that its
    // original tool does the same as Strata.
    let directive = |line: &str, body: String| -> String {
        if no_tx {
            format!("{line}\n{body}")
        } else {
            body
        }
    };
    Ok(match format {
        Format::Native | Format::Sqlx => {
            let version = next(options.numbering)?;
            let line = if format == Format::Sqlx {
                "-- no-transaction"
            } else {
                "-- strata:no-transaction"
            };
            vec![
                (
                    dir.join(format!("{version}_{slug}.up.sql")),
                    directive(line, up_body),
                ),
                (
                    dir.join(format!("{version}_{slug}.down.sql")),
                    directive(line, down_body),
                ),
            ]
        }
        Format::Goose => {
            let version = next(options.numbering)?;
            let text = format!("-- +goose Up\n{up_body}\n-- +goose Down\n{down_body}");
            vec![(
                dir.join(format!("{version}_{slug}.sql")),
                directive("-- +goose NO TRANSACTION", text),
            )]
        }
        Format::Dbmate => {
            let version = next(options.numbering)?;
            let option = if no_tx { " transaction:false" } else { "" };
            vec![(
                dir.join(format!("{version}_{slug}.sql")),
                format!("-- migrate:up{option}\n{up_body}\n-- migrate:down{option}\n{down_body}"),
            )]
        }
        Format::Diesel => {
            // diesel's own generator writes timestamps with dashes.
            let mut version = next(options.numbering)?;
            if version == now.format("%Y%m%d%H%M%S").to_string() {
                version = now.format("%Y-%m-%d-%H%M%S").to_string();
            }
            let folder = dir.join(format!("{version}_{slug}"));
            let mut files = vec![
                (folder.join("up.sql"), up_body),
                (folder.join("down.sql"), down_body),
            ];
            if no_tx {
                files.push((
                    folder.join("metadata.toml"),
                    "run_in_transaction = false\n".to_owned(),
                ));
            }
            files
        }
        Format::Flyway => {
            // Flyway numbers are sequential already: V1, V2, …
            let v = if existing.is_empty() {
                "1".to_owned()
            } else {
                flyway_next(existing)
            };
            let line = "-- strata:no-transaction";
            vec![
                (
                    dir.join(format!("V{v}__{slug}.sql")),
                    directive(line, up_body),
                ),
                (
                    dir.join(format!("U{v}__{slug}.sql")),
                    directive(line, down_body),
                ),
            ]
        }
    })
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
        let first = create(
            dir.path(),
            Format::Native,
            &[],
            "init",
            now,
            NewOptions::default(),
        )
        .unwrap();
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
            NewOptions::default(),
        )
        .unwrap();
        assert!(files[0].ends_with("0008_next_one.up.sql"), "{files:?}");
        assert!(files[1].ends_with("0008_next_one.down.sql"));
    }
}
