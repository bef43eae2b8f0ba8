//! diesel layout: one directory per migration, `<version>_<name>/up.sql`,
//! an optional `down.sql`, and an optional `metadata.toml` whose
//! `run_in_transaction = false` runs the migration outside a transaction.
//!
//! diesel's version is the directory name up to the first `_` with dashes
//! removed, compared as a string; see [`Version::diesel`].

use super::{check_not_blank, reject_goose, script, Listing};
use crate::source::{
    checksum, read_text, Migration, MigrationKind, NoTransaction, SourceProblem, Version,
};

/// Loads a diesel-layout directory.
pub fn load(listing: &Listing) -> (Vec<Migration>, Vec<SourceProblem>) {
    let mut problems = Vec::new();
    let mut migrations = Vec::new();
    for (file, path) in listing.sql_files() {
        problems.push(
            SourceProblem::new(
                path,
                None,
                format!("loose file `{file}` in a diesel migration directory"),
            )
            .help("diesel migrations live in <version>_<name>/up.sql; move the file into one"),
        );
    }
    for (dir_name, dir) in &listing.dirs {
        let up_path = dir.join("up.sql");
        // A present but unreadable up.sql (a FIFO, a broken link) is
        // reported precisely by read_text below.
        if std::fs::symlink_metadata(&up_path).is_err() {
            problems.push(
                SourceProblem::new(dir, None, "diesel migration directory has no up.sql")
                    .help("add up.sql (and down.sql), or remove the directory"),
            );
            continue;
        }
        let (version_text, name) = match dir_name.split_once('_') {
            Some((v, n)) => (v, n),
            None => (dir_name.as_str(), ""),
        };
        let Some(version) = Version::diesel(version_text) else {
            problems.push(
                SourceProblem::new(dir, None, "directory name does not start with a version")
                    .help("name it like 2024-01-01-120000_add_users"),
            );
            continue;
        };
        let no_tx = read_metadata(&dir.join("metadata.toml"), &mut problems);
        let Ok(up_text) = read_text(&up_path).map_err(|p| problems.push(p)) else {
            continue;
        };
        reject_goose(&up_path, &up_text, &mut problems);
        let sum = checksum(&up_text);
        let up = script(
            &up_path,
            up_text,
            1,
            Vec::new(),
            no_tx.clone(),
            &mut problems,
        );
        check_not_blank(&up, &mut problems);
        let down_path = dir.join("down.sql");
        let down = if std::fs::symlink_metadata(&down_path).is_ok() {
            match read_text(&down_path) {
                Ok(text) => Some(script(
                    &down_path,
                    text,
                    1,
                    Vec::new(),
                    no_tx,
                    &mut problems,
                )),
                Err(p) => {
                    problems.push(p);
                    continue;
                }
            }
        } else {
            None
        };
        migrations.push(Migration {
            version,
            kind: MigrationKind::Versioned,
            name: name.to_owned(),
            up,
            down,
            checksum: sum,
        });
    }
    (migrations, problems)
}

fn read_metadata(
    path: &std::path::Path,
    problems: &mut Vec<SourceProblem>,
) -> Option<NoTransaction> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        run_in_transaction: Option<bool>,
    }
    // Never open a FIFO or device (it would block): only a regular file.
    match super::kind_of(path) {
        Ok(super::EntryKind::File) => {}
        Ok(super::EntryKind::Missing) => return None,
        Ok(super::EntryKind::Dir) => {
            problems.push(SourceProblem::new(path, None, "is a directory, not a file"));
            return None;
        }
        Err(problem) => {
            problems.push(problem);
            return None;
        }
    }
    let text = std::fs::read_to_string(path).ok()?;
    match toml::from_str::<Metadata>(&text) {
        Ok(Metadata {
            run_in_transaction: Some(false),
        }) => Some(NoTransaction {
            line: None,
            source: format!("run_in_transaction = false in {}", path.display()),
        }),
        Ok(_) => None,
        Err(e) => {
            problems.push(SourceProblem::new(
                path,
                None,
                format!("invalid metadata.toml: {}", e.message()),
            ));
            None
        }
    }
}
