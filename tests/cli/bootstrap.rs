//! Bootstrapping an empty database from a long history (issue 13): tables
//! the run itself creates are new for the whole run, so their findings do
//! not block; the output stays short; server notices are shown.

use crate::support::{expect_code, Project, TestDb};

/// Lines of `up`'s stderr that are not per-migration progress or the
/// closing count.
fn other_lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            !l.starts_with("applying ")
                && !l.starts_with("ok applied ")
                && !l.ends_with("migration(s) applied")
        })
        .collect()
}

/// 300 migrations in a row, as a long-lived project accumulates them: each
/// table is created, then changed in ways that are dangerous on a live
/// table (drop a column, change a type, SET NOT NULL, a plain index, a
/// rename, a drop), all before the run ends.
fn long_history(project: &Project) {
    for k in 0..50 {
        let n = k * 6;
        let t = format!("t{k}");
        let files = [
            format!("CREATE TABLE {t} (id bigint PRIMARY KEY, a text, b text, c int, d text);\n"),
            format!("ALTER TABLE {t} DROP COLUMN a;\n"),
            format!("ALTER TABLE {t} ALTER COLUMN c TYPE bigint;\nALTER TABLE {t} ALTER COLUMN b SET NOT NULL;\n"),
            format!("CREATE INDEX {t}_d_idx ON {t} (d);\nUPDATE {t} SET d = 'x';\n"),
            format!("ALTER TABLE {t} RENAME COLUMN d TO e;\nDROP INDEX {t}_d_idx;\n"),
            if k % 2 == 0 {
                format!("DROP TABLE {t};\n")
            } else {
                format!("ALTER TABLE {t} DROP COLUMN e;\nTRUNCATE {t};\n")
            },
        ];
        for (i, sql) in files.iter().enumerate() {
            // Histories often start by removing another tool's leftovers.
            let sql = if n + i == 0 {
                format!("DROP TABLE IF EXISTS schema_migrations;\n{sql}")
            } else {
                sql.clone()
            };
            project.write(&format!("{}_step.up.sql", n + i + 1), &sql);
        }
    }
}

#[tokio::test]
async fn an_empty_database_takes_a_300_migration_history_with_a_short_report() {
    let db = TestDb::new().await;
    let project = Project::new();
    long_history(&project);
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(db.history().await.len(), 300, "{out}");
    let progress = out.lines().filter(|l| l.starts_with("ok applied ")).count();
    assert_eq!(progress, 300, "{out}");
    let other = other_lines(&out);
    assert!(
        other.len() <= 40,
        "{} lines about findings:\n{}",
        other.len(),
        other.join("\n")
    );
    assert!(
        !other
            .iter()
            .any(|l| l.starts_with("HIGH") || l.starts_with("MEDIUM")),
        "{out}"
    );
    // What remains (DROP INDEX of an index the run created) is one line.
    assert!(
        out.contains("  LOW    require-concurrent-index-deletion: 50 finding(s) in 50 file(s)")
            && out.contains("`-v` or `strata lint` lists each"),
        "{out}"
    );
    // Offline lint keeps judging each file alone: dropping a column of a
    // table it did not create is HIGH there.
    let lint = project.run(&db, &["lint", "migrations"]);
    let lint = String::from_utf8_lossy(&lint.stdout).to_string();
    assert!(lint.contains("HIGH   ban-drop-column"), "{lint}");
}

#[tokio::test]
async fn status_and_verbose_up_list_every_finding() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_t.up.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, a text);\nCREATE INDEX t_a ON t (a);\n",
    );
    project.write("2_drop.up.sql", "DROP INDEX t_a;\n");
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains(
            "  LOW    require-concurrent-index-deletion: 1 finding(s) in 1 file(s), first at "
        ) && status.contains("pending migrations: "),
        "{status}"
    );
    let out = expect_code(&project.run(&db, &["-v", "up"]), 0);
    assert!(
        out.contains("LOW    require-concurrent-index-deletion  migrations/2_drop.up.sql:1:1")
            && out.contains("created earlier in this run"),
        "{out}"
    );
}

