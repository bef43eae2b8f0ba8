//! Flyway layout: `V<version>__<description>.sql` (versioned),
//! `U<version>__<description>.sql` (undo) and `R__<description>.sql`
//! (repeatable). Versions are dotted numbers (`V13.1__x.sql`; `_` also
//! separates parts, as in Flyway), descriptions use `_` for spaces.
//! Repeatable migrations run after all versioned ones, ordered by
//! description, and run again whenever their checksum changes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{check_not_blank, reject_goose, script, Listing};
use crate::source::{checksum, read_text, Migration, MigrationKind, SourceProblem, Version};

/// True when a file name looks like a Flyway migration.
pub fn matches(name: &str) -> bool {
    parse_name(name).is_some()
}

/// (prefix, version text, description)
fn parse_name(name: &str) -> Option<(char, &str, &str)> {
    let stem = name.strip_suffix(".sql")?;
    let prefix = stem.chars().next()?;
    if !matches!(prefix, 'V' | 'U' | 'R') {
        return None;
    }
    let (version, description) = stem[1..].split_once("__")?;
    match prefix {
        'R' if version.is_empty() => Some((prefix, version, description)),
        'V' | 'U' if version.starts_with(|c: char| c.is_ascii_digit()) => {
            Some((prefix, version, description))
        }
        _ => None,
    }
}

/// Loads a Flyway-layout directory.
pub fn load(listing: &Listing) -> (Vec<Migration>, Vec<SourceProblem>) {
    let mut problems = Vec::new();
    let mut versioned: BTreeMap<String, (Version, String, PathBuf)> = BTreeMap::new();
    let mut undo: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut migrations = Vec::new();
    for (file, path) in listing.sql_files() {
        let Some((prefix, version_text, description)) = parse_name(file) else {
            problems.push(
                SourceProblem::new(path, None, "file name is not a Flyway migration name")
                    .help("use V<version>__<description>.sql, U<version>__<description>.sql or R__<description>.sql"),
            );
            continue;
        };
        let description = description.replace('_', " ");
        if prefix == 'R' {
            if let Some(m) = build(
                path,
                Version::repeatable(&description),
                MigrationKind::Repeatable,
                description,
                None,
                &mut problems,
            ) {
                migrations.push(m);
            }
            continue;
        }
        let Some(version) = Version::dotted(version_text) else {
            problems.push(
                SourceProblem::new(
                    path,
                    None,
                    format!("invalid Flyway version `{version_text}`"),
                )
                .help("versions are numbers separated by dots, e.g. V1.2__add_users.sql"),
            );
            continue;
        };
        let key = version.canonical();
        if prefix == 'U' {
            undo.insert(key, path.clone());
        } else if let Some((_, _, other)) = versioned.get(&key) {
            problems.push(
                SourceProblem::new(
                    path,
                    None,
                    format!(
                        "duplicate version {version}: also used by {}",
                        other.display()
                    ),
                )
                .help("give one of the two migrations a new, unused version"),
            );
        } else {
            versioned.insert(key, (version, description, path.clone()));
        }
    }
    for (key, path) in &undo {
        if !versioned.contains_key(key) {
            problems.push(
                SourceProblem::new(path, None, "undo migration has no matching V migration")
                    .help("add the V<version>__ file or delete this one"),
            );
        }
    }
    for (key, (version, description, path)) in versioned {
        let undo_path = undo.get(&key);
        if let Some(m) = build(
            &path,
            version,
            MigrationKind::Versioned,
            description,
            undo_path,
            &mut problems,
        ) {
            migrations.push(m);
        }
    }
    (migrations, problems)
}

fn build(
    path: &std::path::Path,
    version: Version,
    kind: MigrationKind,
    name: String,
    undo: Option<&PathBuf>,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    let text = read_text(path).map_err(|p| problems.push(p)).ok()?;
    reject_goose(path, &text, problems);
    let sum = checksum(&text);
    let up = script(path, text, 1, Vec::new(), None, problems);
    check_not_blank(&up, problems);
    let down = match undo {
        Some(p) => {
            let text = read_text(p).map_err(|e| problems.push(e)).ok()?;
            Some(script(p, text, 1, Vec::new(), None, problems))
        }
        None => None,
    };
    Some(Migration {
        version,
        kind,
        name,
        up,
        down,
        checksum: sum,
    })
}
