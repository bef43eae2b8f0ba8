//! `unused-allow`: a `-- strata:allow` that acknowledges nothing.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "unused-allow",
    risk: Risk::Low,
    lock: None,
    scans: false,
    summary: "a strata:allow directive that acknowledges no finding",
    doc: "## What it does
Reports `-- strata:allow RULE reason: ...` directives that acknowledged nothing: the rule did not fire on the statement below (or, for a file-level allow in the file's header, anywhere in the file), or the rule id is unknown.

## Why is this bad?
A stale allow hides the next real finding of that rule on that statement, and an unknown id is usually a typo that leaves the finding it meant to acknowledge active.

## Safe rewrite
Remove the directive, or fix the rule id.

## Example
```sql
-- strata:allow ban-drop-column reason: column unused since release 42
ALTER TABLE users DROP COLUMN legacy;
```",
};

/// See [`META`]. The driver reports it after matching allows to findings.
pub struct UnusedAllow;

impl Rule for UnusedAllow {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, _ctx: &StmtCtx<'_>, _out: &mut Vec<Finding>) {}
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok, lint};

    #[test]
    fn fires_on_stale_and_unknown_allows() {
        check_fires("unused-allow", "-- strata:allow ban-drop-column reason: old\nCREATE TABLE t (a int);");
        check_fires("unused-allow", "-- strata:allow no-such-rule reason: typo\nCREATE TABLE t (a int);");
    }

    #[test]
    fn ok_when_the_allow_is_used() {
        let sql = "-- strata:allow ban-drop-column reason: unused since v42\nALTER TABLE users DROP COLUMN legacy;";
        check_ok("unused-allow", sql);
        let findings = lint(sql);
        assert!(findings.iter().all(|f| f.allowed), "{findings:?}");
    }

    #[test]
    fn file_level_allows_cover_every_statement() {
        let sql = "-- strata:allow ban-drop-column reason: cleanup release\n\nALTER TABLE a DROP COLUMN x;\nALTER TABLE b DROP COLUMN y;";
        let findings = lint(sql);
        let drops: Vec<_> = findings.iter().filter(|f| f.rule == "ban-drop-column").collect();
        assert_eq!(drops.len(), 2);
        assert!(drops.iter().all(|f| f.allowed));
        // Directly above a statement, it covers only that statement.
        let findings = lint("SELECT 1;\n-- strata:allow ban-drop-column reason: x\nALTER TABLE a DROP COLUMN x;\nALTER TABLE b DROP COLUMN y;");
        let allowed: Vec<bool> = findings.iter().filter(|f| f.rule == "ban-drop-column").map(|f| f.allowed).collect();
        assert_eq!(allowed, [true, false]);
    }
}
