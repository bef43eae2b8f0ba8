//! One file per operation: each turns its part of a plan file into
//! [`Compiled`] actions. `compile` dispatches on the operation's kind.

mod add_column;
mod backfill;
mod drop_column;
mod drop_table;
mod sql;
mod validate;

use strata_source::plan::OperationKind;

use super::{CompileError, Compiled, Context};

/// Compiles one operation (or one step of it) of a plan.
pub fn compile(op: &OperationKind, ctx: &Context<'_>) -> Result<Compiled, CompileError> {
    use OperationKind as K;
    match op {
        K::AddColumn {
            table,
            column,
            column_type,
            default,
        } => Ok(add_column::compile(
            table,
            column,
            column_type,
            default.as_deref(),
        )),
        K::DropColumn { table, column } => Ok(drop_column::compile(table, column)),
        K::DropTable { table } => Ok(drop_table::compile(table)),
        K::Sql { up, down } => sql::compile(up, down.as_deref()),
        K::Validate { sql, message } => Ok(validate::compile(sql, message.as_deref())),
        K::Backfill {
            table,
            set,
            predicate,
        } => Ok(backfill::compile(table, set, predicate.as_deref())),
        // Each operation gets a file and an arm here as it is built.
        _ => {
            let _ = ctx;
            Err(CompileError {
                message: format!("operation `{}` is not supported yet", op.name()),
                help: None,
            })
        }
    }
}
