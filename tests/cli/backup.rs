//! Backups: taken by `strata up` before a migration that loses data, by
//! `strata backup` on demand, listed by `strata backups` and restored by
//! `strata restore`. A backup that fails stops the migration.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{expect_code, Project, TestDb};

fn dumps(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "dump"));
    files.sort();
    files
}

async fn seeded(db: &TestDb, project: &Project) {
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email text, nick text);\n",
    );
    expect_code(&project.run(db, &["up"]), 0);
    db.connect()
        .await
        .batch("INSERT INTO users SELECT g, 'u' || g || '@example.com', 'n' || g FROM generate_series(1, 500) g")
        .await
        .unwrap();
}

#[tokio::test]
async fn up_backs_up_before_dropping_a_column_and_restore_brings_it_back() {
    let db = TestDb::new().await;
    let project = Project::new();
    seeded(&db, &project).await;
    project.write(
        "2_drop_email.up.sql",
        "-- strata:allow ban-drop-column reason: test\nALTER TABLE users DROP COLUMN email;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("backed up public.users to"), "{out}");

    let backups = project.path().join(".strata/backups");
    let files = dumps(&backups);
    assert_eq!(files.len(), 1, "{files:?}");
    let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "a dump holds the data itself");
    assert!(files[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .ends_with("_2.dump"));
    let events = db
        .column("SELECT details->>'tables' FROM strata_events WHERE action = 'backup' AND version = '2'")
        .await;
    assert_eq!(events, [r#"["public.users"]"#]);

    let listed = expect_code(&project.run(&db, &["backups"]), 0);
    assert!(
        listed.contains("public.users") && listed.contains("before 2_drop_email"),
        "{listed}"
    );

    let file = files[0].to_string_lossy().into_owned();
    let out = expect_code(
        &project.run(&db, &["restore", &file, "--table", "users", "--yes"]),
        0,
    );
    assert!(out.contains("restored"), "{out}");
    let emails = db
        .column("SELECT count(email)::text FROM users WHERE email LIKE '%@example.com'")
        .await;
    assert_eq!(emails, ["500"], "the dropped column and its data are back");
    let restores = db
        .column("SELECT action FROM strata_events WHERE action = 'restore'")
        .await;
    assert_eq!(restores, ["restore"]);
}

#[tokio::test]
async fn additive_migrations_take_no_backup() {
    let db = TestDb::new().await;
    let project = Project::new();
    seeded(&db, &project).await;
    project.write("2_add.up.sql", "ALTER TABLE users ADD COLUMN age int;\n");
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(!out.contains("backed up"), "{out}");
    assert!(dumps(&project.path().join(".strata/backups")).is_empty());
}

fn fake_pg_dump(project: &Project, version: &str, failure: &str) {
    let bin = project.path().join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["pg_dump", "pg_restore"] {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{tool} (PostgreSQL) {version}'; exit 0; fi\necho '{tool}: error: {failure}' >&2\nexit 1\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    project.config("pg_bindir = \"fakebin\"\n");
}

#[tokio::test]
async fn a_failed_backup_stops_the_migration() {
    let db = TestDb::new().await;
    let project = Project::new();
    seeded(&db, &project).await;
    fake_pg_dump(&project, "99.0", "connection to server lost");
    project.write(
        "2_drop.up.sql",
        "-- strata:allow ban-drop-column reason: test\nALTER TABLE users DROP COLUMN email;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(
        out.contains("migration 2_drop did not run: could not back up public.users"),
        "{out}"
    );
    assert!(out.contains("connection to server lost"), "{out}");
    let columns = db
        .column("SELECT column_name::text FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'")
        .await;
    assert_eq!(columns, ["email"], "the column is still there");
    assert_eq!(db.history().await.len(), 1, "2 is not recorded");
    let leftovers: Vec<_> = std::fs::read_dir(project.path().join(".strata/backups"))
        .map(|d| d.flatten().collect::<Vec<_>>())
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "no partial dump is left: {leftovers:?}"
    );
}

#[tokio::test]
async fn a_pg_dump_older_than_the_server_is_refused_up_front() {
    let db = TestDb::new().await;
    let project = Project::new();
    seeded(&db, &project).await;
    fake_pg_dump(&project, "9.6", "must not be called");
    project.write(
        "2_truncate.up.sql",
        "-- strata:allow ban-truncate reason: test\nTRUNCATE users;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(out.contains("pg_dump 9 is older than the server"), "{out}");
    assert!(out.contains("pg_bindir"), "{out}");
    assert_eq!(db.column("SELECT count(*)::text FROM users").await, ["500"]);
}

#[tokio::test]
async fn manual_backup_and_restore_safety() {
    let db = TestDb::new().await;
    let project = Project::new();
    seeded(&db, &project).await;
    let out = expect_code(&project.run(&db, &["backup", "--table", "users"]), 0);
    assert!(out.contains("_manual.dump"), "{out}");
    let out = expect_code(&project.run(&db, &["backup", "--table", "nope"]), 1);
    assert!(out.contains("no such table: nope"), "{out}");

    let file = dumps(&project.path().join(".strata/backups"))[0]
        .to_string_lossy()
        .into_owned();
    db.connect()
        .await
        .batch("DELETE FROM users WHERE id > 10")
        .await
        .unwrap();
    // Nobody at a terminal to confirm: refuse, change nothing.
    let out = expect_code(&project.run(&db, &["restore", &file]), 2);
    assert!(out.contains("pass --yes"), "{out}");
    assert_eq!(db.column("SELECT count(*)::text FROM users").await, ["10"]);
    // A table the dump does not hold.
    let out = expect_code(
        &project.run(&db, &["restore", &file, "-t", "orders", "--yes"]),
        2,
    );
    assert!(out.contains("holds no table orders"), "{out}");
    // Not a dump at all.
    let junk = project.path().join("junk.dump");
    std::fs::write(&junk, "not a dump").unwrap();
    let out = expect_code(
        &project.run(&db, &["restore", junk.to_str().unwrap(), "--yes"]),
        2,
    );
    assert!(out.contains("not a pg_dump custom-format file"), "{out}");

    expect_code(&project.run(&db, &["restore", &file, "--yes"]), 0);
    assert_eq!(db.column("SELECT count(*)::text FROM users").await, ["500"]);
}
