//! `validate`: a query that must return `true`, or no rows.

use super::super::{Action, Compiled};

/// One `Validate` action; nothing to reverse.
pub fn compile(sql: &str, message: Option<&str>) -> Compiled {
    Compiled {
        up: vec![Action::Validate {
            sql: sql.trim().trim_end_matches(';').trim().to_owned(),
            message: message.unwrap_or("the validation failed").to_owned(),
        }],
        down: Ok(Vec::new()),
        drops_data: false,
    }
}
