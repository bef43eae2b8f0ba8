//! What a compiled plan action changes in the schema, and which table lock
//! it takes, read from its SQL with PostgreSQL's parser.
//!
//! The review lists schema changes in words ("column users.age_new
//! added") rather than as the generated SQL, which is long (trigger
//! functions) and named after helper objects: a reviewer wants to see that
//! a phase adds a column, a trigger and a function, and that the contract
//! drops a column. The exact SQL stays one command away (`up --dry-run`).

use pg_query::protobuf::{AlterTableType, ObjectType};
use pg_query::NodeEnum;

use crate::lint::{ast, context::table_lock, Lock};

/// The schema changes of one SQL statement, one line each (none for DML,
/// queries and settings).
pub fn changes(sql: &str) -> Vec<String> {
    let Ok(statements) = crate::sql::split(sql, &[]) else {
        return vec![format!("`{}`", first_line(sql))];
    };
    let mut out = Vec::new();
    for s in &statements {
        for node in s.nodes() {
            if let Some(node) = node.node.as_ref() {
                out.extend(node_changes(node));
            }
        }
    }
    out
}

/// The strongest table lock the statements of `sql` take, with its table
/// (`LOCK TABLE` included), when one does. Locks on tables created earlier
/// in `sql` block nobody and are left out, as are index renames (the
/// index's table is locked by the statement that matters); among equal
/// locks, one on `prefer` (the operation's table) wins.
pub fn strongest_lock(sql: &str, prefer: Option<&str>) -> Option<(Lock, String)> {
    let statements = crate::sql::split(sql, &[]).ok()?;
    let mut created: Vec<String> = Vec::new();
    let mut locks: Vec<(Lock, String)> = Vec::new();
    for node in statements
        .iter()
        .flat_map(|s| s.nodes().into_iter().filter_map(|n| n.node))
    {
        match &node {
            NodeEnum::CreateStmt(c) => {
                if let Some(r) = &c.relation {
                    created.push(ast::relation(r));
                }
            }
            NodeEnum::LockStmt(l) => {
                locks.extend(l.relations.iter().filter_map(|r| match &r.node {
                    Some(NodeEnum::RangeVar(rv)) => Some((lock_mode(l.mode), ast::relation(rv))),
                    _ => None,
                }));
            }
            NodeEnum::DropStmt(d) if d.remove_type == ObjectType::ObjectTrigger as i32 => {
                // `DROP TRIGGER t ON tbl`: the object is (tbl, t).
                let first = list_names(&d.objects).into_iter().next();
                if let Some((table, _)) = first.as_deref().and_then(|n| n.rsplit_once('.')) {
                    locks.push((Lock::AccessExclusive, table.to_owned()));
                }
            }
            NodeEnum::RenameStmt(r) if r.rename_type == ObjectType::ObjectIndex as i32 => {}
            other => locks.extend(table_lock(other)),
        }
    }
    let key = |t: &str| crate::lint::schema::key(&t.replace('"', ""));
    let prefer = prefer.map(key);
    locks
        .into_iter()
        .filter(|(_, t)| !created.iter().any(|c| key(c) == key(t)))
        .max_by_key(|(lock, t)| (*lock, prefer.as_deref() == Some(key(t).as_str())))
}

/// `LockStmt.mode` (PostgreSQL's LOCKMODE, 1 to 8) as a [`Lock`].
fn lock_mode(mode: i32) -> Lock {
    match mode {
        1 => Lock::AccessShare,
        2 => Lock::RowShare,
        3 => Lock::RowExclusive,
        4 => Lock::ShareUpdateExclusive,
        5 => Lock::Share,
        6 => Lock::ShareRowExclusive,
        7 => Lock::Exclusive,
        _ => Lock::AccessExclusive,
    }
}

