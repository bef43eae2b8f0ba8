//! Pre-flight: before a migration runs, Strata waits (boundedly) for
//! transactions that hold locks on its tables, and says what it saw.

use std::time::Duration;

use crate::support::{expect_code, Project, TestDb};

async fn project_with_users(db: &TestDb, config: &str) -> Project {
    let project = Project::new();
    project.config(config);
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY);\n",
    );
    expect_code(&project.run(db, &["up"]), 0);
    project.write("2_nick.up.sql", "ALTER TABLE users ADD COLUMN nick text;\n");
    project
}

#[tokio::test]
async fn waits_for_an_idle_transaction_to_finish_then_runs_without_retries() {
    let db = TestDb::new().await;
    let project = project_with_users(&db, "preflight_wait = \"20s\"\n").await;
    let holder = db.connect().await;
    holder
        .batch("BEGIN; SELECT count(*) FROM users;")
        .await
        .unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        holder.batch("COMMIT").await.unwrap();
    });
    let out = project.run_async(&db, &["up"]).await;
    release.await.unwrap();
    let text = expect_code(&out, 0);
    assert!(text.contains("2_nick: pre-flight: waited"), "{text}");
    assert!(
        text.contains("holding locks on its tables to finish; they did"),
        "{text}"
    );
    let retries = db
        .column("SELECT details->>'lock_retries' FROM strata_events WHERE action = 'up' AND version = '2'")
        .await;
    assert_eq!(
        retries,
        ["0"],
        "pre-flight waited instead of burning retries"
    );
}

#[tokio::test]
async fn names_a_holder_that_stays_and_leaves_the_database_unchanged() {
    let db = TestDb::new().await;
    let project = project_with_users(
        &db,
        "preflight_wait = \"500ms\"\nlock_retry_budget = \"1s\"\n",
    )
    .await;
    let holder = db.connect().await;
    holder
        .batch("SET application_name = 'billing-worker'; BEGIN; SELECT count(*) FROM users;")
        .await
        .unwrap();
    let out = project.run_async(&db, &["up"]).await;
    let text = expect_code(&out, 1);
    assert!(
        text.contains(&format!(
            "still held: pid {} (billing-worker, idle in transaction",
            holder.pid()
        )),
        "{text}"
    );
    holder.batch("COMMIT").await.unwrap();
    let columns = db
        .column("SELECT column_name::text FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nick'")
        .await;
    assert!(columns.is_empty(), "{columns:?}");
    assert_eq!(db.history().await.len(), 1);
}

/// Names resolve as PostgreSQL resolves them: a lock on `archive.users`
/// is not one on `users`, and a mixed-case table is named as `"Users"`.
#[tokio::test]
async fn holders_are_matched_by_the_table_postgres_resolves() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.config("preflight_wait = \"500ms\"\nlock_retry_budget = \"1s\"\n");
    project.write(
        "1_t.up.sql",
        "CREATE TABLE users (id int);\nCREATE SCHEMA archive;\nCREATE TABLE archive.users (id int);\nCREATE TABLE \"Users\" (id int);\n",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    let other = db.connect().await;
    other
        .batch("SET application_name = 'archiver'; BEGIN; SELECT count(*) FROM archive.users;")
        .await
        .unwrap();
    project.write("2_n.up.sql", "ALTER TABLE users ADD COLUMN n text;\n");
    let text = expect_code(&project.run_async(&db, &["up"]).await, 0);
    assert!(
        !text.contains("pre-flight") && !text.contains("archiver"),
        "{text}"
    );
    other.batch("COMMIT").await.unwrap();

    let holder = db.connect().await;
    holder
        .batch("SET application_name = 'mixed-case'; BEGIN; SELECT count(*) FROM \"Users\";")
        .await
        .unwrap();
    project.write("3_n.up.sql", "ALTER TABLE \"Users\" ADD COLUMN n text;\n");
    let text = expect_code(&project.run_async(&db, &["up"]).await, 1);
    assert!(
        text.contains(&format!(
            "still held: pid {} (mixed-case, idle in transaction",
            holder.pid()
        )) && text.contains("locks \"Users\")"),
        "{text}"
    );
    holder.batch("COMMIT").await.unwrap();
}
