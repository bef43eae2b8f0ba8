//! The plan runner's hardening (`engine::phases`): an operation compiles
//! from its table as the earlier operations of its phase left it (facts
//! read right before its first action and kept for a resume), a `kill -9`
//! in such a phase resumes to the same end, plan actions run under the
//! watchdog, and `up`'s `block_on` refuses a risky plan like a risky SQL
//! migration.

use std::time::{Duration, Instant};

use crate::support::{expect_code, text, wait_for, wait_until_gone, Project, TestDb};

/// `users` with rows.
const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 300) g;";

/// One phase whose later operations need what its earlier ones create: a
/// table made by `sql`, then an index on it; a column, then NOT NULL on it.
const SAME_PHASE: &str = r#"
[[phase]]
name = "expand"
operations = [
  { op = "sql", up = "CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint, at timestamptz)", down = "DROP TABLE IF EXISTS events" },
  { op = "add_index", table = "events", columns = ["user_id"] },
  { op = "add_column", table = "users", column = "nick", type = "text" },
  { op = "backfill", table = "users", set = "nick = split_part(email, '@', 1)", where = "nick IS NULL" },
  { op = "set_not_null", table = "users", column = "nick" },
]
"#;

/// The same change written as one SQL migration.
const SAME_PHASE_NAIVE: &str =
    "CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint, at timestamptz);
CREATE INDEX events_user_id_idx ON events (user_id);
ALTER TABLE users ADD COLUMN nick text;
UPDATE users SET nick = split_part(email, '@', 1);
ALTER TABLE users ALTER COLUMN nick SET NOT NULL;";

/// The catalog after `SAME_PHASE_NAIVE` on a fresh database.
async fn naive_catalog() -> Vec<String> {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    project.write("2_naive.up.sql", SAME_PHASE_NAIVE);
    expect_code(&project.run(&db, &["up"]), 0);
    db.catalog().await
}

#[tokio::test]
async fn an_operation_compiles_from_what_the_earlier_operations_of_its_phase_made() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    expect_code(&project.run(&db, &["up"]), 0);
    let before = db.catalog().await;
    project.write("2_same_phase.plan.toml", SAME_PHASE);
    // The dry run compiles what it can from the catalog as it is now; the
    // NOT NULL on a column the phase has not added yet is compiled when it
    // runs.
    let dry = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert!(
        dry.contains(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_user_id_idx ON events (user_id);"
        ),
        "{dry}"
    );
    assert!(
        dry.contains("-- set_not_null (line 9): compiled when it runs"),
        "{dry}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("2_same_phase"), "{out}");
    assert_eq!(db.history().await.len(), 2);
    assert_eq!(db.catalog().await, naive_catalog().await);
    assert_eq!(
        db.column("SELECT count(*)::text FROM users WHERE nick = split_part(email, '@', 1)")
            .await,
        ["300"]
    );
    // Each operation's facts are kept: the table `sql` created is there
    // for `add_index`, the column for `set_not_null`.
    let facts = db
        .column(
            "SELECT (cursor->'facts'->'0:1'->>'name') || ' ' || (cursor->'facts'->'0:4'->'columns' @> '[{\"name\": \"nick\"}]')::text
             FROM strata_progress WHERE kind = 'plan' AND version = '2'",
        )
        .await;
    assert_eq!(facts, ["public.events true"]);
    // And the plan rolls back to the catalog before it.
    expect_code(&project.run(&db, &["rollback", "2"]), 0);
    assert_eq!(db.catalog().await, before);
}

