//! `prefer-identity`: serial columns have quirks that identity columns fix.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "prefer-identity",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "serial columns have quirks that identity columns fix",
    doc: "## What it does\nFlags `serial`, `bigserial` and `smallserial` columns.\n\n## Why is this bad?\n`serial` is a macro for a sequence plus a default: the sequence has its own owner and permissions, can be written to by hand, and is not tied to the column the way the SQL standard's identity columns are.\n\n## Safe rewrite\nUse `bigint GENERATED ALWAYS AS IDENTITY` (or `BY DEFAULT` if you must insert explicit values).\n\n## Example\n```sql\nCREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);\n```",
};

/// See [`META`].
pub struct PreferIdentity;

impl Rule for PreferIdentity {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        for c in ast::column_types(ctx.node) {
            let (name, _) = ast::type_of(c.type_name);
            if !(matches!(name.as_str(), "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2")) {
                continue;
            }
            let shown = ast::type_display(c.type_name);
            out.push(
                Finding::new(&META, format!("{}.{} is {shown}; identity columns do the same without serial's quirks", c.table, c.column))
                    .table(c.table.clone())
                    .fix(format!("-- column {col} of {t}:\n{col} bigint GENERATED ALWAYS AS IDENTITY  -- instead of serial", t = c.table.clone(), col = ast::ident(&c.column))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires() {
        check_fires("prefer-identity", "CREATE TABLE events (id bigserial PRIMARY KEY);");
    }

    #[test]
    fn passes_ok() {
        check_ok("prefer-identity", "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);");
    }
}
