//! Multi-phase plans (`<version>_<name>.plan.toml`, `engine::phases`): gates
//! stop `up` until passed, later migrations wait behind a plan unless it is
//! independent, a kill resumes, a failed validation stops with its rows,
//! and `rollback`/`abort` give back the exact previous catalog. The plans
//! use the operations compiled in `plan/ops/` by the runner's own files:
//! add_column, sql, validate, backfill, drop_column.

use std::time::Duration;

use crate::support::{expect_code, text, wait_for, wait_until_gone, Project, TestDb};

/// `users` with rows, the table every plan here changes.
const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL, legacy text);
INSERT INTO users SELECT g, 'User' || g || '@Example.com', 'x' FROM generate_series(1, 500) g;";

/// A plan: an expand phase behind a deploy gate, then a backfill and its
/// validation.
const EMAIL_LOWER: &str = r#"
description = "users.email_lower, filled from email"

[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "email_lower", type = "text" },
]
gate = { deploy = "app v2, which writes email_lower" }

[[phase]]
name = "migrate"
operations = [
  { op = "backfill", table = "users", set = "email_lower = lower(email)", where = "email_lower IS NULL" },
  { op = "validate", sql = "SELECT id, email FROM users WHERE email_lower IS DISTINCT FROM lower(email)", message = "rows not backfilled" },
]
"#;

/// Rows of `sql`'s first column.
async fn col(db: &TestDb, sql: &str) -> Vec<String> {
    db.column(sql).await
}

/// The plan's progress row state, or "none".
async fn plan_state(db: &TestDb, version: &str) -> String {
    if !db.has_table("public.strata_progress").await {
        return "none".into();
    }
    col(
        db,
        &format!("SELECT coalesce((SELECT state || ' ' || done FROM strata_progress WHERE kind = 'plan' AND version = '{version}'), 'none')"),
    )
    .await
    .remove(0)
}

#[tokio::test]
async fn a_deploy_gate_stops_up_and_later_migrations_until_continue() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    project.write("2_email_lower.plan.toml", EMAIL_LOWER);
    project.write("3_after.up.sql", "CREATE TABLE after_plan (id int);");

    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("2_email_lower: phase 1 of 2 done; waiting for: deploy: app v2, which writes email_lower"),
        "{out}"
    );
    assert!(
        out.contains("1 later migration(s) wait for plan 2_email_lower (not independent): 3_after"),
        "{out}"
    );
    assert_eq!(db.history().await, [("1".into(), "applied".into())]);
    assert!(!db.has_table("public.after_plan").await);
    assert_eq!(plan_state(&db, "2").await, "waiting 1");
    // The column is there, not yet filled.
    assert_eq!(
        col(
            &db,
            "SELECT count(*)::text FROM users WHERE email_lower IS NULL"
        )
        .await,
        ["500"]
    );

    // Running `up` again does not pass the gate.
    let again = expect_code(&project.run(&db, &["up"]), 0);
    assert!(again.contains("waiting for: deploy"), "{again}");
    assert_eq!(plan_state(&db, "2").await, "waiting 1");

    // status and status --json show the waiting state.
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains("phase 1 of 2 done; waiting for: deploy: app v2, which writes email_lower"),
        "{status}"
    );
    let json = project.run(&db, &["--json", "status"]);
    let parsed: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("status --json is JSON");
    let plan = parsed
        .as_array()
        .and_then(|a| a.iter().find(|m| m["version"] == "2"))
        .expect("the plan is listed")
        .clone();
    assert_eq!(plan["state"], "pending", "{plan}");
    assert_eq!(plan["plan"]["state"], "waiting", "{plan}");
    assert_eq!(plan["plan"]["phases_done"], 1, "{plan}");
    assert_eq!(plan["plan"]["phases"], 2, "{plan}");
    assert_eq!(
        plan["plan"]["gate"], "deploy: app v2, which writes email_lower",
        "{plan}"
    );

    // The dry run shows the remaining phase's SQL and changes nothing.
    let dry = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert!(dry.contains("-- phase 2 of 2: migrate"), "{dry}");
    assert!(
        dry.contains("UPDATE users SET email_lower = lower(email) WHERE email_lower IS NULL"),
        "{dry}"
    );
    assert_eq!(plan_state(&db, "2").await, "waiting 1");

    // A plan file edited between its phases is refused, and nothing runs.
    let path = project.migrations().join("2_email_lower.plan.toml");
    std::fs::write(
        &path,
        EMAIL_LOWER.replace("rows not backfilled", "rows left"),
    )
    .unwrap();
    let out = expect_code(&project.run(&db, &["up", "--continue", "2"]), 2);
    assert!(
        out.contains("plan 2_email_lower changed since its first phase ran"),
        "{out}"
    );
    assert_eq!(plan_state(&db, "2").await, "waiting 1");
    std::fs::write(&path, EMAIL_LOWER).unwrap();

    let done = expect_code(&project.run(&db, &["up", "--continue", "2"]), 0);
    assert!(done.contains("gate after phase 1 passed"), "{done}");
    assert_eq!(
        db.history().await,
        [
            ("1".into(), "applied".into()),
            ("2".into(), "applied".into()),
            ("3".into(), "applied".into())
        ]
    );
    assert_eq!(
        col(
            &db,
            "SELECT count(*)::text FROM users WHERE email_lower = lower(email)"
        )
        .await,
        ["500"]
    );
    assert_eq!(plan_state(&db, "2").await, "done 2");
    // Who passed the gate, and when, is in the audit log.
    assert_eq!(
        col(&db, "SELECT string_agg(action, ',' ORDER BY id) FROM strata_events WHERE version = '2' AND action LIKE 'plan-%'").await,
        ["plan-phase-started,plan-phase-done,plan-gate-passed,plan-phase-started,plan-phase-done"]
    );
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(status.contains("3 applied, 0 pending"), "{status}");
}

