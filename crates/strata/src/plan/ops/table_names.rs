//! Names and catalog facts shared by the index, constraint and table
//! operations: objects named as PostgreSQL would name them (so a plan ends
//! in the catalog its naive form gives), helper objects named after the
//! plan (so two plans never share a trigger), and the table facts an
//! operation needs, as a compile error when the engine did not give them.

use pg_query::NodeEnum;
use sha2::{Digest, Sha256};

use super::super::{CompileError, Context, TableFacts};
use crate::sql::names;

/// The longest identifier PostgreSQL keeps (NAMEDATALEN - 1), in bytes.
const MAX_NAME: usize = 63;

/// `name` in the schema of `table_sql` (`app."Orders"`, `x` → `app.x`):
/// indexes, views and side tables live beside their table.
pub(super) fn sibling(table_sql: &str, name: &str) -> String {
    let mut parts = names::parts(table_sql);
    parts.pop();
    parts.push(name.to_owned());
    names::qualified(&parts)
}

/// The table's own name, unquoted (`app."Orders"` → `Orders`).
pub(super) fn base(table_sql: &str) -> String {
    names::base_name(table_sql)
}

/// A helper object's name: `strata_<version>_<what>`, derived from the plan
/// alone so a resumed or aborted step finds what an earlier run created.
/// A name over 63 bytes is cut and ends in a hash of the whole, so two long
/// names that share a prefix stay distinct.
pub(super) fn helper(version: &str, what: &[&str]) -> String {
    let full = format!("strata_{version}_{}", what.join("_"));
    if full.len() <= MAX_NAME {
        return full;
    }
    let digest = Sha256::digest(full.as_bytes());
    let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let mut cut = MAX_NAME - hash.len() - 1;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}", &full[..cut])
}

/// The operation's table facts, which the engine reads when the phase
/// starts (none when the table did not exist then).
pub(super) fn facts<'a>(ctx: &Context<'a>, op: &str) -> Result<&'a TableFacts, CompileError> {
    ctx.table.ok_or_else(|| CompileError {
        message: format!(
            "`{op}` needs its table's catalog, and the table did not exist when the phase started"
        ),
        help: Some(
            "create the table in an earlier migration or an earlier phase of the plan: \
             operations that carry a table's columns, indexes and constraints over read \
             them when their phase starts"
                .into(),
        ),
    })
}

/// Refuses a `step` on an operation that runs in one phase.
pub(super) fn single_step(op: &str, ctx: &Context<'_>) -> Result<(), CompileError> {
    match ctx.step {
        None => Ok(()),
        Some(step) => Err(CompileError {
            message: format!("`{op}` runs in one phase and has no step `{step}`"),
            help: Some("remove the `step` key".into()),
        }),
    }
}

/// The error for a step an operation does not have.
pub(super) fn unknown_step(op: &str, step: &str, steps: &[&str]) -> CompileError {
    CompileError {
        message: format!("`{op}` has no step `{step}`"),
        help: Some(format!(
            "its steps are {}, each in its own phase",
            steps
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// A column of the facts, or a compile error naming the table.
pub(super) fn column<'a>(
    facts: &'a TableFacts,
    name: &str,
) -> Result<&'a super::super::ColumnFacts, CompileError> {
    facts
        .columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| CompileError {
            message: format!("{} has no column `{name}`", facts.name),
            help: Some("check the column's name (names are case-sensitive when quoted)".into()),
        })
}

/// A name PostgreSQL would choose for a new index or constraint
/// (`ChooseRelationName`): `makeObjectName(name1, name2, label)`, then with
/// `label1`, `label2`, … while the name is taken.
pub(super) fn choose_name(
    name1: &str,
    name2: Option<&str>,
    label: &str,
    taken: &dyn Fn(&str) -> bool,
) -> String {
    let mut pass = 0usize;
    loop {
        let label = if pass == 0 {
            label.to_owned()
        } else {
            format!("{label}{pass}")
        };
        let name = names::object_name(name1, name2, &label);
        if !taken(&name) {
            return name;
        }
        pass += 1;
    }
}

/// The index names of the facts, for [`choose_name`].
pub(super) fn index_taken<'a>(
    facts: Option<&'a TableFacts>,
    also: &'a [String],
) -> impl Fn(&str) -> bool + 'a {
    move |name: &str| {
        also.iter().any(|n| n == name)
            || facts.is_some_and(|f| {
                f.indexes.iter().any(|i| i.name == name)
                    || f.constraints.iter().any(|c| c.name == name)
            })
    }
}

