//! Resuming at a statement that an interrupted run may already have done.
//!
//! Statements that cannot run inside a transaction block (the CONCURRENTLY
//! family) commit on their own, and their progress is written right after
//! them. A run killed between the two leaves the statement done but not
//! recorded, or half done. Running it again would fail ("does not exist")
//! or leave debris, so on resume the catalog decides, for each kind:
//!
//! - `CREATE INDEX CONCURRENTLY`: a valid index of that name was built by
//!   the interrupted run (skip); an invalid one is dropped and rebuilt.
//! - `DROP INDEX CONCURRENTLY`: the index is gone (skip); an index left
//!   invalid by the interrupted drop is dropped by running the statement.
//! - `REINDEX … CONCURRENTLY`: invalid `_ccnew`/`_ccold` indexes left behind
//!   are dropped; the index OIDs recorded in the event log before the
//!   interrupted run are compared with today's (REINDEX CONCURRENTLY swaps
//!   in a new index, so a changed OID means it finished: skip).
//! - `ALTER TABLE … DETACH PARTITION … CONCURRENTLY`: the partition is no
//!   longer attached (skip), or is pending detach (run `… FINALIZE`
//!   instead, which completes it).

use pg_query::protobuf::{self, ReindexObjectType};
use pg_query::NodeEnum;

use super::apply::Runner;
use super::error::EngineError;
use super::history::Event;
use super::Progress;
use crate::db::quote_ident;
use crate::source::Migration;
use crate::sql::{self, Statement};

/// What to do with the statement a resume starts at.
pub(super) enum OnResume {
    /// Run it.
    Run,
    /// It already took effect: record it as done without running it.
    Skip,
    /// Run this statement in its place (it completes the interrupted one).
    Instead(Statement),
}

/// What a CONCURRENTLY statement acts on, as quoted (schema-qualified where
/// written so) names.
#[derive(Debug, PartialEq)]
enum Concurrent {
    CreateIndex(String),
    DropIndex(String),
    Reindex {
        kind: ReindexObjectType,
        target: Option<String>,
    },
    Detach {
        parent: String,
        partition: String,
    },
}

fn range_var(r: &protobuf::RangeVar) -> String {
    if r.schemaname.is_empty() {
        quote_ident(&r.relname)
    } else {
        format!("{}.{}", quote_ident(&r.schemaname), quote_ident(&r.relname))
    }
}

