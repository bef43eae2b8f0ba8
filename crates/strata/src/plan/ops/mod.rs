//! One file per operation: each turns its part of a plan file into
//! [`Compiled`] actions. `compile` dispatches on the operation's kind.

mod add_column;
mod add_foreign_key;
mod add_index;
mod add_jsonb_column;
mod add_required_column;
mod backfill;
mod change_column_type;
mod drop_column;
mod drop_table;
mod normalize_json;
mod partition_table;
mod rename_column;
mod set_not_null;
mod shadow;
mod soft_delete;
mod split_column;
mod sql;
mod table_names;
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
        OperationKind::AddIndex {
            table,
            name,
            columns,
            unique,
            using,
            predicate,
        } => add_index::compile(
            &add_index::AddIndex {
                table,
                name: name.as_deref(),
                columns,
                unique: *unique,
                using: using.as_deref(),
                predicate: predicate.as_deref(),
            },
            ctx,
        ),
        OperationKind::SoftDelete {
            table,
            column,
            view,
        } => soft_delete::compile(
            &soft_delete::SoftDelete {
                table,
                column: column.as_deref(),
                view: view.as_deref(),
            },
            ctx,
        ),
        OperationKind::AddJsonbColumn {
            table,
            column,
            default,
            backfill,
            gin,
            path_indexes,
        } => add_jsonb_column::compile(
            &add_jsonb_column::AddJsonbColumn {
                table,
                column,
                default: default.as_deref(),
                backfill: backfill.as_deref(),
                gin: *gin,
                path_indexes,
            },
            ctx,
        ),
        OperationKind::AddForeignKey {
            table,
            columns,
            references,
            references_columns,
            name,
            orphans,
            on_delete,
        } => add_foreign_key::compile(
            &add_foreign_key::AddForeignKey {
                table,
                columns,
                references,
                references_columns,
                name: name.as_deref(),
                orphans,
                on_delete: on_delete.as_deref(),
            },
            ctx,
        ),
        OperationKind::NormalizeJson {
            table,
            column,
            into,
            columns,
        } => normalize_json::compile(
            &normalize_json::NormalizeJson {
                table,
                column,
                into,
                columns,
            },
            ctx,
        ),
        OperationKind::PartitionTable {
            table,
            key,
            interval,
            from,
            to,
        } => partition_table::compile(
            &partition_table::PartitionTable {
                table,
                key,
                interval: *interval,
                from,
                to,
            },
            ctx,
        ),
    }
}
