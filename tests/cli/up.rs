//! `strata up`: applying, targets, dry runs, all-or-nothing transactions.

use crate::support::{expect_code, Project, TestDb};

fn three(project: &Project) {
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("1_a.down.sql", "DROP TABLE a;\n");
    project.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
    project.write("2_b.down.sql", "DROP TABLE b;\n");
    project.write("3_c.up.sql", "CREATE TABLE c (id int);\n");
    project.write("3_c.down.sql", "DROP TABLE c;\n");
}

#[tokio::test]
async fn applies_everything_and_records_history_and_events() {
    let db = TestDb::new().await;
    let project = Project::new();
    three(&project);
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(db.history().await.len(), 3);
    let events = db
        .column("SELECT action || ':' || version || ':' || success FROM strata_events ORDER BY id")
        .await;
    assert_eq!(events, ["up:1:true", "up:2:true", "up:3:true"]);
    let by = db
        .column("SELECT applied_by FROM strata_migrations LIMIT 1")
        .await;
    assert!(
        by[0].starts_with("postgres (") && by[0].contains('@'),
        "{by:?}"
    );
    let row = db.column("SELECT checksum_algorithm || ':' || length(checksum) || ':' || tool_version FROM strata_migrations LIMIT 1").await;
    assert_eq!(row, [format!("1:64:{}", env!("CARGO_PKG_VERSION"))]);
    // Nothing pending: a second run does nothing and says so.
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("up to date"), "{out}");
}

#[tokio::test]
async fn up_to_a_version_stops_there() {
    let db = TestDb::new().await;
    let project = Project::new();
    three(&project);
    expect_code(&project.run(&db, &["up", "--to", "2"]), 0);
    assert!(db.has_table("b").await && !db.has_table("c").await);
    let out = expect_code(&project.run(&db, &["up", "--to", "9"]), 2);
    assert!(out.contains("no migration has version 9"), "{out}");
}

#[tokio::test]
async fn dry_run_prints_the_exact_sql_and_changes_nothing() {
    let db = TestDb::new().await;
    let project = Project::new();
    three(&project);
    project.write(
        "4_idx.up.sql",
        "CREATE INDEX CONCURRENTLY c_id ON c (id);\n",
    );
    let before = db.schema_fingerprint().await;
    let out = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    for needle in [
        "SET client_connection_check_interval",
        "CREATE TABLE IF NOT EXISTS \"public\".\"strata_migrations\"",
        "BEGIN;\nSET LOCAL lock_timeout = '30ms';\nCREATE TABLE a (id int);\nINSERT INTO \"public\".\"strata_migrations\"",
        "SET lock_timeout = '600000ms';\nSET statement_timeout = 0;\nCREATE INDEX CONCURRENTLY c_id ON c (id);",
        "COMMIT;",
        "outside a transaction (CREATE INDEX CONCURRENTLY at line 1",
        "CREATE INDEX CONCURRENTLY c_id ON c (id);",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert_eq!(db.schema_fingerprint().await, before);
}

#[tokio::test]
async fn a_failing_transactional_migration_leaves_no_trace_but_an_event() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("2_bad.up.sql", "CREATE TABLE b (id int);\nINSERT INTO b VALUES (1);\n\nINSERT INTO missing_table VALUES (1);\n");
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(out.contains("2_bad.up.sql:4 (statement 3 of 3)"), "{out}");
    assert!(
        out.contains("relation \"missing_table\" does not exist"),
        "{out}"
    );
    assert!(out.contains("rolled back, nothing was applied"), "{out}");
    assert!(db.has_table("a").await, "the first migration stays applied");
    assert!(
        !db.has_table("b").await,
        "the failed migration left a table behind"
    );
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
    let failed = db
        .column(
            "SELECT version || ':' || (details->>'statement') FROM strata_events WHERE NOT success",
        )
        .await;
    assert_eq!(failed, ["2:3"]);
}

#[tokio::test]
async fn explicit_begin_commit_runs_as_written() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_tx.up.sql",
        "BEGIN;\nCREATE TABLE a (id int);\nCOMMIT;\nBEGIN;\nCREATE TABLE b (id int);\nCOMMIT;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("as written"), "{out}");
    assert!(db.has_table("a").await && db.has_table("b").await);
}

/// An unbalanced BEGIN is refused before anything runs, so exit 2 ("bad
/// input, nothing was run") is true: the statement before the BEGIN has
/// not run either, even when risk analysis does not block.
#[tokio::test]
async fn begin_without_commit_is_refused_before_anything_runs() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.config("block_on = \"never\"\n");
    project.write(
        "1_open.up.sql",
        "CREATE TABLE a (id int);\nBEGIN;\nCREATE TABLE b (id int);\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 2);
    assert!(out.contains("BEGIN without a matching COMMIT"), "{out}");
    assert!(out.contains("1_open.up.sql:2"), "{out}");
    assert!(
        !db.has_table("a").await,
        "a statement ran before exit 2:\n{out}"
    );
    assert!(db.history().await.is_empty());
}

#[tokio::test]
async fn dollar_quotes_strings_comments_and_begin_atomic_run_intact() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_f.up.sql",
        "-- a comment; with a semicolon\nCREATE TABLE t (s text);\n\
         CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$ BEGIN RETURN 1; END; $body$;\n\
         INSERT INTO t VALUES ('a;b'), ($$c;d$$); /* block; comment */\n\
         CREATE FUNCTION g() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT s FROM t ORDER BY s").await,
        ["a;b", "c;d"]
    );
    assert_eq!(db.column("SELECT g()::text").await, ["2"]);
}

#[tokio::test]
async fn custom_history_table_and_schema() {
    let db = TestDb::new().await;
    let project = Project::new();
    three(&project);
    project.config("history_schema = \"ops\"\nhistory_table = \"schema_history\"\n");
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT count(*)::text FROM ops.schema_history")
            .await,
        ["3"]
    );
    assert_eq!(
        db.column("SELECT count(*)::text FROM ops.strata_events")
            .await,
        ["3"]
    );
    assert!(!db.has_table("public.strata_migrations").await);
}

#[tokio::test]
async fn a_failed_history_write_rolls_back_the_migration() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    expect_code(&project.run(&db, &["up"]), 0);
    // From now on the history table refuses new rows.
    db.connect()
        .await
        .batch(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'history is read-only'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON strata_migrations FOR EACH ROW EXECUTE FUNCTION refuse();",
        )
        .await
        .unwrap();
    project.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(out.contains("history is read-only"), "{out}");
    assert!(
        !db.has_table("b").await,
        "the statements went back with the history row"
    );
    assert_eq!(db.history().await.len(), 1);
}