/// The parts of an index definition PostgreSQL names it by and Strata
/// compares: each key's column name (`None` for an expression), the access
/// method, and whether it is partial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct IndexShape {
    pub keys: Vec<Option<String>>,
    /// Each key's name for a default index name: the column, or what
    /// PostgreSQL calls an expression (`FigureIndexColname`: `lower` for
    /// `lower(email)`), else `None` (then `expr`).
    pub key_names: Vec<Option<String>>,
    pub method: String,
    pub partial: bool,
}

/// Parses `CREATE INDEX …` text (`pg_get_indexdef`, or one Strata builds).
pub(super) fn index_shape(definition: &str) -> Result<IndexShape, String> {
    let parsed = pg_query::parse(definition, 0).map_err(|e| e.to_string())?;
    let node = parsed
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|s| s.node.as_ref());
    let Some(NodeEnum::IndexStmt(stmt)) = node else {
        return Err("not a CREATE INDEX statement".into());
    };
    let keys = stmt
        .index_params
        .iter()
        .map(|p| match p.node.as_ref() {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
            _ => None,
        })
        .collect();
    let key_names = stmt
        .index_params
        .iter()
        .map(|p| match p.node.as_ref() {
            Some(NodeEnum::IndexElem(e)) if !e.name.is_empty() => Some(e.name.clone()),
            Some(NodeEnum::IndexElem(e)) => e
                .expr
                .as_deref()
                .and_then(|n| figure_colname(n).map(|(name, _)| name)),
            _ => None,
        })
        .collect();
    Ok(IndexShape {
        keys,
        key_names,
        method: if stmt.access_method.is_empty() {
            "btree".into()
        } else {
            stmt.access_method.clone()
        },
        partial: stmt.where_clause.is_some(),
    })
}

