//! `strata new NAME --pattern P`: every generated plan lints with no MEDIUM
//! or HIGH finding and runs gate by gate (`up`, then `up --continue V` at
//! each gate) on a real database; bad flags exit 2 and write nothing.

use crate::support::{expect_code, strata, Project, TestDb};

/// The tables every pattern here changes, with rows (orders has orphans).
const BASE: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text, name text NOT NULL, age text, full_name text, legacy text);
INSERT INTO users SELECT g, 'u' || g || '@x.com', 'User ' || g, (g % 90)::text, 'First' || g || '  Last' || g, 'x' FROM generate_series(1, 200) g;
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, items jsonb);
INSERT INTO orders SELECT g, CASE WHEN g % 10 = 0 THEN 100000 + g ELSE g END, jsonb_build_array(jsonb_build_object('sku', 's' || g, 'qty', g % 5)) FROM generate_series(1, 100) g;
CREATE TABLE events (id bigint, created_at timestamptz NOT NULL, payload text, PRIMARY KEY (id, created_at));
INSERT INTO events SELECT g, '2024-01-01'::timestamptz + g * interval '1 day', 'p' FROM generate_series(1, 100) g;
CREATE TABLE old_sessions (id int);";

/// Generates a plan with `flags`, lints it, runs it gate by gate as a
/// deploy would (`up` stops at each gate it names, `up --continue V`
/// passes it), and returns the database for the test's own checks.
async fn generated_plan_runs(flags: &[&str]) -> TestDb {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_base.up.sql", BASE);
    let mut args = vec!["new", "change"];
    args.extend_from_slice(flags);
    let out = expect_code(&strata(project.path(), None, &args), 0);
    assert!(out.contains("_change.plan.toml"), "{out}");
    let file = out.trim().to_owned();
    let name = std::path::Path::new(&file)
        .file_name()
        .and_then(|n| n.to_str())
        .expect("the plan's file name");
    let version = name.split('_').next().expect("its version").to_owned();
    let gates = std::fs::read_to_string(&file)
        .expect("the generated plan")
        .lines()
        .filter(|l| l.starts_with("gate = ") && *l != "gate = \"none\"")
        .count();
    let lint = expect_code(&project.run(&db, &["lint"]), 0);
    assert!(lint.contains("0 HIGH, 0 MEDIUM"), "{flags:?}:\n{lint}");
    let out = expect_code(&project.run(&db, &["up"]), 0);
    for passed in 0..gates {
        assert!(
            out.contains("waiting for") || passed > 0,
            "{flags:?}: `up` should stop at the first gate:\n{out}"
        );
        assert_eq!(
            db.history().await.len(),
            1,
            "{flags:?}: applied before its last gate"
        );
        // `up` alone does not pass a gate.
        let again = expect_code(&project.run(&db, &["up"]), 0);
        assert!(again.contains("waiting for"), "{flags:?}:\n{again}");
        expect_code(&project.run(&db, &["up", "--continue", &version]), 0);
    }
    assert_eq!(db.history().await.len(), 2, "{flags:?}");
    db
}

async fn one(db: &TestDb, sql: &str) -> String {
    db.column(sql).await.remove(0)
}

#[tokio::test]
async fn add_column() {
    let db = generated_plan_runs(&[
        "--pattern",
        "add-column",
        "--table",
        "users",
        "--column",
        "nickname",
        "--type",
        "text",
        "--default",
        "'n/a'",
    ])
    .await;
    assert_eq!(
        one(
            &db,
            "SELECT count(*)::text FROM users WHERE nickname = 'n/a'"
        )
        .await,
        "200"
    );
}

#[tokio::test]
async fn add_required_column() {
    let db = generated_plan_runs(&[
        "--pattern",
        "add-required-column",
        "--table",
        "users",
        "--column",
        "verified",
        "--type",
        "boolean",
        "--default",
        "false",
        "--backfill",
        "email IS NOT NULL",
    ])
    .await;
    assert_eq!(one(&db, "SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'verified'").await, "true");
    assert_eq!(
        one(&db, "SELECT count(*)::text FROM users WHERE verified").await,
        "200"
    );
}

#[tokio::test]
async fn rename_column() {
    let db = generated_plan_runs(&[
        "--pattern",
        "rename-column",
        "--table",
        "users",
        "--from",
        "name",
        "--to",
        "display_name",
    ])
    .await;
    assert_eq!(
        one(&db, "SELECT display_name FROM users WHERE id = 7").await,
        "User 7"
    );
    assert_eq!(one(&db, "SELECT count(*)::text FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'name' AND NOT attisdropped").await, "0");
}

