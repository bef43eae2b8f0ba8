//! `kill -9` of `strata up` in the middle of a long non-transactional
//! migration; the next `up` completes it correctly.

use std::time::{Duration, Instant};

use crate::support::{
    expect_code, kill_in_window, kill_while_it_waits, wait_for, wait_for_lock_wait, Project,
    TestDb, WINDOW_CONFIG,
};

#[tokio::test]
async fn killed_run_resumes_at_the_interrupted_statement() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch("CREATE TABLE sleep_for (seconds float8); INSERT INTO sleep_for VALUES (60);")
        .await
        .unwrap();
    let project = Project::new();
    project.write(
        "1_long.up.sql",
        "-- strata:no-transaction\nCREATE TABLE first (id int);\nSELECT pg_sleep((SELECT seconds FROM sleep_for));\nCREATE TABLE third (id int);\n",
    );
    let mut child = project.spawn(&db, &["up"]);
    // Wait until statement 1 is recorded and statement 2 is running.
    let started = Instant::now();
    loop {
        let done = if db.has_table("public.strata_migrations").await {
            db.column("SELECT statements_done::text FROM strata_migrations")
                .await
        } else {
            vec![]
        };
        if done == ["1"] {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the migration never got to statement 2"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(db.history().await, [("1".to_owned(), "running".to_owned())]);
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains("interrupted at statement 2 of 3"),
        "{status}"
    );

    db.connect()
        .await
        .batch("UPDATE sleep_for SET seconds = 0")
        .await
        .unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resuming at statement 2 of 3"), "{out}");
    assert!(db.has_table("first").await && db.has_table("third").await);
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
}

#[tokio::test]
async fn killed_during_lock_retries_leaves_nothing_half_done() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id int);\n");
    // Statement 1 commits on its own; statement 2 keeps retrying its lock.
    project.write(
        "2_two.up.sql",
        "-- strata:no-transaction\nCREATE TABLE audit (id int);\nALTER TABLE t ADD COLUMN note text;\n",
    );
    project.config("preflight_wait = \"0s\"\n");
    let blocker = db.hold("SELECT * FROM t;").await;
    let mut child = project.spawn(&db, &["up"]);
    // Killed while it retries statement 2.
    wait_for(
        &db,
        "SELECT count(*)::text FROM strata_events WHERE action = 'up' AND NOT success",
        "0",
    )
    .await;
    wait_for(
        &db,
        "SELECT coalesce(max(statements_done), 0)::text FROM strata_migrations WHERE version = '2'",
        "1",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        db.column("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 't' AND column_name = 'note'").await,
        ["0"],
        "the statement that was retrying never ran"
    );
    blocker.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resuming at statement 2 of 2"), "{out}");
    assert_eq!(
        db.column("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 't' AND column_name = 'note'").await,
        ["1"]
    );
    assert_eq!(
        db.history().await,
        [
            ("1".to_owned(), "applied".to_owned()),
            ("2".to_owned(), "applied".to_owned())
        ]
    );
}

#[tokio::test]
async fn killed_during_a_concurrent_index_build_leaves_no_invalid_index_after_the_rerun() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_t.up.sql",
        "CREATE TABLE big (id bigint, payload text);\n",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    db.fill_big_table(1_500_000).await;
    project.write(
        "2_idx.up.sql",
        "CREATE INDEX CONCURRENTLY big_payload_idx ON big (payload);\n",
    );
    let mut child = project.spawn(&db, &["up"]);
    // Killed in the middle of the build.
    wait_for(
        &db,
        "SELECT (count(*) > 0)::text FROM pg_stat_progress_create_index WHERE phase LIKE 'building index%'",
        "true",
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    // The server aborts the orphaned build (client_connection_check_interval)
    // and leaves the index INVALID.
    wait_for(
        &db,
        "SELECT count(*)::text FROM pg_stat_progress_create_index",
        "0",
    )
    .await;
    let invalid = db
        .column("SELECT count(*)::text FROM pg_index WHERE NOT indisvalid AND indexrelid = to_regclass('big_payload_idx')")
        .await;
    assert_eq!(
        invalid,
        ["1"],
        "a killed CONCURRENTLY build leaves an invalid index"
    );

    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("dropping invalid index"), "{out}");
    assert_eq!(
        db.column("SELECT count(*)::text FROM pg_index WHERE NOT indisvalid")
            .await,
        ["0"],
        "no invalid index is left"
    );
    assert_eq!(
        db.column("SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('big_payload_idx')").await,
        ["true"]
    );
    assert_eq!(db.history().await.last().unwrap().1, "applied");
}

