//! One file per operation: each turns its part of a plan file into
//! [`Compiled`] actions. `compile` dispatches on the operation's kind.

mod add_required_column;
mod change_column_type;
mod rename_column;
mod set_not_null;
mod shadow;
mod split_column;

use strata_source::plan::OperationKind;

use super::{CompileError, Compiled, Context};

/// Compiles one operation (or one step of it) of a plan.
pub fn compile(op: &OperationKind, ctx: &Context<'_>) -> Result<Compiled, CompileError> {
    use OperationKind as K;
    match op {
        K::AddRequiredColumn {
            table,
            column,
            column_type,
            default,
            backfill,
        } => add_required_column::compile(
            table,
            column,
            column_type,
            default,
            backfill.as_deref(),
            ctx,
        ),
        K::SetNotNull { table, column } => set_not_null::compile(table, column, ctx),
        K::RenameColumn { table, from, to } => rename_column::compile(table, from, to, ctx),
        K::ChangeColumnType {
            table,
            column,
            column_type,
            using,
        } => change_column_type::compile(table, column, column_type, using.as_deref(), ctx),
        K::SplitColumn {
            table,
            column,
            into,
        } => split_column::compile(table, column, into, ctx),
        // Each operation gets a file and an arm here as it is built.
        _ => Err(CompileError {
            message: format!("operation `{}` is not supported yet", op.name()),
            help: None,
        }),
    }
}
