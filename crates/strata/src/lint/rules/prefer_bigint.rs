//! `prefer-bigint`: 32-bit integer keys run out at 2.1 billion.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "prefer-bigint",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "32-bit integer keys run out at 2.1 billion",
    doc: "## What it does\nFlags `integer`, `smallint`, `serial` and `smallserial` columns that are keys: part of a primary or foreign key, or named `id` or `*_id`.\n\n## Why is this bad?\nA 32-bit key runs out at 2,147,483,647. Busy tables get there, and widening the column later rewrites the table (and every table referencing it) under an ACCESS EXCLUSIVE lock.\n\n## Safe rewrite\nUse `bigint` for keys from the start; it costs 4 bytes per row.\n\n## Example\n```sql\nCREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id bigint NOT NULL);\n```",
};

/// See [`META`].
pub struct PreferBigint;

impl Rule for PreferBigint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        for c in ast::column_types(ctx.node) {
            let (name, _) = ast::type_of(c.type_name);
            if !(matches!(name.as_str(), "int4" | "int2" | "serial" | "serial4" | "smallserial" | "serial2") && (c.key || c.column == "id" || c.column.ends_with("_id"))) {
                continue;
            }
            let shown = ast::type_display(c.type_name);
            out.push(
                Finding::new(&META, format!("key column {}.{} is {shown}, which runs out at 2,147,483,647", c.table, c.column))
                    .table(c.table.clone())
                    .fix(format!("-- column {col} of {t}:\n{col} bigint", t = c.table.clone(), col = ast::ident(&c.column))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires() {
        check_fires("prefer-bigint", "CREATE TABLE events (id integer PRIMARY KEY, user_id int NOT NULL);");
    }

    #[test]
    fn passes_ok() {
        check_ok("prefer-bigint", "CREATE TABLE events (id bigint PRIMARY KEY, retries int NOT NULL);");
    }
}
