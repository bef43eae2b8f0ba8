//! The statements of a run's steps, held within a memory budget.
//!
//! A run parses each migration once, and analysis, backup decisions, the
//! dry run and apply use that one parse. Holding every parse until its
//! step runs makes memory grow with the number of pending migrations: a
//! fresh database set up from a long history, or a run of data migrations
//! with large `INSERT`s, would hold all of their statements (text and
//! encoded parse trees) at once.
//!
//! So a run holds parsed statements up to [`BUDGET`] bytes, in run order.
//! The steps past it keep only the number of their statements and a
//! digest, and are parsed again right before they are printed or run
//! ([`Statements::get`]). Parsing again is cheap beside running: a few
//! microseconds for a small migration against a round trip of a
//! millisecond or more (measured: `up` of 20,000 one-INSERT migrations
//! takes 1.05× the wall time of holding every parse, with 36 MiB instead
//! of 50). The text is the one loaded at the start of the run (held in
//! memory, never read from disk again) and the configuration is the same,
//! so the second parse gives the same statements; the digest proves it,
//! and a difference stops the run before that step runs.

use std::borrow::Cow;

use sha2::{Digest, Sha256};

use super::analyze::Parsed;
use super::{apply, EngineError, Project};
use crate::sql::Statement;

/// How many bytes of parsed statements a run holds (one mebibyte: the
/// statements of a few thousand typical migrations). Past it, statements
/// are parsed again where they are used.
pub(super) const BUDGET: usize = 1 << 20;

/// The bytes a run may still spend on holding parsed statements.
#[derive(Debug)]
pub(super) struct Budget {
    left: usize,
}

impl Budget {
    pub fn new(bytes: usize) -> Budget {
        Budget { left: bytes }
    }

    /// Whether nothing more may be held: parsing something only to hold
    /// it is then wasted.
    pub fn is_spent(&self) -> bool {
        self.left == 0
    }

    /// Whether statements of `bytes` bytes may be held; if so, they are
    /// counted against the budget. Once one does not fit, none after it
    /// does either, so the held steps are the first ones of the run.
    pub fn take(&mut self, bytes: usize) -> bool {
        if bytes <= self.left {
            self.left -= bytes;
            true
        } else {
            self.left = 0;
            false
        }
    }
}

/// The bytes that `statements` take in memory.
pub(super) fn size_of(statements: &[Statement]) -> usize {
    statements.iter().map(Statement::heap_size).sum()
}

/// The statements one step runs.
#[derive(Debug)]
pub(super) enum Statements {
    /// Parsed at the start of the run and held.
    Held(Vec<Statement>),
    /// Past the budget: parsed again where they are used.
    Released(Released),
}

/// What a step keeps of statements it does not hold: enough to parse them
/// again and to prove that the second parse gave the same statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Released {
    /// The migration's index in the project.
    index: usize,
    /// Which script: the down script, or the up script (with the safe
    /// rewrites of the run's configuration).
    down: bool,
    count: usize,
    /// The first 8 bytes of a SHA-256 over the statements: a check that
    /// the same parse came back, not a defence against forgery (the text
    /// is Strata's own memory), so 64 bits suffice and keep each released
    /// step small.
    digest: u64,
}

impl Released {
    /// Releases the statements of the migration at `index`: they are
    /// dropped, their number and digest kept.
    pub fn of(index: usize, down: bool, statements: &[Statement]) -> Released {
        Released {
            index,
            down,
            count: statements.len(),
            digest: digest(statements),
        }
    }
}

impl Statements {
    /// Holds `statements` if they fit in the budget, else releases them.
    pub fn within(
        budget: &mut Budget,
        index: usize,
        down: bool,
        statements: Vec<Statement>,
    ) -> Statements {
        if budget.take(size_of(&statements)) {
            Statements::Held(statements)
        } else {
            Statements::Released(Released::of(index, down, &statements))
        }
    }

    /// The statements: those held, or parsed again from the migration's
    /// text and checked against the digest of the first parse.
    pub fn get<'s>(&'s self, project: &Project) -> Result<Cow<'s, [Statement]>, EngineError> {
        let r = match self {
            Statements::Held(s) => return Ok(Cow::Borrowed(s)),
            Statements::Released(r) => r,
        };
        let m = project
            .migrations
            .get(r.index)
            .ok_or_else(|| changed(project, r))?;
        let statements = if r.down {
            let script = m.down.as_deref().ok_or_else(|| changed(project, r))?;
            apply::parse(script)?
        } else {
            let parsed = Parsed::up(&project.config, r.index, m)?;
            match parsed.rewritten {
                Some(rewritten) => rewritten.statements,
                None => parsed.statements,
            }
        };
        if Released::of(r.index, r.down, &statements) != *r {
            return Err(changed(project, r));
        }
        Ok(Cow::Owned(statements))
    }
}

/// A second parse that differs from the first: a bug, reported rather than
/// run on. Steps before it may have run, so it is a failure (exit 1), not
/// bad input.
fn changed(project: &Project, r: &Released) -> EngineError {
    EngineError::Reparsed {
        label: project
            .migrations
            .get(r.index)
            .map_or_else(|| format!("#{}", r.index + 1), |m| m.label()),
    }
}

