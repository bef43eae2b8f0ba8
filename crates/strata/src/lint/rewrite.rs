//! Building blocks for the rewrites findings offer (`Finding::rewrite`):
//! SQL that replaces the flagged statement and ends in the same catalog.
//! Rewrites are built from parse trees and deparsed, so names, types,
//! `USING` expressions and every other action of the statement survive as
//! PostgreSQL reads them; `tests/cli/rewrites_run.rs` runs each one.

use pg_query::protobuf::{AlterTableCmd, AlterTableStmt, Node};
use pg_query::NodeEnum;

use super::ast;
use crate::sql::names;

/// The ALTER TABLE statement `original` with its command `target` (one of
/// its own commands, as returned by [`ast::alter_table`]) replaced by
/// `with` (possibly nothing); `None` when no command is left.
pub fn alter_replacing(
    original: &NodeEnum,
    target: &AlterTableCmd,
    with: Vec<AlterTableCmd>,
) -> Option<String> {
    let mut with = Some(with);
    alter_mapping(original, |cmd| {
        if std::ptr::eq(cmd, target) {
            with.take()
        } else {
            None
        }
    })
}

/// The ALTER TABLE statement `original` with each command for which `map`
/// returns replacements replaced by them (the others kept as written);
/// `None` when no command is left.
pub fn alter_mapping(
    original: &NodeEnum,
    mut map: impl FnMut(&AlterTableCmd) -> Option<Vec<AlterTableCmd>>,
) -> Option<String> {
    let NodeEnum::AlterTableStmt(stmt) = original else {
        return None;
    };
    let mut cmds = Vec::with_capacity(stmt.cmds.len());
    for node in &stmt.cmds {
        let replaced = match &node.node {
            Some(NodeEnum::AlterTableCmd(cmd)) => map(cmd.as_ref()),
            _ => None,
        };
        match replaced {
            Some(replacements) => cmds.extend(replacements.into_iter().map(|r| Node {
                node: Some(NodeEnum::AlterTableCmd(Box::new(r))),
            })),
            None => cmds.push(node.clone()),
        }
    }
    if cmds.is_empty() {
        return None;
    }
    let single = AlterTableStmt {
        relation: stmt.relation.clone(),
        cmds,
        objtype: stmt.objtype,
        missing_ok: stmt.missing_ok,
    };
    Some(ast::deparse(&NodeEnum::AlterTableStmt(single)))
}

/// The other actions of `original`, without `target`, as one statement
/// ending in `;` and a newline, or nothing when there are none.
pub fn others(original: &NodeEnum, target: &AlterTableCmd) -> String {
    alter_replacing(original, target, Vec::new())
        .map(|s| format!("{s};\n"))
        .unwrap_or_default()
}

/// The name of the temporary `CHECK (col IS NOT NULL)` that makes
/// `SET NOT NULL` scan-free. It must not be `<table>_<col>_not_null`:
/// PostgreSQL 18 gives the NOT NULL constraint itself that name, and would
/// pick another one if the check held it.
pub fn not_null_check_name(table: &str, column: &str) -> String {
    names::object_name(&ast::base_name(table), Some(column), "not_null_check")
}

/// `SET NOT NULL` without a long lock (PostgreSQL 12 and later): a `CHECK
/// (col IS NOT NULL) NOT VALID`, validated under a weak lock, lets
/// `SET NOT NULL` skip its scan; the check is dropped afterwards.
/// `set_not_null` is the statement that sets it (the caller's own, when
/// it has other actions to keep).
pub fn not_null_steps(table: &str, column: &str, set_not_null: &str) -> String {
    not_null_steps_for(table, &[column], set_not_null)
}

/// [`not_null_steps`] for several columns set NOT NULL by one statement.
pub fn not_null_steps_for(table: &str, columns: &[&str], set_not_null: &str) -> String {
    let checks: Vec<(String, String)> = columns
        .iter()
        .map(|c| (ast::ident(&not_null_check_name(table, c)), ast::ident(c)))
        .collect();
    let mut out = String::new();
    for (check, col) in &checks {
        out.push_str(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID;\n"
        ));
    }
    out.push_str("-- separate transaction:\n");
    for (check, _) in &checks {
        out.push_str(&format!(
            "ALTER TABLE {table} VALIDATE CONSTRAINT {check};\n"
        ));
    }
    out.push_str(&format!("-- separate transaction:\n{set_not_null};"));
    for (check, _) in &checks {
        out.push_str(&format!("\nALTER TABLE {table} DROP CONSTRAINT {check};"));
    }
    out
}

/// `ALTER TABLE t ALTER COLUMN c SET NOT NULL` as SQL.
pub fn set_not_null(table: &str, column: &str) -> String {
    format!(
        "ALTER TABLE {table} ALTER COLUMN {} SET NOT NULL",
        ast::ident(column)
    )
}

/// A name for an index built ahead of `ADD CONSTRAINT … USING INDEX`
/// (which renames it to the constraint's name): the constraint's own name,
/// unless `taken` says it is in use (a primary key being swapped), then
/// the name with `_new`, `_new1`, … appended.
pub fn fresh_name(wanted: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(wanted) {
        return wanted.to_owned();
    }
    let mut label = "new".to_owned();
    for i in 1.. {
        let candidate = names::object_name(wanted, None, &label);
        if !taken(&candidate) {
            return candidate;
        }
        label = format!("new{i}");
    }
    unreachable!("an unbounded search returns")
}

