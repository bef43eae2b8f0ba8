//! golang-migrate / Strata native layout: `<version>_<name>.up.sql` with an
//! optional `<version>_<name>.down.sql`. Versions are integers, compared
//! numerically, as golang-migrate does. sqlx's `-- no-transaction` first line
//! is honoured too, because sqlx's reversible layout has this same shape.
//!
//! As in golang-migrate, the up and down files of a version are paired by
//! the version alone (`30_add_x.up.sql` with `30_drop_x.down.sql`; the
//! migration takes the up file's name), and `.sql` files whose names are not
//! `<version>_<name>.up|down.sql` are not migrations: golang-migrate skips
//! them, so they are ignored with a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    check_not_blank, ignored, leading_version, reject_goose, script, split_markers,
    sqlx_no_transaction, warn_dirs, warn_non_sql, Listing,
};
use crate::source::{
    checksum, read_text, Finish, Migration, MigrationKind, SourceProblem, Version,
};

/// The up and down files of one version: (name, path), borrowed from the
/// directory listing, so pairing allocates nothing per file.
#[derive(Default)]
struct Pair<'f> {
    version: Option<Version>,
    up: Option<(&'f str, &'f Path)>,
    down: Option<(&'f str, &'f Path)>,
}

/// Pairs by canonical version, in version-text order.
type Pairs<'f> = BTreeMap<String, Pair<'f>>;

/// Loads a native-layout directory.
pub fn load(
    listing: &Listing,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    warn_non_sql(listing, warnings);
    warn_dirs(listing, warnings);
    // Paired straight from the listing: a copy of every name and path
    // would be one more allocation per file of the directory.
    let (pairs, problems) = pair_files(listing.sql_files(), |path| {
        warnings.push(ignored(
            path,
            "not named <version>_<name>.up.sql or .down.sql (golang-migrate skips such files)",
        ))
    });
    build_pairs(pairs, problems, warnings, finish)
}

/// Pairs `.up.sql` and `.down.sql` files by version (numerically: `01` and
/// `1` are the same version). Two up files (or two down files) with one
/// version are a problem, as in golang-migrate. `skip` is told about
/// `.sql` files that are not named like either.
fn pair_files<'f>(
    files: impl IntoIterator<Item = &'f (String, PathBuf)>,
    mut skip: impl FnMut(&Path),
) -> (Pairs<'f>, Vec<SourceProblem>) {
    let mut problems = Vec::new();
    let mut pairs: Pairs<'f> = BTreeMap::new();
    for (file, path) in files {
        let (stem, is_up) = if let Some(stem) = file.strip_suffix(".up.sql") {
            (stem, true)
        } else if let Some(stem) = file.strip_suffix(".down.sql") {
            (stem, false)
        } else {
            skip(path);
            continue;
        };
        let Some((version_text, name)) = leading_version(stem) else {
            skip(path);
            continue;
        };
        let Some(version) = Version::integer(version_text) else {
            problems.push(SourceProblem::new(path, None, "version is too large"));
            continue;
        };
        let pair = pairs.entry(version.canonical()).or_default();
        let slot = if is_up { &mut pair.up } else { &mut pair.down };
        if let Some((_, other)) = slot {
            problems.push(
                SourceProblem::new(
                    path,
                    None,
                    format!(
                        "duplicate version {}: {} has it too",
                        version.canonical(),
                        other.display()
                    ),
                )
                .help("give one of the two migrations a new, unused version"),
            );
            continue;
        }
        *slot = Some((name, path.as_path()));
        if is_up || pair.version.is_none() {
            pair.version = Some(version);
        }
    }
    (pairs, problems)
}

/// Loads the `.up.sql`/`.down.sql` files of a sqlx directory: the same
/// pairing, but sqlx reads every `<version>_<desc>.sql`, so nothing is
/// skipped here (the caller reads the other files).
pub(super) fn load_reversible<'f>(
    files: impl IntoIterator<Item = &'f (String, PathBuf)>,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    let (pairs, problems) = pair_files(files, |_| {});
    build_pairs(pairs, problems, warnings, finish)
}

/// Builds the migrations of paired files; a down file without an up file
/// is a problem.
fn build_pairs(
    pairs: Pairs<'_>,
    mut problems: Vec<SourceProblem>,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    // At most one migration per pair: sized once, since a directory of
    // thousands of migrations would otherwise reserve up to twice the room.
    let mut migrations = Vec::with_capacity(pairs.len());
    // Consumed as it goes: the map's nodes are freed while the migrations
    // are built, so the two are never both whole.
    for pair in pairs.into_values() {
        let (Some((name, up_path)), Some(version)) = (pair.up, pair.version) else {
            if let Some((_, down)) = pair.down {
                problems.push(
                    SourceProblem::new(down, None, "down migration has no matching .up.sql")
                        .help("add a .up.sql file with the same version, or delete this one"),
                );
            }
            continue;
        };
        let down = pair.down.map(|(down_name, path)| {
            if down_name != name {
                warnings.push(SourceProblem::new(
                    path,
                    None,
                    format!(
                        "paired with {} by version alone (the names differ, as golang-migrate allows)",
                        up_path.display()
                    ),
                ));
            }
            path
        });
        if let Some(m) = build(up_path, down, version, name.to_owned(), &mut problems) {
            finish.push(&mut migrations, m);
        }
    }
    (migrations, problems)
}

/// Builds a migration from an up file and an optional down file. Shared with
/// the sqlx layout, whose reversible files have the same shape. Without a
/// down file, `-- strata:up`/`-- strata:down` markers split the up file.
pub(super) fn build(
    up_path: &Path,
    down_path: Option<&Path>,
    version: Version,
    name: String,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    let file_text = read_text(up_path).map_err(|p| problems.push(p)).ok()?;
    reject_goose(up_path, &file_text, problems);
    let sum = checksum(&file_text);
    let no_tx = sqlx_no_transaction(&file_text);
    let marked = split_markers(up_path, &file_text, problems);
    if let (Some(_), Some(down)) = (&marked, down_path) {
        problems.push(
            SourceProblem::new(
                up_path,
                None,
                format!(
                    "has a `-- strata:down` part and a down file ({})",
                    down.display()
                ),
            )
            .help("keep the down script in one place: remove the markers or the down file"),
        );
        return None;
    }
    let (up_text, up_line, marked_down) = match marked {
        Some(parts) => (parts.up.0, parts.up.1, parts.down),
        None => (file_text, 1, None),
    };
    let up = script(up_path, up_text, up_line, Vec::new(), no_tx, problems);
    check_not_blank(&up, problems);
    let down = match (down_path, marked_down) {
        (Some(path), _) => {
            let text = read_text(path).map_err(|p| problems.push(p)).ok()?;
            let no_tx = sqlx_no_transaction(&text).or_else(|| up.no_transaction.clone());
            Some(script(path, text, 1, Vec::new(), no_tx, problems))
        }
        (None, Some((text, line))) => Some(script(
            up_path,
            text,
            line,
            Vec::new(),
            up.no_transaction.clone(),
            problems,
        )),
        (None, None) => None,
    };
    Some(Migration {
        version,
        kind: MigrationKind::Versioned,
        name,
        up,
        down: down.map(Box::new),
        checksum: sum,
    })
}
