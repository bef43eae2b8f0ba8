//! `-- strata:backfill` in a migration file: the statement below it runs as
//! a batched, resumable backfill inside `strata up`, in every layout.

use crate::support::{expect_code, wait_for, wait_until_gone, Project, TestDb};

/// A checksum of a table's rows in key order, to compare two ways of
/// making the same change.
async fn checksum(db: &TestDb, table: &str) -> String {
    db.column(&format!(
        "SELECT md5(coalesce(string_agg(t::text, ',' ORDER BY id), '')) FROM {table} t"
    ))
    .await
    .remove(0)
}

/// `items` with `rows` rows, a copy `expected` of it, and `log`, applied
/// as migration 1.
fn items(db: &TestDb, rows: i64) -> Project {
    Project::applied(
        db,
        &format!(
            "CREATE TABLE items (id bigint PRIMARY KEY, n int NOT NULL, email text, note text);
INSERT INTO items SELECT g, g % 7, 'User' || g || '@Example.org', NULL FROM generate_series(1, {rows}) g;
CREATE TABLE expected AS SELECT * FROM items;
CREATE TABLE log (what text);
CREATE TABLE archive (id bigint PRIMARY KEY, email text);
CREATE TABLE expected_archive (id bigint PRIMARY KEY, email text);
"
        ),
    )
}

#[tokio::test]
async fn a_backfill_gives_the_plain_statements_result() {
    let db = TestDb::new().await;
    let project = items(&db, 5_000);
    project.write(
        "2_backfill.up.sql",
        "INSERT INTO log VALUES ('before');
-- strata:backfill
UPDATE items SET n = n + 1, email = lower(email);
-- strata:backfill
DELETE FROM items WHERE n = 3;
-- strata:backfill
INSERT INTO archive (id, email) SELECT id, email FROM items WHERE n = 1;
INSERT INTO log VALUES ('after');
",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("backfill done"), "{out}");
    // The whole-table UPDATE is a backfill: not flagged, not estimated.
    assert!(!out.contains("ban-unbatched-update-delete"), "{out}");
    // The same statements, plainly.
    let conn = db.connect().await;
    conn.batch(
        "UPDATE expected SET n = n + 1, email = lower(email);
         DELETE FROM expected WHERE n = 3;
         INSERT INTO expected_archive (id, email) SELECT id, email FROM expected WHERE n = 1;",
    )
    .await
    .unwrap();
    assert_eq!(
        checksum(&db, "items").await,
        checksum(&db, "expected").await
    );
    assert_eq!(
        checksum(&db, "archive").await,
        checksum(&db, "expected_archive").await
    );
    assert_ne!(db.column("SELECT count(*)::text FROM archive").await, ["0"]);
    assert_eq!(
        db.column("SELECT string_agg(what, ',') FROM log").await,
        ["before,after"]
    );
    assert_eq!(
        db.history().await[1],
        ("2".to_owned(), "applied".to_owned())
    );
}

#[tokio::test]
async fn kill_9_during_the_backfill_then_up_resumes_from_its_cursor() {
    let db = TestDb::new().await;
    let project = items(&db, 20_000);
    // Batches wait for the gate's row lock instead of retrying.
    project.config(
        "lock_timeout = \"60s\"\npreflight_wait = \"0s\"\n[backfill]\nbatch_time = \"5ms\"\n",
    );
    project.write(
        "2_backfill.up.sql",
        "INSERT INTO log VALUES ('before');
-- strata:backfill
UPDATE items SET n = n + 1;
INSERT INTO log VALUES ('after');
",
    );
    // A row near the end is locked: the batches before it commit, the one
    // that reaches it waits.
    let gate = db
        .hold("SELECT 1 FROM items WHERE id = 19000 FOR UPDATE")
        .await;
    let mut child = project.spawn(&db, &["up"]);
    crate::support::wait_for_lock_wait(&db, "%UPDATE%items%").await;
    let batches = db
        .column("SELECT (cursor->>'batches') FROM strata_progress WHERE kind = 'backfill'")
        .await;
    assert!(
        batches
            .first()
            .and_then(|b| b.parse::<u64>().ok())
            .unwrap_or(0)
            >= 1,
        "no batch committed before the gate: {batches:?}"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    gate.batch("ROLLBACK").await.unwrap();
    wait_until_gone(&db, "%UPDATE%items%").await;
    // Stopped at the backfill, the statement before it recorded.
    let status = project.run(&db, &["status"]);
    let status = crate::support::text(&status);
    assert!(status.contains("statement 2 of 3"), "{status}");

    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resumes after"), "{out}");
    db.connect()
        .await
        .batch("UPDATE expected SET n = n + 1")
        .await
        .unwrap();
    assert_eq!(
        checksum(&db, "items").await,
        checksum(&db, "expected").await
    );
    assert_eq!(
        db.column("SELECT string_agg(what, ',') FROM log").await,
        ["before,after"]
    );
    wait_for(
        &db,
        "SELECT state FROM strata_migrations WHERE version = '2'",
        "applied",
    )
    .await;
}

#[tokio::test]
async fn a_misplaced_directive_is_refused_at_its_line_and_nothing_runs() {
    let db = TestDb::new().await;
    let project = items(&db, 10);
    for (file, text, line, words) in [
        (
            "2_index.up.sql",
            "INSERT INTO log VALUES ('x');\n-- strata:backfill\nCREATE INDEX items_n ON items (n);\n",
            2,
            "the statement at line 3 is CREATE INDEX",
        ),
        (
            "2_end.up.sql",
            "INSERT INTO log VALUES ('x');\n\n-- strata:backfill\n",
            3,
            "no statement below it",
        ),
        (
            "2_returning.up.sql",
            "INSERT INTO log VALUES ('x');\n-- strata:backfill\nUPDATE items SET n = 0 RETURNING id;\n",
            3,
            "RETURNING",
        ),
    ] {
        let path = project.write(file, text);
        let before = db.schema_fingerprint().await;
        let out = expect_code(&project.run(&db, &["up"]), 2);
        let at = format!("{}:{line}", path.display());
        assert!(out.contains(&at), "{file}: no {at}\n{out}");
        assert!(out.contains(words), "{file}\n{out}");
        assert_eq!(db.schema_fingerprint().await, before);
        assert_eq!(db.column("SELECT count(*)::text FROM log").await, ["0"]);
        let out = expect_code(&project.run(&db, &["validate"]), 2);
        assert!(out.contains(&format!("{file}:{line}")), "{out}");
        std::fs::remove_file(path).unwrap();
    }
}

#[tokio::test]
async fn the_dry_run_shows_the_batched_plan() {
    let db = TestDb::new().await;
    let project = items(&db, 3_000);
    db.connect().await.batch("ANALYZE items").await.unwrap();
    project.write(
        "2_backfill.up.sql",
        "-- strata:backfill\nUPDATE items SET note = 'x' WHERE note IS NULL;\n",
    );
    let out = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert!(out.contains("-- strata:backfill, run in batches:"), "{out}");
    assert!(out.contains("--   key: id ("), "{out}");
    assert!(
        out.contains("--   upper bound, fixed when it starts: 3000"),
        "{out}"
    );
    assert!(out.contains("--   first batch: id <= "), "{out}");
    assert!(out.contains("about 3000 rows of"), "{out}");
    assert!(out.contains("batch(es) of 50 ms"), "{out}");
    // Nothing ran.
    assert_eq!(
        db.column("SELECT count(*)::text FROM items WHERE note IS NOT NULL")
            .await,
        ["0"]
    );
}

#[tokio::test]
async fn lint_suggests_the_directive_and_the_rewrite_is_clean() {
    let db = TestDb::new().await;
    let project = items(&db, 10);
    let path = project.write("2_fill.up.sql", "UPDATE items SET note = 'x';\n");
    let out = expect_code(&project.run(&db, &["lint", "--fail-on", "low"]), 3);
    assert!(out.contains("ban-unbatched-update-delete"), "{out}");
    let fix: Vec<&str> = out
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != "-- strata:backfill")
        .take(2)
        .collect();
    assert_eq!(
        fix,
        ["-- strata:backfill", "UPDATE items SET note = 'x';"],
        "{out}"
    );
    std::fs::write(&path, "-- strata:backfill\nUPDATE items SET note = 'x';\n").unwrap();
    let out = expect_code(&project.run(&db, &["lint", "--fail-on", "low"]), 0);
    assert!(!out.contains("ban-unbatched-update-delete"), "{out}");
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT count(*)::text FROM items WHERE note = 'x'")
            .await,
        ["10"]
    );
}

