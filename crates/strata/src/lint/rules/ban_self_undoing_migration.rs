//! `ban-self-undoing-migration`: a file that creates objects and drops them
//! again, leaving no net schema change (an up and a down section pasted into
//! one file).

use super::prelude::*;
use crate::sql::Statement;

/// The rule's description.
pub static META: RuleMeta = RuleMeta {
    id: "ban-self-undoing-migration",
    risk: Risk::High,
    lock: None,
    scans: false,
    summary: "the migration drops every object it creates, so it changes nothing (an up and a down part in one file)",
    doc: "## What it does
Flags a migration whose statements drop every table, index, view, sequence, type and function they create, and that touches no data on the way: run top to bottom, it leaves the schema as it found it. This is what a file with an \"UP Migration\" and a \"DOWN Migration\" section written one after the other does when a runner executes it whole.

## Why is this bad?
The run reports the migration as applied, yet nothing it was meant to create exists. Later migrations, and the application, fail on missing objects, far from the cause.

## Safe rewrite
Mark the two parts, so that `strata up` runs only the first and `strata down` only the second (this works in every layout):
```sql
-- strata:up
CREATE TABLE wishlists (id bigint PRIMARY KEY);
-- strata:down
DROP TABLE wishlists;
```

## Example
```sql
-- UP Migration
CREATE TABLE wishlists (id bigint PRIMARY KEY);
-- DOWN Migration
DROP TABLE wishlists;
```",
};

/// See [`META`]. The check needs the whole file, so the driver calls
/// [`check_script`] once per script; the per-statement hook does nothing.
pub struct BanSelfUndoingMigration;

impl Rule for BanSelfUndoingMigration {
    fn meta(&self) -> &'static RuleMeta {
        &META
    }

    fn check(&self, _ctx: &StmtCtx<'_>, _out: &mut Vec<Finding>) {}
}

/// What a statement creates: (kind, unqualified name).
fn created(node: &NodeEnum) -> Option<(&'static str, String)> {
    let last = |nodes: &[pg_query::protobuf::Node]| ast::strings(nodes).pop();
    match node {
        NodeEnum::CreateStmt(c) => c.relation.as_ref().map(|r| ("table", r.relname.clone())),
        NodeEnum::CreateTableAsStmt(c) => c
            .into
            .as_ref()
            .and_then(|i| i.rel.as_ref())
            .map(|r| ("table", r.relname.clone())),
        NodeEnum::IndexStmt(i) if !i.idxname.is_empty() => Some(("index", i.idxname.clone())),
        NodeEnum::ViewStmt(v) => v.view.as_ref().map(|r| ("table", r.relname.clone())),
        NodeEnum::CreateSeqStmt(s) => s.sequence.as_ref().map(|r| ("table", r.relname.clone())),
        NodeEnum::CreateEnumStmt(e) => last(&e.type_name).map(|n| ("type", n)),
        NodeEnum::CompositeTypeStmt(c) => c.typevar.as_ref().map(|r| ("type", r.relname.clone())),
        NodeEnum::CreateDomainStmt(d) => last(&d.domainname).map(|n| ("type", n)),
        NodeEnum::CreateFunctionStmt(f) => last(&f.funcname).map(|n| ("function", n)),
        _ => None,
    }
}

/// The table an index is built on.
fn index_relation(node: &NodeEnum) -> Option<String> {
    match node {
        NodeEnum::IndexStmt(i) => i.relation.as_ref().map(|r| r.relname.clone()),
        _ => None,
    }
}

/// What a DROP statement drops: (kind, unqualified name) each.
fn dropped(node: &NodeEnum) -> Vec<(&'static str, String)> {
    let NodeEnum::DropStmt(d) = node else {
        return Vec::new();
    };
    let t = d.remove_type;
    let kind = if [
        ObjectType::ObjectTable,
        ObjectType::ObjectView,
        ObjectType::ObjectMatview,
        ObjectType::ObjectSequence,
        ObjectType::ObjectForeignTable,
    ]
    .iter()
    .any(|k| *k as i32 == t)
    {
        "table"
    } else if t == ObjectType::ObjectIndex as i32 {
        "index"
    } else if t == ObjectType::ObjectType as i32 || t == ObjectType::ObjectDomain as i32 {
        "type"
    } else if [
        ObjectType::ObjectFunction,
        ObjectType::ObjectProcedure,
        ObjectType::ObjectRoutine,
    ]
    .iter()
    .any(|k| *k as i32 == t)
    {
        "function"
    } else {
        return Vec::new();
    };
    d.objects
        .iter()
        .filter_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => ast::strings(&l.items).pop(),
            Some(NodeEnum::TypeName(tn)) => ast::strings(&tn.names).pop(),
            Some(NodeEnum::ObjectWithArgs(f)) => ast::strings(&f.objname).pop(),
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .map(|n| (kind, n))
        .collect()
}