/// A type name as SQL (`numeric(12,2)`, `"Sch".money_t[]`). Common types
/// (integer modifiers only) are written directly, since the schema replay
/// calls this for every column of the history; anything else is deparsed
/// from the statement's own tree.
pub fn type_sql(tn: &pg_query::protobuf::TypeName) -> String {
    let names = ast::strings(&tn.names);
    let simple = !tn.setof
        && !tn.pct_type
        && tn.typmods.iter().all(|m| {
            matches!(&m.node, Some(NodeEnum::AConst(c)) if matches!(c.val, Some(pg_query::protobuf::a_const::Val::Ival(_))))
        });
    if simple && !names.is_empty() {
        let (_, mods) = ast::type_of(tn);
        let base = match names.as_slice() {
            [catalog, internal] if catalog == "pg_catalog" => match internal.as_str() {
                "int4" => "integer".to_owned(),
                "int8" => "bigint".to_owned(),
                "int2" => "smallint".to_owned(),
                "bpchar" => "character".to_owned(),
                "float8" => "double precision".to_owned(),
                "float4" => "real".to_owned(),
                "bool" => "boolean".to_owned(),
                "varchar" => "character varying".to_owned(),
                "timestamptz" => "timestamp with time zone".to_owned(),
                "timestamp" => "timestamp without time zone".to_owned(),
                "timetz" => "time with time zone".to_owned(),
                "time" => "time without time zone".to_owned(),
                "interval" if !mods.is_empty() => return deparsed_type(tn),
                plain @ ("numeric" | "interval" | "bit") => plain.to_owned(),
                other => format!("pg_catalog.{other}"),
            },
            _ => crate::sql::names::qualified(&names),
        };
        let mods = if mods.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = mods.iter().map(i64::to_string).collect();
            format!("({})", list.join(","))
        };
        // `timestamp(3) with time zone`: the modifier goes after the name.
        let text = match base.split_once(" with") {
            Some((head, tail)) if !mods.is_empty() => format!("{head}{mods} with{tail}"),
            _ => format!("{base}{mods}"),
        };
        return format!("{text}{}", "[]".repeat(tn.array_bounds.len()));
    }
    deparsed_type(tn)
}

fn deparsed_type(tn: &pg_query::protobuf::TypeName) -> String {
    let cast = pg_query::protobuf::TypeCast {
        arg: Some(Box::new(Node {
            node: Some(NodeEnum::AConst(pg_query::protobuf::AConst {
                isnull: true,
                location: -1,
                val: None,
            })),
        })),
        type_name: Some(tn.clone()),
        location: -1,
    };
    let text = ast::deparse_expr(&Node {
        node: Some(NodeEnum::TypeCast(Box::new(cast))),
    });
    text.strip_prefix("NULL::").unwrap_or(&text).to_owned()
}

/// A string literal for SQL.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(sql: &str) -> NodeEnum {
        let parsed = pg_query::parse(sql, 0).unwrap();
        parsed.protobuf.stmts[0]
            .stmt
            .as_ref()
            .unwrap()
            .node
            .clone()
            .unwrap()
    }

    #[test]
    fn replacing_one_action_keeps_the_others() {
        let node =
            first("ALTER TABLE \"Sch\".t ADD COLUMN a int, DROP COLUMN b, ADD COLUMN c text");
        let (_, cmds) = ast::alter_table(&node).unwrap();
        assert_eq!(
            others(&node, cmds[1]),
            "ALTER TABLE \"Sch\".t ADD COLUMN a int, ADD COLUMN c text;\n"
        );
        let node2 = first("ALTER TABLE t DROP COLUMN b");
        let (_, cmds2) = ast::alter_table(&node2).unwrap();
        assert_eq!(others(&node2, cmds2[0]), "");
    }

    /// The written form and the deparsed one agree (the fast path is
    /// only a shortcut).
    #[test]
    fn type_sql_matches_the_deparser() {
        for ty in [
            "int",
            "bigint",
            "smallint",
            "varchar(255)",
            "char(2)",
            "numeric(12,2)",
            "text[]",
            "timestamp(3) with time zone",
            "timestamptz",
            "timestamp",
            "time(2)",
            "double precision",
            "boolean",
            "\"Sch\".mood",
            "mood[][]",
            "interval day to second",
            "bit varying(5)",
            "uuid",
        ] {
            let node = first(&format!("ALTER TABLE t ADD COLUMN c {ty}"));
            let (_, cmds) = ast::alter_table(&node).unwrap();
            let tn = ast::column_def(cmds[0])
                .unwrap()
                .type_name
                .as_ref()
                .unwrap();
            let fast = type_sql(tn);
            let deparsed = deparsed_type(tn);
            let parsed = |t: &str| {
                let n = first(&format!("ALTER TABLE t ADD COLUMN c {t}"));
                ast::deparse(&n)
            };
            assert_eq!(
                parsed(&fast),
                parsed(&deparsed),
                "{ty}: {fast} vs {deparsed}"
            );
        }
    }

    #[test]
    fn fresh_names_avoid_taken_ones() {
        assert_eq!(fresh_name("t_pkey", |_| false), "t_pkey");
        assert_eq!(fresh_name("t_pkey", |n| n == "t_pkey"), "t_pkey_new");
        assert_eq!(
            fresh_name("t_pkey", |n| n == "t_pkey" || n == "t_pkey_new"),
            "t_pkey_new1"
        );
    }
}