#[tokio::test]
async fn through_gates_runs_every_phase_and_independent_plans_do_not_block() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    project.write(
        "2_email_lower.plan.toml",
        &format!("independent = true\n{EMAIL_LOWER}"),
    );
    project.write("3_after.up.sql", "CREATE TABLE after_plan (id int);");
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("waiting for: deploy"), "{out}");
    assert!(!out.contains("wait for plan"), "{out}");
    // The later migration ran behind the independent plan.
    assert!(db.has_table("public.after_plan").await);
    assert_eq!(plan_state(&db, "2").await, "waiting 1");

    let db2 = TestDb::new().await;
    let project2 = Project::new();
    project2.write("1_users.up.sql", USERS);
    project2.write("2_email_lower.plan.toml", EMAIL_LOWER);
    project2.write("3_after.up.sql", "CREATE TABLE after_plan (id int);");
    expect_code(&project2.run(&db2, &["up", "--through-gates"]), 0);
    assert_eq!(db2.history().await.len(), 3);
    assert!(db2.has_table("public.after_plan").await);
    // Both end in the same catalog.
    expect_code(&project.run(&db, &["up", "--continue", "2"]), 0);
    assert_eq!(db.catalog().await, db2.catalog().await);
}

#[tokio::test]
async fn a_wait_gate_passes_once_its_time_has_elapsed() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    project.write(
        "2_email_lower.plan.toml",
        &EMAIL_LOWER.replace(
            "gate = { deploy = \"app v2, which writes email_lower\" }",
            "gate = { wait = \"2s\" }",
        ),
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("waiting for: wait 2s"), "{out}");
    let early = expect_code(&project.run(&db, &["up"]), 0);
    assert!(early.contains("waiting for: wait 2s"), "{early}");
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("time elapsed"), "{out}");
    assert_eq!(db.history().await.len(), 2);
}