fn concurrent(stmt: &Statement) -> Option<Concurrent> {
    let nodes = stmt.nodes();
    if nodes.len() != 1 {
        return None;
    }
    match nodes[0].node.as_ref()? {
        NodeEnum::IndexStmt(i) if i.concurrent && !i.idxname.is_empty() => {
            let schema = i
                .relation
                .as_ref()
                .map(|r| r.schemaname.clone())
                .unwrap_or_default();
            Some(Concurrent::CreateIndex(if schema.is_empty() {
                quote_ident(&i.idxname)
            } else {
                format!("{}.{}", quote_ident(&schema), quote_ident(&i.idxname))
            }))
        }
        NodeEnum::DropStmt(d)
            if d.concurrent
                && d.objects.len() == 1
                && d.remove_type == protobuf::ObjectType::ObjectIndex as i32 =>
        {
            let Some(NodeEnum::List(list)) = d.objects[0].node.as_ref() else {
                return None;
            };
            let parts: Option<Vec<String>> = list
                .items
                .iter()
                .map(|n| match n.node.as_ref() {
                    Some(NodeEnum::String(s)) => Some(quote_ident(&s.sval)),
                    _ => None,
                })
                .collect();
            Some(Concurrent::DropIndex(parts?.join(".")))
        }
        NodeEnum::ReindexStmt(r)
            if r.params.iter().any(
                |p| matches!(&p.node, Some(NodeEnum::DefElem(d)) if d.defname == "concurrently"),
            ) =>
        {
            let kind = ReindexObjectType::try_from(r.kind).ok()?;
            let target = match kind {
                ReindexObjectType::ReindexObjectIndex | ReindexObjectType::ReindexObjectTable => {
                    Some(range_var(r.relation.as_ref()?))
                }
                ReindexObjectType::ReindexObjectSchema => Some(quote_ident(&r.name)),
                _ => None,
            };
            Some(Concurrent::Reindex { kind, target })
        }
        NodeEnum::AlterTableStmt(a) if a.cmds.len() == 1 => {
            let Some(NodeEnum::AlterTableCmd(c)) = a.cmds[0].node.as_ref() else {
                return None;
            };
            if c.subtype != protobuf::AlterTableType::AtDetachPartition as i32 {
                return None;
            }
            match c.def.as_deref().and_then(|d| d.node.as_ref()) {
                Some(NodeEnum::PartitionCmd(p)) if p.concurrent => Some(Concurrent::Detach {
                    parent: range_var(a.relation.as_ref()?),
                    partition: range_var(p.name.as_ref()?),
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Statements that run outside a transaction block, have no catalog check,
/// and give the same result when run twice: an interrupted one simply runs
/// again.
fn idempotent(what: &str) -> bool {
    matches!(
        what,
        "VACUUM" | "CLUSTER without a table" | "REINDEX SCHEMA/DATABASE/SYSTEM" | "ALTER SYSTEM"
    )
}

/// Refuses to resume a killed run at a statement that commits on its own,
/// has no catalog check and is not idempotent (a DO block with COMMIT,
/// CREATE DATABASE, ...): it may have finished without being recorded, and
/// only the user can tell. The error names both ways on.
pub(super) fn refuse_undecided(
    m: &Migration,
    statements: &[Statement],
    from: super::apply::Resume,
    command: &'static str,
) -> Result<(), EngineError> {
    let Some(stmt) = statements.get(from.at).filter(|_| from.killed) else {
        return Ok(());
    };
    match stmt.transaction {
        sql::TransactionBehavior::Never(what)
            if concurrent(stmt).is_none() && !idempotent(what) =>
        {
            Err(EngineError::Undecided {
                label: m.label(),
                command,
                version: m.version.to_string(),
                statement: from.at + 1,
                what,
                summary: stmt.summary(),
            })
        }
        _ => Ok(()),
    }
}

/// Invalid indexes left by an interrupted `REINDEX … CONCURRENTLY`: named
/// `<index>_ccnew[N]` (the new copy) or `<index>_ccold[N]` (the old one,
/// after the swap), restricted to what the statement covers (a partitioned
/// table's partitions included).
const REINDEX_LEFTOVERS: &str = "
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid
  AND c.relname ~ '_cc(new|old)[0-9]*$'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND CASE $1
        WHEN 'index' THEN i.indrelid = (SELECT indrelid FROM pg_index WHERE indexrelid = to_regclass($2))
                      AND position(regexp_replace(c.relname, '_cc(new|old)[0-9]*$', '')
                                   IN (SELECT relname FROM pg_class WHERE oid = to_regclass($2))) = 1
        WHEN 'table' THEN i.indrelid = to_regclass($2)
                       OR i.indrelid IN (SELECT relid FROM pg_partition_tree(to_regclass($2)))
        WHEN 'schema' THEN n.nspname = $3
        ELSE true
      END
ORDER BY 1";

/// The valid indexes a `REINDEX INDEX|TABLE … CONCURRENTLY` rebuilds, with
/// their OIDs.
const REINDEX_TARGETS: &str = "
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), c.oid::bigint
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisvalid
  AND CASE WHEN $1 = 'index' THEN i.indexrelid = to_regclass($2) ELSE i.indrelid = to_regclass($2) END
ORDER BY 1";

impl Runner<'_> {
    /// Decides what to do with statement `index` of `m` before it runs.
    /// `interrupted` is true for the statement an interrupted run (or a
    /// cancelled attempt of this run) stopped at: only then may it be
    /// skipped as already done.
    pub(super) async fn on_resume(
        &self,
        m: &Migration,
        index: usize,
        stmt: &Statement,
        interrupted: bool,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<OnResume, EngineError> {
        let Some(what) = concurrent(stmt) else {
            return Ok(OnResume::Run);
        };
        match what {
            Concurrent::CreateIndex(name) => self.create_index(&name, interrupted, observer).await,
            Concurrent::DropIndex(name) => {
                if !interrupted {
                    return Ok(OnResume::Run);
                }
                let exists = crate::db::catalog::relation_exists(self.conn, &name).await?;
                if exists {
                    // A killed drop leaves the index invalid; running the
                    // statement again finishes it.
                    return Ok(OnResume::Run);
                }
                observer(Progress::Notice(format!(
                    "{}: index {name} was already dropped by the interrupted run; skipping statement {}",
                    m.label(),
                    index + 1
                )));
                Ok(OnResume::Skip)
            }
            Concurrent::Reindex { kind, target } => {
                self.reindex(m, index, kind, target, interrupted, observer)
                    .await
            }
            Concurrent::Detach { parent, partition } => {
                if !interrupted {
                    return Ok(OnResume::Run);
                }
                let attached: Option<bool> = self
                    .conn
                    .query_opt(
                        "SELECT inhdetachpending FROM pg_inherits WHERE inhrelid = to_regclass($1) AND inhparent = to_regclass($2)",
                        &[&partition, &parent],
                    )
                    .await?
                    .map(|r| r.get(0));
                match attached {
                    Some(false) => Ok(OnResume::Run),
                    Some(true) => {
                        let text =
                            format!("ALTER TABLE {parent} DETACH PARTITION {partition} FINALIZE");
                        observer(Progress::Notice(format!(
                            "{}: partition {partition} is pending detach after the interrupted run; running `{text}` to complete it",
                            m.label()
                        )));
                        let mut finalize = sql::split(&text, &[])
                            .ok()
                            .and_then(|mut s| s.pop())
                            .ok_or_else(|| EngineError::Sql {
                                path: m.up.path.clone(),
                                line: m.up.first_line + stmt.line - 1,
                                column: 1,
                                error: sql::SqlError::Syntax {
                                    message: format!("could not build `{text}`"),
                                    line: 1,
                                    column: 1,
                                },
                            })?;
                        finalize.line = stmt.line;
                        finalize.column = stmt.column;
                        Ok(OnResume::Instead(finalize))
                    }
                    None => {
                        let exists =
                            crate::db::catalog::relation_exists(self.conn, &partition).await?;
                        if !exists {
                            // Let the statement report what is wrong.
                            return Ok(OnResume::Run);
                        }
                        observer(Progress::Notice(format!(
                            "{}: partition {partition} was already detached by the interrupted run; skipping statement {}",
                            m.label(),
                            index + 1
                        )));
                        Ok(OnResume::Skip)
                    }
                }
            }
        }
    }

    /// A `CREATE INDEX CONCURRENTLY` that was interrupted either finished
    /// (the index is valid: skip it) or left an invalid index behind (drop
    /// it so that the statement can run again).
    async fn create_index(
        &self,
        qualified: &str,
        interrupted: bool,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<OnResume, EngineError> {
        let valid: Option<bool> = self
            .conn
            .query_opt(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)",
                &[&qualified],
            )
            .await?
            .map(|r| r.get(0));
        match valid {
            Some(true) if interrupted => {
                observer(Progress::Notice(format!(
                    "index {qualified} was already built by the interrupted run; skipping"
                )));
                Ok(OnResume::Skip)
            }
            Some(false) => {
                observer(Progress::Notice(format!(
                    "dropping invalid index {qualified} left by the interrupted run"
                )));
                self.conn
                    .batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"))
                    .await?;
                Ok(OnResume::Run)
            }
            _ => Ok(OnResume::Run),
        }
    }

    /// `REINDEX … CONCURRENTLY`: drops what an interrupted run left, skips
    /// the statement when the interrupted run finished it, and otherwise
    /// records the OIDs of the indexes it is about to rebuild (in the event
    /// log) so that a later resume can tell.
    async fn reindex(
        &self,
        m: &Migration,
        index: usize,
        kind: ReindexObjectType,
        target: Option<String>,
        interrupted: bool,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<OnResume, EngineError> {
        let scope = match kind {
            ReindexObjectType::ReindexObjectIndex => "index",
            ReindexObjectType::ReindexObjectTable => "table",
            ReindexObjectType::ReindexObjectSchema => "schema",
            _ => "database",
        };
        let target = target.unwrap_or_default();
        // The schema's name as stored, for the schema scope.
        let bare = target.trim_matches('"').replace("\"\"", "\"");
        if interrupted {
            let leftovers = self
                .conn
                .query(REINDEX_LEFTOVERS, &[&scope, &target, &bare])
                .await?;
            for row in leftovers {
                let name: String = row.get(0);
                observer(Progress::Notice(format!(
                    "{}: dropping invalid index {name} left by the interrupted REINDEX CONCURRENTLY",
                    m.label()
                )));
                self.conn
                    .batch(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                    .await?;
            }
        }
        if scope != "index" && scope != "table" {
            if interrupted {
                observer(Progress::Notice(format!(
                    "{}: statement {} (REINDEX {} CONCURRENTLY) runs again: each table is rebuilt in its own transaction, so it cannot be told how far the interrupted run got; rebuilding again gives the same result",
                    m.label(),
                    index + 1,
                    scope.to_uppercase()
                )));
            }
            return Ok(OnResume::Run);
        }
        let now: Vec<(String, i64)> = self
            .conn
            .query(REINDEX_TARGETS, &[&scope, &target])
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        if interrupted {
            let before = self
                .history
                .statement_event(self.conn, m, index + 1)
                .await?;
            let recorded: Vec<(String, i64)> = before
                .as_ref()
                .and_then(|d| d.get("reindex"))
                .and_then(|r| r.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|e| {
                            Some((
                                e.get("index")?.as_str()?.to_owned(),
                                e.get("oid")?.as_i64()?,
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            // REINDEX CONCURRENTLY swaps all of a statement's new indexes in
            // under the old names in one transaction: one changed OID means
            // the interrupted run got past the swap.
            let rebuilt = recorded
                .iter()
                .any(|(name, oid)| now.iter().any(|(n, o)| n == name && o != oid));
            if rebuilt {
                observer(Progress::Notice(format!(
                    "{}: {target} was already rebuilt by the interrupted run; skipping statement {}",
                    m.label(),
                    index + 1
                )));
                return Ok(OnResume::Skip);
            }
        }
        let details = serde_json::json!({
            "statement": index + 1,
            "reindex": now.iter().map(|(n, o)| serde_json::json!({ "index": n, "oid": o })).collect::<Vec<_>>(),
        });
        self.history
            .event(
                self.conn,
                self.actor,
                &Event {
                    action: "statement",
                    migration: Some(m),
                    success: true,
                    duration_ms: None,
                    details,
                },
            )
            .await?;
        Ok(OnResume::Run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Option<Concurrent> {
        concurrent(&sql::split(text, &[]).unwrap()[0])
    }

    #[test]
    fn recognises_every_concurrently_statement() {
        assert_eq!(
            of("CREATE INDEX CONCURRENTLY i ON app.t (a)"),
            Some(Concurrent::CreateIndex("\"app\".\"i\"".into()))
        );
        assert_eq!(
            of("DROP INDEX CONCURRENTLY IF EXISTS app.\"Odd\""),
            Some(Concurrent::DropIndex("\"app\".\"Odd\"".into()))
        );
        assert_eq!(
            of("REINDEX INDEX CONCURRENTLY i"),
            Some(Concurrent::Reindex {
                kind: ReindexObjectType::ReindexObjectIndex,
                target: Some("\"i\"".into())
            })
        );
        assert_eq!(
            of("REINDEX (CONCURRENTLY) TABLE s.t"),
            Some(Concurrent::Reindex {
                kind: ReindexObjectType::ReindexObjectTable,
                target: Some("\"s\".\"t\"".into())
            })
        );
        assert_eq!(
            of("ALTER TABLE p DETACH PARTITION s.p1 CONCURRENTLY"),
            Some(Concurrent::Detach {
                parent: "\"p\"".into(),
                partition: "\"s\".\"p1\"".into()
            })
        );
    }

    #[test]
    fn ignores_statements_that_run_in_a_transaction() {
        for text in [
            "CREATE INDEX i ON t (a)",
            "DROP INDEX i",
            "REINDEX INDEX i",
            "ALTER TABLE p DETACH PARTITION p1",
            "ALTER TABLE p DETACH PARTITION p1 FINALIZE",
            "CREATE INDEX CONCURRENTLY ON t (a)",
        ] {
            assert_eq!(of(text), None, "{text}");
        }
    }
}
