//! dbmate layout: `<version>_<name>.sql`, one file holding both directions
//! under `-- migrate:up` and `-- migrate:down` lines.
//!
//! As in dbmate: a file is a migration when its name is digits followed by
//! anything and `.sql` (other files are ignored, with a warning); the
//! version is the leading digits, compared as text (dbmate orders files by
//! name); whitespace between `--` and `migrate:` is optional; both markers
//! are required, up before down, with nothing but comments above the up
//! marker; options follow a marker on its line, and `transaction:false`
//! runs that direction outside a transaction.

use std::path::Path;

use super::{
    check_not_blank, ignored, reject_strata_markers, script, warn_dirs, warn_non_sql, Listing,
};
use crate::source::{
    checksum, read_text, Finish, Migration, MigrationKind, NoTransaction, SourceProblem, Version,
};

/// Which marker a line is, with the options written after it.
fn marker(line: &str) -> Option<(&'static str, &str)> {
    let rest = line.strip_prefix("--")?.trim_start();
    let rest = rest.strip_prefix("migrate:")?;
    for word in ["up", "down"] {
        if let Some(options) = rest.strip_prefix(word) {
            if options.is_empty() || options.starts_with(char::is_whitespace) {
                return Some((word, options.trim()));
            }
        }
    }
    None
}

/// True when the text has a `-- migrate:up` or `-- migrate:down` line.
pub fn has_marker(text: &str) -> bool {
    text.lines().any(|l| marker(l).is_some())
}

/// Loads a dbmate-layout directory.
pub fn load(
    listing: &Listing,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    warn_non_sql(listing, warnings);
    warn_dirs(listing, warnings);
    let mut problems = Vec::new();
    // At most one migration per file (see `native::build_pairs`).
    let mut migrations = Vec::with_capacity(listing.files.len());
    for (file, path) in listing.sql_files() {
        let stem = file.trim_end_matches(".sql");
        let digits = stem.bytes().take_while(u8::is_ascii_digit).count();
        let Some(version) = Version::diesel(&stem[..digits]) else {
            warnings.push(ignored(
                path,
                "name does not start with a version number (dbmate skips such files)",
            ));
            continue;
        };
        let name = stem[digits..].trim_start_matches('_');
        let Ok(text) = read_text(path).map_err(|p| problems.push(p)) else {
            continue;
        };
        reject_strata_markers(path, &text, "-- migrate:up/down", &mut problems);
        if let Some(m) = parse_file(path, &text, version, name, &mut problems) {
            finish.push(&mut migrations, m);
        }
    }
    (migrations, problems)
}

pub(super) fn parse_file(
    path: &Path,
    text: &str,
    version: Version,
    name: &str,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    // (start of the marker line, byte after it, its line number, options)
    let mut up: Option<(usize, usize, usize, String)> = None;
    let mut down: Option<(usize, usize, usize, String)> = None;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let Some((which, options)) = marker(line.trim_end_matches('\n')) else {
            continue;
        };
        // dbmate uses the first marker of each kind; the rest is SQL text.
        let slot = if which == "up" { &mut up } else { &mut down };
        if slot.is_none() {
            *slot = Some((start, offset, i + 1, options.to_owned()));
        }
    }
    let Some(up) = up else {
        problems.push(
            SourceProblem::new(path, None, "dbmate migration has no `-- migrate:up` line")
                .help("add `-- migrate:up` above the migration's SQL"),
        );
        return None;
    };
    let Some(down) = down else {
        problems.push(
            SourceProblem::new(path, None, "dbmate migration has no `-- migrate:down` line (dbmate requires one)")
                .help("add `-- migrate:down` after the up SQL, followed by the SQL that reverts it (it may be empty)"),
        );
        return None;
    };
    if down.0 < up.0 {
        problems.push(
            SourceProblem::new(
                path,
                Some(down.2),
                "`-- migrate:down` comes before `-- migrate:up`",
            )
            .help("put the up part first, as dbmate requires"),
        );
        return None;
    }
    if !crate::sql::is_blank(&text[..up.0]) {
        problems.push(
            SourceProblem::new(path, Some(up.2), "SQL before the `-- migrate:up` line")
                .help("move the statements below `-- migrate:up`"),
        );
        return None;
    }
    let before = problems.len();
    let no_tx = |(_, _, line, options): &(usize, usize, usize, String),
                 problems: &mut Vec<SourceProblem>| {
        let mut result = None;
        for option in options.split_whitespace() {
            match option.split_once(':') {
                Some(("transaction", "false")) => {
                    result = Some(NoTransaction {
                        line: Some(*line),
                        source: text
                            .lines()
                            .nth(line - 1)
                            .unwrap_or_default()
                            .trim()
                            .to_owned(),
                    })
                }
                Some(("transaction", "true")) => {}
                _ => problems.push(
                    SourceProblem::new(
                        path,
                        Some(*line),
                        format!("unknown dbmate option `{option}`"),
                    )
                    .help("dbmate knows `transaction:false`"),
                ),
            }
        }
        result
    };
    let up_no_tx = no_tx(&up, problems);
    let down_no_tx = no_tx(&down, problems);
    let up_script = script(
        path,
        text[up.1..down.0].to_owned(),
        up.2 + 1,
        Vec::new(),
        up_no_tx,
        problems,
    );
    check_not_blank(&up_script, problems);
    let down_script = script(
        path,
        text[down.1..].to_owned(),
        down.2 + 1,
        Vec::new(),
        down_no_tx,
        problems,
    );
    if problems.len() > before {
        return None;
    }
    Some(Migration {
        version,
        kind: MigrationKind::Versioned,
        name: name.to_owned(),
        checksum: checksum(text),
        up: up_script,
        down: Some(Box::new(down_script)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Option<Migration>, Vec<SourceProblem>) {
        let mut problems = Vec::new();
        let m = parse_file(
            Path::new("20240101000000_x.sql"),
            text,
            Version::diesel("20240101000000").unwrap(),
            "x",
            &mut problems,
        );
        (m, problems)
    }

    #[test]
    fn splits_at_markers_with_options_and_line_numbers() {
        let (m, problems) = parse(
            "-- a comment\n--migrate:up transaction:false\nCREATE INDEX CONCURRENTLY i ON t (a);\n\n-- migrate:down\nDROP INDEX i;\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let m = m.unwrap();
        assert_eq!(m.up.first_line, 3);
        assert!(m.up.no_transaction.is_some());
        assert!(!m.up.text.held().unwrap().contains("DROP"));
        let down = m.down.unwrap();
        assert_eq!(down.first_line, 6);
        assert!(down.no_transaction.is_none());
    }

    #[test]
    fn requires_both_markers_in_order_and_nothing_above() {
        let (_, p) = parse("-- migrate:up\nCREATE TABLE a (id int);\n");
        assert!(p[0].message.contains("no `-- migrate:down`"), "{p:?}");
        let (_, p) =
            parse("-- migrate:down\nDROP TABLE a;\n-- migrate:up\nCREATE TABLE a (id int);\n");
        assert!(p[0].message.contains("before"), "{p:?}");
        let (_, p) = parse("SELECT 1;\n-- migrate:up\nSELECT 2;\n-- migrate:down\n");
        assert!(p[0].message.contains("SQL before"), "{p:?}");
        let (_, p) = parse("-- migrate:up transactions:off\nSELECT 2;\n-- migrate:down\n");
        assert!(p[0].message.contains("unknown dbmate option"), "{p:?}");
    }
}
