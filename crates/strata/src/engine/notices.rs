//! Server NOTICE and WARNING messages raised while a migration runs,
//! passed on as [`Progress::Server`] events with the migration and the line
//! of the statement that raised them.
//!
//! The connection keeps notices as they arrive (`db::Connection::take_notices`);
//! this wrapper around the runner's observer drains them at each of the
//! runner's events. Because the connection stores a statement's notices
//! before its result reaches us, everything drained when statement N+1
//! starts (or the migration ends) belongs to statement N. That keeps the
//! runner itself unaware of notices.

use super::Progress;
use crate::db::{Connection, Notice};
use crate::source::{Migration, Script};
use crate::sql::Statement;

/// Forwards one migration's notices.
pub(super) struct Forward<'a> {
    conn: &'a Connection,
    label: String,
    first_line: usize,
    statements: &'a [Statement],
    /// The line of the statement running now.
    line: Option<usize>,
}

impl<'a> Forward<'a> {
    pub(super) fn new(
        conn: &'a Connection,
        m: &Migration,
        script: &Script,
        statements: &'a [Statement],
    ) -> Forward<'a> {
        Forward {
            conn,
            label: m.label(),
            first_line: script.first_line,
            statements,
            line: None,
        }
    }

    /// Passes `p` on, after the notices of the statement that ran before it.
    pub(super) fn observe(&mut self, p: Progress, observer: &mut dyn FnMut(Progress)) {
        self.flush(observer);
        if let Progress::Statement { index, total, .. } = &p {
            // The runner counts the statements it was given; a safe rewrite
            // runs others, whose lines are not the file's.
            self.line = (*total == self.statements.len())
                .then(|| index.checked_sub(1).and_then(|i| self.statements.get(i)))
                .flatten()
                .map(|s| self.first_line + s.line.saturating_sub(1));
        }
        observer(p);
    }

    /// Passes on every notice received so far.
    pub(super) fn flush(&mut self, observer: &mut dyn FnMut(Progress)) {
        let (notices, dropped) = self.conn.take_notices();
        for notice in notices {
            observer(Progress::Server {
                label: self.label.clone(),
                line: self.line,
                notice,
            });
        }
        if dropped > 0 {
            observer(Progress::Server {
                label: self.label.clone(),
                line: self.line,
                notice: Notice {
                    severity: "NOTICE".to_owned(),
                    message: format!("{dropped} more server message(s) not shown"),
                    detail: None,
                    hint: None,
                    raised: true,
                },
            });
        }
    }
}
