//! `prefer-jsonb`: json keeps text; jsonb can be indexed and compared.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "prefer-jsonb",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "json keeps text; jsonb can be indexed and compared",
    doc: "## What it does\nFlags `json` columns.\n\n## Why is this bad?\n`json` stores the text as written and reparses it on every access; it cannot be indexed with GIN, has no equality operator (so no DISTINCT, GROUP BY or UNIQUE), and keeps duplicate keys. `jsonb` fixes all of that.\n\n## Safe rewrite\nUse `jsonb`, unless you must keep the exact text and key order.\n\n## Example\n```sql\nCREATE TABLE events (payload jsonb NOT NULL);\n```",
};

/// See [`META`].
pub struct PreferJsonb;

impl Rule for PreferJsonb {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        for c in ast::column_types(ctx.node) {
            let (name, _) = ast::type_of(c.type_name);
            if name != "json" {
                continue;
            }
            out.push(
                Finding::new(&META, format!("{}.{} is json: no indexing, no equality, reparsed on every access", c.table, c.column))
                    .table(c.table.clone())
                    .fix(format!("-- column {col} of {t}:\n{col} jsonb  -- instead of json", t = c.table.clone(), col = ast::ident(&c.column))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires() {
        check_fires("prefer-jsonb", "CREATE TABLE events (payload json);");
    }

    #[test]
    fn passes_ok() {
        check_ok("prefer-jsonb", "CREATE TABLE events (payload jsonb);");
    }
}
