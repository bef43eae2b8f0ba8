//! A direct executor of compiled plan actions, for testing what each
//! operation's SQL does (catalog, data, reverse) apart from the engine that
//! schedules, records and resumes it. Runner behaviour (gates, resume,
//! progress) is tested through `strata up` in the plan runner's own tests.

use strata::plan::file::OperationKind;
use strata::plan::{ops, Action, Compiled, Context, TableFacts};

use crate::support::TestDb;

/// Compiles one operation from its TOML table (`{ op = "…", … }`), step
/// `step`, for plan version `version`.
///
/// `table` is the operation's table as `engine::table_facts` reads it, for
/// the operations that need it.
pub fn compile(
    version: &str,
    step: Option<&str>,
    table: Option<&TableFacts>,
    toml_table: &str,
) -> Compiled {
    let value: toml::Value =
        toml::from_str(&format!("x = {toml_table}")).expect("the operation is TOML");
    let op: OperationKind = value["x"]
        .clone()
        .try_into()
        .expect("the operation has a known shape");
    ops::compile(
        &op,
        &Context {
            version,
            step,
            table,
        },
    )
    .expect("the operation compiles")
}

/// Runs actions in order, as the engine would, but without retries,
/// batching or progress records: a transaction as one `BEGIN … COMMIT`, a
/// lone statement on its own, a backfill as its single statement, and a
/// validation as its query. A failed validation is `Err` with its message
/// and the rows it returned (as text).
pub async fn run(db: &TestDb, actions: &[Action]) -> Result<(), String> {
    let conn = db.connect().await;
    for action in actions {
        match action {
            Action::Transaction(statements) => {
                let mut sql = String::from("BEGIN;\n");
                for s in statements {
                    sql.push_str(s);
                    sql.push_str(";\n");
                }
                sql.push_str("COMMIT;");
                conn.batch(&sql)
                    .await
                    .map_err(|e| format!("{action}: {e}"))?;
            }
            Action::Alone(sql) | Action::Backfill(sql) => {
                conn.batch(sql)
                    .await
                    .map_err(|e| format!("{action}: {e}"))?;
            }
            Action::Validate { sql, message } => {
                let rows = conn
                    .query(&format!("SELECT to_jsonb(v)::text FROM ({sql}) v"), &[])
                    .await
                    .map_err(|e| format!("{action}: {e}"))?;
                let rows: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
                let passed = rows.is_empty()
                    || (rows.len() == 1
                        && serde_json::from_str::<serde_json::Value>(&rows[0])
                            .ok()
                            .and_then(|v| v.as_object().and_then(|o| o.values().next().cloned()))
                            == Some(serde_json::Value::Bool(true)));
                if !passed {
                    return Err(format!("{message}: {}", rows.join("; ")));
                }
            }
        }
    }
    Ok(())
}

/// Runs an operation's `down`, which must exist.
pub async fn run_down(db: &TestDb, compiled: &Compiled) -> Result<(), String> {
    let down = compiled.down.as_ref().map_err(|why| why.clone())?;
    run(db, down).await
}