/// Each layout's loader attaches the directive: applied on the layout's
/// fixture, a backfill in a new migration of that layout changes the rows.
async fn in_layout(fixture: &str, file: &str, header: &str) {
    let db = TestDb::new().await;
    let project = Project::from_fixture(&format!("formats/{fixture}"));
    expect_code(&project.run(&db, &["up"]), 0);
    project.write(
        file,
        &format!(
            "{header}INSERT INTO accounts (id, email) SELECT g, 'User' || g || '@Example.org' FROM generate_series(1000, 3999) g;
-- strata:backfill
UPDATE accounts SET email = lower(email) WHERE email <> lower(email);
"
        ),
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("backfill done: 3000 rows changed"),
        "{fixture}: {out}"
    );
    assert_eq!(
        db.column("SELECT count(*)::text FROM accounts WHERE email <> lower(email)")
            .await,
        ["0"],
        "{fixture}"
    );
}

#[tokio::test]
async fn the_directive_works_in_goose_files() {
    in_layout("goose", "00020_backfill.sql", "-- +goose Up\n").await;
}

#[tokio::test]
async fn the_directive_works_in_golang_migrate_files() {
    in_layout("native", "20_backfill.up.sql", "").await;
}

#[tokio::test]
async fn the_directive_works_in_flyway_files() {
    in_layout("flyway", "V2__backfill.sql", "").await;
}

#[tokio::test]
async fn the_directive_works_in_diesel_folders() {
    in_layout("diesel", "2023-01-04-000000_backfill/up.sql", "").await;
}
