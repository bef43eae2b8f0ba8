//! Helpers over pg_query's parse trees, so rules read like the SQL they
//! check.

use pg_query::protobuf::{
    self, a_const, AlterTableCmd, AlterTableType, ConstrType, Constraint, Node, RangeVar,
};
use pg_query::NodeEnum;

/// `schema.table` or `table` as SQL, each part quoted where needed
/// (`"Sch".t`, `"my.table"`, `public."Orders"`): names are carried in this
/// form everywhere (schema replay, findings, pre-flight, backups), so that
/// they stay unambiguous and resolve in the catalog as PostgreSQL resolves
/// them (`to_regclass`).
pub fn relation(rv: &RangeVar) -> String {
    if rv.schemaname.is_empty() {
        ident(&rv.relname)
    } else {
        format!("{}.{}", ident(&rv.schemaname), ident(&rv.relname))
    }
}

/// Quotes an identifier only where SQL needs it, as the server's
/// `quote_ident()` does.
pub fn ident(name: &str) -> String {
    crate::sql::names::quote_ident(name)
}

/// A qualified name from a list of `String` nodes (`DROP TABLE s.t`,
/// type names), as SQL.
pub fn name(nodes: &[Node]) -> String {
    crate::sql::names::qualified(&strings(nodes))
}

/// The relation's own name, unquoted, from a name in SQL form: the table
/// name PostgreSQL builds default constraint and index names from.
pub fn base_name(sql_name: &str) -> String {
    crate::sql::names::base_name(sql_name)
}

/// The string values of a list of `String` nodes (`names`, `keys`, ...).
pub fn strings(nodes: &[Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}

/// The ALTER TABLE commands of a statement with their table.
pub fn alter_table(node: &NodeEnum) -> Option<(String, Vec<&AlterTableCmd>)> {
    let NodeEnum::AlterTableStmt(stmt) = node else {
        return None;
    };
    if stmt.objtype != protobuf::ObjectType::ObjectTable as i32 {
        return None;
    }
    let table = relation(stmt.relation.as_ref()?);
    let cmds = stmt
        .cmds
        .iter()
        .filter_map(|c| match &c.node {
            Some(NodeEnum::AlterTableCmd(cmd)) => Some(cmd.as_ref()),
            _ => None,
        })
        .collect();
    Some((table, cmds))
}

/// True when the command is of this subtype.
pub fn is(cmd: &AlterTableCmd, subtype: AlterTableType) -> bool {
    cmd.subtype == subtype as i32
}

/// The column definition of an ADD COLUMN command.
pub fn column_def(cmd: &AlterTableCmd) -> Option<&protobuf::ColumnDef> {
    match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::ColumnDef(c)) => Some(c),
        _ => None,
    }
}

/// The constraint of an ADD CONSTRAINT command.
pub fn constraint(cmd: &AlterTableCmd) -> Option<&Constraint> {
    match cmd.def.as_deref().and_then(|d| d.node.as_ref()) {
        Some(NodeEnum::Constraint(c)) => Some(c),
        _ => None,
    }
}

/// True when the constraint is of this type.
pub fn constr_is(c: &Constraint, t: ConstrType) -> bool {
    c.contype == t as i32
}

/// The constraints attached to a column definition.
pub fn column_constraints(col: &protobuf::ColumnDef) -> impl Iterator<Item = &Constraint> {
    col.constraints.iter().filter_map(|n| match &n.node {
        Some(NodeEnum::Constraint(c)) => Some(c.as_ref()),
        _ => None,
    })
}

/// The type of a column as (name, modifiers): `("varchar", [255])`.
/// `pg_catalog.` is dropped; names are PostgreSQL's internal ones
/// (`int4`, `timestamp`, `bpchar`, ...).
pub fn type_of(tn: &protobuf::TypeName) -> (String, Vec<i64>) {
    let names = strings(&tn.names);
    let name = names
        .last()
        .cloned()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mods = tn
        .typmods
        .iter()
        .filter_map(|m| match &m.node {
            Some(NodeEnum::AConst(c)) => match &c.val {
                Some(a_const::Val::Ival(i)) => Some(i64::from(i.ival)),
                _ => None,
            },
            _ => None,
        })
        .collect();
    (name, mods)
}