/// Table `t`, the usual first migration of the window tests.
const T: &str = "CREATE TABLE t (id int);\n";
/// Table `t` with index `t_id`.
const T_INDEXED: &str = "CREATE TABLE t (id int);\nCREATE INDEX t_id ON t (id);\n";

/// A project for a window test: migration 1 (`first`) applied, and
/// `name` with `sql` to run.
fn window_project(db: &TestDb, first: &str, name: &str, sql: &str) -> Project {
    let project = Project::applied(db, first);
    project.config(WINDOW_CONFIG);
    project.write(name, sql);
    project
}

/// Asserts that migration 2, the second history row, is in `state`.
async fn assert_migration_2(db: &TestDb, state: &str) {
    assert_eq!(db.history().await[1], ("2".to_owned(), state.to_owned()));
}

/// Kills `strata up` in the window between a statement matching `like`
/// (which waits behind `gate` first) and its progress write, by holding the
/// history row of migration 2 FOR UPDATE (see `kill_in_window`). Returns the
/// session holding the row; the caller commits it.
async fn kill_before_up_progress(
    db: &TestDb,
    project: &Project,
    gate: &strata::db::Connection,
    like: &str,
) -> strata::db::Connection {
    kill_in_window(
        db,
        project,
        "up",
        gate,
        like,
        "SELECT 1 FROM strata_migrations WHERE version = '2' FOR UPDATE",
        "UPDATE %strata_migrations%",
    )
    .await
}

#[tokio::test]
async fn as_written_block_killed_before_its_progress_is_recorded_runs_once() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T,
        "2_block.up.sql",
        "BEGIN;\nINSERT INTO t SELECT generate_series(1, 100);\nCOMMIT;\n",
    );
    let gate = db.hold("LOCK TABLE t IN SHARE MODE").await;
    let row = kill_before_up_progress(&db, &project, &gate, "INSERT INTO t%").await;
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT count(*)::text FROM t").await,
        ["100"],
        "the committed block ran again: {out}"
    );
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn as_written_statement_outside_the_block_killed_before_its_progress_runs_once() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T,
        "2_block.up.sql",
        "INSERT INTO t SELECT generate_series(1, 10);\nBEGIN;\nINSERT INTO t SELECT generate_series(11, 20);\nCOMMIT;\n",
    );
    let gate = db.hold("LOCK TABLE t IN SHARE MODE").await;
    let row = kill_before_up_progress(
        &db,
        &project,
        &gate,
        "INSERT INTO t SELECT generate_series(1, 10)%",
    )
    .await;
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT count(*)::text FROM t").await,
        ["20"],
        "{out}"
    );
}

#[tokio::test]
async fn no_transaction_statement_killed_before_its_progress_runs_once() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T,
        "2_fill.up.sql",
        "-- strata:no-transaction\nINSERT INTO t SELECT generate_series(1, 100);\nCREATE TABLE after (id int);\n",
    );
    let gate = db.hold("LOCK TABLE t IN SHARE MODE").await;
    let row = kill_before_up_progress(&db, &project, &gate, "INSERT INTO t%").await;
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT count(*)::text FROM t").await,
        ["100"],
        "{out}"
    );
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn create_index_concurrently_killed_before_its_progress_is_skipped_on_resume() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T,
        "2_idx.up.sql",
        "CREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    );
    let gate = db.hold("LOCK TABLE t IN ROW EXCLUSIVE MODE").await;
    let row = kill_before_up_progress(&db, &project, &gate, "CREATE INDEX%").await;
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("already built by the interrupted run"),
        "{out}"
    );
    assert_eq!(
        db.column("SELECT indisvalid::text FROM pg_index WHERE indexrelid = to_regclass('t_id')")
            .await,
        ["true"]
    );
}

