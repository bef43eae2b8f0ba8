//! Classification of parsed statements by how they relate to transactions.
//!
//! Some statements refuse to run inside a transaction block. A migration
//! that contains one must run outside a transaction, or the server answers
//! "cannot run inside a transaction block"; Strata detects them here so that
//! never happens.

use std::fmt;

use pg_query::protobuf::{self, AlterTableType, TransactionStmtKind};
use pg_query::NodeEnum;

/// How a statement relates to transaction blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionBehavior {
    /// May run inside a transaction block.
    Any,
    /// Cannot run inside a transaction block; the text says which construct.
    Never(&'static str),
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END` (and `COMMIT PREPARED`).
    Commit,
    /// `ROLLBACK` (and `ROLLBACK PREPARED`).
    Rollback,
    /// `SAVEPOINT`, `RELEASE`, `ROLLBACK TO`, `PREPARE TRANSACTION`.
    Savepoint,
}

impl TransactionBehavior {
    /// True for statements that open, close or mark transactions.
    pub fn is_control(self) -> bool {
        matches!(
            self,
            Self::Begin | Self::Commit | Self::Rollback | Self::Savepoint
        )
    }

    /// The behaviour of a unit made of two statements (goose blocks).
    pub(crate) fn combine(self, other: Self) -> Self {
        match (self, other) {
            (Self::Never(r), _) | (_, Self::Never(r)) => Self::Never(r),
            (Self::Any, other) => other,
            (this, _) => this,
        }
    }
}

impl fmt::Display for TransactionBehavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::Never(why) => write!(f, "never: {why}"),
            Self::Begin => f.write_str("begin"),
            Self::Commit => f.write_str("commit"),
            Self::Rollback => f.write_str("rollback"),
            Self::Savepoint => f.write_str("savepoint"),
        }
    }
}

fn has_option(options: &[protobuf::Node], name: &str) -> bool {
    options
        .iter()
        .any(|o| matches!(&o.node, Some(NodeEnum::DefElem(d)) if d.defname == name))
}

/// Classifies one parsed statement.
pub(crate) fn behavior(node: &protobuf::Node) -> TransactionBehavior {
    use TransactionBehavior::{Any, Never};
    let Some(node) = &node.node else { return Any };
    match node {
        NodeEnum::TransactionStmt(t) => match TransactionStmtKind::try_from(t.kind) {
            Ok(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart) => {
                TransactionBehavior::Begin
            }
            Ok(
                TransactionStmtKind::TransStmtCommit | TransactionStmtKind::TransStmtCommitPrepared,
            ) => TransactionBehavior::Commit,
            Ok(
                TransactionStmtKind::TransStmtRollback
                | TransactionStmtKind::TransStmtRollbackPrepared,
            ) => TransactionBehavior::Rollback,
            _ => TransactionBehavior::Savepoint,
        },
        NodeEnum::IndexStmt(i) if i.concurrent => Never("CREATE INDEX CONCURRENTLY"),
        NodeEnum::DropStmt(d) if d.concurrent => Never("DROP INDEX CONCURRENTLY"),
        NodeEnum::ReindexStmt(r) if has_option(&r.params, "concurrently") => {
            Never("REINDEX CONCURRENTLY")
        }
        NodeEnum::ReindexStmt(r)
            if r.relation.is_none()
                && r.kind != protobuf::ReindexObjectType::ReindexObjectIndex as i32
                && r.kind != protobuf::ReindexObjectType::ReindexObjectTable as i32 =>
        {
            Never("REINDEX SCHEMA/DATABASE/SYSTEM")
        }
        NodeEnum::VacuumStmt(v) if v.is_vacuumcmd => Never("VACUUM"),
        NodeEnum::ClusterStmt(c) if c.relation.is_none() => Never("CLUSTER without a table"),
        NodeEnum::CreatedbStmt(_) => Never("CREATE DATABASE"),
        NodeEnum::DropdbStmt(_) => Never("DROP DATABASE"),
        NodeEnum::AlterSystemStmt(_) => Never("ALTER SYSTEM"),
        NodeEnum::CreateTableSpaceStmt(_) => Never("CREATE TABLESPACE"),
        NodeEnum::DropTableSpaceStmt(_) => Never("DROP TABLESPACE"),
        NodeEnum::CreateSubscriptionStmt(_) => Never("CREATE SUBSCRIPTION"),
        NodeEnum::DropSubscriptionStmt(_) => Never("DROP SUBSCRIPTION"),
        NodeEnum::DoStmt(d) if do_body_controls_transactions(d) => {
            Never("DO block with COMMIT or ROLLBACK")
        }
        NodeEnum::AlterTableStmt(a) => {
            let detach = a.cmds.iter().any(|cmd| match &cmd.node {
                Some(NodeEnum::AlterTableCmd(c)) if c.subtype == AlterTableType::AtDetachPartition as i32 => {
                    matches!(c.def.as_deref().and_then(|d| d.node.as_ref()), Some(NodeEnum::PartitionCmd(p)) if p.concurrent)
                }
                _ => false,
            });
            if detach {
                Never("DETACH PARTITION CONCURRENTLY")
            } else {
                Any
            }
        }
        _ => Any,
    }
}

/// Classifies a statement that has no parse tree (too deeply nested) from
/// its tokens: such a statement is never transaction control, but it may
/// be a CONCURRENTLY build or a VACUUM, which must run outside a
/// transaction block.
pub(crate) fn behavior_of_tokens(sql: &str) -> TransactionBehavior {
    let Ok(tokens) = pg_query::scan_tokens(sql) else {
        return TransactionBehavior::Any;
    };
    if tokens
        .first()
        .is_some_and(|t| t.token == protobuf::Token::Vacuum as i32)
    {
        TransactionBehavior::Never("VACUUM")
    } else if tokens
        .iter()
        .any(|t| t.token == protobuf::Token::Concurrently as i32)
    {
        TransactionBehavior::Never("CONCURRENTLY")
    } else {
        TransactionBehavior::Any
    }
}

/// A DO block whose PL/pgSQL body commits or rolls back (batched backfills
/// do this) fails with "invalid transaction termination" inside a
/// transaction block, so it must run outside one.
fn do_body_controls_transactions(d: &protobuf::DoStmt) -> bool {
    let body = d.args.iter().find_map(|a| match &a.node {
        Some(NodeEnum::DefElem(e)) if e.defname == "as" => {
            match e.arg.as_deref().and_then(|n| n.node.as_ref()) {
                Some(NodeEnum::String(s)) => Some(s.sval.clone()),
                _ => None,
            }
        }
        _ => None,
    });
    let Some(body) = body else { return false };
    let Ok(scan) = pg_query::scan(&body) else {
        return false;
    };
    scan.tokens.iter().any(|t| {
        t.token == protobuf::Token::Commit as i32 || t.token == protobuf::Token::Rollback as i32
    })
}
