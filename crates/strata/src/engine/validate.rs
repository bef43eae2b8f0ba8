//! `strata validate`: the offline checks of a migration directory.

use super::{apply, load_dirs, EngineError};
use crate::config::Config;
use crate::source::{self, Format, SourceProblem};
use crate::sql::Statement;

/// Checks a migration directory offline: every file loads and parses,
/// versions are unique, up/down pairs are consistent, directives are known,
/// and explicit transactions are balanced. Returns every problem found,
/// and the warnings (ignored files, pairing notes) last.
pub fn validate(
    dir: &std::path::Path,
    format: Option<Format>,
) -> (
    Option<Format>,
    usize,
    Vec<SourceProblem>,
    Vec<SourceProblem>,
) {
    validate_loaded(source::load(dir, format))
}

/// [`validate`] for the configured directories of this run, merged, with
/// placeholders substituted (an undefined one is a problem at its line).
pub fn validate_config(
    config: &Config,
) -> (
    Option<Format>,
    usize,
    Vec<SourceProblem>,
    Vec<SourceProblem>,
) {
    validate_loaded(load_dirs(config))
}

fn validate_loaded(
    loaded: source::Loaded,
) -> (
    Option<Format>,
    usize,
    Vec<SourceProblem>,
    Vec<SourceProblem>,
) {
    let mut problems = loaded.problems;
    for m in &loaded.migrations {
        if m.kind == source::MigrationKind::Plan {
            // Checked by the loader, and compiled here: an operation the
            // compiler refuses is reported at its line.
            problems.extend(super::phases::compile_problems(m));
            continue;
        }
        for script in std::iter::once(&m.up).chain(m.down.as_deref()) {
            match apply::parse(script) {
                Ok(statements) => problems.extend(self_undoing(script, &statements)),
                // Unbalanced transactions (apply::transaction_problems).
                Err(EngineError::Source(found)) => problems.extend(found),
                // Released past the loading budget, and changed or gone
                // since: the file is not what was loaded.
                Err(EngineError::Reread(problem)) => problems.push(problem),
                Err(EngineError::Sql {
                    path, line, error, ..
                }) => problems.push(SourceProblem {
                    path,
                    line: Some(line),
                    message: error.to_string(),
                    help: Some(error.help().to_owned()),
                }),
                // Nothing else comes from parsing; never dropped silently.
                Err(other) => {
                    problems.push(SourceProblem::new(&script.path, None, other.to_string()))
                }
            }
        }
    }
    (
        Some(loaded.format),
        loaded.migrations.len(),
        problems,
        loaded.warnings,
    )
}

/// The HIGH `ban-self-undoing-migration` finding as a validate problem: a
/// file that drops everything it creates is never what its author meant.
fn self_undoing(script: &source::Script, statements: &[Statement]) -> Option<SourceProblem> {
    use crate::lint::rules::ban_self_undoing_migration::{check_script, META};
    let allowed = script.directives.iter().any(|(_, d)| {
        matches!(d, source::Directive::Allow { rules, .. } if rules.iter().any(|r| r == META.id))
    });
    if allowed {
        return None;
    }
    let (index, finding) = check_script(statements)?;
    Some(SourceProblem {
        path: script.path.clone(),
        line: Some(script.first_line + statements[index].line - 1),
        message: format!("HIGH {}: {}", META.id, finding.message),
        help: Some(format!(
            "mark the two parts so that `up` runs only the first and `down` only the second:\n{}",
            finding.fix.unwrap_or_default()
        )),
    })
}
