//! Lock-safe execution: every lock-taking statement runs under a short
//! lock_timeout and is retried with backoff, so Strata never sits in a lock
//! queue in front of application queries.

use std::time::{Duration, Instant};

use crate::support::{expect_code, text, Project, TestDb};

#[tokio::test]
async fn retries_on_lock_timeout_until_the_blocker_commits() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE \"Orders\" (id bigint PRIMARY KEY);\n");
    project.write(
        "2_col.up.sql",
        "ALTER TABLE \"Orders\" ADD COLUMN note text;\n",
    );
    // Pre-flight would wait for the blocker; this test is about the retries.
    project.config("preflight_wait = \"0s\"\n");

    // An application transaction that holds a lock on t.
    let blocker = db.connect().await;
    blocker
        .batch("SET application_name = 'app-blocker'; BEGIN; SELECT * FROM \"Orders\";")
        .await
        .unwrap();
    let child = project.spawn(&db, &["up"]);
    // While strata retries, application queries are never queued behind it
    // for longer than lock_timeout: a fresh query on t answers quickly.
    let app = db.connect().await;
    // Strata has retried once its backend waits for the lock a second time:
    // the first wait timed out, and its message (which names the holder,
    // still holding) was written before the retry. The waits are
    // lock_timeout long, so look often.
    let look = db.connect().await;
    let since = Instant::now();
    let (mut waits, mut was_waiting) = (0, false);
    loop {
        let waiting = look
            .query(
                "SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE NOT l.granted AND l.relation = to_regclass('\"Orders\"')
                   AND a.application_name = 'strata'",
                &[],
            )
            .await
            .unwrap();
        let is_waiting = !waiting.is_empty();
        if is_waiting && !was_waiting {
            waits += 1;
            if waits == 2 {
                break;
            }
        }
        was_waiting = is_waiting;
        assert!(
            since.elapsed() < Duration::from_secs(60),
            "strata never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = Instant::now();
    app.batch("SET lock_timeout = '2s'; SELECT count(*) FROM \"Orders\";")
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "app query waited {:?}",
        started.elapsed()
    );
    blocker.batch("COMMIT").await.unwrap();
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("could not get its lock within lock_timeout (30 ms)"),
        "{all}"
    );
    assert!(
        // The holder is found for a mixed-case name, and named as SQL.
        all.contains("\"Orders\" held by pid")
            && all.contains("app-blocker")
            && all.contains("SELECT * FROM \"Orders\""),
        "{all}"
    );
    assert!(all.contains("retry 1 in"), "{all}");
    let retries = db
        .column("SELECT details->>'lock_retries' FROM strata_events WHERE version = '2'")
        .await;
    assert!(retries[0].parse::<u32>().unwrap() >= 1, "{retries:?}");
}

#[tokio::test]
async fn gives_up_after_the_retry_budget_and_changes_nothing() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id bigint PRIMARY KEY);\n");
    project.write("2_col.up.sql", "ALTER TABLE t ADD COLUMN note text;\n");
    project.config(
        "lock_timeout = \"20ms\"\nlock_retry_budget = \"600ms\"\npreflight_wait = \"0s\"\n",
    );
    let blocker = db.connect().await;
    blocker
        .batch("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE;")
        .await
        .unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(
        out.contains("canceling statement due to lock timeout")
            && out.contains("rolled back, nothing was applied"),
        "{out}"
    );
    blocker.batch("COMMIT").await.unwrap();
    assert_eq!(
        db.column("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 't'")
            .await,
        ["1"]
    );
    assert_eq!(db.history().await.len(), 1);
}

#[tokio::test]
async fn the_watchdog_cancels_a_waiting_statement_that_application_queries_queue_behind() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id bigint PRIMARY KEY);\n");
    project.write("2_col.up.sql", "ALTER TABLE t ADD COLUMN note text;\n");
    // lock_timeout effectively off: only the watchdog can help.
    project.config("lock_timeout = \"10m\"\nwatchdog = \"100ms\"\npreflight_wait = \"0s\"\n");
    let blocker = db.connect().await;
    blocker.batch("BEGIN; SELECT * FROM t;").await.unwrap();
    let child = project.spawn(&db, &["up"]);
    // Let strata's ALTER reach the lock queue, then send application reads
    // that would queue behind it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let app = db.connect().await;
    for _ in 0..3 {
        let started = Instant::now();
        app.batch("SELECT count(*) FROM t").await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(1500),
            "an application read waited {waited:?} behind the migration"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    blocker.batch("COMMIT").await.unwrap();
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("cancelled by the watchdog: 1 session(s) were queued behind this statement"),
        "{all}"
    );
    assert_eq!(
        db.column("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 't'")
            .await,
        ["2"]
    );
}
