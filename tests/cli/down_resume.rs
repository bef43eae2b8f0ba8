//! A `down` script that runs outside a transaction is exactly-once and
//! resumable like an `up`: a failed or killed `strata down` leaves the
//! migration partly reverted with its progress recorded, `status` says so,
//! `up` refuses to build on it, and the next `down` resumes at the statement
//! it stopped at without running the earlier ones again.

use crate::support::{
    expect_code, kill_in_window, kill_while_it_waits, wait_for, Project, TestDb, WINDOW_CONFIG,
};

/// Table `t` with ids 1 to 10, table `log`, and migration 2 with an index
/// and the down script `down`.
fn project_with_down(db: &TestDb, down: &str) -> Project {
    let project = Project::applied(
        db,
        "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 10);\nCREATE TABLE log (x text);\n",
    );
    project.write("2_index.up.sql", "CREATE INDEX t_id ON t (id);\n");
    project.write("2_index.down.sql", down);
    expect_code(&project.run(db, &["up"]), 0);
    project
}

async fn log(db: &TestDb) -> Vec<String> {
    db.column("SELECT x FROM log ORDER BY x").await
}

async fn rows(db: &TestDb) -> Vec<String> {
    db.column("SELECT count(*)::text FROM t").await
}

#[tokio::test]
async fn failed_down_resumes_at_the_failing_statement_without_rerunning_the_others() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "-- strata:no-transaction\nINSERT INTO log VALUES ('d1');\nDELETE FROM t WHERE id = (SELECT min(id) FROM t);\nINSERT INTO nothere VALUES (1);\nDROP INDEX t_id;\n",
    );
    let failed = expect_code(&project.run(&db, &["down"]), 1);
    assert!(
        failed.contains("strata down") && failed.contains("resume at statement 3"),
        "{failed}"
    );
    assert_eq!(log(&db).await, ["d1"]);
    assert_eq!(rows(&db).await, ["9"]);

    // Status shows the migration as partly reverted, in the table and JSON.
    let status = crate::support::text(&project.run(&db, &["status"]));
    assert!(status.contains("reverting"), "{status}");
    assert!(
        status.contains("down stopped at statement 3 of 4")
            && status.contains("0 failed, 1 reverting"),
        "{status}"
    );
    let json = crate::support::text(&project.run(&db, &["status", "--json"]));
    assert!(json.contains("\"state\": \"reverting\""), "{json}");

    // `up` does not take it as applied, and says what to do.
    let up = expect_code(&project.run(&db, &["up"]), 1);
    assert!(
        up.contains("partly reverted") && up.contains("strata down"),
        "{up}"
    );
    // `repair` keeps the progress and says what the next `down` does.
    let repair = expect_code(&project.run(&db, &["repair"]), 0);
    assert!(
        repair.contains("the next `strata down` resumes at statement 3"),
        "{repair}"
    );

    // The fix: statement 3 changes; statements 1 and 2 must not run again.
    project.write(
        "2_index.down.sql",
        "-- strata:no-transaction\nINSERT INTO log VALUES ('d1');\nDELETE FROM t WHERE id = (SELECT min(id) FROM t);\nINSERT INTO log VALUES ('d3');\nDROP INDEX t_id;\n",
    );
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(out.contains("resuming at statement 3 of 4"), "{out}");
    assert_eq!(log(&db).await, ["d1", "d3"], "no statement ran twice");
    assert_eq!(rows(&db).await, ["9"], "the DELETE ran once");
    assert!(!db.has_table("t_id").await);
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);

    // Applied again and reverted again: the old progress does not count.
    expect_code(&project.run(&db, &["up"]), 0);
    let status = crate::support::text(&project.run(&db, &["status"]));
    assert!(!status.contains("reverting"), "{status}");
    expect_code(&project.run(&db, &["down"]), 0);
    assert_eq!(log(&db).await, ["d1", "d1", "d3", "d3"]);
    assert_eq!(rows(&db).await, ["8"]);
}

#[tokio::test]
async fn changed_statements_that_already_ran_are_refused() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "-- strata:no-transaction\nINSERT INTO log VALUES ('d1');\nINSERT INTO nothere VALUES (1);\nDROP INDEX t_id;\n",
    );
    expect_code(&project.run(&db, &["down"]), 1);
    project.write(
        "2_index.down.sql",
        "-- strata:no-transaction\nINSERT INTO log VALUES ('changed');\nSELECT 1;\nDROP INDEX t_id;\n",
    );
    let out = expect_code(&project.run(&db, &["down"]), 2);
    assert!(out.contains("statements 1 to 1"), "{out}");
    assert_eq!(log(&db).await, ["d1"]);
}