#[tokio::test]
async fn change_column_type() {
    let db = generated_plan_runs(&[
        "--pattern",
        "change-column-type",
        "--table",
        "users",
        "--column",
        "age",
        "--type",
        "integer",
        "--using",
        "nullif(trim(age), '')::integer",
    ])
    .await;
    assert_eq!(one(&db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'age'").await, "integer");
}

#[tokio::test]
async fn split_column() {
    let db = generated_plan_runs(&["--pattern", "split-column", "--table", "users", "--column", "full_name",
        "--into", "first_name:varchar(100):split_part(trim(full_name), ' ', 1)",
        "--into", "last_name:varchar(100):nullif(trim(substr(trim(full_name), length(split_part(trim(full_name), ' ', 1)) + 1)), '')"]).await;
    assert_eq!(
        one(
            &db,
            "SELECT first_name || '|' || last_name FROM users WHERE id = 3"
        )
        .await,
        "First3|Last3"
    );
    assert_eq!(one(&db, "SELECT count(*)::text FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'full_name' AND NOT attisdropped").await, "0");
}

#[tokio::test]
async fn add_index() {
    let db = generated_plan_runs(&[
        "--pattern",
        "add-index",
        "--table",
        "users",
        "--column",
        "(lower(email))",
        "--unique",
        "--where",
        "email IS NOT NULL",
    ])
    .await;
    assert_eq!(
        one(
            &db,
            "SELECT indisunique::text FROM pg_index WHERE indexrelid = 'users_lower_idx'::regclass"
        )
        .await,
        "true"
    );
}

#[tokio::test]
async fn set_not_null() {
    let db = generated_plan_runs(&[
        "--pattern",
        "set-not-null",
        "--table",
        "users",
        "--column",
        "email",
        "--default",
        "''",
    ])
    .await;
    assert_eq!(one(&db, "SELECT attnotnull::text FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'email'").await, "true");
}

#[tokio::test]
async fn soft_delete() {
    let db = generated_plan_runs(&["--pattern", "soft-delete", "--table", "users"]).await;
    assert!(db.has_table("active_users").await);
}

#[tokio::test]
async fn add_jsonb_column() {
    let db = generated_plan_runs(&[
        "--pattern",
        "add-jsonb-column",
        "--table",
        "users",
        "--column",
        "prefs",
        "--backfill",
        "jsonb_build_object('theme', 'dark')",
        "--path-index",
        "prefs->>'theme'",
    ])
    .await;
    assert_eq!(
        one(
            &db,
            "SELECT count(*)::text FROM users WHERE prefs->>'theme' = 'dark'"
        )
        .await,
        "200"
    );
}

#[tokio::test]
async fn add_foreign_key() {
    let db = generated_plan_runs(&[
        "--pattern",
        "add-foreign-key",
        "--table",
        "orders",
        "--column",
        "user_id",
        "--references",
        "users(id)",
        "--orphans",
        "move_to:orphaned_orders",
    ])
    .await;
    assert_eq!(
        one(&db, "SELECT count(*)::text FROM orphaned_orders").await,
        "10"
    );
    assert_eq!(one(&db, "SELECT convalidated::text FROM pg_constraint WHERE conrelid = 'orders'::regclass AND contype = 'f'").await, "true");
}

#[tokio::test]
async fn partition_table() {
    let db = generated_plan_runs(&[
        "--pattern",
        "partition-table",
        "--table",
        "events",
        "--key",
        "created_at",
        "--interval",
        "month",
        "--range-from",
        "2024-01-01",
        "--range-to",
        "2024-05-01",
    ])
    .await;
    assert_eq!(
        one(
            &db,
            "SELECT relkind::text FROM pg_class WHERE oid = 'events'::regclass"
        )
        .await,
        "p"
    );
    assert_eq!(one(&db, "SELECT count(*)::text FROM events").await, "100");
    assert!(!db.has_table("events_old").await);
}

#[tokio::test]
async fn normalize_json() {
    let db = generated_plan_runs(&[
        "--pattern",
        "normalize-json",
        "--table",
        "orders",
        "--column",
        "items",
        "--into",
        "order_items",
        "--field",
        "sku:text:elem->>'sku'",
        "--field",
        "qty:integer:(elem->>'qty')::integer",
    ])
    .await;
    assert_eq!(
        one(&db, "SELECT count(*)::text FROM order_items").await,
        "100"
    );
}

#[tokio::test]
async fn drop_column() {
    let db = generated_plan_runs(&[
        "--pattern",
        "drop-column",
        "--table",
        "users",
        "--column",
        "legacy",
    ])
    .await;
    assert_eq!(one(&db, "SELECT count(*)::text FROM pg_attribute WHERE attrelid = 'users'::regclass AND attname = 'legacy' AND NOT attisdropped").await, "0");
}

#[tokio::test]
async fn drop_table() {
    let db = generated_plan_runs(&["--pattern", "drop-table", "--table", "old_sessions"]).await;
    assert!(!db.has_table("old_sessions").await);
}

#[tokio::test]
async fn backfill() {
    let db = generated_plan_runs(&[
        "--pattern",
        "backfill",
        "--table",
        "users",
        "--set",
        "legacy = upper(legacy)",
        "--where",
        "legacy = 'x'",
    ])
    .await;
    assert_eq!(
        one(&db, "SELECT count(*)::text FROM users WHERE legacy = 'X'").await,
        "200"
    );
}

#[test]
fn bad_flags_exit_2_and_write_nothing() {
    let project = Project::new();
    for (flags, says) in [
        (
            &[
                "--pattern",
                "rename-column",
                "--table",
                "users",
                "--from",
                "a",
            ][..],
            "needs --to",
        ),
        (
            &["--pattern", "drop-table", "--table", "t", "--column", "c"][..],
            "does not use --column",
        ),
        (
            &[
                "--pattern",
                "add-foreign-key",
                "--table",
                "o",
                "--column",
                "u",
                "--references",
                "users(id)",
                "--orphans",
                "keep",
            ][..],
            "move_to:TABLE",
        ),
        (
            &[
                "--pattern",
                "add-column",
                "--table",
                "users",
                "--column",
                "c",
                "--type",
                "int)",
            ][..],
            "`type` must be a type",
        ),
        (&["--pattern", "no-such"][..], "rename-column"),
        (&["--table", "users"][..], "--table is a flag of --pattern"),
    ] {
        let mut args = vec!["new", "x"];
        args.extend_from_slice(flags);
        let out = expect_code(&strata(project.path(), None, &args), 2);
        assert!(out.contains(says), "{flags:?}:\n{out}");
        assert!(out.contains("strata new") || out.contains("help"), "{out}");
    }
    assert_eq!(std::fs::read_dir(project.migrations()).unwrap().count(), 0);
}
