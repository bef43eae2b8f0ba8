//! A backfill's statement, and its batched form.
//!
//! The statement is kept as a parse tree: each batch's statement is the
//! user's statement with the batch's key range ANDed onto its `WHERE`,
//! built on the tree and deparsed, so that quoting, aliases, `FROM` lists
//! and subqueries survive exactly as written (no text surgery).

use pg_query::protobuf::{self, Node, RangeVar};
use pg_query::NodeEnum;
use sha2::{Digest, Sha256};

use super::BackfillError;

/// What a backfill does to each batch of rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SpecKind {
    /// `UPDATE t SET … [WHERE …]`: batches over `t`.
    Update,
    /// `DELETE FROM t [WHERE …]`: batches over `t`.
    Delete,
    /// `INSERT INTO t (…) SELECT … FROM s …`: batches over the source `s`.
    InsertSelect,
}

impl SpecKind {
    /// `UPDATE`, `DELETE`, `INSERT … SELECT`.
    pub fn as_str(self) -> &'static str {
        match self {
            SpecKind::Update => "UPDATE",
            SpecKind::Delete => "DELETE",
            SpecKind::InsertSelect => "INSERT … SELECT",
        }
    }
}

/// One data change to run in batches.
#[derive(Debug, Clone)]
pub struct BackfillSpec {
    kind: SpecKind,
    /// The statement as one canonical line (deparsed): what is shown and
    /// what the hash covers, so whitespace and comments do not count as
    /// a change.
    sql: String,
    /// The table whose key the batches walk, as SQL text (`"Sch".t`).
    keyed_table: String,
    /// How the statement refers to that table (its alias, else its name):
    /// key columns are qualified with it.
    qualifier: String,
    /// The table that is written (the keyed table, or the INSERT target).
    written_table: String,
    /// Columns the `SET` list assigns (UPDATE only), to refuse a change of
    /// the key the batches walk.
    assigned: Vec<String>,
    /// The parsed statement.
    tree: NodeEnum,
}

const SUPPORTED: &str = "a backfill runs one `UPDATE t SET … [WHERE …]`, `DELETE FROM t [WHERE …]` or `INSERT INTO t (…) SELECT … FROM s …`";

impl BackfillSpec {
    /// Parses one UPDATE, DELETE or INSERT … SELECT.
    pub fn from_sql(sql: &str) -> Result<BackfillSpec, BackfillError> {
        let parsed = pg_query::parse(sql, 0).map_err(|e| BackfillError::Statement {
            message: format!("it does not parse: {e}"),
        })?;
        let mut stmts = parsed.protobuf.stmts.into_iter();
        let (Some(raw), None) = (stmts.next(), stmts.next()) else {
            return Err(unsupported("it must be exactly one statement"));
        };
        let Some(node) = raw.stmt.and_then(|s| s.node) else {
            return Err(unsupported("it is empty"));
        };
        let spec = match &node {
            NodeEnum::UpdateStmt(u) => {
                if u.with_clause.is_some() {
                    return Err(unsupported(
                        "WITH is not supported; use a subquery in SET or WHERE",
                    ));
                }
                if u.returning_clause.is_some() {
                    return Err(unsupported(
                        "RETURNING is not supported (batches return nothing)",
                    ));
                }
                let rel = relation(&u.relation)?;
                let assigned = u
                    .target_list
                    .iter()
                    .filter_map(|t| match &t.node {
                        Some(NodeEnum::ResTarget(r)) => Some(r.name.clone()),
                        _ => None,
                    })
                    .collect();
                BackfillSpec {
                    kind: SpecKind::Update,
                    sql: String::new(),
                    keyed_table: table_sql(rel),
                    qualifier: qualifier(rel),
                    written_table: table_sql(rel),
                    assigned,
                    tree: node.clone(),
                }
            }
            NodeEnum::DeleteStmt(d) => {
                if d.with_clause.is_some() {
                    return Err(unsupported(
                        "WITH is not supported; use a subquery in WHERE",
                    ));
                }
                if d.returning_clause.is_some() {
                    return Err(unsupported(
                        "RETURNING is not supported (batches return nothing)",
                    ));
                }
                let rel = relation(&d.relation)?;
                BackfillSpec {
                    kind: SpecKind::Delete,
                    sql: String::new(),
                    keyed_table: table_sql(rel),
                    qualifier: qualifier(rel),
                    written_table: table_sql(rel),
                    assigned: Vec::new(),
                    tree: node.clone(),
                }
            }
            NodeEnum::InsertStmt(i) => {
                if i.with_clause.is_some() {
                    return Err(unsupported("WITH is not supported"));
                }
                if i.returning_clause.is_some() {
                    return Err(unsupported(
                        "RETURNING is not supported (batches return nothing)",
                    ));
                }
                let target = relation(&i.relation)?;
                let Some(NodeEnum::SelectStmt(select)) =
                    i.select_stmt.as_deref().and_then(|s| s.node.as_ref())
                else {
                    return Err(unsupported("INSERT needs a SELECT … FROM source"));
                };
                let source = insert_source(select)?;
                BackfillSpec {
                    kind: SpecKind::InsertSelect,
                    sql: String::new(),
                    keyed_table: table_sql(source),
                    qualifier: qualifier(source),
                    written_table: table_sql(target),
                    assigned: Vec::new(),
                    tree: node.clone(),
                }
            }
            _ => {
                return Err(unsupported(
                    "this is not an UPDATE, DELETE or INSERT … SELECT",
                ))
            }
        };
        let sql = deparse(&spec.tree)?;
        Ok(BackfillSpec { sql, ..spec })
    }