/// A readable SQL type for messages and fixes.
pub fn type_display(tn: &protobuf::TypeName) -> String {
    let (name, mods) = type_of(tn);
    let base = match name.as_str() {
        "int4" => "integer",
        "int8" => "bigint",
        "int2" => "smallint",
        "bpchar" => "char",
        "float8" => "double precision",
        "float4" => "real",
        "bool" => "boolean",
        "timestamptz" => "timestamptz",
        other => other,
    };
    let arr = if tn.array_bounds.is_empty() { "" } else { "[]" };
    if mods.is_empty() {
        format!("{base}{arr}")
    } else {
        format!(
            "{base}({}){arr}",
            mods.iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Names of every function called anywhere below `node`.
pub fn called_functions(node: &Node) -> Vec<String> {
    let mut out = Vec::new();
    let Some(inner) = &node.node else { return out };
    if let NodeEnum::FuncCall(f) = inner {
        if let Some(name) = strings(&f.funcname).last() {
            out.push(name.to_ascii_lowercase());
        }
    }
    for (n, _, _, _) in inner.nodes() {
        if let pg_query::NodeRef::FuncCall(f) = n {
            if let Some(name) = strings(&f.funcname).last() {
                out.push(name.to_ascii_lowercase());
            }
        }
    }
    out
}

/// The text of an expression, deparsed, for messages and fixes.
pub fn deparse_expr(node: &Node) -> String {
    // Parse a real SELECT so every field of the tree is valid for the
    // deparser, then put the expression in its target list.
    let Ok(mut parsed) = pg_query::parse("SELECT 1", 0) else {
        return "<expression>".to_owned();
    };
    let Some(raw) = parsed.protobuf.stmts.first_mut() else {
        return "<expression>".to_owned();
    };
    if let Some(NodeEnum::SelectStmt(select)) =
        raw.stmt.as_deref_mut().and_then(|s| s.node.as_mut())
    {
        if let Some(NodeEnum::ResTarget(target)) =
            select.target_list.first_mut().and_then(|t| t.node.as_mut())
        {
            target.val = Some(Box::new(node.clone()));
        }
    }
    pg_query::deparse(&parsed.protobuf, Default::default())
        .map(|s| s.trim_start_matches("SELECT ").to_owned())
        .unwrap_or_else(|_| "<expression>".to_owned())
}

/// Deparses a whole statement node.
pub fn deparse(node: &NodeEnum) -> String {
    let result = protobuf::ParseResult {
        version: 0,
        stmts: vec![protobuf::RawStmt {
            stmt: Some(Box::new(Node {
                node: Some(node.clone()),
            })),
            stmt_location: 0,
            stmt_len: 0,
        }],
    };
    pg_query::deparse(&result, Default::default()).unwrap_or_else(|_| "<statement>".to_owned())
}

/// The column names of an index's parameters (expressions are skipped).
pub fn index_columns(params: &[Node]) -> Vec<String> {
    params
        .iter()
        .filter_map(|p| match &p.node {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
            _ => None,
        })
        .collect()
}

/// A column definition or type change found in a statement.
pub struct ColumnType<'a> {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// Its declared type.
    pub type_name: &'a protobuf::TypeName,
    /// Part of a primary key or foreign key, as declared here.
    pub key: bool,
}

/// Every column type declared by CREATE TABLE, ADD COLUMN or ALTER COLUMN
/// TYPE in a statement.
pub fn column_types(node: &NodeEnum) -> Vec<ColumnType<'_>> {
    let mut out = Vec::new();
    let is_key = |col: &protobuf::ColumnDef| {
        column_constraints(col).any(|c| {
            constr_is(c, ConstrType::ConstrPrimary) || constr_is(c, ConstrType::ConstrForeign)
        })
    };
    match node {
        NodeEnum::CreateStmt(c) => {
            let Some(rv) = &c.relation else { return out };
            let table = relation(rv);
            let table_keys: Vec<String> = c
                .table_elts
                .iter()
                .filter_map(|e| match &e.node {
                    Some(NodeEnum::Constraint(k)) if constr_is(k, ConstrType::ConstrPrimary) => {
                        Some(strings(&k.keys))
                    }
                    Some(NodeEnum::Constraint(k)) if constr_is(k, ConstrType::ConstrForeign) => {
                        Some(strings(&k.fk_attrs))
                    }
                    _ => None,
                })
                .flatten()
                .collect();
            for e in &c.table_elts {
                if let Some(NodeEnum::ColumnDef(col)) = &e.node {
                    if let Some(tn) = &col.type_name {
                        out.push(ColumnType {
                            table: table.clone(),
                            column: col.colname.clone(),
                            type_name: tn,
                            key: is_key(col) || table_keys.contains(&col.colname),
                        });
                    }
                }
            }
        }
        NodeEnum::AlterTableStmt(_) => {
            let Some((table, cmds)) = alter_table(node) else {
                return out;
            };
            for cmd in cmds {
                let add = is(cmd, AlterTableType::AtAddColumn);
                if !(add || is(cmd, AlterTableType::AtAlterColumnType)) {
                    continue;
                }
                if let Some(col) = column_def(cmd) {
                    if let Some(tn) = &col.type_name {
                        out.push(ColumnType {
                            table: table.clone(),
                            column: if add {
                                col.colname.clone()
                            } else {
                                cmd.name.clone()
                            },
                            type_name: tn,
                            key: is_key(col),
                        });
                    }
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::lint::test_utils::lint;

    /// Every fix that names a table or column with mixed case, a dot, a
    /// quote or a schema writes it as PostgreSQL reads it, and parses.
    #[test]
    fn fixes_quote_names_as_postgres_reads_them() {
        let sql = r#"ALTER TABLE "Sch"."My.Table" DROP COLUMN "Col";
ALTER TABLE "Sch"."My.Table" ALTER COLUMN "Col" TYPE bigint;
ALTER TABLE "Sch"."My.Table" ADD CONSTRAINT "Fk" FOREIGN KEY ("UserId") REFERENCES "Users" (id);
ALTER TABLE "Sch"."My.Table" ADD UNIQUE ("E""mail");
ALTER TABLE "Sch"."My.Table" ALTER COLUMN "Col" SET NOT NULL;
CREATE INDEX "Idx" ON "Sch"."My.Table" ("Col");
TRUNCATE "Sch"."My.Table";
DROP TABLE "Sch"."My.Table";
ALTER TABLE "Sch"."My.Table" RENAME TO "New";
"#;
        let findings = lint(sql);
        let fixes: Vec<&str> = findings.iter().filter_map(|f| f.fix.as_deref()).collect();
        assert!(fixes.len() >= 8, "{findings:#?}");
        for f in &findings {
            if let Some(table) = &f.table {
                assert!(
                    table == r#""Sch"."My.Table""# || table == r#""Users""#,
                    "{table}"
                );
            }
        }
        for fix in fixes {
            // Neither unquoted nor quoted twice.
            assert!(
                !fix.contains("Sch.My.Table") && !fix.contains(r#"""""#),
                "{fix}"
            );
            let sql: String = fix
                .lines()
                .filter(|l| !l.trim_start().starts_with("--") && !l.contains('<'))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(pg_query::parse(&sql, 0).is_ok(), "does not parse: {sql}");
        }
        let unique = findings
            .iter()
            .find(|f| f.rule == "require-unique-index-for-constraint")
            .unwrap();
        assert!(
            unique.fix.as_deref().unwrap().starts_with(r#"CREATE UNIQUE INDEX CONCURRENTLY "My.Table_E""mail_key" ON "Sch"."My.Table" ("E""mail")"#),
            "{unique:?}"
        );
    }
}
