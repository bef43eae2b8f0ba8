//! `ban-char-type`: char(n) pads with spaces and wastes space.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-char-type",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "char(n) pads with spaces and wastes space",
    doc: "## What it does\nFlags `char(n)` / `character(n)` columns.\n\n## Why is this bad?\n`char(n)` pads values with spaces to n characters, which leaks into comparisons and application code, and it is no faster than `text` in PostgreSQL.\n\n## Safe rewrite\nUse `text` (with a CHECK on the length if it matters).\n\n## Example\n```sql\nCREATE TABLE countries (code text NOT NULL CHECK (char_length(code) = 2));\n```",
};

/// See [`META`].
pub struct BanCharType;

impl Rule for BanCharType {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        for c in ast::column_types(ctx.node) {
            let (name, _) = ast::type_of(c.type_name);
            if name != "bpchar" {
                continue;
            }
            let shown = ast::type_display(c.type_name);
            out.push(
                Finding::new(&META, format!("{}.{} is {shown}, which pads values with spaces", c.table, c.column))
                    .table(c.table.clone())
                    .fix(format!("-- column {col} of {t}:\n{col} text  -- instead of char(n); add CHECK (char_length({col}) = n) if the length matters", t = c.table.clone(), col = ast::ident(&c.column))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires() {
        check_fires("ban-char-type", "CREATE TABLE countries (code char(2));");
    }

    #[test]
    fn passes_ok() {
        check_ok("ban-char-type", "CREATE TABLE countries (code text CHECK (char_length(code) = 2));");
    }
}
