//! `backfill`: a batched, resumable `UPDATE` through the backfill engine.

use super::super::{Action, Compiled};

/// One `Backfill` action. A data change has no generic reverse, and none
/// is needed: the reverse of the operations around it (a dropped column)
/// removes what it wrote; so the reverse is empty.
pub fn compile(table: &str, set: &str, predicate: Option<&str>) -> Compiled {
    let predicate = predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default();
    Compiled {
        up: vec![Action::Backfill(format!(
            "UPDATE {table} SET {set}{predicate}"
        ))],
        down: Ok(Vec::new()),
        drops_data: false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_update_with_its_condition() {
        let c = super::compile("users", "a = lower(b)", Some("a IS NULL"));
        assert_eq!(
            c.up,
            [super::Action::Backfill(
                "UPDATE users SET a = lower(b) WHERE a IS NULL".into()
            )]
        );
    }
}
