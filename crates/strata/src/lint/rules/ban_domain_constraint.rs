//! `ban-domain-constraint`: ALTER DOMAIN ... ADD CONSTRAINT without NOT VALID.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-domain-constraint",
    risk: Risk::Medium,
    lock: Some(Lock::Share),
    scans: true,
    summary: "ALTER DOMAIN ADD CONSTRAINT checks every column of every table that uses the domain",
    doc: "## What it does
Flags `ALTER DOMAIN ... ADD CONSTRAINT` without `NOT VALID`.

## Why is this bad?
The new constraint is checked against every value of every column, in every table, that uses the domain, while those tables are locked against writes. The cost is invisible in the migration text.

## Safe rewrite
Add it `NOT VALID`, then `VALIDATE CONSTRAINT` in a separate transaction.

## Example
```sql
-- before
ALTER DOMAIN email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%');
-- after
ALTER DOMAIN email ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%') NOT VALID;
-- separate transaction:
ALTER DOMAIN email VALIDATE CONSTRAINT email_has_at;
```",
};

/// See [`META`].
pub struct BanDomainConstraint;

impl Rule for BanDomainConstraint {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::AlterDomainStmt(d) = ctx.node else { return };
        if d.subtype != "C" {
            return;
        }
        let Some(NodeEnum::Constraint(c)) = d.def.as_deref().and_then(|n| n.node.as_ref()) else { return };
        if c.skip_validation {
            return;
        }
        let domain = ast::name(&d.type_name);
        let name = if c.conname.is_empty() { format!("{domain}_check") } else { c.conname.clone() };
        let check = c.raw_expr.as_deref().map(ast::deparse_expr).unwrap_or_else(|| "...".into());
        out.push(
            Finding::new(&META, format!("ALTER DOMAIN {domain} ADD CONSTRAINT checks every column of every table using the domain, while blocking their writes"))
                .rewrite(format!(
                    "ALTER DOMAIN {} ADD CONSTRAINT {} CHECK ({check}) NOT VALID;\n-- separate transaction:\nALTER DOMAIN {} VALIDATE CONSTRAINT {};",
                    domain.clone(),
                    ast::ident(&name),
                    domain.clone(),
                    ast::ident(&name)
                )),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_without_not_valid() {
        let f = check_fires("ban-domain-constraint", "ALTER DOMAIN email ADD CONSTRAINT has_at CHECK (VALUE LIKE '%@%');");
        assert!(f.fix.unwrap().contains("CHECK (value LIKE '%@%') NOT VALID"));
    }

    #[test]
    fn ok_with_not_valid_or_new_domains() {
        check_ok("ban-domain-constraint", "ALTER DOMAIN email ADD CONSTRAINT has_at CHECK (VALUE LIKE '%@%') NOT VALID;");
        check_ok("ban-domain-constraint", "CREATE DOMAIN email AS text CHECK (VALUE LIKE '%@%');");
    }
}
