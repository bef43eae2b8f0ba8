//! Backups hold the data (issue 7): partitioned tables with every
//! partition, tables that only exist under another name at run time, large
//! DELETEs with a WHERE, names as PostgreSQL sees them, every dump checked
//! before the migration starts, and no pg_dump left behind by a kill -9.
//! Also table sizes of partitioned tables and NULLs from the catalog.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{expect_code, Project, TestDb};

fn dumps(project: &Project) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(project.path().join(".strata/backups"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "dump"));
    files.sort();
    files
}

/// The `tables` of a dump's sidecar.
fn sidecar_tables(dump: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dump.with_extension("json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect()
}

/// The tables a dry run says it will back up, per `-- backup first:` line.
fn dry_run_tables(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter_map(|l| l.strip_prefix("-- backup first: "))
        .map(|l| l.split(", ").map(str::to_owned).collect())
        .collect()
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.column(&format!("SELECT ({sql})::text")).await[0]
        .parse()
        .unwrap()
}

fn restore(project: &Project, db: &TestDb, dump: &Path) {
    expect_code(
        &project.run(db, &["restore", dump.to_str().unwrap(), "--yes"]),
        0,
    );
}

#[tokio::test]
async fn a_partitioned_table_of_1m_rows_is_sized_and_backed_up_with_every_partition() {
    let db = TestDb::new().await;
    let project = Project::applied(
        &db,
        "CREATE TABLE orders (id bigint NOT NULL, note text) PARTITION BY HASH (id);\n\
         CREATE TABLE orders_0 PARTITION OF orders FOR VALUES WITH (MODULUS 4, REMAINDER 0);\n\
         CREATE TABLE orders_1 PARTITION OF orders FOR VALUES WITH (MODULUS 4, REMAINDER 1);\n\
         CREATE TABLE orders_2 PARTITION OF orders FOR VALUES WITH (MODULUS 4, REMAINDER 2);\n\
         CREATE TABLE orders_3 PARTITION OF orders FOR VALUES WITH (MODULUS 4, REMAINDER 3);\n",
    );
    let started = Instant::now();
    db.connect()
        .await
        .batch("INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 1000000) g; ANALYZE orders;")
        .await
        .unwrap();
    let filled = started.elapsed();

    // The parent's size is its partitions': DROP COLUMN stays HIGH.
    project.write("2_drop.up.sql", "ALTER TABLE orders DROP COLUMN note;\n");
    let out = project.run(&db, &["lint", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "ban-drop-column")
        .cloned()
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(f["risk"], "HIGH", "{f}");
    assert!(f["table_rows"].as_i64().unwrap() >= 900_000, "{f}");
    let out = expect_code(&project.run(&db, &["up"]), 3);
    assert!(out.contains("block `strata up`"), "{out}");

    project.write(
        "2_drop.up.sql",
        "-- strata:allow ban-drop-column reason: test\nALTER TABLE orders DROP COLUMN note;\n",
    );
    let started = Instant::now();
    let out = expect_code(&project.run(&db, &["up"]), 0);
    let up = started.elapsed();
    let files = dumps(&project);
    assert_eq!(files.len(), 1, "{out}");
    assert_eq!(
        sidecar_tables(&files[0]),
        [
            "public.orders",
            "public.orders_0",
            "public.orders_1",
            "public.orders_2",
            "public.orders_3"
        ]
    );
    let started = Instant::now();
    restore(&project, &db, &files[0]);
    let restored = started.elapsed();
    assert_eq!(
        count(&db, "SELECT count(note) FROM orders").await,
        1_000_000
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'orders'::regclass"
        )
        .await,
        4
    );
    // Restoring only the parent by name brings its partitions too (a bare
    // pg_restore --table would drop them and restore an empty parent).
    db.connect()
        .await
        .batch("DELETE FROM orders WHERE id % 3 = 0")
        .await
        .unwrap();
    expect_code(
        &project.run(
            &db,
            &[
                "restore",
                files[0].to_str().unwrap(),
                "--table",
                "orders",
                "--yes",
            ],
        ),
        0,
    );
    assert_eq!(
        count(&db, "SELECT count(note) FROM orders").await,
        1_000_000
    );
    eprintln!("1M rows: fill {filled:?}, up with backup {up:?}, restore {restored:?}");
}

#[tokio::test]
async fn rename_then_drop_in_an_up_script_is_backed_up_as_the_dry_run_said() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id int PRIMARY KEY, v text);\n");
    db.connect()
        .await
        .batch("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50000) g")
        .await
        .unwrap();
    // Migration 2 creates and fills a table, 3 drops it after a rename, 4
    // renames t and drops it: all in one run.
    project.write(
        "2_archive.up.sql",
        "CREATE TABLE archive AS SELECT * FROM t WHERE id <= 100;\n",
    );
    project.write(
        "3_drop_archive.up.sql",
        "-- strata:allow ban-drop-table, ban-rename-table reason: test\n\n\
         ALTER TABLE archive RENAME TO archive_old;\nDROP TABLE archive_old;\n",
    );
    project.write(
        "4_swap.up.sql",
        "-- strata:allow ban-drop-table, ban-rename-table reason: test\n\n\
         ALTER TABLE t RENAME TO t_old;\nCREATE TABLE t (id int PRIMARY KEY, v text);\nDROP TABLE t_old;\n",
    );
    let dry = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    let promised = dry_run_tables(&dry);
    assert_eq!(
        promised,
        [
            vec!["public.archive".to_owned()],
            vec!["public.t".to_owned()]
        ],
        "{dry}"
    );

    let out = expect_code(&project.run(&db, &["up"]), 0);
    let files = dumps(&project);
    let taken: Vec<Vec<String>> = files.iter().map(|f| sidecar_tables(f)).collect();
    assert_eq!(
        taken, promised,
        "the real run did what the dry run said\n{out}"
    );
    assert!(files[0].to_string_lossy().ends_with("_3.dump"), "{files:?}");
    assert!(files[1].to_string_lossy().ends_with("_4.dump"), "{files:?}");

    // Restoring brings the old t back, under its old name.
    db.connect().await.batch("DROP TABLE t").await.unwrap();
    restore(&project, &db, &files[1]);
    assert_eq!(count(&db, "SELECT count(*) FROM t").await, 50_000);
    restore(&project, &db, &files[0]);
    assert_eq!(count(&db, "SELECT count(*) FROM archive").await, 100);
}

