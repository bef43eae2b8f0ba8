//! `ban-drop-database`: DROP DATABASE in a migration.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-drop-database",
    risk: Risk::High,
    lock: None,
    scans: false,
    summary: "DROP DATABASE destroys a whole database",
    doc: "## What it does
Flags `DROP DATABASE`.

## Why is this bad?
It destroys every object and every row of a database, irreversibly, and has no place in a schema migration that runs in every environment.

## Safe rewrite
Drop databases by hand, as an operation with its own review and backup, not in a migration.

## Example
```sql
-- not in a migration; as a reviewed operation, after pg_dump:
-- DROP DATABASE old_reporting;
```",
};

/// See [`META`].
pub struct BanDropDatabase;

impl Rule for BanDropDatabase {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::DropdbStmt(d) = ctx.node else { return };
        out.push(
            Finding::new(&META, format!("DROP DATABASE {} destroys the whole database", d.dbname))
                .fix(format!("-- remove it from the migration; drop it by hand after a backup:\n-- pg_dump -Fc {name} > {name}.dump && dropdb {name}", name = d.dbname)),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_drop_database() {
        check_fires("ban-drop-database", "DROP DATABASE old_reporting;");
    }

    #[test]
    fn ok_on_create_database() {
        check_ok("ban-drop-database", "CREATE DATABASE reporting;");
    }
}
