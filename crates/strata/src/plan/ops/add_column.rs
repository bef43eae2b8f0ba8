//! `add_column`: a nullable column, or one with a constant default, which
//! PostgreSQL adds as metadata only (no rewrite since PostgreSQL 11).

use super::super::{Action, Compiled};

/// `ALTER TABLE … ADD COLUMN IF NOT EXISTS` in one short transaction; the
/// reverse drops it (nothing existed before, so nothing is lost).
pub fn compile(table: &str, column: &str, column_type: &str, default: Option<&str>) -> Compiled {
    let default = default.map(|d| format!(" DEFAULT {d}")).unwrap_or_default();
    Compiled {
        up: vec![Action::Transaction(vec![format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {column_type}{default}"
        )])],
        down: Ok(vec![Action::Transaction(vec![format!(
            "ALTER TABLE {table} DROP COLUMN IF EXISTS {column}"
        )])]),
        drops_data: false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds_with_a_default_and_drops_in_reverse() {
        let c = super::compile("users", "verified", "boolean", Some("false"));
        assert_eq!(
            c.up[0].to_string(),
            "BEGIN;\nALTER TABLE users ADD COLUMN IF NOT EXISTS verified boolean DEFAULT false;\nCOMMIT;"
        );
        assert_eq!(
            c.down.expect("reversible")[0].to_string(),
            "BEGIN;\nALTER TABLE users DROP COLUMN IF EXISTS verified;\nCOMMIT;"
        );
    }
}
