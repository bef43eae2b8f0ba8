//! `prefer-text`: varchar(n) limits are costly to change; use text with a CHECK.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "prefer-text",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "varchar(n) limits are costly to change; use text with a CHECK",
    doc: "## What it does\nFlags `varchar(n)` columns.\n\n## Why is this bad?\nThe limit is part of the type: raising it is cheap, but lowering it or turning it into a real rule (a CHECK) later means a table scan under an ACCESS EXCLUSIVE lock, and the number is rarely a real business rule. `text` performs the same.\n\n## Safe rewrite\nUse `text`, with a `CHECK (char_length(col) <= n)` if the limit matters; a CHECK can be changed with NOT VALID + VALIDATE.\n\n## Example\n```sql\nCREATE TABLE users (name text NOT NULL CHECK (char_length(name) <= 200));\n```",
};

/// See [`META`].
pub struct PreferText;

impl Rule for PreferText {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        for c in ast::column_types(ctx.node) {
            let (name, mods) = ast::type_of(c.type_name);
            if name != "varchar" || mods.is_empty() {
                continue;
            }
            let shown = ast::type_display(c.type_name);
            out.push(
                Finding::new(&META, format!("{}.{} is {shown}; the length limit is part of the type and costly to change later", c.table, c.column))
                    .table(c.table.clone())
                    .fix(format!("-- column {col} of {t}:\n{col} text CHECK (char_length({col}) <= {n})  -- instead of varchar({n})", n = mods.first().copied().unwrap_or(0), t = c.table.clone(), col = ast::ident(&c.column))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires() {
        check_fires("prefer-text", "CREATE TABLE users (name varchar(200));");
    }

    #[test]
    fn passes_ok() {
        check_ok("prefer-text", "CREATE TABLE users (name text CHECK (char_length(name) <= 200));");
    }
}
