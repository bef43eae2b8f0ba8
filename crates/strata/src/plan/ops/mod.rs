//! One file per operation: each turns its part of a plan file into
//! [`Compiled`] actions. `compile` dispatches on the operation's kind.

use strata_source::plan::OperationKind;

use super::{CompileError, Compiled, Context};

/// Compiles one operation (or one step of it) of a plan.
pub fn compile(op: &OperationKind, ctx: &Context<'_>) -> Result<Compiled, CompileError> {
    // Each operation gets a file and an arm here as it is built.
    let _ = ctx;
    Err(CompileError {
        message: format!("operation `{}` is not supported yet", op.name()),
        help: None,
    })
}
