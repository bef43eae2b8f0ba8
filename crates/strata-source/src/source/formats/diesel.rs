//! diesel layout: one directory per migration, `<version>_<name>/up.sql`,
//! an optional `down.sql`, and an optional `metadata.toml` whose
//! `run_in_transaction = false` runs the migration outside a transaction.
//!
//! diesel's version is the directory name up to the first `_` with dashes
//! removed, compared as a string; see [`Version::diesel`].

use super::{check_not_blank, ignored, reject_goose, script, split_markers, Listing};
use crate::source::{
    checksum, read_text, Finish, Migration, MigrationKind, NoTransaction, SourceProblem, Version,
};

/// Loads a diesel-layout directory. diesel reads only the sub-directories:
/// any file beside them (a loose `.sql` script, a README) is ignored with
/// a warning, as diesel ignores it.
pub fn load(
    listing: &Listing,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    let mut problems = Vec::new();
    let mut migrations = Vec::new();
    for (file, path) in &listing.files {
        let why = if file.ends_with(".sql") {
            "a file beside the migration folders (diesel runs only <version>_<name>/up.sql; move it into a folder to run it)"
        } else {
            "not a migration folder (diesel reads only folders)"
        };
        warnings.push(ignored(path, why));
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
        let marked = split_markers(&up_path, &up_text, &mut problems);
        let down_path = dir.join("down.sql");
        let has_down_file = std::fs::symlink_metadata(&down_path).is_ok();
        if marked.is_some() && has_down_file {
            problems.push(
                SourceProblem::new(&up_path, None, "has a `-- strata:down` part and a down.sql")
                    .help("keep the down script in one place: remove the markers or down.sql"),
            );
            continue;
        }
        let (up_text, up_line, marked_down) = match marked {
            Some(parts) => (parts.up.0, parts.up.1, parts.down),
            None => (up_text, 1, None),
        };
        let up = script(
            &up_path,
            up_text,
            up_line,
            Vec::new(),
            no_tx.clone(),
            &mut problems,
        );
        check_not_blank(&up, &mut problems);
        let down = if let Some((text, line)) = marked_down {
            Some(script(
                &up_path,
                text,
                line,
                Vec::new(),
                no_tx,
                &mut problems,
            ))
        } else if has_down_file {
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
        let m = Migration {
            version,
            kind: MigrationKind::Versioned,
            name: name.to_owned(),
            up,
            down: down.map(Box::new),
            checksum: sum,
        };
        finish.push(&mut migrations, m);
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