#[tokio::test]
async fn drop_index_concurrently_killed_before_its_progress_resumes() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T_INDEXED,
        "2_drop.up.sql",
        "DROP INDEX CONCURRENTLY t_id;\n",
    );
    let gate = db.hold("SELECT count(*) FROM t").await;
    let row = kill_before_up_progress(&db, &project, &gate, "DROP INDEX%").await;
    assert!(!db.has_table("t_id").await, "the drop finished");
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("already dropped by the interrupted run"),
        "{out}"
    );
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn drop_index_concurrently_killed_while_it_waits_resumes() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T_INDEXED,
        "2_drop.up.sql",
        "DROP INDEX CONCURRENTLY t_id;\n",
    );
    let gate = db.hold("SELECT count(*) FROM t").await;
    kill_while_it_waits(&db, &project, "up", &gate, "DROP INDEX%").await;
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(!db.has_table("t_id").await, "{out}");
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn reindex_concurrently_killed_while_it_waits_leaves_no_invalid_index() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T_INDEXED,
        "2_reindex.up.sql",
        "REINDEX INDEX CONCURRENTLY t_id;\n",
    );
    let gate = db.hold("LOCK TABLE t IN ROW EXCLUSIVE MODE").await;
    kill_while_it_waits(&db, &project, "up", &gate, "REINDEX%").await;
    assert_eq!(
        db.column("SELECT count(*)::text FROM pg_index WHERE NOT indisvalid")
            .await,
        ["1"],
        "a killed REINDEX CONCURRENTLY leaves an invalid _ccnew index"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("t_id_ccnew"), "{out}");
    assert_eq!(
        db.column("SELECT string_agg(indexrelid::regclass::text || ':' || indisvalid, ',') FROM pg_index WHERE indrelid = 't'::regclass")
            .await,
        ["t_id:true"],
        "{out}"
    );
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn reindex_concurrently_killed_before_its_progress_is_skipped_on_resume() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T_INDEXED,
        "2_reindex.up.sql",
        "REINDEX INDEX CONCURRENTLY t_id;\n",
    );
    let gate = db.hold("LOCK TABLE t IN ROW EXCLUSIVE MODE").await;
    let row = kill_before_up_progress(&db, &project, &gate, "REINDEX%").await;
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("already rebuilt by the interrupted run"),
        "{out}"
    );
    assert_migration_2(&db, "applied").await;
}

const PARTITIONS: &str = "CREATE TABLE p (id int) PARTITION BY RANGE (id);\nCREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (100);\nCREATE TABLE p2 PARTITION OF p FOR VALUES FROM (100) TO (200);\n";

#[tokio::test]
async fn detach_concurrently_killed_while_pending_is_finalized_on_resume() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        PARTITIONS,
        "2_detach.up.sql",
        "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;\n",
    );
    let gate = db.hold("SELECT count(*) FROM p").await;
    kill_while_it_waits(&db, &project, "up", &gate, "ALTER TABLE p DETACH%").await;
    assert_eq!(
        db.column("SELECT inhdetachpending::text FROM pg_inherits WHERE inhrelid = 'p1'::regclass")
            .await,
        ["true"],
        "a killed DETACH CONCURRENTLY leaves the partition pending detach"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("FINALIZE"), "{out}");
    assert_eq!(
        db.column("SELECT count(*)::text FROM pg_inherits WHERE inhrelid = 'p1'::regclass")
            .await,
        ["0"]
    );
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn detach_concurrently_killed_before_its_progress_is_skipped_on_resume() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        PARTITIONS,
        "2_detach.up.sql",
        "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;\n",
    );
    let gate = db.hold("SELECT count(*) FROM p").await;
    let row = kill_before_up_progress(&db, &project, &gate, "ALTER TABLE p DETACH%").await;
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("already detached by the interrupted run"),
        "{out}"
    );
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn a_statement_that_cannot_be_checked_is_not_rerun_and_repair_skips_it() {
    let db = TestDb::new().await;
    // A DO block that commits runs outside a transaction, and nothing in the
    // catalog says whether it ran.
    let project = window_project(
        &db,
        T,
        "2_do.up.sql",
        "DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; CREATE TABLE made (id int); END $$;\nCREATE TABLE after (id int);\n",
    );
    let gate = db.hold("LOCK TABLE t IN SHARE MODE").await;
    let row = kill_before_up_progress(&db, &project, &gate, "DO %").await;
    row.batch("COMMIT").await.unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(
        out.contains(
            "migration 2_do was interrupted at statement 1 (DO block with COMMIT or ROLLBACK)"
        ),
        "{out}"
    );
    assert!(
        out.contains("if it did, run `strata repair --skip-statement 2`"),
        "{out}"
    );
    assert_eq!(
        db.column("SELECT count(*)::text FROM t").await,
        ["1"],
        "not run again on a guess"
    );
    let out = expect_code(&project.run(&db, &["repair", "--skip-statement", "1"]), 2);
    assert!(out.contains("no statement to skip"), "{out}");
    let out = expect_code(&project.run(&db, &["repair", "--skip-statement", "2"]), 0);
    assert!(
        out.contains("as done without running it; the next `strata up` resumes at statement 2 (CREATE TABLE after (id int))"),
        "{out}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resuming at statement 2 of 2"), "{out}");
    assert_eq!(db.column("SELECT count(*)::text FROM t").await, ["1"]);
    assert!(db.has_table("after").await);
    assert_eq!(
        db.column("SELECT details->>'repair' FROM strata_events WHERE action = 'repair'")
            .await,
        ["skip-statement"]
    );
}