/// A digest of what a statement runs as: its text, where it is, and how
/// it runs.
fn digest(statements: &[Statement]) -> u64 {
    let mut hash = Sha256::new();
    for s in statements {
        hash.update((s.sql.len() as u64).to_le_bytes());
        hash.update(s.sql.as_bytes());
        hash.update((s.offset as u64).to_le_bytes());
        hash.update((s.line as u64).to_le_bytes());
        hash.update([u8::from(s.backfill)]);
    }
    let full: [u8; 32] = hash.finalize().into();
    let mut first = [0u8; 8];
    first.copy_from_slice(&full[..8]);
    u64::from_le_bytes(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statements(sql: &str) -> Vec<Statement> {
        crate::sql::split(sql, &[]).expect("parses")
    }

    #[test]
    fn a_step_is_no_larger_than_a_parse() {
        // `up::up_steps` turns the parses into steps in place.
        assert!(std::mem::size_of::<super::super::Step<'_>>() <= std::mem::size_of::<Parsed>());
        assert!(std::mem::size_of::<Statements>() <= 40);
    }

    #[test]
    fn the_budget_holds_the_first_steps_and_releases_the_rest() {
        let small = statements("SELECT 1;");
        let size = size_of(&small);
        let mut budget = Budget::new(2 * size + size / 2);
        let kept: Vec<bool> = (0..4)
            .map(|i| {
                matches!(
                    Statements::within(&mut budget, i, false, small.clone()),
                    Statements::Held(_)
                )
            })
            .collect();
        assert_eq!(kept, [true, true, false, false]);
        // Once one step is released, a smaller one after it is too: the
        // held steps are the first ones of the run.
        let mut budget = Budget::new(size + 1);
        assert!(!budget.take(size + 2));
        assert!(!budget.take(1));
    }

    #[test]
    fn the_digest_tells_statements_apart() {
        let a = Released::of(0, false, &statements("SELECT 1;\nSELECT 2;"));
        assert_eq!(
            a,
            Released::of(0, false, &statements("SELECT 1;\nSELECT 2;"))
        );
        for other in [
            "SELECT 1;\nSELECT 3;",
            "SELECT 1;\n\nSELECT 2;",
            "SELECT 1;",
        ] {
            assert_ne!(a, Released::of(0, false, &statements(other)), "{other}");
        }
        assert_eq!(a.count, 2);
    }

    /// A project of one migration whose up script has a safe rewrite (an
    /// index built on a table it did not create) and a down script.
    fn project(dir: &std::path::Path) -> Project {
        let mut config =
            crate::config::Config::resolve_with(&crate::config::Flags::default(), &|_| None, dir)
                .expect("default config");
        config.safe_rewrites = true;
        let mut m = crate::lint::test_utils::migration(
            "1",
            "INSERT INTO t VALUES (1);\nCREATE INDEX t_x ON t (x);\n",
        );
        m.down = Some(Box::new(
            crate::lint::test_utils::migration("1", "DROP INDEX t_x;\n").up,
        ));
        Project {
            config,
            format: crate::source::Format::Native,
            migrations: vec![m],
            warnings: Vec::new(),
            foreign: Vec::new(),
        }
    }

    #[test]
    fn released_statements_come_back_as_the_first_parse_gave_them() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let project = project(dir.path());
        let m = &project.migrations[0];
        // Up: the safe rewrites' statements, which are the ones that run.
        let first = Parsed::up(&project.config, 0, m).expect("parses");
        let runs = first
            .rewritten
            .expect("the index build is rewritten")
            .statements;
        assert!(runs[1].sql.contains("CONCURRENTLY"), "{:?}", runs[1].sql);
        let up = Statements::Released(Released::of(0, false, &runs));
        let again = up.get(&project).expect("parses again");
        assert!(matches!(again, Cow::Owned(_)));
        let sql = |s: &[Statement]| s.iter().map(|s| s.sql.clone()).collect::<Vec<_>>();
        assert_eq!(sql(&again), sql(&runs));
        // Down: the down script's.
        let down_first = apply::parse(m.down.as_deref().expect("down")).expect("parses");
        let down = Statements::Released(Released::of(0, true, &down_first));
        assert_eq!(
            sql(&down.get(&project).expect("parses")),
            ["DROP INDEX t_x"]
        );
        // Held statements are handed over as they are, without a parse.
        let held = Statements::Held(runs.clone());
        assert!(matches!(held.get(&project), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn a_second_parse_that_differs_from_the_first_stops_the_step() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let project = project(dir.path());
        // The statements as written, not the rewritten ones that run: the
        // digest does not match what parsing again gives.
        let written = apply::parse(&project.migrations[0].up).expect("parses");
        for released in [
            Released::of(0, false, &written),
            Released::of(0, true, &written),
            Released::of(7, false, &written),
        ] {
            let error = Statements::Released(released)
                .get(&project)
                .expect_err("differs");
            assert!(error.to_string().contains("differ"), "{error}");
            assert_eq!(error.exit_code(), crate::error::exit::FAILED);
        }
    }
}
