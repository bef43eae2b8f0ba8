//! `kill -9` of `strata up` in the middle of a long non-transactional
//! migration; the next `up` completes it correctly.

use std::time::{Duration, Instant};

use crate::support::{expect_code, Project, TestDb};

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

/// Waits until `sql` (run on `db`) returns `want`, for at most 30 s.
async fn wait_for(db: &TestDb, sql: &str, want: &str) {
    let started = Instant::now();
    loop {
        if db.column(sql).await.first().map(String::as_str) == Some(want) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {sql} = {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
    let blocker = db.connect().await;
    blocker.batch("BEGIN; SELECT * FROM t;").await.unwrap();
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