#[tokio::test]
async fn a_kill_in_such_a_phase_resumes_to_the_same_end() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.config("[backfill]\nbatch_time = \"2ms\"\n");
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 200000) g;",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    project.write("2_same_phase.plan.toml", SAME_PHASE);
    let mut child = project.spawn(&db, &["up"]);
    // Killed in the backfill (action 4): the index on the table made in the
    // same phase is built, the NOT NULL not yet compiled.
    wait_for(
        &db,
        "SELECT (coalesce(max((cursor->>'batches')::bigint), 0) >= 5)::text FROM strata_progress WHERE kind = 'backfill'",
        "true",
    )
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_until_gone(&db, "%split_part%").await;
    let stored = db
        .column(
            "SELECT state || ' ' || (cursor->>'action') || ' ' || (SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(cursor->'facts') k)
             FROM strata_progress WHERE kind = 'plan' AND version = '2'",
        )
        .await;
    // Actions 1 (sql), 2 (index) and 3 (add_column) done; the backfill's
    // facts were stored before it started, set_not_null's not yet.
    assert_eq!(stored, ["running 3 0:1,0:2,0:3"]);
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resumes at action 4 of"), "{out}");
    assert!(out.contains("backfill of"), "{out}");
    assert_eq!(db.history().await.len(), 2);
    assert_eq!(
        db.column("SELECT count(*)::text FROM users WHERE nick IS DISTINCT FROM split_part(email, '@', 1)")
            .await,
        ["0"]
    );
    let catalog = db.catalog().await;
    assert!(
        catalog
            .iter()
            .any(|l| l.contains("users.nick text NOT NULL")),
        "{catalog:#?}"
    );
    assert!(
        catalog.iter().any(|l| l
            .contains("CREATE INDEX events_user_id_idx ON public.events USING btree (user_id)")),
        "{catalog:#?}"
    );
    assert!(
        !catalog.iter().any(|l| l.contains("INVALID")),
        "{catalog:#?}"
    );
}

#[tokio::test]
async fn a_plan_action_that_app_queries_would_queue_behind_is_cancelled_and_retried() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_t.up.sql", "CREATE TABLE t (id bigint PRIMARY KEY);");
    expect_code(&project.run(&db, &["up"]), 0);
    // lock_timeout effectively off: only the watchdog can help.
    project.config("lock_timeout = \"10m\"\nwatchdog = \"100ms\"\npreflight_wait = \"0s\"\n");
    project.write(
        "2_note.plan.toml",
        r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "t", column = "note", type = "text" },
]
"#,
    );
    let blocker = db.connect().await;
    blocker.batch("BEGIN; SELECT * FROM t;").await.unwrap();
    let child = project.spawn(&db, &["up"]);
    // Let the plan's ALTER reach the lock queue, then send application
    // reads that would queue behind it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let app = db.connect().await;
    for _ in 0..3 {
        let started = Instant::now();
        app.batch("SELECT count(*) FROM t").await.unwrap();
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(1500),
            "an application read waited {waited:?} behind the plan"
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
    assert_eq!(db.history().await.len(), 2);
}

#[tokio::test]
async fn up_refuses_a_plan_with_a_high_finding_like_a_sql_migration() {
    let db = TestDb::new().await;
    let project = Project::new();
    // Over 1,000 rows: the finding keeps its risk.
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, legacy text, old text);
INSERT INTO users SELECT g, 'user' || g || '@example.com', 'x', 'y' FROM generate_series(1, 2000) g;
ANALYZE users;",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    // A column dropped by hand-written SQL in a phase with no gate before
    // it: HIGH (ban-drop-column), and `block_on` is HIGH by default.
    let plan = r#"
[[phase]]
name = "expand"
operations = [
  { op = "sql", up = "ALTER TABLE users DROP COLUMN legacy", down = "ALTER TABLE users ADD COLUMN legacy text" },
]
"#;
    project.write("2_drop.plan.toml", plan);
    let before = db.schema_fingerprint().await;
    let columns = "SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 'users'";
    let out = expect_code(&project.run(&db, &["up"]), 3);
    assert!(out.contains("2_drop.plan.toml:5"), "{out}");
    assert!(out.contains("ban-drop-column"), "{out}");
    assert_eq!(db.schema_fingerprint().await, before);
    assert_eq!(db.column(columns).await, ["id,email,legacy,old"]);
    assert_eq!(db.history().await.len(), 1);
    // With block_on off, the same plan runs.
    project.config("block_on = \"never\"\n");
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(db.column(columns).await, ["id,email,old"]);

    // `drop_column` after a deploy gate, with the backup the engine takes
    // first, is the safe path the finding asks for: not refused.
    project.config("");
    project.write(
        "3_contract.plan.toml",
        r#"
[[phase]]
name = "stop using old"
operations = [
  { op = "validate", sql = "SELECT true" },
]
gate = { deploy = "app v3, which no longer reads users.old" }

[[phase]]
name = "contract"
operations = [
  { op = "drop_column", table = "users", column = "old" },
]
"#,
    );
    let out = expect_code(&project.run(&db, &["up", "--through-gates"]), 0);
    assert!(out.contains("3_contract"), "{out}");
    assert_eq!(db.column(columns).await, ["id,email"]);
    assert_eq!(db.history().await.len(), 3);
}
