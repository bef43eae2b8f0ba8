//! Flyway layout: `V<version>__<description>.sql` (versioned),
//! `U<version>__<description>.sql` (undo) and `R__<description>.sql`
//! (repeatable). Versions are dotted numbers (`V13.1__x.sql`; `_` also
//! separates parts, as in Flyway), descriptions use `_` for spaces.
//! Repeatable migrations run after all versioned ones, ordered by
//! description, and run again whenever their checksum changes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{check_not_blank, ignored, reject_goose, script, split_markers, warn_non_sql, Listing};
use crate::source::{
    checksum, read_text, Finish, Migration, MigrationKind, SourceProblem, Version,
};

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

/// Loads a Flyway-layout directory. Flyway skips files whose names are not
/// migration names (its `validateMigrationNaming` is off by default), so
/// they are ignored with a warning. Flyway also reads sub-directories,
/// which Strata does not: a sub-directory holding `.sql` files is an error
/// rather than migrations silently left out.
pub fn load(
    listing: &Listing,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    let mut problems = Vec::new();
    warn_non_sql(listing, warnings);
    for (_, dir) in &listing.dirs {
        let has_sql = std::fs::read_dir(dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".sql"))
        });
        if has_sql {
            problems.push(
                SourceProblem::new(dir, None, "sub-directory with .sql files: Flyway would run them, strata reads only the top directory")
                    .help("move the migrations up into the migration directory"),
            );
        } else {
            warnings.push(ignored(dir, "sub-directory without .sql files"));
        }
    }
    let mut versioned: BTreeMap<String, (Version, String, PathBuf)> = BTreeMap::new();
    let mut undo: BTreeMap<String, PathBuf> = BTreeMap::new();
    // At most one migration per file (see `native::build_pairs`).
    let mut migrations = Vec::with_capacity(listing.files.len());
    for (file, path) in listing.sql_files() {
        let Some((prefix, version_text, description)) = parse_name(file) else {
            warnings.push(ignored(
                path,
                "not named V<version>__<description>.sql, U… or R__… (Flyway skips such files)",
            ));
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
                finish.push(&mut migrations, m);
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
            finish.push(&mut migrations, m);
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
    let marked = split_markers(path, &text, problems);
    if let (Some(_), Some(u)) = (&marked, undo) {
        problems.push(
            SourceProblem::new(
                path,
                None,
                format!(
                    "has a `-- strata:down` part and an undo file ({})",
                    u.display()
                ),
            )
            .help("keep the down script in one place: remove the markers or the U file"),
        );
        return None;
    }
    let (up_text, up_line, marked_down) = match marked {
        Some(parts) => (parts.up.0, parts.up.1, parts.down),
        None => (text, 1, None),
    };
    let up = script(path, up_text, up_line, Vec::new(), None, problems);
    check_not_blank(&up, problems);
    let down = match (undo, marked_down) {
        (Some(p), _) => {
            let text = read_text(p).map_err(|e| problems.push(e)).ok()?;
            Some(script(p, text, 1, Vec::new(), None, problems))
        }
        (None, Some((text, line))) => Some(script(path, text, line, Vec::new(), None, problems)),
        (None, None) => None,
    };
    Some(Migration {
        version,
        kind,
        name,
        up,
        down: down.map(Box::new),
        checksum: sum,
    })
}