    /// The command line's form: `UPDATE table SET set [WHERE where]`. Each
    /// part must be one piece of SQL: a `;` or an unbalanced parenthesis
    /// makes the whole fail to parse as one UPDATE.
    pub fn update(
        table: &str,
        set: &str,
        where_: Option<&str>,
    ) -> Result<BackfillSpec, BackfillError> {
        let sql = match where_ {
            Some(cond) => format!("UPDATE {table} SET {set} WHERE ({cond})"),
            None => format!("UPDATE {table} SET {set}"),
        };
        let spec = BackfillSpec::from_sql(&sql)?;
        // `--set "a = 1 WHERE false"` would smuggle a WHERE into SET.
        let alone = BackfillSpec::from_sql(&format!("UPDATE {table} SET {set}"))?;
        if where_.is_some() && alone.where_sql().is_some() {
            return Err(BackfillError::Statement {
                message: "--set must not contain WHERE; pass the condition with --where".into(),
            });
        }
        Ok(spec)
    }

    /// UPDATE, DELETE or INSERT … SELECT.
    pub fn kind(&self) -> SpecKind {
        self.kind
    }

    /// The statement, deparsed on one line.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The table whose key the batches walk (the INSERT's source).
    pub fn keyed_table(&self) -> &str {
        &self.keyed_table
    }

    /// The table the statement writes.
    pub fn written_table(&self) -> &str {
        &self.written_table
    }

    /// How key columns are qualified in the batched statement.
    pub fn qualifier(&self) -> &str {
        &self.qualifier
    }

    /// Columns that `SET` assigns (UPDATE).
    pub fn assigned(&self) -> &[String] {
        &self.assigned
    }