/// The name PostgreSQL gives an expression (`FigureColnameInternal`), with
/// its strength: 2 for a column or function name, 1 for a fallback such as
/// `case`, which a cast's type name overrides.
fn figure_colname(node: &pg_query::protobuf::Node) -> Option<(String, u8)> {
    use pg_query::protobuf::{AExprKind, MinMaxOp};
    let last_string = |nodes: &[pg_query::protobuf::Node]| {
        nodes.iter().rev().find_map(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
    };
    match node.node.as_ref()? {
        NodeEnum::ColumnRef(c) => last_string(&c.fields).map(|n| (n, 2)),
        NodeEnum::AIndirection(a) => last_string(&a.indirection)
            .map(|n| (n, 2))
            .or_else(|| a.arg.as_deref().and_then(figure_colname)),
        NodeEnum::FuncCall(f) => last_string(&f.funcname).map(|n| (n, 2)),
        NodeEnum::AExpr(a) if a.kind == AExprKind::AexprNullif as i32 => Some(("nullif".into(), 2)),
        NodeEnum::TypeCast(t) => {
            let inner = t.arg.as_deref().and_then(figure_colname);
            match inner {
                Some((n, 2)) => Some((n, 2)),
                other => t
                    .type_name
                    .as_ref()
                    .and_then(|tn| last_string(&tn.names))
                    .map(|n| (n, 1))
                    .or(other),
            }
        }
        NodeEnum::CollateClause(c) => c.arg.as_deref().and_then(figure_colname),
        NodeEnum::CaseExpr(_) => Some(("case".into(), 1)),
        NodeEnum::AArrayExpr(_) => Some(("array".into(), 2)),
        NodeEnum::RowExpr(_) => Some(("row".into(), 2)),
        NodeEnum::CoalesceExpr(_) => Some(("coalesce".into(), 2)),
        NodeEnum::MinMaxExpr(m) => Some((
            if m.op == MinMaxOp::IsGreatest as i32 {
                "greatest".into()
            } else {
                "least".into()
            },
            2,
        )),
        _ => None,
    }
}

/// The column part of a default index name for these keys
/// (`ChooseIndexColumnNames`): a key's column name, `expr` for an
/// expression, and a number appended to repeats (`expr`, `expr1`).
pub(super) fn index_column_names(keys: &[Option<String>]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for key in keys {
        let orig = key.clone().unwrap_or_else(|| "expr".to_owned());
        let mut name = orig.clone();
        let mut i = 1usize;
        while out.contains(&name) {
            let suffix = i.to_string();
            let mut cut = orig.len().min(MAX_NAME - suffix.len());
            while !orig.is_char_boundary(cut) {
                cut -= 1;
            }
            name = format!("{}{suffix}", &orig[..cut]);
            i += 1;
        }
        out.push(name);
    }
    out
}

/// True when a valid, non-partial B-tree index of the facts has `columns`
/// as its leading keys: it serves a foreign key's lookups.
pub(super) fn has_leading_index(facts: &TableFacts, columns: &[String]) -> bool {
    facts.indexes.iter().any(|i| {
        index_shape(&i.definition).is_ok_and(|shape| {
            shape.method == "btree"
                && !shape.partial
                && shape.keys.len() >= columns.len()
                && shape
                    .keys
                    .iter()
                    .zip(columns)
                    .all(|(k, c)| k.as_deref() == Some(c.as_str()))
        })
    })
}

/// A generated name cut to 63 bytes on a character boundary, as the server
/// would cut it (so the object is found again by that name).
pub(super) fn clip(name: &str) -> String {
    let mut cut = name.len().min(MAX_NAME);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    name[..cut].to_owned()
}

/// `a, "B c"`: columns as SQL.
pub(super) fn column_list(columns: &[String]) -> String {
    columns
        .iter()
        .map(|c| names::quote_ident(c))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_stay_within_63_bytes_and_distinct() {
        assert_eq!(
            helper("20260301120000", &["sync", "orders"]),
            "strata_20260301120000_sync_orders"
        );
        let a = helper("20260301120000", &["sync", &"x".repeat(80), "a"]);
        let b = helper("20260301120000", &["sync", &"x".repeat(80), "b"]);
        assert!(a.len() <= 63 && b.len() <= 63, "{a} {b}");
        assert_ne!(a, b);
        let multibyte = helper("1", &["é".repeat(40).as_str()]);
        assert!(multibyte.len() <= 63);
    }

    #[test]
    fn siblings_keep_the_schema_and_quote() {
        assert_eq!(
            sibling("app.\"Orders\"", "Orders_idx"),
            "app.\"Orders_idx\""
        );
        assert_eq!(sibling("orders", "orders_idx"), "orders_idx");
        assert_eq!(base("app.\"User Data\""), "User Data");
    }

    #[test]
    fn chosen_names_follow_postgres() {
        let taken = |n: &str| n == "t_a_idx" || n == "t_a_idx1";
        assert_eq!(choose_name("t", Some("a"), "idx", &taken), "t_a_idx2");
        assert_eq!(
            index_column_names(&[None, Some("a".into()), None]),
            vec!["expr", "a", "expr1"]
        );
    }

    #[test]
    fn index_shapes_and_leading_columns() {
        let shape =
            index_shape("CREATE INDEX i ON public.t USING btree (a, lower(b)) WHERE (c > 0)")
                .unwrap();
        assert_eq!(shape.keys, vec![Some("a".into()), None]);
        assert_eq!(
            shape.key_names,
            vec![Some("a".into()), Some("lower".into())]
        );
        assert!(shape.partial);
        let shape = index_shape(
            "CREATE INDEX ON t ((a->>'x'), (b::int), (coalesce(c, 0)), (CASE WHEN d THEN 1 END))",
        )
        .unwrap();
        assert_eq!(
            shape.key_names,
            vec![
                None,
                Some("b".into()),
                Some("coalesce".into()),
                Some("case".into())
            ]
        );
        assert!(!shape.partial);
        let facts = TableFacts {
            indexes: vec![super::super::super::IndexFacts {
                name: "t_a_b_idx".into(),
                definition: "CREATE INDEX t_a_b_idx ON public.t USING btree (a, b)".into(),
                columns: vec!["a".into(), "b".into()],
                constraint: None,
            }],
            ..TableFacts::default()
        };
        assert!(has_leading_index(&facts, &["a".into()]));
        assert!(has_leading_index(&facts, &["a".into(), "b".into()]));
        assert!(!has_leading_index(&facts, &["b".into()]));
    }
}