#[tokio::test]
async fn blocking_findings_on_existing_tables_still_block_and_print_in_full() {
    let db = TestDb::new().await;
    let project = Project::applied(
        &db,
        "CREATE TABLE users (id bigint PRIMARY KEY, legacy text);\n",
    );
    db.connect()
        .await
        .batch("INSERT INTO users SELECT g, 'x' FROM generate_series(1, 2000) g; ANALYZE users;")
        .await
        .unwrap();
    // A new table and its changes in the same run, then a drop on the
    // existing table: only the latter blocks.
    project.write(
        "2_fresh.up.sql",
        "CREATE TABLE fresh (id bigint PRIMARY KEY, a text);\n",
    );
    project.write("3_fresh.up.sql", "ALTER TABLE fresh DROP COLUMN a;\n");
    project.write("4_drop.up.sql", "ALTER TABLE users DROP COLUMN legacy;\n");
    let out = expect_code(&project.run(&db, &["up"]), 3);
    assert!(
        out.contains("1 finding(s) at or above HIGH block `strata up`"),
        "{out}"
    );
    assert!(
        out.contains("HIGH   ban-drop-column  migrations/4_drop.up.sql:1:1")
            && out.contains("= why:")
            && out.contains("= safe rewrite:"),
        "{out}"
    );
    assert!(
        !out.contains("3_fresh.up.sql:1:1"),
        "the new table's finding is only summarised:\n{out}"
    );
    assert!(!db.has_table("fresh").await, "nothing ran");
    // With -q the refusal still says why.
    let quiet = expect_code(&project.run(&db, &["-q", "up"]), 3);
    assert!(
        quiet.contains("HIGH   ban-drop-column  migrations/4_drop.up.sql:1:1")
            && !quiet.contains("LOW"),
        "{quiet}"
    );
    // A table that exists is not new because a migration re-creates it.
    let db2 = TestDb::new().await;
    let project2 = Project::applied(
        &db2,
        "CREATE TABLE users (id bigint PRIMARY KEY, legacy text);\n",
    );
    db2.connect()
        .await
        .batch("INSERT INTO users SELECT g, 'x' FROM generate_series(1, 2000) g; ANALYZE users;")
        .await
        .unwrap();
    project2.write(
        "2_again.up.sql",
        "CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, legacy text);\n",
    );
    project2.write("3_drop.up.sql", "ALTER TABLE users DROP COLUMN legacy;\n");
    let out = expect_code(&project2.run(&db2, &["up"]), 3);
    assert!(out.contains("HIGH   ban-drop-column"), "{out}");
}

#[tokio::test]
async fn quiet_prints_errors_only() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_t.up.sql", "CREATE TABLE t (id int, a text);\n");
    project.write(
        "2_t.up.sql",
        "ALTER TABLE t DROP COLUMN a;\nCREATE INDEX t_id ON t (id);\nDO $$ BEGIN RAISE NOTICE 'hello'; END $$;\n",
    );
    let out = project.run(&db, &["-q", "up"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(crate::support::text(&out), "", "nothing but errors with -q");
    assert_eq!(db.history().await.len(), 2);
    project.write("3_bad.up.sql", "SELECT 1/0;\n");
    let out = expect_code(&project.run(&db, &["-q", "up"]), 1);
    assert!(out.contains("division by zero"), "{out}");
    assert!(
        out.lines()
            .all(|l| !l.starts_with("applying") && !l.contains("finding")),
        "{out}"
    );
}

#[tokio::test]
async fn a_notice_from_a_migration_is_shown_with_its_prefix() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_backfill.up.sql",
        "CREATE TABLE t (id int);\n\nDO $$\nBEGIN\n  RAISE NOTICE 'migrated % rows', 42;\n  RAISE WARNING 'careful';\nEND $$;\n\nCREATE TABLE IF NOT EXISTS t (id int);\n",
    );
    project.write(
        "2_loose.up.sql",
        "-- strata:no-transaction\nCREATE TABLE u (id int);\nDO $$ BEGIN RAISE NOTICE 'step two'; END $$;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("1_backfill:3: NOTICE: migrated 42 rows"),
        "{out}"
    );
    assert!(out.contains("1_backfill:3: WARNING: careful"), "{out}");
    assert!(out.contains("2_loose:3: NOTICE: step two"), "{out}");
    // The server's own remarks only with -v.
    assert!(!out.contains("already exists"), "{out}");
    let notice_line = out.lines().position(|l| l.contains("migrated 42 rows"));
    let done_line = out
        .lines()
        .position(|l| l.starts_with("ok applied 1_backfill"));
    assert!(notice_line < done_line, "{out}");
    let db2 = TestDb::new().await;
    let out = expect_code(&project.run(&db2, &["-v", "up"]), 0);
    assert!(
        out.contains("1_backfill:9: NOTICE: relation \"t\" already exists, skipping"),
        "{out}"
    );
}
