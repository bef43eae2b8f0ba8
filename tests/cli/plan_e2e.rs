//! Plans of the operations that compile from catalog facts
//! (`rename_column`, `change_column_type`), run end to end through
//! `strata up` with its gates, `kill -9`, `rollback` and `abort` (the
//! operation tests in `plan_ops_*.rs` drive the compiled actions directly).

use crate::support::{expect_code, wait_for, wait_until_gone, Project, TestDb};

/// `users` with a default, a check, an index and `rows` rows.
fn users(rows: i64) -> String {
    format!(
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL DEFAULT 'anon' CHECK (length(name) < 100), age varchar(10));
CREATE INDEX users_name_idx ON users (name);
INSERT INTO users SELECT g, 'user ' || g, (g % 90)::text FROM generate_series(1, {rows}) g;"
    )
}

/// expand, a deploy gate, a phase while the app moves over, a second
/// deploy gate, contract.
const RENAME: &str = r#"
[[phase]]
name = "expand"
operations = [
  { op = "rename_column", step = "expand", table = "users", from = "name", to = "full_name" },
]
gate = { deploy = "app v2, which reads full_name" }

[[phase]]
name = "check"
operations = [
  { op = "validate", sql = "SELECT id FROM users WHERE full_name IS DISTINCT FROM name", message = "names out of sync" },
]
gate = { deploy = "app v3, which no longer uses name" }

[[phase]]
name = "contract"
operations = [
  { op = "rename_column", step = "contract", table = "users", from = "name", to = "full_name" },
]
"#;

/// The catalog after `sql` on top of `users(rows)`, on a fresh database.
async fn catalog_after(rows: i64, sql: &str) -> Vec<String> {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", &users(rows));
    if !sql.is_empty() {
        project.write("2_naive.up.sql", sql);
    }
    expect_code(&project.run(&db, &["up"]), 0);
    db.catalog().await
}

/// Every row as text, for comparing data.
const ROWS: &str =
    "SELECT md5(string_agg(to_jsonb(u)::text, ',' ORDER BY id)) FROM (SELECT * FROM users) u";

#[tokio::test]
async fn a_rename_plan_through_its_gates_ends_in_the_naive_rename_and_rolls_back() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", &users(1000));
    expect_code(&project.run(&db, &["up"]), 0);
    let base = db.catalog().await;
    let conn = db.connect().await;
    conn.batch("CREATE TABLE want AS SELECT id, name AS full_name, age FROM users")
        .await
        .unwrap();
    let want = db
        .column("SELECT md5(string_agg(to_jsonb(u)::text, ',' ORDER BY id)) FROM want u")
        .await;
    conn.batch("DROP TABLE want").await.unwrap();
    project.write("2_rename.plan.toml", RENAME);

    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("phase 1 of 3 done; waiting for: deploy: app v2, which reads full_name"),
        "{out}"
    );
    // The app of either version writes: the trigger keeps both columns equal.
    conn.batch("INSERT INTO users (id, name) VALUES (5001, 'old app'); INSERT INTO users (id, full_name) VALUES (5002, 'new app')")
        .await
        .unwrap();
    let out = expect_code(&project.run(&db, &["up", "--continue", "2"]), 0);
    assert!(
        out.contains("phase 2 of 3 done; waiting for: deploy: app v3"),
        "{out}"
    );
    conn.batch("DELETE FROM users WHERE id > 5000")
        .await
        .unwrap();
    expect_code(&project.run(&db, &["up", "--continue", "2"]), 0);
    assert_eq!(db.history().await.len(), 2);
    assert_eq!(
        db.catalog().await,
        catalog_after(1000, "ALTER TABLE users RENAME COLUMN name TO full_name;").await
    );
    assert_eq!(db.column(ROWS).await, want);

    // Rolled back phase by phase to the catalog before the plan.
    expect_code(&project.run(&db, &["rollback", "2", "--phase", "3"]), 0);
    expect_code(&project.run(&db, &["rollback", "2"]), 0);
    assert_eq!(db.catalog().await, base);
    assert_eq!(db.history().await.len(), 1);
}

#[tokio::test]
async fn a_kill_during_the_rename_backfill_resumes_to_exact_data() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.config("[backfill]\nbatch_time = \"2ms\"\n");
    project.write("1_users.up.sql", &users(200_000));
    expect_code(&project.run(&db, &["up"]), 0);
    let want = db
        .column("SELECT md5(string_agg(id || ':' || name, ',' ORDER BY id)) FROM users")
        .await;
    project.write("2_rename.plan.toml", RENAME);
    let mut child = project.spawn(&db, &["up"]);
    wait_for(
        &db,
        "SELECT (coalesce(max((cursor->>'batches')::bigint), 0) >= 5)::text FROM strata_progress WHERE kind = 'backfill'",
        "true",
    )
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_until_gone(&db, "%full_name%").await;
    let out = expect_code(&project.run(&db, &["up", "--through-gates"]), 0);
    assert!(out.contains("resumes at action"), "{out}");
    assert_eq!(db.history().await.len(), 2);
    assert_eq!(
        db.column("SELECT md5(string_agg(id || ':' || full_name, ',' ORDER BY id)) FROM users")
            .await,
        want
    );
    assert_eq!(
        db.catalog().await,
        catalog_after(
            200_000,
            "ALTER TABLE users RENAME COLUMN name TO full_name;"
        )
        .await
    );
}

/// varchar age → integer, behind a deploy gate.
const RETYPE: &str = r#"
[[phase]]
name = "expand"
operations = [
  { op = "change_column_type", step = "expand", table = "users", column = "age", type = "integer", using = "nullif(trim(age), '')::integer" },
]
gate = { deploy = "app v2, which writes integers" }

[[phase]]
name = "contract"
operations = [
  { op = "change_column_type", step = "contract", table = "users", column = "age", type = "integer", using = "nullif(trim(age), '')::integer" },
]
"#;

#[tokio::test]
async fn a_type_change_plan_ends_in_the_naive_alter_and_a_half_done_one_aborts_to_the_base() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", &users(1000));
    expect_code(&project.run(&db, &["up"]), 0);
    project.write("2_retype.plan.toml", RETYPE);
    let want = db
        .column("SELECT md5(string_agg(id || ':' || coalesce(nullif(trim(age), '')::integer::text, '-'), ',' ORDER BY id)) FROM users")
        .await;
    expect_code(&project.run(&db, &["up", "--through-gates"]), 0);
    assert_eq!(
        db.catalog().await,
        catalog_after(
            1000,
            "ALTER TABLE users ALTER COLUMN age TYPE integer USING nullif(trim(age), '')::integer;"
        )
        .await
    );
    assert_eq!(
        db.column("SELECT md5(string_agg(id || ':' || coalesce(age::text, '-'), ',' ORDER BY id)) FROM users")
            .await,
        want
    );

    // A row that does not convert stops the expand part way; abort gives
    // back the catalog before the plan.
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", &users(1000));
    expect_code(&project.run(&db, &["up"]), 0);
    db.connect()
        .await
        .batch("UPDATE users SET age = 'ninety' WHERE id = 7")
        .await
        .unwrap();
    let base = db.catalog().await;
    project.write("2_retype.plan.toml", RETYPE);
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(out.contains("\"id\":7"), "{out}");
    assert_ne!(db.catalog().await, base);
    expect_code(&project.run(&db, &["abort", "2"]), 0);
    assert_eq!(db.catalog().await, base);
    assert_eq!(db.history().await.len(), 1);
}