/// Kills `strata down` in the window between a statement matching `like`
/// (which waits behind `gate` first) and its progress write, by blocking
/// `strata_progress`, where down progress goes: an insert waits for SHARE
/// (see `kill_in_window`).
async fn kill_before_down_progress(
    db: &TestDb,
    project: &Project,
    gate: &strata::db::Connection,
    like: &str,
) {
    let events = kill_in_window(
        db,
        project,
        "down",
        gate,
        like,
        "LOCK TABLE strata_progress IN SHARE MODE",
        "%INSERT INTO %strata_progress%",
    )
    .await;
    events.batch("COMMIT").await.unwrap();
}

#[tokio::test]
async fn drop_index_concurrently_killed_before_its_down_progress_resumes() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "INSERT INTO log VALUES ('d1');\nDROP INDEX CONCURRENTLY t_id;\nDELETE FROM t WHERE id = 1;\n",
    );
    project.config(WINDOW_CONFIG);
    // The gate holds a lock DROP INDEX CONCURRENTLY waits for.
    let gate = db.hold("SELECT count(*) FROM t").await;
    kill_before_down_progress(&db, &project, &gate, "DROP INDEX%").await;
    assert!(!db.has_table("t_id").await, "the drop finished");

    let status = crate::support::text(&project.run(&db, &["status"]));
    assert!(
        status.contains("reverting") && status.contains("down interrupted at statement 2 of 3"),
        "{status}"
    );
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(
        out.contains("already dropped by the interrupted run"),
        "{out}"
    );
    assert_eq!(log(&db).await, ["d1"], "statement 1 ran once");
    assert_eq!(rows(&db).await, ["9"]);
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
}

#[tokio::test]
async fn drop_index_concurrently_killed_while_it_waits_runs_again_on_resume() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "INSERT INTO log VALUES ('d1');\nDROP INDEX CONCURRENTLY t_id;\n",
    );
    project.config(WINDOW_CONFIG);
    let gate = db.hold("SELECT count(*) FROM t").await;
    kill_while_it_waits(&db, &project, "down", &gate, "DROP INDEX%").await;
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(out.contains("resuming at statement 2 of 2"), "{out}");
    assert!(!db.has_table("t_id").await, "{out}");
    assert_eq!(log(&db).await, ["d1"], "statement 1 ran once");
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
}

#[tokio::test]
async fn a_down_statement_that_cannot_be_checked_is_not_rerun_and_repair_skips_it() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "DO $$ BEGIN INSERT INTO log VALUES ('do'); COMMIT; END $$;\nDROP INDEX t_id;\n",
    );
    project.config(WINDOW_CONFIG);
    let gate = db.hold("LOCK TABLE log IN SHARE MODE").await;
    kill_before_down_progress(&db, &project, &gate, "DO %").await;
    let out = expect_code(&project.run(&db, &["down"]), 1);
    assert!(
        out.contains("migration 2_index was interrupted at statement 1")
            && out.contains("strata repair --skip-statement 2")
            && out.contains("then `strata down`"),
        "{out}"
    );
    assert_eq!(log(&db).await, ["do"], "not run again on a guess");
    let out = expect_code(&project.run(&db, &["repair", "--skip-statement", "2"]), 0);
    assert!(
        out.contains("as done without running it; the next `strata down` resumes at statement 2 (DROP INDEX t_id)"),
        "{out}"
    );
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(out.contains("resuming at statement 2 of 2"), "{out}");
    assert_eq!(log(&db).await, ["do"]);
    assert!(!db.has_table("t_id").await);
}

