//! goose layout: `<version>_<name>.sql`, one file holding both directions,
//! split by the annotations `-- +goose Up` and `-- +goose Down`.
//!
//! As in goose, annotations are case-insensitive, must start at the beginning
//! of their line, and `-- +goose StatementBegin` / `StatementEnd` enclose text
//! that is sent to the server as one statement. `-- +goose NO TRANSACTION`
//! runs both directions outside a transaction. `ENVSUB` is recognised but not
//! supported: such a file is rejected rather than run without substitution.

use std::ops::Range;
use std::path::Path;

use super::{leading_version, reject_strata_markers, script, warn_dirs, Listing};
use crate::source::{
    checksum, read_text, Finish, Migration, MigrationKind, NoTransaction, Script, SourceProblem,
    Version,
};

const PREFIX: &str = "-- +goose";

/// True when the text has at least one goose annotation.
pub fn has_annotation(text: &str) -> bool {
    first_annotation_line(text).is_some()
}

/// The 1-based line of the first goose annotation, if any.
pub fn first_annotation_line(text: &str) -> Option<usize> {
    text.lines()
        .position(|line| annotation(line).is_some())
        .map(|i| i + 1)
}

/// The lower-cased annotation command of a line (`up`, `statementbegin`, …).
fn annotation(line: &str) -> Option<String> {
    let head = line.get(..PREFIX.len())?;
    if !head.eq_ignore_ascii_case(PREFIX) {
        return None;
    }
    let rest = &line[PREFIX.len()..];
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some(
        rest.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_ascii_lowercase(),
    )
}

/// Loads a goose-layout directory. As in goose, only `.sql` and `.go`
/// files are read; a Go migration cannot run without its Go program, so it
/// is an error rather than a silently skipped version.
pub fn load(
    listing: &Listing,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    warn_dirs(listing, warnings);
    let mut problems = Vec::new();
    let mut migrations = Vec::new();
    for (file, path) in &listing.files {
        if file.ends_with(".sql") {
            continue;
        }
        if !file.ends_with(".go") || file.ends_with("_test.go") || leading_version(file).is_none() {
            warnings.push(super::ignored(path, "not a .sql file"));
        } else {
            problems.push(
                SourceProblem::new(
                    path,
                    None,
                    "goose Go migration: strata runs SQL migrations only",
                )
                .help("rewrite it as a .sql migration, or run this directory with goose"),
            );
        }
    }
    for (file, path) in listing.sql_files() {
        let stem = file.trim_end_matches(".sql");
        let Some((version, name)) = leading_version(stem) else {
            problems.push(
                SourceProblem::new(path, None, "file name does not start with <version>_")
                    .help("rename the file, e.g. 00001_add_users.sql"),
            );
            continue;
        };
        let Some(version) = Version::integer(version) else {
            problems.push(SourceProblem::new(path, None, "version is too large"));
            continue;
        };
        let Ok(text) = read_text(path).map_err(|p| problems.push(p)) else {
            continue;
        };
        reject_strata_markers(path, &text, "-- +goose Up/Down", &mut problems);
        if let Some(m) = parse_file(path, &text, version, name, &mut problems) {
            finish.push(&mut migrations, m);
        }
    }
    (migrations, problems)
}

#[derive(PartialEq)]
enum Section {
    Preamble,
    Up,
    Down,
}

struct Part {
    start: usize,
    first_line: usize,
    end: usize,
    blocks: Vec<Range<usize>>,
}

