//! What `strata up` watches while it runs: configured limits on blocked
//! application queries cancel the running statement and retry it later,
//! and index builds report their progress.

use std::time::{Duration, Instant};

use crate::support::{expect_code, text, Project, TestDb};

#[tokio::test]
async fn too_many_blocked_app_queries_cancel_the_statement_and_it_is_retried() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id int);\n");
    // A migration that holds its lock for a while: the app piles up behind it.
    project.write(
        "2_slow.up.sql",
        "LOCK TABLE t IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(1.5);\n",
    );
    project.config("max_blocked_queries = 2\nlock_retry_budget = \"20s\"\n");
    let child = project.spawn(&db, &["up"]);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut apps = Vec::new();
    for _ in 0..3 {
        let conn = db.connect().await;
        apps.push(tokio::spawn(async move {
            let started = Instant::now();
            conn.batch("SELECT count(*) FROM t").await.unwrap();
            started.elapsed()
        }));
    }
    for app in apps {
        let waited = app.await.unwrap();
        assert!(
            waited < Duration::from_millis(1200),
            "an application query waited {waited:?}: the watchdog should have let it through"
        );
    }
    let out = child.wait_with_output().unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("cancelled by the watchdog: 3 application queries were blocked behind this statement (max_blocked_queries = 2)"),
        "{all}"
    );
    let retries = db
        .column("SELECT details->>'lock_retries' FROM strata_events WHERE action = 'up' AND version = '2'")
        .await;
    assert!(retries[0].parse::<u32>().unwrap() >= 1, "{retries:?}");
}

#[tokio::test]
async fn index_builds_report_progress() {
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
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("progress: CREATE INDEX CONCURRENTLY big_payload_idx on big"),
        "{out}"
    );
    assert!(out.contains("building index"), "{out}");
}
