//! sqlx layout: `<version>_<description>.sql` (simple, up only) or
//! `<version>_<description>.up.sql` / `.down.sql` (reversible). A first line
//! of `-- no-transaction` runs the file outside a transaction, as in sqlx.
//!
//! As in sqlx's resolver, files that are not `.sql` and `.sql` files without
//! a `_` are skipped (ignored here with a warning), while a `<x>_<y>.sql`
//! whose `<x>` is not a number is an error.
//!
//! The same directory may also pair a simple file with a down script named
//! `<version>_<description>_down.sql` (a common hand-rolled layout; sqlx
//! itself would refuse it as a duplicate version).

use std::collections::BTreeMap;

use super::{ignored, native, warn_dirs, warn_non_sql, Listing};
use crate::source::{Finish, Migration, SourceProblem, Version};

/// Loads a sqlx-layout directory.
pub fn load(
    listing: &Listing,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    warn_non_sql(listing, warnings);
    warn_dirs(listing, warnings);
    let reversible = listing
        .sql_files()
        .filter(|(n, _)| n.ends_with(".up.sql") || n.ends_with(".down.sql"));
    let (mut migrations, mut problems) = native::load_reversible(reversible, warnings, finish);
    let simple: BTreeMap<&str, &std::path::PathBuf> = listing
        .sql_files()
        .filter(|(n, _)| !n.ends_with(".up.sql") && !n.ends_with(".down.sql"))
        .map(|(n, p)| (n.trim_end_matches(".sql"), p))
        .collect();
    for (&stem, &path) in &simple {
        // `<stem>_down.sql` beside `<stem>.sql` is that file's down script.
        if let Some(up_stem) = stem.strip_suffix("_down") {
            if simple.contains_key(up_stem) {
                continue;
            }
        }
        let Some((version, name)) = stem.split_once('_') else {
            warnings.push(ignored(
                path,
                "no `_` in the name, so not <version>_<description>.sql (sqlx skips such files)",
            ));
            continue;
        };
        if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
            problems.push(
                SourceProblem::new(path, None, "file name does not start with <version>_")
                    .help("rename the file, e.g. 20240101120000_add_users.sql (sqlx refuses this name too)"),
            );
            continue;
        }
        let Some(version) = Version::integer(version) else {
            problems.push(SourceProblem::new(path, None, "version is too large"));
            continue;
        };
        let down = simple
            .get(format!("{stem}_down").as_str())
            .map(|p| (*p).clone());
        if let Some(m) = native::build(
            path,
            down.as_deref(),
            version,
            name.to_owned(),
            &mut problems,
        ) {
            finish.push(&mut migrations, m);
        }
    }
    (migrations, problems)
}