pub(super) fn parse_file(
    path: &Path,
    text: &str,
    version: Version,
    name: &str,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    let before = problems.len();
    let mut section = Section::Preamble;
    let mut up: Option<Part> = None;
    let mut down: Option<Part> = None;
    let mut no_tx: Option<NoTransaction> = None;
    let mut block_start: Option<(usize, usize)> = None;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let line_start = offset;
        offset += line.len();
        let content = line.trim_end_matches('\n');
        let Some(command) = annotation(content) else {
            if section == Section::Preamble && !crate::sql::is_blank(content) {
                problems.push(
                    SourceProblem::new(
                        path,
                        Some(line_no),
                        "SQL before the `-- +goose Up` annotation",
                    )
                    .help("move the statement below `-- +goose Up`"),
                );
            }
            continue;
        };
        let in_section = section != Section::Preamble;
        match command.as_str() {
            "up" if up.is_none() => {
                section = Section::Up;
                up = Some(Part {
                    start: offset,
                    first_line: line_no + 1,
                    end: text.len(),
                    blocks: Vec::new(),
                });
            }
            "down" if down.is_none() && up.is_some() => {
                if let Some(part) = up.as_mut() {
                    part.end = line_start;
                }
                section = Section::Down;
                down = Some(Part {
                    start: offset,
                    first_line: line_no + 1,
                    end: text.len(),
                    blocks: Vec::new(),
                });
            }
            "up" | "down" => problems.push(
                SourceProblem::new(
                    path,
                    Some(line_no),
                    format!("unexpected `-- +goose {command}`"),
                )
                .help(
                    "a goose file has exactly one Up annotation, optionally followed by one Down",
                ),
            ),
            "statementbegin" if in_section && block_start.is_none() => {
                block_start = Some((offset, line_no));
            }
            "statementend" => match (
                match section {
                    Section::Up => up.as_mut(),
                    Section::Down => down.as_mut(),
                    Section::Preamble => None,
                },
                block_start.take(),
            ) {
                (Some(part), Some((start, _))) => part
                    .blocks
                    .push(start - part.start..line_start - part.start),
                _ => problems.push(SourceProblem::new(
                    path,
                    Some(line_no),
                    "`-- +goose StatementEnd` without a matching StatementBegin",
                )),
            },
            "statementbegin" => problems.push(SourceProblem::new(
                path,
                Some(line_no),
                "`-- +goose StatementBegin` outside Up/Down or inside another block",
            )),
            "no transaction" => {
                no_tx = Some(NoTransaction {
                    line: Some(line_no),
                    source: content.to_owned(),
                });
            }
            "envsub on" | "envsub off" => problems.push(
                SourceProblem::new(
                    path,
                    Some(line_no),
                    "goose ENVSUB is not supported by strata",
                )
                .help("replace the ${VAR} references with literal values"),
            ),
            other => problems.push(
                SourceProblem::new(
                    path,
                    Some(line_no),
                    format!("unknown goose annotation `{other}`"),
                )
                .help("known: Up, Down, StatementBegin, StatementEnd, NO TRANSACTION"),
            ),
        }
    }
    if let Some((_, line)) = block_start {
        problems.push(SourceProblem::new(
            path,
            Some(line),
            "`-- +goose StatementBegin` is never closed",
        ));
    }
    let Some(up_part) = up else {
        problems.push(
            SourceProblem::new(
                path,
                None,
                "goose migration has no `-- +goose Up` annotation",
            )
            .help("add `-- +goose Up` above the migration's SQL"),
        );
        return None;
    };
    let make = |part: Part, problems: &mut Vec<SourceProblem>| -> Script {
        let body = text[part.start..part.end].to_owned();
        script(
            path,
            body,
            part.first_line,
            part.blocks,
            no_tx.clone(),
            problems,
        )
    };
    let up = make(up_part, problems);
    if up.text.held().is_some_and(crate::sql::is_blank) {
        problems.push(
            SourceProblem::new(
                path,
                Some(up.first_line.saturating_sub(1)),
                "the Up section has no SQL statements",
            )
            .help("write the migration below `-- +goose Up`"),
        );
    }
    let down = down.map(|part| make(part, problems));
    if problems.len() > before {
        return None;
    }
    Some(Migration {
        version,
        kind: MigrationKind::Versioned,
        name: name.to_owned(),
        checksum: checksum(text),
        up,
        down: down.map(Box::new),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (Option<Migration>, Vec<SourceProblem>) {
        let mut problems = Vec::new();
        let m = parse_file(
            Path::new("00001_x.sql"),
            text,
            Version::integer("1").unwrap(),
            "x",
            &mut problems,
        );
        (m, problems)
    }

    #[test]
    fn splits_up_and_down_and_keeps_line_numbers() {
        let (m, problems) = parse(
            "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS 'select 1; select 2' LANGUAGE sql;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE a;\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        let m = m.unwrap();
        assert_eq!(m.up.first_line, 2);
        assert!(m.up.text.held().unwrap().starts_with("CREATE TABLE a"));
        assert!(!m.up.text.held().unwrap().contains("DROP TABLE"));
        assert_eq!(m.up.blocks.len(), 1);
        assert!(m.up.text.held().unwrap()[m.up.blocks[0].clone()].starts_with("CREATE FUNCTION"));
        let down = m.down.unwrap();
        assert_eq!(down.first_line, 8);
        assert_eq!(down.text.held().unwrap().trim(), "DROP TABLE a;");
    }

    #[test]
    fn annotations_are_case_insensitive_and_no_transaction_applies() {
        let (m, problems) = parse(
            "-- +goose NO TRANSACTION\n-- +goose up\nCREATE INDEX CONCURRENTLY i ON t (a);\n",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert!(m.unwrap().up.no_transaction.is_some());
    }

    #[test]
    fn reports_unknown_annotation_and_missing_up() {
        let (_, problems) = parse("-- +goose Sideways\nSELECT 1;\n");
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.contains(":1: unknown goose annotation `sideways`")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.contains("SQL before the `-- +goose Up`")),
            "{text:?}"
        );
        assert!(
            text.iter().any(|t| t.contains("no `-- +goose Up`")),
            "{text:?}"
        );
    }
}