#[tokio::test]
async fn a_failed_validation_shows_its_rows_and_abort_cleans_up() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    expect_code(&project.run(&db, &["up"]), 0);
    let before = db.catalog().await;
    project.write(
        "2_check.plan.toml",
        r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "nick", type = "text" },
  { op = "sql", up = "CREATE TABLE nick_audit (id bigint); CREATE INDEX CONCURRENTLY users_nick ON users (nick)", down = "DROP INDEX CONCURRENTLY IF EXISTS users_nick; DROP TABLE IF EXISTS nick_audit" },
  { op = "validate", sql = "SELECT id, legacy FROM users WHERE id % 100 = 0 ORDER BY id", message = "some users are special" },
]
"#,
    );
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(
        out.contains("validation failed: some users are special"),
        "{out}"
    );
    assert!(out.contains(r#"{"id":100,"legacy":"x"}"#), "{out}");
    assert!(out.contains(r#"{"id":500,"legacy":"x"}"#), "{out}");
    assert!(out.contains("action 4 of 4"), "{out}");
    assert_eq!(plan_state(&db, "2").await, "failed 0");
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains("failed in phase 1 of 1 `expand` at action 4"),
        "{status}"
    );
    // What ran before the validation stays until the plan is aborted.
    assert_ne!(db.catalog().await, before);

    let out = expect_code(&project.run(&db, &["abort", "2"]), 0);
    assert_eq!(db.catalog().await, before, "{out}");
    assert_eq!(plan_state(&db, "2").await, "none");
    assert_eq!(
        col(&db, "SELECT count(*)::text FROM strata_events WHERE action = 'plan-aborted' AND version = '2'").await,
        ["1"]
    );
}

#[tokio::test]
async fn rollback_reverses_phase_by_phase_to_the_exact_previous_catalog() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    expect_code(&project.run(&db, &["up"]), 0);
    let c0 = db.catalog().await;
    project.write(
        "2_nick.plan.toml",
        r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "nick", type = "text", default = "''" },
]
gate = { deploy = "app v2 writes nick" }

[[phase]]
name = "index"
operations = [
  { op = "sql", up = "CREATE INDEX CONCURRENTLY users_nick ON users (nick); CREATE TABLE nick_log (id bigint, at timestamptz)", down = "DROP TABLE IF EXISTS nick_log; DROP INDEX CONCURRENTLY IF EXISTS users_nick" },
]
"#,
    );
    expect_code(&project.run(&db, &["up"]), 0);
    let c1 = db.catalog().await;
    assert_ne!(c1, c0);
    expect_code(&project.run(&db, &["up", "--continue", "2"]), 0);
    let c2 = db.catalog().await;
    assert_ne!(c2, c1);
    assert_eq!(db.history().await.len(), 2);

    let out = expect_code(&project.run(&db, &["rollback", "2", "--phase", "2"]), 0);
    assert_eq!(db.catalog().await, c1, "{out}");
    assert_eq!(db.history().await.len(), 1);
    assert_eq!(plan_state(&db, "2").await, "waiting 1");
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains("phase 1 of 2 done; waiting for: deploy"),
        "{status}"
    );

    // `down` does not skip over a plan: it says how to reverse it.
    expect_code(&project.run(&db, &["up", "--continue", "2"]), 0);
    let out = expect_code(&project.run(&db, &["down"]), 2);
    assert!(out.contains("reverse it with `strata rollback 2`"), "{out}");
    assert_eq!(db.catalog().await, c2);
    expect_code(&project.run(&db, &["rollback", "2", "--phase", "2"]), 0);

    expect_code(&project.run(&db, &["rollback", "2"]), 0);
    assert_eq!(db.catalog().await, c0);
    assert_eq!(plan_state(&db, "2").await, "none");

    // And forward again, in one go.
    expect_code(&project.run(&db, &["up", "--through-gates"]), 0);
    assert_eq!(db.catalog().await, c2);
}

#[tokio::test]
async fn rollback_of_a_phase_that_dropped_data_needs_the_backup_taken_before_it() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    expect_code(&project.run(&db, &["up"]), 0);
    let c0 = db.catalog().await;
    let rows = col(
        &db,
        "SELECT md5(string_agg(id || legacy, ',' ORDER BY id)) FROM users",
    )
    .await;
    project.write(
        "2_drop_legacy.plan.toml",
        r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "nick", type = "text" },
]
gate = { deploy = "app v2 no longer reads legacy" }