#[tokio::test]
async fn rename_then_drop_in_a_down_script_is_backed_up() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE keep (id int);\n");
    project.write(
        "2_t.up.sql",
        "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 50000);\n",
    );
    project.write(
        "2_t.down.sql",
        "ALTER TABLE t RENAME TO t_old;\nDROP TABLE t_old;\n",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    let dry = expect_code(&project.run(&db, &["down", "--dry-run"]), 0);
    assert_eq!(dry_run_tables(&dry), [vec!["public.t".to_owned()]], "{dry}");
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(out.contains("backed up public.t"), "{out}");
    let files = dumps(&project);
    assert_eq!(files.len(), 1);
    assert!(!db.has_table("t").await);
    restore(&project, &db, &files[0]);
    assert_eq!(count(&db, "SELECT count(*) FROM t").await, 50_000);
}

#[tokio::test]
async fn a_large_delete_with_a_where_is_backed_up_and_a_small_one_is_not() {
    let db = TestDb::new().await;
    let project = Project::applied(
        &db,
        "CREATE TABLE events (id int PRIMARY KEY, kind text);\n",
    );
    db.connect()
        .await
        .batch(
            "INSERT INTO events SELECT g, 'k' FROM generate_series(1, 200000) g; ANALYZE events;",
        )
        .await
        .unwrap();
    project.write("2_one.up.sql", "DELETE FROM events WHERE id = 7;\n");
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(dumps(&project).is_empty(), "one row needs no backup: {out}");

    project.write("3_most.up.sql", "DELETE FROM events WHERE id > 10;\n");
    let dry = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert_eq!(
        dry_run_tables(&dry),
        [vec!["public.events".to_owned()]],
        "{dry}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("planner: ~"), "{out}");
    let files = dumps(&project);
    assert_eq!(files.len(), 1, "{out}");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 9);
    restore(&project, &db, &files[0]);
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 199_999);

    // An UPDATE overwriting a column with NULL counts too; the threshold is
    // configurable.
    project.config("backup_min_rows = 1000000\n");
    project.write(
        "4_null.up.sql",
        "UPDATE events SET kind = NULL WHERE id > 5;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("UPDATE public.events SET ... = constant"),
        "over 10 % of the table: {out}"
    );
    assert_eq!(dumps(&project).len(), 2);
}

