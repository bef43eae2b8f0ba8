//! `strata down`: one step by default, --steps, --to, --all, dry runs, and
//! refusal to revert what cannot be reverted.

use crate::support::{expect_code, Project, TestDb};

fn four(project: &Project) {
    for (v, t) in [("1", "a"), ("2", "b"), ("3", "c"), ("4", "d")] {
        project.write(
            &format!("{v}_{t}.up.sql"),
            &format!("CREATE TABLE {t} (id int);\n"),
        );
        project.write(&format!("{v}_{t}.down.sql"), &format!("DROP TABLE {t};\n"));
    }
}

#[tokio::test]
async fn steps_to_and_all() {
    let db = TestDb::new().await;
    let project = Project::new();
    four(&project);
    expect_code(&project.run(&db, &["up"]), 0);
    expect_code(&project.run(&db, &["down"]), 0);
    assert!(!db.has_table("d").await && db.has_table("c").await);
    expect_code(&project.run(&db, &["down", "--steps", "2"]), 0);
    assert!(!db.has_table("b").await && db.has_table("a").await);
    expect_code(&project.run(&db, &["up"]), 0);
    expect_code(&project.run(&db, &["down", "--to", "2"]), 0);
    assert!(db.has_table("b").await && !db.has_table("c").await);
    expect_code(&project.run(&db, &["down", "--all"]), 0);
    assert!(!db.has_table("a").await);
    assert!(db.history().await.is_empty());
    let downs = db
        .column("SELECT count(*)::text FROM strata_events WHERE action = 'down' AND success")
        .await;
    assert_eq!(downs, ["7"]);
}

#[tokio::test]
async fn dry_run_and_irreversible() {
    let db = TestDb::new().await;
    let project = Project::new();
    four(&project);
    project.write("5_e.up.sql", "CREATE TABLE e (id int);\n");
    expect_code(&project.run(&db, &["up"]), 0);
    let out = expect_code(&project.run(&db, &["down", "--dry-run", "--steps", "1"]), 2);
    assert!(
        out.contains("5_e cannot be reverted: it has no down script"),
        "{out}"
    );
    std::fs::remove_file(project.migrations().join("5_e.up.sql")).unwrap();
    expect_code(&project.run(&db, &["down", "--dry-run", "--steps", "1"]), 2);
    project.write("5_e.up.sql", "CREATE TABLE e (id int);\n");
    project.write("5_e.down.sql", "DROP TABLE e;\n");
    let before = db.schema_fingerprint().await;
    let out = expect_code(&project.run(&db, &["down", "--dry-run"]), 0);
    assert!(
        out.contains("BEGIN;\nSET LOCAL lock_timeout = '30ms';\nDROP TABLE e;\nDELETE FROM \"public\".\"strata_migrations\""),
        "{out}"
    );
    assert_eq!(db.schema_fingerprint().await, before);
}

#[tokio::test]
async fn a_failing_down_keeps_the_migration_applied() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("1_a.down.sql", "DROP TABLE a;\nDROP TABLE not_there;\n");
    expect_code(&project.run(&db, &["up"]), 0);
    let out = expect_code(&project.run(&db, &["down"]), 1);
    assert!(
        out.contains("1_a.down.sql:2") && out.contains("stays applied"),
        "{out}"
    );
    assert!(db.has_table("a").await);
    assert_eq!(db.history().await.len(), 1);
}

/// The dry run of a down script that runs outside a transaction shows it
/// running outside one, as the real run does (not inside BEGIN … COMMIT).
#[tokio::test]
async fn dry_run_of_a_non_transactional_down_shows_how_it_runs() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_i.up.sql",
        "CREATE TABLE t (a int);\nCREATE INDEX i ON t (a);\n",
    );
    project.write(
        "1_i.down.sql",
        "DROP INDEX CONCURRENTLY i;\nDROP TABLE t;\n",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    let out = expect_code(&project.run(&db, &["down", "--dry-run"]), 0);
    let at = out.find("DROP INDEX CONCURRENTLY i;").expect(&out);
    let before = &out[..at];
    let header = before.rfind("-- revert").expect(&out);
    assert!(
        !before[header..].contains("BEGIN;"),
        "the dry run wraps a statement that cannot run in a transaction:\n{out}"
    );
    assert!(db.has_table("t").await, "a dry run changed the database");
}
