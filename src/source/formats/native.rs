//! golang-migrate / Strata native layout: `<version>_<name>.up.sql` with an
//! optional `<version>_<name>.down.sql`. Versions are integers, compared
//! numerically, as golang-migrate does. sqlx's `-- no-transaction` first line
//! is honoured too, because sqlx's reversible layout has this same shape.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{check_not_blank, leading_version, reject_goose, script, sqlx_no_transaction, Listing};
use crate::source::{checksum, read_text, Migration, MigrationKind, SourceProblem, Version};

#[derive(Default)]
struct Pair {
    name: String,
    version_text: String,
    up: Option<PathBuf>,
    down: Option<PathBuf>,
}

/// Loads a native-layout directory.
pub fn load(listing: &Listing) -> (Vec<Migration>, Vec<SourceProblem>) {
    let mut problems = Vec::new();
    let mut pairs: BTreeMap<String, Pair> = BTreeMap::new();
    for (file, path) in listing.sql_files() {
        let (stem, is_up) = if let Some(stem) = file.strip_suffix(".up.sql") {
            (stem, true)
        } else if let Some(stem) = file.strip_suffix(".down.sql") {
            (stem, false)
        } else {
            problems.push(
                SourceProblem::new(
                    path,
                    None,
                    "file name does not follow <version>_<name>.up.sql or .down.sql",
                )
                .help("rename the file, e.g. 20240101120000_add_users.up.sql"),
            );
            continue;
        };
        let Some((version, name)) = leading_version(stem) else {
            problems.push(
                SourceProblem::new(path, None, "file name does not start with <version>_")
                    .help("rename the file, e.g. 20240101120000_add_users.up.sql"),
            );
            continue;
        };
        let pair = pairs.entry(stem.to_owned()).or_default();
        pair.name = name.to_owned();
        pair.version_text = version.to_owned();
        if is_up {
            pair.up = Some(path.clone());
        } else {
            pair.down = Some(path.clone());
        }
    }
    let mut migrations = Vec::new();
    for pair in pairs.into_values() {
        let Some(up_path) = pair.up else {
            if let Some(down) = pair.down {
                problems.push(
                    SourceProblem::new(&down, None, "down migration has no matching .up.sql")
                        .help("add the .up.sql file or delete this one"),
                );
            }
            continue;
        };
        let Some(version) = Version::integer(&pair.version_text) else {
            problems.push(SourceProblem::new(&up_path, None, "version is too large"));
            continue;
        };
        if let Some(m) = build(
            &up_path,
            pair.down.as_ref(),
            version,
            pair.name,
            &mut problems,
        ) {
            migrations.push(m);
        }
    }
    (migrations, problems)
}

/// Builds a migration from an up file and an optional down file. Shared with
/// the sqlx layout, whose reversible files have the same shape.
pub(super) fn build(
    up_path: &std::path::Path,
    down_path: Option<&PathBuf>,
    version: Version,
    name: String,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    let up_text = read_text(up_path).map_err(|p| problems.push(p)).ok()?;
    reject_goose(up_path, &up_text, problems);
    let sum = checksum(&up_text);
    let no_tx = sqlx_no_transaction(&up_text);
    let up = script(up_path, up_text, 1, Vec::new(), no_tx, problems);
    check_not_blank(&up, problems);
    let down = match down_path {
        Some(path) => {
            let text = read_text(path).map_err(|p| problems.push(p)).ok()?;
            let no_tx = sqlx_no_transaction(&text).or_else(|| up.no_transaction.clone());
            Some(script(path, text, 1, Vec::new(), no_tx, problems))
        }
        None => None,
    };
    Some(Migration {
        version,
        kind: MigrationKind::Versioned,
        name,
        up,
        down,
        checksum: sum,
    })
}