#[tokio::test]
async fn a_backup_without_a_tables_data_stops_the_migration() {
    let db = TestDb::new().await;
    let project = Project::applied(
        &db,
        "CREATE TABLE users (id int, email text);\nCREATE TABLE other (id int);\n",
    );
    db.connect()
        .await
        .batch("INSERT INTO users SELECT g, 'e' FROM generate_series(1, 1000) g")
        .await
        .unwrap();
    // A real pg_dump, wrapped so that it leaves out the rows of users.
    // The directory of the pg_dump Strata would use (a server-only
    // installation has none of its own; see `Binaries::tool`).
    let pg_dump = strata::localpg::Binaries::find().unwrap().tool("pg_dump");
    let real = pg_dump.parent().unwrap().to_path_buf();
    let bin = project.path().join("wrapped");
    std::fs::create_dir_all(&bin).unwrap();
    for (tool, extra) in [
        ("pg_dump", " --exclude-table-data=public.users"),
        ("pg_restore", ""),
    ] {
        let path = bin.join(tool);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nif [ \"$1\" = --version ]; then exec '{}/{tool}' --version; fi\nexec '{}/{tool}'{extra} \"$@\"\n",
                real.display(),
                real.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    project.config("pg_bindir = \"wrapped\"\n");
    project.write(
        "2_drop.up.sql",
        "-- strata:allow ban-drop-table reason: test\nDROP TABLE users;\nDROP TABLE other;\n",
    );
    let before = db.schema_fingerprint().await;
    let out = expect_code(&project.run(&db, &["up"]), 1);
    assert!(out.contains("migration 2_drop did not run"), "{out}");
    assert!(out.contains("holds no rows of public.users"), "{out}");
    assert!(out.contains("TABLE DATA"), "{out}");
    assert_eq!(db.schema_fingerprint().await, before, "database untouched");
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 1000);
    assert!(
        dumps(&project).is_empty(),
        "an incomplete dump is not a backup"
    );
}

#[tokio::test]
async fn quoted_mixed_case_dotted_and_schema_names_are_backed_up_and_sized() {
    let db = TestDb::new().await;
    let project = Project::applied(
        &db,
        "CREATE TABLE users (id int);\nCREATE TABLE \"Users\" (id int, x text);\n\
         CREATE TABLE \"my.table\" (id int, x text);\nCREATE SCHEMA \"Sch\";\nCREATE TABLE \"Sch\".t (id int, x text);\n",
    );
    db.connect()
        .await
        .batch(
            "INSERT INTO \"Users\" SELECT g, 'x' FROM generate_series(1, 3000) g;
             INSERT INTO \"my.table\" SELECT g, 'x' FROM generate_series(1, 2000) g;
             INSERT INTO \"Sch\".t SELECT g, 'x' FROM generate_series(1, 1500) g;
             ANALYZE;",
        )
        .await
        .unwrap();
    let sql = "-- strata:allow ban-drop-table, ban-drop-column reason: test\n\n\
               ALTER TABLE \"my.table\" DROP COLUMN x;\nALTER TABLE \"Sch\".t DROP COLUMN x;\nDROP TABLE \"Users\";\n";
    project.write("2_drop.up.sql", sql);
    // Sizes: each finding carries its own table's rows.
    let out = project.run(&db, &["lint", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = |table: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["table"] == table)
            .and_then(|f| f["table_rows"].as_i64())
            .unwrap_or_else(|| panic!("{table}: {v:#}"))
    };
    // Findings name tables as SQL, quoted where PostgreSQL needs it.
    assert_eq!(rows("\"Users\""), 3000);
    assert_eq!(rows("\"my.table\""), 2000);
    assert_eq!(rows("\"Sch\".t"), 1500);

    let out = expect_code(&project.run(&db, &["up"]), 0);
    let files = dumps(&project);
    assert_eq!(
        sidecar_tables(&files[0]),
        ["\"Sch\".t", "public.\"Users\"", "public.\"my.table\""],
        "{out}"
    );
    assert!(db.has_table("users").await, "users is not touched");
    restore(&project, &db, &files[0]);
    assert_eq!(count(&db, "SELECT count(*) FROM \"Users\"").await, 3000);
    assert_eq!(count(&db, "SELECT count(x) FROM \"my.table\"").await, 2000);
    assert_eq!(count(&db, "SELECT count(x) FROM \"Sch\".t").await, 1500);
    assert_eq!(count(&db, "SELECT count(*) FROM users").await, 0);

    // Manual backups take names as SQL does.
    let out = expect_code(&project.run(&db, &["backup", "--table", "\"Users\""]), 0);
    assert!(out.contains("public.\"Users\""), "{out}");
}

/// The pids of `parent`'s children named `name`, from /proc.
fn children(parent: u32, name: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid ..."
            let Some(close) = stat.rfind(')') else {
                return false;
            };
            let comm = &stat[stat.find('(').unwrap_or(0) + 1..close];
            let ppid = stat[close + 1..].split_whitespace().nth(1);
            comm == name && ppid == Some(&parent.to_string())
        })
        .collect()
}