[[phase]]
name = "contract"
operations = [
  { op = "drop_column", table = "users", column = "legacy" },
]
"#,
    );
    expect_code(&project.run(&db, &["up", "--through-gates"]), 0);
    assert_eq!(db.history().await.len(), 2);
    let after = db.catalog().await;
    let out = expect_code(&project.run(&db, &["rollback", "2"]), 2);
    assert!(
        out.contains("users.legacy was dropped and its data is gone"),
        "{out}"
    );
    assert!(out.contains("--from-backup"), "{out}");
    assert_eq!(db.catalog().await, after);
    assert_eq!(db.history().await.len(), 2);
    // Reversing only the phase that dropped the column is refused too.
    expect_code(&project.run(&db, &["rollback", "2", "--phase", "2"]), 2);
    assert_eq!(db.catalog().await, after);
    // Another file is not that backup.
    let other = project.path().join("other.dump");
    std::fs::write(&other, "not a dump").unwrap();
    let out = expect_code(
        &project.run(
            &db,
            &["rollback", "2", "--from-backup", other.to_str().unwrap()],
        ),
        2,
    );
    assert!(
        out.contains("not the backup taken before the phase"),
        "{out}"
    );
    // The backup taken before the contract phase brings the column back
    // with its data.
    let backup = col(
        &db,
        "SELECT cursor->'backups'->0->>1 FROM strata_progress WHERE kind = 'plan'",
    )
    .await;
    let out = expect_code(
        &project.run(&db, &["rollback", "2", "--from-backup", &backup[0]]),
        0,
    );
    assert_eq!(db.catalog().await, c0, "{out}");
    assert_eq!(
        col(
            &db,
            "SELECT md5(string_agg(id || legacy, ',' ORDER BY id)) FROM users"
        )
        .await,
        rows
    );
    assert_eq!(db.history().await.len(), 1);
}

#[tokio::test]
async fn a_kill_during_a_phase_backfill_resumes_to_the_one_shot_result() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.config("[backfill]\nbatch_time = \"2ms\"\n");
    project.write(
        "1_t.up.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, n int);
INSERT INTO t SELECT g, g FROM generate_series(1, 200000) g;",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    // The one-shot result, on a copy.
    let conn = db.connect().await;
    conn.batch("CREATE TABLE t_ref AS SELECT * FROM t; ALTER TABLE t_ref ADD COLUMN m int; UPDATE t_ref SET m = n * 2 WHERE n % 3 <> 0")
        .await
        .unwrap();
    let sum = |table: &str| {
        format!("SELECT md5(string_agg(id || ':' || coalesce(m::text, '-'), ',' ORDER BY id)) FROM {table}")
    };
    let want = col(&db, &sum("t_ref")).await;
    project.write(
        "2_m.plan.toml",
        r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "t", column = "m", type = "int" },
  { op = "backfill", table = "t", set = "m = n * 2", where = "n % 3 <> 0" },
]
"#,
    );
    let mut child = project.spawn(&db, &["up"]);
    wait_for(
        &db,
        "SELECT (coalesce(max((cursor->>'batches')::bigint), 0) >= 5)::text FROM strata_progress WHERE kind = 'backfill'",
        "true",
    )
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_until_gone(&db, "%n * 2%").await;
    assert_eq!(plan_state(&db, "2").await, "running 0");
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resumes at action 2 of 2"), "{out}");
    assert!(
        out.contains("backfill of t resumes") || out.contains("backfill of public.t resumes"),
        "{out}"
    );
    assert_eq!(col(&db, &sum("t")).await, want);
    assert_eq!(db.history().await.len(), 2);
}

