//! The one check of a script's own transactions (`BEGIN` … `COMMIT`).
//!
//! `validate` reports its problems, the runner refuses a script that has
//! any before running a single statement (so "nothing was run" stays true),
//! and the `ban-unbalanced-transaction` lint rule reports an unclosed
//! `BEGIN` from the same answer: three readers, one definition.

use super::{Statement, TransactionBehavior};

/// What is wrong with a script's own transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Imbalance {
    /// A `BEGIN` inside a transaction the script already opened
    /// (PostgreSQL has no nested transactions).
    NestedBegin,
    /// A statement that cannot run in a transaction block, inside one the
    /// script opened; the text names the construct.
    NeverInside(&'static str),
    /// A `BEGIN` that is never committed: everything after it would be
    /// rolled back when the session ends.
    Unclosed,
}

impl Imbalance {
    /// The problem, in a sentence.
    pub fn message(self) -> String {
        match self {
            Imbalance::NestedBegin => "BEGIN inside a transaction that is already open (nested transactions are not supported by PostgreSQL)".into(),
            Imbalance::NeverInside(why) => {
                format!("{why} cannot run inside the transaction opened above")
            }
            Imbalance::Unclosed => "BEGIN without a matching COMMIT".into(),
        }
    }

    /// How to fix it.
    pub fn help(self) -> &'static str {
        match self {
            Imbalance::NestedBegin => "use SAVEPOINT, or COMMIT the first transaction",
            Imbalance::NeverInside(_) => "move it after the COMMIT",
            Imbalance::Unclosed => "add COMMIT at the end of the transaction",
        }
    }
}

/// Every imbalance of `statements`, with the index of the statement it is
/// at (for [`Imbalance::Unclosed`], the `BEGIN` that opened the block), in
/// order. One pass.
pub fn imbalances(statements: &[Statement]) -> Vec<(usize, Imbalance)> {
    use TransactionBehavior as T;
    let mut out = Vec::new();
    let mut open: Option<usize> = None;
    for (i, s) in statements.iter().enumerate() {
        match s.transaction {
            T::Begin if open.is_some() => out.push((i, Imbalance::NestedBegin)),
            T::Begin => open = Some(i),
            T::Commit | T::Rollback => open = None,
            T::Never(why) if open.is_some() => out.push((i, Imbalance::NeverInside(why))),
            _ => {}
        }
    }
    if let Some(i) = open {
        out.push((i, Imbalance::Unclosed));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sql: &str) -> Vec<(usize, Imbalance)> {
        imbalances(&crate::sql::split(sql, &[]).unwrap())
    }

    #[test]
    fn finds_each_kind_once_at_its_statement() {
        assert_eq!(of("BEGIN; SELECT 1; COMMIT; BEGIN; SELECT 2; END;"), []);
        assert_eq!(of("SELECT 1; BEGIN; SELECT 2;"), [(1, Imbalance::Unclosed)]);
        assert_eq!(of("BEGIN; BEGIN; COMMIT;"), [(1, Imbalance::NestedBegin)]);
        assert!(matches!(
            of("BEGIN; CREATE INDEX CONCURRENTLY i ON t (a); COMMIT;")[..],
            [(1, Imbalance::NeverInside(_))]
        ));
        assert_eq!(of("COMMIT;"), []);
    }
}