/// True while the process exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let close = s.rfind(')')?;
            s[close + 1..].split_whitespace().next().map(|st| st != "Z")
        })
        .unwrap_or(false)
}

#[tokio::test]
async fn a_killed_backup_leaves_no_pg_dump_and_its_partial_file_is_removed() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE users (id int);\n");
    // Hold a lock that pg_dump waits for, so the backup is in progress.
    let blocker = db.connect().await;
    blocker
        .batch("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let mut child = project.spawn(&db, &["backup", "--table", "users"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    // The partial file exists before the dump's pg_dump starts (an earlier
    // `pg_dump --version` is a child too, briefly).
    let partials = || -> Vec<PathBuf> {
        std::fs::read_dir(project.path().join(".strata/backups"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with(".partial"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (dump, partial) = loop {
        let partial = partials();
        if !partial.is_empty() {
            if let Some(&pid) = children(child.id(), "pg_dump").iter().find(|&&p| alive(p)) {
                break (pid, partial);
            }
        }
        assert!(Instant::now() < deadline, "pg_dump never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(partial.len(), 1, "the dump is in progress");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(dump) {
        assert!(
            Instant::now() < deadline,
            "pg_dump {dump} outlived the strata that started it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    blocker.batch("ROLLBACK").await.unwrap();
    // The next backup removes the partial file and works.
    let out = expect_code(&project.run(&db, &["backup", "--table", "users"]), 0);
    assert!(!partial[0].exists(), "{out}");
    assert_eq!(dumps(&project).len(), 1);
}

#[tokio::test]
async fn sizes_survive_a_table_dropped_while_they_are_read() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch(
        "CREATE TABLE gone (id int); CREATE TABLE stays (id int); INSERT INTO stays VALUES (1)",
    )
    .await
    .unwrap();
    // Our snapshot still shows `gone` in pg_class; its size is NULL by then.
    conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class")
        .await
        .unwrap();
    db.connect().await.batch("DROP TABLE gone").await.unwrap();
    let sizes = strata::db::catalog::table_sizes(&conn).await.unwrap();
    let find = |name: &str| sizes.iter().find(|s| s.1 == name).cloned();
    assert_eq!(find("gone").map(|s| s.3), Some(0), "{sizes:?}");
    assert!(find("stays").unwrap().3 > 0);
    conn.batch("ROLLBACK").await.unwrap();
}

#[tokio::test]
async fn status_beside_a_create_drop_loop_never_panics() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_t.up.sql",
        "ALTER TABLE IF EXISTS churn DROP COLUMN id;\n",
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each statement commits on its own, so that other sessions see the
    // tables come and go; several sessions widen the window.
    let mut churns = Vec::new();
    for n in 0..3 {
        let conn = db.connect().await;
        let flag = stop.clone();
        churns.push(tokio::spawn(async move {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = conn.batch(&format!("CREATE TABLE churn{n} (id int)")).await;
                let _ = conn.batch(&format!("DROP TABLE churn{n}")).await;
            }
        }));
    }
    for _ in 0..10 {
        let out = project.run_async(&db, &["status"]).await;
        let text = crate::support::text(&out);
        assert!(!text.contains("panicked"), "{text}");
        assert_eq!(out.status.code(), Some(0), "{text}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for churn in churns {
        churn.await.unwrap();
    }
}

#[tokio::test]
async fn whole_database_backups_are_checked_too() {
    let db = TestDb::new().await;
    let project = Project::applied(
        &db,
        "CREATE TABLE a (id int);\nCREATE TABLE p (id int) PARTITION BY RANGE (id);\n\
         CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);\nCREATE UNLOGGED TABLE u (id int);\n",
    );
    project.config("backup = \"always\"\n");
    project.write("2_add.up.sql", "ALTER TABLE a ADD COLUMN b int;\n");
    let dry = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert_eq!(
        dry_run_tables(&dry),
        [vec!["the whole database".to_owned()]],
        "{dry}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("backed up the whole database"), "{out}");
    let out = expect_code(&project.run(&db, &["backup"]), 0);
    assert!(out.contains("_manual.dump"), "{out}");
    assert_eq!(dumps(&project).len(), 2);
}

#[tokio::test]
async fn a_partition_swap_rollback_backs_up_the_partitioned_table_it_drops() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE orders (id bigint NOT NULL, v text);\n");
    db.connect()
        .await
        .batch("INSERT INTO orders SELECT g, 'old' FROM generate_series(1, 1000) g")
        .await
        .unwrap();
    // Up swaps in a partitioned copy and fills it; down swaps back and
    // drops the partitioned one, whose rows live in its partitions.
    project.write(
        "2_swap.up.sql",
        "CREATE TABLE orders_p (id bigint NOT NULL, v text) PARTITION BY RANGE (id);\n\
         CREATE TABLE orders_p1 PARTITION OF orders_p FOR VALUES FROM (0) TO (50000);\n\
         CREATE TABLE orders_p2 PARTITION OF orders_p FOR VALUES FROM (50000) TO (100000);\n\
         INSERT INTO orders_p SELECT g, 'new' FROM generate_series(1, 99999) g;\n\
         ALTER TABLE orders RENAME TO orders_old;\nALTER TABLE orders_p RENAME TO orders;\n",
    );
    project.write(
        "2_swap.down.sql",
        "ALTER TABLE orders RENAME TO orders_p;\nALTER TABLE orders_old RENAME TO orders;\nDROP TABLE orders_p;\n",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    let dry = expect_code(&project.run(&db, &["down", "--dry-run"]), 0);
    let expected = vec![
        "public.orders".to_owned(),
        "public.orders_p1".to_owned(),
        "public.orders_p2".to_owned(),
    ];
    assert_eq!(
        dry_run_tables(&dry),
        std::slice::from_ref(&expected),
        "{dry}"
    );
    expect_code(&project.run(&db, &["down"]), 0);
    let files = dumps(&project);
    assert_eq!(sidecar_tables(&files[0]), expected);
    // Restore the dump elsewhere in the same database: into a clean schema
    // state, the partitioned table and its 99,999 rows come back.
    db.connect()
        .await
        .batch("ALTER TABLE orders RENAME TO orders_restored_aside")
        .await
        .unwrap();
    restore(&project, &db, &files[0]);
    assert_eq!(
        count(&db, "SELECT count(*) FROM orders WHERE v = 'new'").await,
        99_999
    );
}

#[tokio::test]
async fn tables_without_rows_are_not_dumped_but_a_filled_one_is() {
    // Bootstrapping a database from a history that drops what it created
    // earlier in the same run: the tables hold no rows, so there is nothing
    // to back up, and no pg_dump runs per migration.
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_create.up.sql",
        "CREATE TABLE a (id int, x text);\nCREATE TABLE b (id int, x text);\n",
    );
    project.write(
        "2_drop.up.sql",
        "-- strata:allow ban-drop-column, ban-drop-table reason: test\n\n\
         ALTER TABLE a DROP COLUMN x;\nDROP TABLE b;\nDELETE FROM a WHERE id > 0;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(dumps(&project).is_empty(), "empty tables: {out}");

    // One row is data: the same kind of step is backed up.
    db.connect()
        .await
        .batch("INSERT INTO a VALUES (1)")
        .await
        .unwrap();
    project.write(
        "3_drop.up.sql",
        "-- strata:allow ban-drop-table reason: test\n\nDROP TABLE a;\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    let files = dumps(&project);
    assert_eq!(files.len(), 1, "{out}");
    assert_eq!(sidecar_tables(&files[0]), ["public.a"], "{out}");
}