/// The first line of `sql`, shortened, for summaries.
pub fn first_line(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() > 100 {
        format!("{}…", line.chars().take(100).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn list_names(objects: &[pg_query::protobuf::Node]) -> Vec<String> {
    objects
        .iter()
        .filter_map(|o| match &o.node {
            Some(NodeEnum::List(l)) => Some(ast::name(&l.items)),
            Some(NodeEnum::String(s)) => Some(ast::ident(&s.sval)),
            Some(NodeEnum::ObjectWithArgs(f)) => Some(ast::name(&f.objname)),
            Some(NodeEnum::TypeName(t)) => Some(ast::name(&t.names)),
            _ => None,
        })
        .collect()
}

fn node_changes(node: &NodeEnum) -> Vec<String> {
    match node {
        NodeEnum::AlterTableStmt(_) => {
            let Some((table, cmds)) = ast::alter_table(node) else {
                return Vec::new();
            };
            cmds.iter()
                .filter_map(|c| alter_change(&table, c))
                .collect()
        }
        NodeEnum::CreateStmt(c) => c
            .relation
            .as_ref()
            .map(|r| {
                let kind = if c.partbound.is_some() {
                    "partition"
                } else if c.partspec.is_some() {
                    "partitioned table"
                } else {
                    "table"
                };
                vec![format!("{kind} {} created", ast::relation(r))]
            })
            .unwrap_or_default(),
        NodeEnum::IndexStmt(i) => {
            let table = i.relation.as_ref().map(ast::relation).unwrap_or_default();
            let name = if i.idxname.is_empty() {
                "(named by PostgreSQL)".to_owned()
            } else {
                ast::ident(&i.idxname)
            };
            vec![format!(
                "{}index {name} on {table} built{}",
                if i.unique { "unique " } else { "" },
                if i.concurrent { " concurrently" } else { "" }
            )]
        }
        NodeEnum::CreateTrigStmt(t) => vec![format!(
            "trigger {} on {} created",
            ast::ident(&t.trigname),
            t.relation.as_ref().map(ast::relation).unwrap_or_default()
        )],
        NodeEnum::CreateFunctionStmt(f) => {
            vec![format!("function {} created", ast::name(&f.funcname))]
        }
        NodeEnum::ViewStmt(v) => vec![format!(
            "view {} created",
            v.view.as_ref().map(ast::relation).unwrap_or_default()
        )],
        NodeEnum::DropStmt(d) => {
            let kind = match ObjectType::try_from(d.remove_type) {
                Ok(ObjectType::ObjectTable) => "table",
                Ok(ObjectType::ObjectIndex) => "index",
                Ok(ObjectType::ObjectTrigger) => "trigger",
                Ok(ObjectType::ObjectFunction) => "function",
                Ok(ObjectType::ObjectView) => "view",
                Ok(ObjectType::ObjectSequence) => "sequence",
                Ok(ObjectType::ObjectType) => "type",
                _ => "object",
            };
            list_names(&d.objects)
                .into_iter()
                .map(|name| match (kind, name.rsplit_once('.')) {
                    // `DROP TRIGGER t ON tbl` lists (tbl, t).
                    ("trigger", Some((table, trigger))) => {
                        format!("trigger {trigger} on {table} dropped")
                    }
                    _ => format!("{kind} {name} dropped"),
                })
                .collect()
        }
        NodeEnum::RenameStmt(r) => {
            let relation = r.relation.as_ref().map(ast::relation).unwrap_or_default();
            match ObjectType::try_from(r.rename_type) {
                Ok(ObjectType::ObjectColumn) => vec![format!(
                    "column {relation}.{} renamed to {}",
                    ast::ident(&r.subname),
                    ast::ident(&r.newname)
                )],
                Ok(ObjectType::ObjectTabconstraint) => vec![format!(
                    "constraint {} on {relation} renamed to {}",
                    ast::ident(&r.subname),
                    ast::ident(&r.newname)
                )],
                Ok(ObjectType::ObjectIndex) => vec![format!(
                    "index {relation} renamed to {}",
                    ast::ident(&r.newname)
                )],
                Ok(ObjectType::ObjectTrigger) => vec![format!(
                    "trigger {} on {relation} renamed to {}",
                    ast::ident(&r.subname),
                    ast::ident(&r.newname)
                )],
                _ if !relation.is_empty() => {
                    vec![format!("{relation} renamed to {}", ast::ident(&r.newname))]
                }
                _ => Vec::new(),
            }
        }
        NodeEnum::AlterSeqStmt(a) => vec![format!(
            "sequence {} altered (its owner column)",
            a.sequence.as_ref().map(ast::relation).unwrap_or_default()
        )],
        _ => Vec::new(),
    }
}

fn alter_change(table: &str, cmd: &pg_query::protobuf::AlterTableCmd) -> Option<String> {
    let t = AlterTableType::try_from(cmd.subtype).ok()?;
    let column = || format!("{table}.{}", ast::ident(&cmd.name));
    let constraint_name = || {
        ast::constraint(cmd)
            .map(|c| c.conname.clone())
            .filter(|n| !n.is_empty())
            .map_or_else(|| "(named by PostgreSQL)".to_owned(), |n| ast::ident(&n))
    };
    Some(match t {
        AlterTableType::AtAddColumn => {
            let name = match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::ColumnDef(c)) => ast::ident(&c.colname),
                _ => "?".to_owned(),
            };
            format!("column {table}.{name} added")
        }
        AlterTableType::AtDropColumn => format!("column {} dropped (its data with it)", column()),
        AlterTableType::AtAlterColumnType => format!("column {} changes type", column()),
        AlterTableType::AtSetNotNull => format!("column {} set NOT NULL", column()),
        AlterTableType::AtDropNotNull => format!("column {} NOT NULL dropped", column()),
        AlterTableType::AtColumnDefault => {
            if cmd.def.is_some() {
                format!("default of {} set", column())
            } else {
                format!("default of {} dropped", column())
            }
        }
        AlterTableType::AtAddConstraint => {
            let not_valid = ast::constraint(cmd).is_some_and(|c| c.skip_validation);
            format!(
                "constraint {} on {table} added{}",
                constraint_name(),
                if not_valid { " NOT VALID" } else { "" }
            )
        }
        AlterTableType::AtValidateConstraint => format!(
            "constraint {} on {table} validated (a scan; reads and writes go on)",
            ast::ident(&cmd.name)
        ),
        AlterTableType::AtDropConstraint => {
            format!("constraint {} on {table} dropped", ast::ident(&cmd.name))
        }
        AlterTableType::AtAttachPartition => format!("partition attached to {table}"),
        AlterTableType::AtDetachPartition => format!("partition detached from {table}"),
        AlterTableType::AtEnableTrig | AlterTableType::AtDisableTrig => {
            format!("trigger {} on {table} switched", ast::ident(&cmd.name))
        }
        _ => format!("{table} altered"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_what_each_statement_adds_and_drops() {
        assert_eq!(
            changes("ALTER TABLE users ADD COLUMN strata_1_new integer, DROP COLUMN age"),
            [
                "column users.strata_1_new added",
                "column users.age dropped (its data with it)"
            ]
        );
        assert_eq!(
            changes("CREATE INDEX CONCURRENTLY IF NOT EXISTS users_email_idx ON users (email)"),
            ["index users_email_idx on users built concurrently"]
        );
        assert_eq!(
            changes("DROP TRIGGER IF EXISTS strata_1_trg ON users"),
            ["trigger strata_1_trg on users dropped"]
        );
        assert_eq!(
            changes("ALTER TABLE users RENAME COLUMN strata_1_new TO age"),
            ["column users.strata_1_new renamed to age"]
        );
        assert_eq!(
            changes("ALTER TABLE orders ADD CONSTRAINT orders_user_fk FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID"),
            ["constraint orders_user_fk on orders added NOT VALID"]
        );
        assert!(changes("UPDATE users SET a = 1").is_empty());
    }

    #[test]
    fn the_strongest_lock_counts_lock_table_and_drop_trigger() {
        let sql = "LOCK TABLE events_new, events IN ACCESS EXCLUSIVE MODE;
                   ALTER INDEX events_new_pkey RENAME TO events_pkey";
        assert_eq!(
            strongest_lock(sql, Some("events")),
            Some((Lock::AccessExclusive, "events".to_owned()))
        );
        assert_eq!(
            strongest_lock("DROP TRIGGER IF EXISTS t ON users", None),
            Some((Lock::AccessExclusive, "users".to_owned()))
        );
        assert_eq!(
            strongest_lock("CREATE INDEX CONCURRENTLY i ON users (a)", None),
            Some((Lock::ShareUpdateExclusive, "users".to_owned()))
        );
        assert_eq!(strongest_lock("SELECT 1", None), None);
        // A table created in the same transaction blocks nobody: the
        // trigger on the existing table is the lock that matters.
        let sql = "CREATE TABLE t_new (id int); CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW EXECUTE FUNCTION f()";
        assert_eq!(
            strongest_lock(sql, None),
            Some((Lock::ShareRowExclusive, "t".to_owned()))
        );
    }
}
