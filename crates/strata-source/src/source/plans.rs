//! Plan files in a migration directory: `<version>_<name>.plan.toml`.
//!
//! A plan is a migration of kind [`MigrationKind::Plan`]: versioned with
//! the layout's own version rules, ordered with the SQL migrations, and
//! checksummed like any file. Its `up` script holds the TOML text (so the
//! checksum, the path and `embed_migrations!` treat it like any file), and
//! it has no down script: a plan is reversed phase by phase from its own
//! operations. The file is read and checked here with
//! [`crate::plan::parse`], so a bad plan is a load problem with its line,
//! like a bad SQL file, and nothing runs.

use super::formats::{leading_version, Listing};
use super::{checksum, read_text, Format, Migration, MigrationKind, Script, SourceProblem};

/// How a plan file's name ends.
pub const SUFFIX: &str = ".plan.toml";

/// Takes the plan files out of `listing` (the layouts never see them) and
/// loads them: the plans, and every problem of every plan file.
pub fn load(format: Format, listing: &mut Listing) -> (Vec<Migration>, Vec<SourceProblem>) {
    let mut migrations = Vec::new();
    let mut problems = Vec::new();
    // Taken out of the listing in place: partitioning it would copy every
    // entry of the directory into a second list.
    let mut plans = Vec::new();
    listing.files.retain_mut(|(name, path)| {
        if name.ends_with(SUFFIX) {
            plans.push((std::mem::take(name), std::mem::take(path)));
            false
        } else {
            true
        }
    });
    for (name, path) in plans {
        let stem = &name[..name.len() - SUFFIX.len()];
        let Some((version, label)) =
            leading_version(stem).and_then(|(v, label)| Some((format.parse_version(v)?, label)))
        else {
            problems.push(
                SourceProblem::new(
                    &path,
                    None,
                    format!(
                        "a plan file is named <version>_<name>{SUFFIX}, with a {format} version"
                    ),
                )
                .help("rename it, e.g. 20260301120000_users_email_verified.plan.toml"),
            );
            continue;
        };
        let text = match read_text(&path) {
            Ok(text) => text,
            Err(problem) => {
                problems.push(problem);
                continue;
            }
        };
        if let Err(found) = crate::plan::parse(&text) {
            problems.extend(found.into_iter().map(|p| SourceProblem {
                path: path.clone(),
                line: p.line,
                message: p.message,
                help: p.help,
            }));
            continue;
        }
        let directives = match allows(&text) {
            Ok(d) => d,
            Err(found) => {
                problems.extend(found.into_iter().map(|(line, message, help)| {
                    SourceProblem::new(&path, Some(line), message).help(help)
                }));
                continue;
            }
        };
        migrations.push(Migration {
            version,
            kind: MigrationKind::Plan,
            name: label.to_owned(),
            checksum: checksum(&text),
            up: Script {
                path,
                text: text.into(),
                first_line: 1,
                blocks: Vec::new(),
                // Each action runs in its own short transaction or alone;
                // lint reads the compiled statements that way.
                no_transaction: Some(super::NoTransaction {
                    line: None,
                    source: "a plan runs each action in its own transaction or alone".to_owned(),
                }),
                directives,
            },
            down: None,
        });
    }
    (migrations, problems)
}

/// A problem at a line: the line, what is wrong, how to fix it.
type LineProblem = (usize, String, String);

/// The `# strata:allow RULE[, RULE] reason: …` comments of a plan file,
/// with their lines: TOML comments start with `#`, and otherwise they read
/// as in SQL files. An allow acknowledges the findings of the operation
/// that starts on the next operation line below it (every statement that
/// operation compiles to), or of the whole plan when it stands in the
/// file's header, separated from the first operation by a blank line. Any
/// other directive is an error: a plan has no file-wide run mode to set.
fn allows(text: &str) -> Result<Vec<(usize, super::Directive)>, Vec<LineProblem>> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix('#') else {
            continue;
        };
        let as_sql = format!("--{rest}");
        match super::parse_strata_directive(&as_sql) {
            None => {}
            Some(Ok(d @ super::Directive::Allow { .. })) => found.push((i + 1, d)),
            Some(Ok(_)) => problems.push((
                i + 1,
                format!("`#{}` has no meaning in a plan file", rest.trim_end()),
                "only `# strata:allow RULE reason: …` is read in a plan file; remove the line"
                    .to_owned(),
            )),
            Some(Err(message)) => problems.push((
                i + 1,
                message,
                "write it as `# strata:allow RULE[, RULE] reason: why it is safe`".to_owned(),
            )),
        }
    }
    if problems.is_empty() {
        Ok(found)
    } else {
        Err(problems)
    }
}

/// The checked plan of a plan migration (loading already refused a bad one,
/// so an error here means the migration was built by hand).
pub fn plan_of(m: &Migration) -> Result<crate::plan::Plan, Vec<crate::plan::PlanProblem>> {
    // Loading never releases a plan's text (see `Finish::push`); a file
    // that cannot be read again is reported like a bad plan.
    let sql = m.up.load().map_err(|p| {
        vec![crate::plan::PlanProblem {
            line: p.line,
            message: p.message,
            help: p.help,
        }]
    })?;
    crate::plan::parse(sql.text())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_files_load_in_version_order_and_bad_ones_name_file_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).expect("write");
        };
        write("1_a.up.sql", "CREATE TABLE a (id int);\n");
        write(
            "2_b.plan.toml",
            "[[phase]]\nname = \"x\"\noperations = [\n  { op = \"add_column\", table = \"a\", column = \"c\", type = \"int\" },\n]\n",
        );
        write("3_c.up.sql", "CREATE TABLE c (id int);\n");
        let loaded = crate::source::load(dir.path(), None);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let kinds: Vec<_> = loaded
            .migrations
            .iter()
            .map(|m| (m.label(), m.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("1_a".to_owned(), MigrationKind::Versioned),
                ("2_b".to_owned(), MigrationKind::Plan),
                ("3_c".to_owned(), MigrationKind::Versioned),
            ]
        );
        assert_eq!(
            loaded.migrations[1].checksum,
            checksum(loaded.migrations[1].up.text.held().unwrap())
        );

        write(
            "4_d.plan.toml",
            "[[phase]]\nname = \"x\"\noperations = [\n  { op = \"drop_table\", table = \"a\", cascade = true },\n]\n",
        );
        write("x_e.plan.toml", "");
        let loaded = crate::source::load(dir.path(), None);
        let problems: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.contains("4_d.plan.toml:4: unknown field `cascade`")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("x_e.plan.toml: a plan file is named")),
            "{problems:?}"
        );
    }
}
