//! `sql`: hand-written up and down SQL.
//!
//! Each script is split into statements with the PostgreSQL parser: a
//! statement that cannot run in a transaction block (CONCURRENTLY,
//! VACUUM, …) becomes an `Alone` action; consecutive others become one
//! `Transaction`, so they commit together under lock_timeout.

use strata_source::sql::{split, TransactionBehavior};

use super::super::{Action, CompileError, Compiled};

/// The up script's actions, and the down script's (without one, the
/// phase cannot be rolled back).
pub fn compile(up: &str, down: Option<&str>) -> Result<Compiled, CompileError> {
    Ok(Compiled {
        up: actions(up, "up")?,
        down: match down {
            Some(d) => Ok(actions(d, "down")?),
            None => Err("its `sql` operation has no `down`".to_owned()),
        },
        drops_data: false,
    })
}

fn actions(text: &str, key: &str) -> Result<Vec<Action>, CompileError> {
    let statements = split(text, &[]).map_err(|e| CompileError {
        message: format!("`sql`: `{key}` does not parse: {e}"),
        help: Some(e.help().to_owned()),
    })?;
    let mut out = Vec::new();
    let mut group: Vec<String> = Vec::new();
    for s in statements {
        match &s.transaction {
            TransactionBehavior::Any => group.push(s.sql.clone()),
            TransactionBehavior::Never(_) => {
                if !group.is_empty() {
                    out.push(Action::Transaction(std::mem::take(&mut group)));
                }
                out.push(Action::Alone(s.sql.clone()));
            }
            _ => {
                return Err(CompileError {
                    message: format!(
                        "`sql`: `{key}` controls transactions itself ({})",
                        s.summary()
                    ),
                    help: Some(
                        "remove BEGIN/COMMIT/SAVEPOINT: Strata groups the statements into short transactions"
                            .to_owned(),
                    ),
                })
            }
        }
    }
    if !group.is_empty() {
        out.push(Action::Transaction(group));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_statements_run_alone_between_transactions() {
        let c = compile(
            "CREATE TABLE a (x int); INSERT INTO a VALUES (1);\nCREATE INDEX CONCURRENTLY i ON a (x);\nALTER TABLE a ADD COLUMN y int",
            Some("DROP TABLE a"),
        )
        .expect("compiles");
        assert_eq!(
            c.up,
            [
                Action::Transaction(vec![
                    "CREATE TABLE a (x int)".into(),
                    "INSERT INTO a VALUES (1)".into()
                ]),
                Action::Alone("CREATE INDEX CONCURRENTLY i ON a (x)".into()),
                Action::Transaction(vec!["ALTER TABLE a ADD COLUMN y int".into()]),
            ]
        );
        assert!(compile("BEGIN; SELECT 1; COMMIT;", None).is_err());
        assert!(compile("SELECT 1", None).expect("ok").down.is_err());
    }
}