    /// SHA-256 of the canonical statement: a resume compares it.
    pub fn hash(&self) -> String {
        let digest = Sha256::digest(self.sql.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The statement's own condition, deparsed, if it has one.
    pub fn where_sql(&self) -> Option<String> {
        let clause = match &self.tree {
            NodeEnum::UpdateStmt(u) => u.where_clause.as_deref(),
            NodeEnum::DeleteStmt(d) => d.where_clause.as_deref(),
            NodeEnum::InsertStmt(i) => match i.select_stmt.as_deref().and_then(|s| s.node.as_ref())
            {
                Some(NodeEnum::SelectStmt(s)) => s.where_clause.as_deref(),
                _ => None,
            },
            _ => None,
        }?;
        Some(crate::lint::ast::deparse_expr(clause))
    }

    /// The statement with `predicate` (SQL over the qualifier's columns,
    /// with `$n` parameters) ANDed onto its condition: one batch.
    pub fn batched(&self, predicate: &str) -> Result<String, BackfillError> {
        let pred = predicate_node(predicate)?;
        let mut tree = self.tree.clone();
        let clause = match &mut tree {
            NodeEnum::UpdateStmt(u) => &mut u.where_clause,
            NodeEnum::DeleteStmt(d) => &mut d.where_clause,
            NodeEnum::InsertStmt(i) => {
                match i.select_stmt.as_deref_mut().and_then(|s| s.node.as_mut()) {
                    Some(NodeEnum::SelectStmt(s)) => &mut s.where_clause,
                    _ => return Err(unsupported("INSERT needs a SELECT … FROM source")),
                }
            }
            _ => {
                return Err(unsupported(
                    "this is not an UPDATE, DELETE or INSERT … SELECT",
                ))
            }
        };
        let combined = match clause.take() {
            None => pred,
            Some(original) => Node {
                node: Some(NodeEnum::BoolExpr(Box::new(protobuf::BoolExpr {
                    xpr: None,
                    boolop: protobuf::BoolExprType::AndExpr as i32,
                    args: vec![pred, *original],
                    location: -1,
                }))),
            },
        };
        *clause = Some(Box::new(combined));
        deparse(&tree)
    }
}

fn unsupported(why: &str) -> BackfillError {
    BackfillError::Statement {
        message: format!("{why}; {SUPPORTED}"),
    }
}

fn relation(rel: &Option<RangeVar>) -> Result<&RangeVar, BackfillError> {
    rel.as_ref()
        .ok_or_else(|| unsupported("the statement names no table"))
}

/// `"Sch".t`: the name as SQL text, for `to_regclass`.
fn table_sql(rel: &RangeVar) -> String {
    let mut parts = Vec::new();
    if !rel.schemaname.is_empty() {
        parts.push(rel.schemaname.clone());
    }
    parts.push(rel.relname.clone());
    crate::sql::names::qualified(&parts)
}

/// The alias, else the table's own name (quoted).
fn qualifier(rel: &RangeVar) -> String {
    match &rel.alias {
        Some(a) if !a.aliasname.is_empty() => crate::sql::names::quote_ident(&a.aliasname),
        _ => crate::sql::names::quote_ident(&rel.relname),
    }
}

/// The source table of `INSERT … SELECT`: the first item of `FROM` (the
/// leftmost table of a join). Grouping, DISTINCT, LIMIT and set operations
/// would give a different result per batch than over the whole table, so
/// they are refused.
fn insert_source(select: &protobuf::SelectStmt) -> Result<&RangeVar, BackfillError> {
    if !select.values_lists.is_empty() {
        return Err(unsupported("INSERT … VALUES has nothing to batch"));
    }
    if select.larg.is_some() || select.op > 1 {
        return Err(unsupported("UNION/INTERSECT/EXCEPT cannot be batched"));
    }
    if !select.group_clause.is_empty() || select.having_clause.is_some() {
        return Err(unsupported("GROUP BY/HAVING would group each batch apart"));
    }
    if !select.distinct_clause.is_empty() {
        return Err(unsupported("DISTINCT would apply to each batch apart"));
    }
    if select.limit_count.is_some() || select.limit_offset.is_some() {
        return Err(unsupported("LIMIT/OFFSET would apply to each batch apart"));
    }
    if select.with_clause.is_some() {
        return Err(unsupported("WITH is not supported"));
    }
    let mut item = select.from_clause.first().and_then(|n| n.node.as_ref());
    loop {
        match item {
            Some(NodeEnum::RangeVar(rv)) => return Ok(rv),
            Some(NodeEnum::JoinExpr(j)) => item = j.larg.as_deref().and_then(|n| n.node.as_ref()),
            _ => {
                return Err(unsupported(
                    "INSERT … SELECT must read FROM a table (its key gives the batches)",
                ))
            }
        }
    }
}

/// The parse tree of a condition, from `SELECT WHERE cond`.
fn predicate_node(predicate: &str) -> Result<Node, BackfillError> {
    let internal = |what: &str| BackfillError::Statement {
        message: format!("internal: batch condition `{predicate}` {what}"),
    };
    let parsed = pg_query::parse(&format!("SELECT WHERE {predicate}"), 0)
        .map_err(|e| internal(&format!("does not parse: {e}")))?;
    let node = parsed
        .protobuf
        .stmts
        .into_iter()
        .next()
        .and_then(|raw| raw.stmt)
        .and_then(|s| s.node);
    match node {
        Some(NodeEnum::SelectStmt(s)) => s
            .where_clause
            .map(|w| *w)
            .ok_or_else(|| internal("is empty")),
        _ => Err(internal("is not a condition")),
    }
}

fn deparse(tree: &NodeEnum) -> Result<String, BackfillError> {
    tree.deparse(Default::default())
        .map_err(|e| BackfillError::Statement {
            message: format!("cannot be rebuilt as SQL: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_update_delete_and_insert_select() {
        let u = BackfillSpec::from_sql(
            "UPDATE users SET email_lower = lower(email) WHERE email_lower IS NULL",
        )
        .unwrap();
        assert_eq!(u.kind(), SpecKind::Update);
        assert_eq!(u.keyed_table(), "users");
        assert_eq!(u.assigned(), ["email_lower"]);
        let d = BackfillSpec::from_sql(
            "DELETE FROM app.\"Logs\" l WHERE l.at < now() - interval '1 year'",
        )
        .unwrap();
        assert_eq!(d.kind(), SpecKind::Delete);
        assert_eq!(d.keyed_table(), "app.\"Logs\"");
        assert_eq!(d.qualifier(), "l");
        let i = BackfillSpec::from_sql(
            "INSERT INTO items (order_id, sku) SELECT o.id, x->>'sku' FROM orders o, jsonb_array_elements(o.doc->'items') x",
        )
        .unwrap();
        assert_eq!(i.kind(), SpecKind::InsertSelect);
        assert_eq!(i.keyed_table(), "orders");
        assert_eq!(i.written_table(), "items");
        assert_eq!(i.qualifier(), "o");
    }

    #[test]
    fn refuses_anything_else_saying_what_is_supported() {
        for sql in [
            "SELECT 1",
            "UPDATE a SET x = 1; UPDATE b SET y = 2",
            "UPDATE a SET x = 1 RETURNING id",
            "INSERT INTO a VALUES (1)",
            "INSERT INTO a SELECT count(*) FROM b GROUP BY c",
            "INSERT INTO a SELECT x FROM b UNION SELECT y FROM c",
            "INSERT INTO a SELECT 1",
            "ALTER TABLE a ADD COLUMN b int",
            "",
        ] {
            let e = BackfillSpec::from_sql(sql).unwrap_err().to_string();
            assert!(e.contains("UPDATE t SET"), "{sql}: {e}");
        }
        let e = BackfillSpec::from_sql("UPDATE SET")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not parse"), "{e}");
    }

    #[test]
    fn the_batched_form_ands_the_range_onto_the_statements_own_condition() {
        let u = BackfillSpec::from_sql("UPDATE users u SET n = n + 1 WHERE u.flag OR u.n IS NULL")
            .unwrap();
        let b = u
            .batched("(u.id) > ($1::text::int) AND (u.id) <= ($2::text::int)")
            .unwrap();
        assert_eq!(
            b,
            "UPDATE users u SET n = n + 1 WHERE (u.id > $1::text::int AND u.id <= $2::text::int) AND (u.flag OR u.n IS NULL)"
        );
        let d = BackfillSpec::from_sql("DELETE FROM t").unwrap();
        assert_eq!(
            d.batched("t.ctid < '(1,0)'").unwrap(),
            "DELETE FROM t WHERE t.ctid < '(1,0)'"
        );
    }

    #[test]
    fn the_command_line_form_is_one_update_and_whitespace_does_not_change_the_hash() {
        let a = BackfillSpec::update("users", "n = n + 1", Some("n < 5")).unwrap();
        let b =
            BackfillSpec::from_sql("update users\n  set n = n+1 where (n < 5) -- note").unwrap();
        assert_eq!(a.hash(), b.hash());
        assert_ne!(
            a.hash(),
            BackfillSpec::update("users", "n = n + 2", Some("n < 5"))
                .unwrap()
                .hash()
        );
        assert!(BackfillSpec::update("users", "n = 1; DROP TABLE users", None).is_err());
        assert!(BackfillSpec::update("users", "n = 1 WHERE true", Some("n < 5")).is_err());
        assert!(BackfillSpec::update("users", "n = 1", Some("true) OR (false")).is_ok());
    }
}