#[tokio::test]
async fn bad_plan_files_exit_2_with_path_and_line_and_touch_nothing() {
    let cases = [
        (
            "[[phase]]\nname = \"a\"\noperations = [\n  { op = \"add_column\", table = \"users\", column = \"c\", type = \"int\", defualt = \"1\" },\n]\n",
            "2_bad.plan.toml:4: unknown field `defualt`",
        ),
        (
            "[[phase]]\nname = \"a\"\noperations = [\n  { op = \"rename_column\", step = \"shrink\", table = \"users\", from = \"a\", to = \"b\" },\n]\n",
            "2_bad.plan.toml:4: `rename_column` has no step \"shrink\"",
        ),
        (
            "[[phase]]\nname = \"a\"\noperations = [\n  { op = \"rename_column\", table = \"users\", from = \"a\", to = \"b\" },\n]\ngate = { wait = \"1h\" }\n\n[[phase]]\nname = \"b\"\noperations = [\n  { op = \"rename_column\", step = \"contract\", table = \"users\", from = \"a\", to = \"b\" },\n]\n",
            "2_bad.plan.toml:11: step \"contract\" of `rename_column` of users.a in phase `b` runs before any deploy gate",
        ),
    ];
    for (plan, want) in cases {
        let db = TestDb::new().await;
        let project = Project::new();
        project.write("1_users.up.sql", USERS);
        project.write("2_bad.plan.toml", plan);
        let before = db.schema_fingerprint().await;
        let out = expect_code(&project.run(&db, &["up"]), 2);
        assert!(out.contains(want), "want {want}\n{out}");
        assert!(out.contains("help:"), "{out}");
        assert_eq!(db.schema_fingerprint().await, before);
        let out = expect_code(&project.run(&db, &["validate"]), 2);
        assert!(out.contains(want), "want {want}\n{out}");
    }
    // A plan file the runner does not know how to compile yet is reported
    // by `validate` at its line too, and nothing of a good plan is hurt.
    let project = Project::new();
    project.write("2_ok.plan.toml", EMAIL_LOWER);
    let out = project.run(&TestDb::new().await, &["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[tokio::test]
async fn the_sql_a_plan_compiles_to_is_linted_at_its_operations_line() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    project.write(
        "2_index.plan.toml",
        r#"
[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "nick", type = "text" },
  { op = "sql", up = "CREATE INDEX users_email ON users (email)", down = "DROP INDEX users_email" },
]
"#,
    );
    let out = project.run(&db, &["lint"]);
    let out = text(&out);
    assert!(out.contains("2_index.plan.toml:6"), "{out}");
    assert!(out.contains("require-concurrent-index-creation"), "{out}");
    // The add_column on line 5 is fine, and the backfill-free plan has no
    // other finding there.
    assert!(!out.contains("2_index.plan.toml:5"), "{out}");
}

#[tokio::test]
async fn a_plan_acknowledges_findings_with_strata_allow_comments() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    // The index is built on a table the app does not use yet, say.
    let plan = |allow: &str| {
        format!(
            r#"
[[phase]]
name = "expand"
operations = [
  {{ op = "add_column", table = "users", column = "nick", type = "text" }},
{allow}
  {{ op = "sql", up = "CREATE INDEX users_email ON users (email); CREATE INDEX users_nick ON users (nick)", down = "DROP INDEX users_nick; DROP INDEX users_email" }},
]
"#
        )
    };
    // Unacknowledged, both index builds are findings, and `up` refuses.
    project.write("2_index.plan.toml", &plan(""));
    let out = text(&project.run(&db, &["lint"]));
    assert_eq!(
        out.matches("require-concurrent-index-creation").count(),
        2,
        "{out}"
    );
    // One allow above the operation covers every statement it compiles to.
    project.write(
        "2_index.plan.toml",
        &plan("  # strata:allow require-concurrent-index-creation reason: users is empty until v2 ships"),
    );
    let out = project.run(&db, &["lint"]);
    let shown = text(&out);
    assert!(!shown.contains("2_index.plan.toml:7"), "{shown}");
    assert!(!shown.contains("unused-allow"), "{shown}");
    let out = project.run(&db, &["up", "--through-gates"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(db.has_table("users").await);
    // An allow that acknowledges nothing is reported at its line.
    let project = Project::new();
    project.write("1_users.up.sql", USERS);
    project.write(
        "2_index.plan.toml",
        "[[phase]]\nname = \"x\"\noperations = [\n  # strata:allow ban-drop-column reason: nothing is dropped\n  { op = \"add_column\", table = \"users\", column = \"nick\", type = \"text\" },\n]\n",
    );
    let out = text(&project.run(&TestDb::new().await, &["lint"]));
    assert!(
        out.contains("2_index.plan.toml:4") && out.contains("unused-allow"),
        "{out}"
    );
    // Other directives have no meaning in a plan: a load error at the line.
    let project = Project::new();
    project.write(
        "2_index.plan.toml",
        "# strata:no-transaction\n[[phase]]\nname = \"x\"\noperations = [\n  { op = \"add_column\", table = \"users\", column = \"nick\", type = \"text\" },\n]\n",
    );
    let out = expect_code(&project.run(&TestDb::new().await, &["validate"]), 2);
    assert!(
        out.contains("2_index.plan.toml:1") && out.contains("no meaning in a plan file"),
        "{out}"
    );
}
