//! Multi-phase plans: compiling a plan's operations into the SQL each phase
//! runs, and its reverse.
//!
//! A plan file (`<version>_<name>.plan.toml`, read and checked by
//! `strata_source::plan`) says *what* changes, phase by phase. This module
//! says *how*: every operation becomes an ordered list of [`Action`]s (short
//! transactions, statements that must run alone, batched backfills,
//! validations), and a reverse list that undoes them. The engine runs the
//! actions and records progress; the dry run and `strata plan` print them.
//! Nothing here touches a database, so every operation's SQL is unit-tested.
//!
//! **Architecture Invariant:** compiling is pure and deterministic: the same
//! plan text gives the same SQL on every run, so a phase interrupted by a
//! crash resumes at the same action, and helper objects (sync triggers,
//! their functions, shadow columns) have names derived from the plan alone.
//!
//! **Architecture Invariant:** every reverse action is idempotent
//! (`IF EXISTS`, `IF NOT EXISTS`), because `strata abort` runs the reverse of
//! a phase that may have stopped half way.

mod action;
pub mod ops;

pub use action::{
    Action, ColumnFacts, CompileError, Compiled, ConstraintFacts, Context, IndexFacts, TableFacts,
};
/// The plan-file reader (`strata_source::plan`): what a plan file says.
pub use strata_source::plan as file;
