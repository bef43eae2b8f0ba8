//! `kill -9` of `strata up` in the middle of a long non-transactional
//! migration; the next `up` completes it correctly.

use std::process::{Command, Stdio};
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(project.path())
        .args(["--database-url", &db.url, "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
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