/// Statements that work on data: a file that creates a staging table, fills
/// it, uses it and drops it changes data, not nothing.
fn touches_data(node: &NodeEnum) -> bool {
    matches!(
        node,
        NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_)
            | NodeEnum::CopyStmt(_)
            | NodeEnum::DoStmt(_)
            | NodeEnum::CallStmt(_)
            | NodeEnum::SelectStmt(_)
            | NodeEnum::AlterTableStmt(_)
            | NodeEnum::RenameStmt(_)
            | NodeEnum::GrantStmt(_)
            | NodeEnum::CommentStmt(_)
    )
}

/// Checks a whole script: returns the index of the statement to report (the
/// first DROP of an object the script created) and the finding, when every
/// object the script creates is dropped again and nothing else happens.
/// ALTERs, grants and comments count as other work: they may act on objects
/// that existed before.
pub fn check_script(statements: &[Statement]) -> Option<(usize, Finding)> {
    let mut made: Vec<(&'static str, String)> = Vec::new();
    let mut first_drop: Option<usize> = None;
    let mut undone: Vec<(&'static str, String)> = Vec::new();
    // Indexes go with their table: (index, table).
    let mut index_on: Vec<(String, String)> = Vec::new();
    for (index, stmt) in statements.iter().enumerate() {
        if stmt.unparsed.is_some() {
            return None;
        }
        for node in stmt.nodes().iter().filter_map(|n| n.node.as_ref()) {
            if touches_data(node) {
                return None;
            }
            if let Some(object) = created(node) {
                if let (NodeEnum::IndexStmt(i), Some(rel)) = (node, index_relation(node)) {
                    index_on.push((i.idxname.clone(), rel));
                }
                made.push(object);
            }
            for object in dropped(node) {
                if made.contains(&object) {
                    first_drop.get_or_insert(index);
                    undone.push(object);
                }
            }
        }
    }
    let at = first_drop?;
    let gone = |o: &(&'static str, String)| {
        undone.contains(o)
            || o.0 == "index"
                && index_on
                    .iter()
                    .any(|(i, t)| *i == o.1 && undone.contains(&("table", t.clone())))
    };
    if !made.iter().all(gone) {
        return None;
    }
    let names: Vec<String> = made.iter().map(|(_, n)| n.clone()).collect();
    let finding = Finding::new(
        &META,
        format!(
            "this migration drops everything it creates ({}): run whole, it changes nothing, yet it would be recorded as applied. It looks like an up and a down part in one file",
            names.join(", ")
        ),
    )
    .fix(format!(
        "-- strata:up\n-- (the statements that create the objects)\n-- strata:down\n{};\n-- (and the rest of the file)",
        statements[at].summary()
    ));
    Some((at, finding))
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::{check_fires, check_ok};

    #[test]
    fn fires_on_up_and_down_banners_in_one_file() {
        let f = check_fires(
            "ban-self-undoing-migration",
            "-- UP Migration\nCREATE TABLE wishlist (id bigint PRIMARY KEY);\nCREATE INDEX wishlist_idx ON wishlist (id);\n\n-- DOWN Migration\nDROP TABLE public.wishlist;\n",
        );
        assert_eq!(f.line, 6);
        assert!(f.fix.unwrap().contains("-- strata:down"));
        check_fires(
            "ban-self-undoing-migration",
            "CREATE TYPE mood AS ENUM ('a');\nCREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1';\nDROP FUNCTION f();\nDROP TYPE mood;\n",
        );
    }

    #[test]
    fn ok_when_something_remains_or_data_moves() {
        check_ok("ban-self-undoing-migration", "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\nDROP TABLE a;\n");
        // A staging table used for a data change.
        check_ok(
            "ban-self-undoing-migration",
            "CREATE TABLE stage (id int);\nINSERT INTO stage SELECT 1;\nDROP TABLE stage;\n",
        );
        // Dropping something that existed before is another rule's business.
        check_ok("ban-self-undoing-migration", "DROP TABLE old_things;\n");
    }
}
