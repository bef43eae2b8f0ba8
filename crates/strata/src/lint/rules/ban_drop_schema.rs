//! `ban-drop-schema`: DROP SCHEMA.

use super::prelude::*;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-drop-schema",
    risk: Risk::High,
    lock: Some(Lock::AccessExclusive),
    scans: false,
    summary: "DROP SCHEMA destroys every object in it (with CASCADE) and breaks code using them",
    doc: "## What it does
Flags `DROP SCHEMA`.

## Why is this bad?
With `CASCADE` every table, view, function and type in the schema is dropped with its data; without it, the statement fails if anything is left. Either way it is irreversible for what it removes.

## Safe rewrite
Drop the objects one by one in earlier migrations (each reviewed, each backed up), then drop the empty schema without `CASCADE`.

## Example
```sql
-- after the schema has been emptied deliberately:
DROP SCHEMA legacy RESTRICT;
```",
};

/// See [`META`].
pub struct BanDropSchema;

impl Rule for BanDropSchema {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, ctx: &StmtCtx<'_>, out: &mut Vec<Finding>) {
        let NodeEnum::DropStmt(d) = ctx.node else { return };
        if d.remove_type != ObjectType::ObjectSchema as i32 {
            return;
        }
        let names: Vec<String> = d
            .objects
            .iter()
            .filter_map(|o| match &o.node {
                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect();
        let cascade = d.behavior == pg_query::protobuf::DropBehavior::DropCascade as i32;
        out.push(
            Finding::new(&META, format!("DROP SCHEMA {}{} destroys everything in it", names.join(", "), if cascade { " CASCADE" } else { "" }))
                .fix(format!("-- drop (and back up) its objects one by one first, then:\nDROP SCHEMA {} RESTRICT;", names.iter().map(|n| ast::ident(n)).collect::<Vec<_>>().join(", "))),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_drop_schema() {
        check_fires("ban-drop-schema", "DROP SCHEMA legacy CASCADE;");
    }

    #[test]
    fn ok_on_create_schema() {
        check_ok("ban-drop-schema", "CREATE SCHEMA billing;");
    }
}
