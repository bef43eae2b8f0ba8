//! Test helpers: lint SQL text as one migration and look at the findings.

use std::collections::HashSet;
use std::path::PathBuf;

use super::{lint_migrations, Finding, LintOptions};
use crate::source::{Migration, MigrationKind, Version};

/// Builds a migration from text, with directives parsed as on disk.
pub fn migration(version: &str, text: &str) -> Migration {
    let mut problems = Vec::new();
    let no_tx = crate::source::formats::sqlx_no_transaction(text);
    let up = crate::source::formats::script(
        &PathBuf::from(format!("{version}_test.up.sql")),
        text.to_owned(),
        1,
        Vec::new(),
        no_tx,
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:?}");
    Migration {
        version: Version::integer(version).unwrap(),
        kind: MigrationKind::Versioned,
        name: "test".into(),
        checksum: crate::source::checksum(text),
        up,
        down: None,
    }
}

/// Lints `sql` as the only pending migration, after `earlier` migrations.
pub fn lint_after(earlier: &[&str], sql: &str, options: &LintOptions) -> Vec<Finding> {
    let mut ms: Vec<Migration> = earlier
        .iter()
        .enumerate()
        .map(|(i, t)| migration(&(i + 1).to_string(), t))
        .collect();
    ms.push(migration(&(earlier.len() + 1).to_string(), sql));
    let report: HashSet<usize> = [ms.len() - 1].into();
    lint_migrations(&ms, &report, options).unwrap().findings
}

/// Lints `sql` alone with default options.
pub fn lint(sql: &str) -> Vec<Finding> {
    lint_after(&[], sql, &LintOptions::default())
}

/// Asserts that `rule` fires on `sql` and returns its first finding.
#[track_caller]
pub fn check_fires(rule: &str, sql: &str) -> Finding {
    let findings = lint(sql);
    findings
        .iter()
        .find(|f| f.rule == rule)
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{rule} did not fire on:\n{sql}\nfindings: {:?}",
                findings.iter().map(|f| f.rule).collect::<Vec<_>>()
            )
        })
}

/// Asserts that `rule` does not fire on `sql`.
#[track_caller]
pub fn check_ok(rule: &str, sql: &str) {
    let findings = lint(sql);
    if let Some(f) = findings.iter().find(|f| f.rule == rule) {
        panic!("{rule} fired on:\n{sql}\n{}", f.message);
    }
}
