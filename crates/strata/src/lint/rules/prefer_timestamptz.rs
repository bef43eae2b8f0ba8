//! `prefer-timestamptz`: timestamp without time zone loses the instant's meaning.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "prefer-timestamptz",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "timestamp without time zone loses the instant's meaning",
    doc: "## What it does\nFlags `timestamp` (without time zone) columns.\n\n## Why is this bad?\nA `timestamp` stores wall-clock digits with no zone: the same value means different instants to clients in different zones, and daylight-saving changes make values ambiguous. `timestamptz` stores an instant and converts on display.\n\n## Safe rewrite\nUse `timestamptz`.\n\n## Example\n```sql\nCREATE TABLE events (created_at timestamptz NOT NULL DEFAULT now());\n```",
};

/// See [`META`].
pub struct PreferTimestamptz;

impl Rule for PreferTimestamptz {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        for c in ast::column_types(ctx.node) {
            let (name, _) = ast::type_of(c.type_name);
            if name != "timestamp" {
                continue;
            }
            out.push(
                Finding::new(&META, format!("{}.{} is timestamp without time zone; the same value means different instants in different zones", c.table, c.column))
                    .table(c.table.clone())
                    .fix(format!("-- column {col} of {t}:\n{col} timestamptz  -- instead of timestamp", t = c.table.clone(), col = ast::ident(&c.column))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires() {
        check_fires("prefer-timestamptz", "CREATE TABLE events (created_at timestamp NOT NULL);");
    }

    #[test]
    fn passes_ok() {
        check_ok("prefer-timestamptz", "CREATE TABLE events (created_at timestamptz NOT NULL);");
    }
}
