//! Multi-phase plan files (`<version>_<name>.plan.toml`).
//!
//! A plan is the story of one zero-downtime change told phase by phase:
//! expand, migrate, contract, with a gate between phases that says what the
//! application must be able to do before the next one runs. This module only
//! *reads* plan files: it turns TOML into a checked [`Plan`] and reports every
//! problem with the line it is on. Compiling operations into SQL, and running
//! phases, belong to the library's `plan` module and engine.
//!
//! **Architecture Invariant:** nothing here touches a database, and nothing in
//! a plan file is Strata-internal state (which phase is done, which gate has
//! passed, backfill cursors): that lives in Strata's own tables, keyed by the
//! plan's version.

mod check;
mod file;
pub mod generate;

pub use check::check;
pub use file::{
    ForeignKeyOrphans, Gate, Interval, NewColumn, Operation, OperationKind, Phase, Plan,
    PlanProblem,
};

/// Reads a plan file's text. `path` is only used in the problems' locations.
///
/// Every problem found is returned, not only the first: syntax and unknown
/// keys first (TOML stops there), then every semantic problem of the parsed
/// plan (SQL fragments that do not parse, a drop before a deploy gate, …).
pub fn parse(text: &str) -> Result<Plan, Vec<PlanProblem>> {
    let plan = file::from_toml(text)?;
    let problems = check(&plan, text);
    if problems.is_empty() {
        Ok(plan)
    } else {
        Err(problems)
    }
}
