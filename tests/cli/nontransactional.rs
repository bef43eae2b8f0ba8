//! Non-transactional migrations: detection, per-statement progress, and
//! resuming at the failed statement.

use crate::support::{expect_code, Project, TestDb};

#[tokio::test]
async fn three_concurrent_indexes_run_outside_a_transaction() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_t.up.sql", "CREATE TABLE t (a int, b int, c int);\n");
    project.write(
        "2_idx.up.sql",
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\nCREATE INDEX CONCURRENTLY t_c ON t (c);\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains(
            "note: 2_idx: runs outside a transaction: CREATE INDEX CONCURRENTLY at line 1"
        ),
        "{out}"
    );
    let valid = db
        .column("SELECT count(*)::text FROM pg_index WHERE indrelid = 't'::regclass AND indisvalid")
        .await;
    assert_eq!(valid, ["3"]);
    assert_eq!(
        db.history().await[1],
        ("2".to_owned(), "applied".to_owned())
    );
}

#[tokio::test]
async fn failure_at_statement_two_then_resume_at_statement_two() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_t.up.sql",
        "CREATE TABLE t (a int);\nINSERT INTO t VALUES (1), (1);\n",
    );
    let path = project.write(
        "2_fill.up.sql",
        "-- strata:no-transaction\nCREATE TABLE log (n int);\nCREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a);\nINSERT INTO log VALUES (3);\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(out.contains("2_fill.up.sql:3 (statement 2 of 3)"), "{out}");
    assert!(out.contains("statements 1 to 1 are applied"), "{out}");
    // The failed build's INVALID index is not left behind.
    assert!(
        out.contains("dropped the invalid index \"t_a\" left by the failed build"),
        "{out}"
    );
    assert_eq!(
        db.column("SELECT count(*)::text FROM pg_class WHERE relname = 't_a'")
            .await,
        ["0"]
    );
    let status = expect_code(&project.run(&db, &["status", "--exit-code"]), 3);
    assert!(
        status.contains("failed") && status.contains("stopped at statement 2 of 3"),
        "{status}"
    );
    // Another up without fixing the cause fails the same way and runs
    // statement 1 only once.
    expect_code(&project.run(&db, &["up"]), 1);
    // A crash mid-build (rather than a clean failure) leaves an INVALID index
    // behind; simulate one with a failing build of our own.
    let left = db
        .connect()
        .await
        .batch("CREATE UNIQUE INDEX CONCURRENTLY t_a ON t (a)")
        .await;
    assert!(left.is_err());
    assert_eq!(
        db.column("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_a'::regclass")
            .await,
        ["false"]
    );
    // Fix the data, then resume: statement 1 is not run again (it would fail:
    // the table exists), the invalid index left by the failed build is dropped
    // and built again.
    db.connect()
        .await
        .batch("DELETE FROM t WHERE ctid = (SELECT max(ctid) FROM t)")
        .await
        .unwrap();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resuming at statement 2 of 3"), "{out}");
    assert!(out.contains("dropping invalid index"), "{out}");
    assert_eq!(db.column("SELECT n::text FROM log").await, ["3"]);
    assert_eq!(
        db.column("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 't_a'::regclass")
            .await,
        ["true"]
    );
    assert_eq!(
        db.history().await[1],
        ("2".to_owned(), "applied".to_owned())
    );
    let events = db
        .column(
            "SELECT action || ':' || success FROM strata_events WHERE version = '2' ORDER BY id",
        )
        .await;
    assert_eq!(events, ["up:false", "up:false", "resume:true"]);
    drop(path);
}

#[tokio::test]
async fn resume_refuses_when_the_statements_already_run_changed() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_x.up.sql",
        "-- strata:no-transaction\nCREATE TABLE a (id int);\nSELECT 1/0;\n",
    );
    expect_code(&project.run(&db, &["up"]), 1);
    project.write(
        "1_x.up.sql",
        "-- strata:no-transaction\nCREATE TABLE a_renamed (id int);\nSELECT 1;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 2);
    assert!(
        out.contains("statements 1 to 1 of 1_x ran before it stopped, and they changed since"),
        "{out}"
    );
}

#[tokio::test]
async fn a_batched_do_block_with_commit_runs_outside_a_transaction() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_src.up.sql", "CREATE TABLE src (id bigint PRIMARY KEY);\nINSERT INTO src SELECT generate_series(1, 2500);\n");
    project.write(
        "2_copy.up.sql",
        "CREATE TABLE dst (id bigint PRIMARY KEY);\n\
         DO $$\nDECLARE last_id bigint := 0;\nBEGIN\n  LOOP\n    INSERT INTO dst SELECT id FROM src WHERE id > last_id ORDER BY id LIMIT 1000;\n    EXIT WHEN NOT FOUND;\n    SELECT max(id) INTO last_id FROM dst;\n    COMMIT;\n  END LOOP;\nEND\n$$;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains(
            "DO block with COMMIT or ROLLBACK at line 2 cannot run inside a transaction block"
        ),
        "{out}"
    );
    assert_eq!(db.column("SELECT count(*)::text FROM dst").await, ["2500"]);
}
