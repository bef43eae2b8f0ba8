//! sqlx layout: `<version>_<description>.sql` (simple, up only) or
//! `<version>_<description>.up.sql` / `.down.sql` (reversible). A first line
//! of `-- no-transaction` runs the file outside a transaction, as in sqlx.

use super::{leading_version, native, Listing};
use crate::source::{Migration, SourceProblem, Version};

/// Loads a sqlx-layout directory.
pub fn load(listing: &Listing) -> (Vec<Migration>, Vec<SourceProblem>) {
    // The reversible files are read exactly like the native layout.
    let reversible = Listing {
        dir: listing.dir.clone(),
        files: listing
            .sql_files()
            .filter(|(n, _)| n.ends_with(".up.sql") || n.ends_with(".down.sql"))
            .cloned()
            .collect(),
        dirs: Vec::new(),
        problems: Vec::new(),
    };
    let (mut migrations, mut problems) = native::load(&reversible);
    for (file, path) in listing.sql_files() {
        if file.ends_with(".up.sql") || file.ends_with(".down.sql") {
            continue;
        }
        let stem = file.trim_end_matches(".sql");
        let Some((version, name)) = leading_version(stem) else {
            problems.push(
                SourceProblem::new(path, None, "file name does not start with <version>_")
                    .help("rename the file, e.g. 20240101120000_add_users.sql"),
            );
            continue;
        };
        let Some(version) = Version::integer(version) else {
            problems.push(SourceProblem::new(path, None, "version is too large"));
            continue;
        };
        if let Some(m) = native::build(path, None, version, name.to_owned(), &mut problems) {
            migrations.push(m);
        }
    }
    (migrations, problems)
}