#[tokio::test]
async fn down_killed_after_its_last_statement_is_only_recorded_on_resume() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "INSERT INTO log VALUES ('d1');\nDROP INDEX CONCURRENTLY t_id;\n",
    );
    project.config(WINDOW_CONFIG);
    // Holding the history row's lock keeps the final delete (with the
    // `down` event, in one transaction) waiting; the kill falls there.
    let row = db
        .hold("SELECT 1 FROM strata_migrations WHERE version = '2' FOR UPDATE")
        .await;
    kill_while_it_waits(
        &db,
        &project,
        "down",
        &row,
        "DELETE FROM %strata_migrations%",
    )
    .await;
    let status = crate::support::text(&project.run(&db, &["status"]));
    assert!(
        status.contains("down interrupted after its last statement"),
        "{status}"
    );
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(
        out.contains("all 2 statements of the down script ran before the interruption; recording it as reverted"),
        "{out}"
    );
    assert_eq!(log(&db).await, ["d1"]);
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
}

#[tokio::test]
async fn a_down_script_with_its_own_transaction_resumes_after_its_committed_block() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "BEGIN;\nINSERT INTO log VALUES ('b1');\nDELETE FROM t WHERE id = 1;\nCOMMIT;\nINSERT INTO nothere VALUES (1);\nDROP INDEX t_id;\n",
    );
    let failed = expect_code(&project.run(&db, &["down"]), 1);
    assert!(failed.contains("resume at statement 5"), "{failed}");
    project.write(
        "2_index.down.sql",
        "BEGIN;\nINSERT INTO log VALUES ('b1');\nDELETE FROM t WHERE id = 1;\nCOMMIT;\nINSERT INTO log VALUES ('after');\nDROP INDEX t_id;\n",
    );
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(out.contains("resuming at statement 5 of 6"), "{out}");
    assert_eq!(log(&db).await, ["after", "b1"]);
    assert_eq!(rows(&db).await, ["9"]);
    assert!(!db.has_table("t_id").await);
}

#[tokio::test]
async fn a_down_statement_that_cannot_be_checked_runs_again_when_repair_says_so() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "DO $$ BEGIN INSERT INTO log VALUES ('do'); COMMIT; END $$;\nDROP INDEX t_id;\n",
    );
    project.config(WINDOW_CONFIG);
    let gate = db.hold("LOCK TABLE log IN SHARE MODE").await;
    // Killed while the block waits: it did not take effect.
    kill_while_it_waits(&db, &project, "down", &gate, "DO %").await;
    let out = expect_code(&project.run(&db, &["down"]), 1);
    assert!(out.contains("strata repair --rerun-statement 2"), "{out}");
    let up = expect_code(&project.run(&db, &["up"]), 1);
    assert!(up.contains("partly reverted"), "{up}");
    let out = expect_code(&project.run(&db, &["repair", "--rerun-statement", "2"]), 0);
    assert!(
        out.contains("statement 1 of the down script (DO $$")
            && out.contains("runs again at the next `strata down`"),
        "{out}"
    );
    expect_code(&project.run(&db, &["down"]), 0);
    assert_eq!(log(&db).await, ["do"]);
    assert!(!db.has_table("t_id").await);
}

#[tokio::test]
async fn a_resumed_down_waits_for_the_interrupted_runs_backend() {
    let db = TestDb::new().await;
    let project = project_with_down(
        &db,
        "-- strata:no-transaction\nINSERT INTO log VALUES ('d1');\nDROP INDEX t_id;\n",
    );
    project.config("lock_wait = \"1s\"\n");
    // What a killed run leaves while its backend still runs: running down
    // progress naming that backend (here a live session).
    let backend = db.connect().await;
    let pid = backend.pid();
    let cursor = serde_json::json!({ "done_checksum": strata::source::checksum("") });
    db.connect()
        .await
        .batch(&format!(
            "INSERT INTO strata_progress (history_table, kind, version, step, state, done, total, cursor, backend_pid) VALUES ('strata_migrations', 'versioned', '2', 'down', 'running', 0, 2, '{cursor}', {pid})"
        ))
        .await
        .unwrap();
    let status = crate::support::text(&project.run(&db, &["status"]));
    assert!(
        status.contains("down interrupted at statement 1 of 2"),
        "{status}"
    );
    let out = expect_code(&project.run(&db, &["down"]), 1);
    assert!(
        out.contains(&format!("still running on the server in backend {pid}")),
        "{out}"
    );
    assert!(log(&db).await.is_empty(), "nothing ran");
    drop(backend);
    wait_for(
        &db,
        &format!("SELECT count(*)::text FROM pg_stat_activity WHERE pid = {pid}"),
        "0",
    )
    .await;
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(out.contains("ok reverted 2_index"), "{out}");
    assert_eq!(log(&db).await, ["d1"]);
}
