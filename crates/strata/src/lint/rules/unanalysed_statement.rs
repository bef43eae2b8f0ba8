//! `unanalysed-statement`: valid SQL the analysis cannot look inside.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "unanalysed-statement",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "a valid statement nested too deeply for the analysis; it runs as written, unchecked",
    doc: "## What it does
Reports a statement that PostgreSQL's grammar accepts but whose parse tree is too deep to hand over to the analysis (pg_query passes trees as protobuf, which stops at about 45 levels: a chain of 48 `||` or `AND` is enough). The statement is split and run exactly as written; only the rules cannot look inside it.

## Why is this bad?
The statement is not checked: a lock or rewrite it causes is not reported, and the automatic backup cannot see what it deletes. LOW for queries and inserts, MEDIUM for statements that may lock or lose data (`ALTER`, `DROP`, `DELETE`, `UPDATE`, `TRUNCATE`, `CREATE`, `MERGE`).

## Safe rewrite
Nothing is required. To have it checked, build long expressions another way, for example `concat_ws('', a, b, c, ...)` or `col = ANY (ARRAY[...])` instead of a long chain of operators.

## Example
```sql
-- before
SELECT 'a' || 'b' || 'c' || ... ; -- hundreds of operands
-- after
SELECT concat('a', 'b', 'c', ...);
```",
};

/// See [`META`]. The driver reports it for statements without a parse tree.
pub struct UnanalysedStatement;

impl Rule for UnanalysedStatement {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, _ctx: &StmtCtx<'_>, _out: &mut Vec<Finding>) {}
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint};
    use crate::lint::Risk;

    fn chain(n: usize) -> String {
        vec!["'x'"; n].join(" || ")
    }

    #[test]
    fn fires_on_a_long_operator_chain_instead_of_a_syntax_error() {
        let sql = format!("SELECT 1;\nSELECT {};\nALTER TABLE t DROP COLUMN a;", chain(300));
        let f = check_fires("unanalysed-statement", &sql);
        assert_eq!((f.line, f.risk), (2, Risk::Low));
        let found = lint(&sql);
        assert!(found.iter().all(|f| f.rule != "syntax-error"), "{found:?}");
        // The statements around it are still analysed.
        assert!(found.iter().any(|f| f.rule == "ban-drop-column" && f.line == 3), "{found:?}");
    }

    #[test]
    fn is_medium_for_statements_that_may_lock_or_lose_data() {
        let f = check_fires("unanalysed-statement", &format!("DELETE FROM t WHERE v = {};", chain(300)));
        assert_eq!(f.risk, Risk::Medium, "{f:?}");
    }

    #[test]
    fn ok_on_short_chains() {
        check_ok("unanalysed-statement", &format!("SELECT {};", chain(40)));
    }
}
