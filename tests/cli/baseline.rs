//! `strata baseline`: adopting an existing database.

use crate::support::{expect_code, Project, TestDb};

#[tokio::test]
async fn marks_existing_migrations_applied_without_running_them() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch("CREATE TABLE a (id int); CREATE TABLE b (id int);")
        .await
        .unwrap();
    let project = Project::new();
    for (v, t) in [("1", "a"), ("2", "b"), ("3", "c")] {
        project.write(
            &format!("{v}_{t}.up.sql"),
            &format!("CREATE TABLE {t} (id int);\n"),
        );
    }
    let out = expect_code(&project.run(&db, &["baseline", "2"]), 0);
    assert!(
        out.contains("marked 1_a as applied") && out.contains("2 migration(s) baselined"),
        "{out}"
    );
    // Running them would fail: the tables exist. up runs only 3.
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("1 migration(s) applied"), "{out}");
    assert!(db.has_table("c").await);
    let events = db
        .column("SELECT action || ':' || version FROM strata_events ORDER BY id")
        .await;
    assert_eq!(events, ["baseline:1", "baseline:2", "up:3"]);
    expect_code(&project.run(&db, &["baseline", "99"]), 2);
}