#[tokio::test]
async fn a_statement_that_cannot_be_checked_runs_again_when_repair_says_so() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T,
        "2_do.up.sql",
        "DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; CREATE TABLE made (id int); END $$;\n",
    );
    let gate = db.hold("LOCK TABLE t IN SHARE MODE").await;
    // Killed while the block waits: it did not take effect.
    kill_while_it_waits(&db, &project, "up", &gate, "DO %").await;
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(out.contains("strata repair --rerun-statement 2"), "{out}");
    let out = expect_code(&project.run(&db, &["repair", "--rerun-statement", "2"]), 0);
    assert!(out.contains("2_do: statement 1 (DO $$"), "{out}");
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(db.column("SELECT count(*)::text FROM t").await, ["1"]);
    assert!(db.has_table("made").await);
}

#[tokio::test]
async fn a_statement_whose_progress_write_fails_is_not_run_again() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id int);\n");
    project.config("lock_timeout = \"60s\"\npreflight_wait = \"0s\"\nstatement_timeout = \"1s\"\n");
    project.write(
        "2_do.up.sql",
        "DO $$ BEGIN INSERT INTO t VALUES (1); COMMIT; END $$;\nCREATE TABLE after (id int);\n",
    );
    let gate = db.hold("LOCK TABLE t IN SHARE MODE").await;
    let child = project.spawn(&db, &["up"]);
    wait_for_lock_wait(&db, "DO %").await;
    let row = db
        .hold("SELECT 1 FROM strata_migrations WHERE version = '2' FOR UPDATE")
        .await;
    gate.batch("COMMIT").await.unwrap();
    // The progress write times out (statement_timeout); the runner then
    // records the failure, and waits for the row again.
    wait_for_lock_wait(&db, "INSERT %strata_migrations%").await;
    row.batch("COMMIT").await.unwrap();
    let out = crate::support::text(&child.wait_with_output().unwrap());
    assert!(
        out.contains("statements 1 to 1 are applied and recorded"),
        "{out}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resuming at statement 2 of 2"), "{out}");
    assert_eq!(db.column("SELECT count(*)::text FROM t").await, ["1"]);
}

#[tokio::test]
async fn killed_before_the_applied_record_only_records_it() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        T,
        "2_fill.up.sql",
        "-- strata:no-transaction\nINSERT INTO t SELECT generate_series(1, 100);\nCREATE INDEX CONCURRENTLY t_id ON t (id);\n",
    );
    // The record of a finished migration also writes its event: holding the
    // event log (after the runner has prepared its statements, while it
    // waits for the gate) keeps it between its last progress write and the
    // record.
    let gate = db.hold("LOCK TABLE t IN SHARE MODE").await;
    let events = kill_in_window(
        &db,
        &project,
        "up",
        &gate,
        "INSERT INTO t%",
        "LOCK TABLE strata_events IN SHARE MODE",
        "WITH d AS%",
    )
    .await;
    events.batch("COMMIT").await.unwrap();
    assert_migration_2(&db, "running").await;
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains("interrupted after its last statement, before it was recorded as applied"),
        "{status}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("all 2 statements ran before the interruption; recording it as applied"),
        "{out}"
    );
    assert_eq!(db.column("SELECT count(*)::text FROM t").await, ["100"]);
    assert_migration_2(&db, "applied").await;
}

#[tokio::test]
async fn reindex_table_concurrently_killed_while_it_waits_leaves_no_invalid_index() {
    let db = TestDb::new().await;
    let project = window_project(
        &db,
        "CREATE TABLE t (id int, v int);\nCREATE INDEX t_id ON t (id);\nCREATE INDEX t_v ON t (v);\n",
        "2_reindex.up.sql",
        "REINDEX TABLE CONCURRENTLY t;\n",
    );
    let gate = db.hold("LOCK TABLE t IN ROW EXCLUSIVE MODE").await;
    kill_while_it_waits(&db, &project, "up", &gate, "REINDEX%").await;
    assert_eq!(
        db.column(
            "SELECT count(*)::text FROM pg_index WHERE NOT indisvalid AND indrelid = 't'::regclass"
        )
        .await,
        ["2"],
        "a killed REINDEX TABLE CONCURRENTLY leaves invalid _ccnew indexes"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT string_agg(indexrelid::regclass::text || ':' || indisvalid, ',' ORDER BY 1) FROM pg_index WHERE indrelid = 't'::regclass")
            .await,
        ["t_id:true,t_v:true"],
        "{out}"
    );
}
