//! `drop_column`: after a deploy gate (the reader checks), and after a
//! backup (the engine takes it, since `drops_data`).

use super::super::{Action, Compiled};

/// One short transaction. The reverse cannot bring the data back.
pub fn compile(table: &str, column: &str) -> Compiled {
    Compiled {
        up: vec![Action::Transaction(vec![format!(
            "ALTER TABLE {table} DROP COLUMN IF EXISTS {column}"
        )])],
        down: Err(format!(
            "{table}.{column} was dropped and its data is gone; roll back with --from-backup naming the backup taken before this phase"
        )),
        drops_data: true,
    }
}
