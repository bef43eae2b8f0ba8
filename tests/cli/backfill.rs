//! Backfills (`strata backfill`, `engine::backfill`): batched, resumable data
//! changes whose result is the single statement's, whatever the key, the
//! interruptions and the concurrent writes.

use std::time::{Duration, Instant};

use strata::engine::backfill::{self, BackfillId, BackfillSettings, BackfillSpec};
use strata::engine::History;

use crate::support::{expect_code, text, Project, TestDb};

/// A pseudo-random number below `n`, different in every call and run.
fn random_below(n: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    h.finish() % n.max(1)
}

/// A checksum of a table's rows (in a fixed order), comparable between two
/// tables of the same shape.
async fn checksum(db: &TestDb, table: &str) -> String {
    db.column(&format!(
        "SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM (SELECT * FROM {table}) r"
    ))
    .await
    .remove(0)
}

/// Runs `update` on a copy of `table` (`{table}_ref`) in one statement:
/// the result a backfill must reach.
async fn reference(db: &TestDb, table: &str, update: &str) -> String {
    let conn = db.connect().await;
    conn.batch(&format!(
        "CREATE TABLE {table}_ref AS SELECT * FROM {table}; {}",
        update.replacen(
            &format!("UPDATE {table} "),
            &format!("UPDATE {table}_ref "),
            1
        )
    ))
    .await
    .unwrap();
    checksum(db, &format!("{table}_ref")).await
}

/// Batches the backfill has committed (0 before Strata's tables exist).
async fn batches_done(db: &TestDb) -> i64 {
    if !db.has_table("public.strata_progress").await {
        return 0;
    }
    db.column("SELECT coalesce(max((cursor->>'batches')::bigint), 0)::text FROM strata_progress WHERE kind = 'backfill'")
        .await[0]
        .parse()
        .unwrap()
}

/// Batches of a few milliseconds: many batches on small tables.
const SMALL_BATCHES: &str = "[backfill]\nbatch_time = \"2ms\"\n";

/// The details of the newest `backfill` event with `phase`.
async fn last_event(db: &TestDb, phase: &str) -> serde_json::Value {
    let rows = db
        .column(&format!(
            "SELECT details::text FROM strata_events WHERE action = 'backfill' AND details->>'phase' = '{phase}' ORDER BY id DESC LIMIT 1"
        ))
        .await;
    serde_json::from_str(rows.first().map(String::as_str).unwrap_or("null")).unwrap()
}

/// The same UPDATE (`n = n + 1` on the rows with `n % 3 <> 0`: applying it
/// twice or missing a row changes the checksum) through `strata backfill`
/// and as one statement, on a table keyed by each kind of key.
#[tokio::test]
async fn result_equals_the_single_update_for_each_key_kind() {
    let cases = [
        (
            "int_pk",
            "CREATE TABLE int_pk (id bigint PRIMARY KEY, n int, s text);
             INSERT INTO int_pk SELECT g, g, md5(g::text) FROM generate_series(1, 20000) g;
             DELETE FROM int_pk WHERE id % 7 = 0;",
            "primary key",
        ),
        (
            "composite_pk",
            "CREATE TABLE composite_pk (a int, b text, n int, PRIMARY KEY (a, b));
             INSERT INTO composite_pk SELECT g % 50, md5(g::text), g FROM generate_series(1, 20000) g;",
            "primary key",
        ),
        (
            "uuid_pk",
            "CREATE TABLE uuid_pk (id uuid PRIMARY KEY, n int);
             INSERT INTO uuid_pk SELECT md5(g::text)::uuid, g FROM generate_series(1, 20000) g;",
            "primary key",
        ),
        (
            "text_pk",
            "CREATE TABLE text_pk (id text COLLATE \"C\" PRIMARY KEY, n int);
             INSERT INTO text_pk SELECT 'k' || g, g FROM generate_series(1, 20000) g;",
            "primary key",
        ),
        (
            "unique_nn",
            "CREATE TABLE unique_nn (code text NOT NULL UNIQUE, maybe int UNIQUE, n int);
             INSERT INTO unique_nn SELECT 'c' || g, g, g FROM generate_series(1, 20000) g;",
            "unique index",
        ),
        (
            // No key: page ranges. Free space in later pages (deleted rows,
            // vacuumed) receives the new versions of rows updated in earlier
            // batches: they must not be updated again when their page comes.
            "no_key",
            "CREATE TABLE no_key (id int, n int, pad text) WITH (fillfactor = 100);
             INSERT INTO no_key SELECT g, g, repeat('x', 40) FROM generate_series(1, 20000) g;
             DELETE FROM no_key WHERE id > 10000 AND id % 2 = 0;
             VACUUM no_key;",
            "ctid",
        ),
    ];
    for (table, setup, key) in cases {
        let db = TestDb::new().await;
        let conn = db.connect().await;
        for statement in setup.split(';').filter(|s| !s.trim().is_empty()) {
            conn.batch(statement).await.unwrap();
        }
        conn.batch(&format!("ANALYZE {table}")).await.unwrap();
        let project = Project::new();
        project.config(SMALL_BATCHES);
        let want = reference(
            &db,
            table,
            &format!("UPDATE {table} SET n = n + 1 WHERE n % 3 <> 0"),
        )
        .await;
        assert_ne!(
            want,
            checksum(&db, table).await,
            "{table}: the update changes something"
        );
        let out = project.run(
            &db,
            &[
                "backfill",
                table,
                "--set",
                "n = n + 1",
                "--where",
                "n % 3 <> 0",
            ],
        );
        let all = expect_code(&out, 0);
        assert!(
            all.contains(key),
            "{table}: the key chosen is said ({key}):\n{all}"
        );
        assert_eq!(
            checksum(&db, table).await,
            want,
            "{table}: same result as one UPDATE\n{all}"
        );
        let finish = last_event(&db, "finish").await;
        assert!(
            finish["batches"].as_u64().unwrap_or(0) > 3,
            "{table}: it ran in several batches: {finish}"
        );
    }
}

/// 1,000,000 rows; the backfill is killed with SIGKILL 20 times at random
/// moments (between and inside batches), then run to the end: the table is
/// exactly what one UPDATE makes of it.
#[tokio::test]
async fn kill_dash_nine_twenty_times_then_resume_gives_the_single_updates_result() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE big (id int PRIMARY KEY, n int NOT NULL, note text);
             INSERT INTO big SELECT g, g, NULL FROM generate_series(1, 1000000) g;
             ANALYZE big;",
        )
        .await
        .unwrap();
    let update = "UPDATE big SET n = n * 2 + 1, note = 'x' || n WHERE n % 10 <> 3";
    let want = reference(&db, "big", update).await;
    let project = Project::new();
    // Small batches, so 20 kills land before the end.
    project.config("[backfill]\nbatch_time = \"3ms\"\n");
    let args = [
        "backfill",
        "big",
        "--set",
        "n = n * 2 + 1, note = 'x' || n",
        "--where",
        "n % 10 <> 3",
    ];
    let mut kills = 0;
    let started = Instant::now();
    while kills < 20 {
        assert!(started.elapsed() < Duration::from_secs(240), "too slow");
        let before = batches_done(&db).await;
        let mut child = project.spawn(&db, &args);
        // Wait until this run has committed a batch of its own, then a
        // random moment more: a kill between batches or inside one.
        let waited = Instant::now();
        loop {
            let now = batches_done(&db).await;
            if now > before
                || child.try_wait().unwrap().is_some()
                || waited.elapsed() > Duration::from_secs(30)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(random_below(40))).await;
        if child.try_wait().unwrap().is_some() {
            panic!("the backfill finished before 20 kills ({kills} so far): make batches smaller");
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
    }
    assert_ne!(
        checksum(&db, "big").await,
        want,
        "killed runs left work to do"
    );
    // Settings are not part of what a resume checks: the last run goes on
    // with the default batch time.
    project.config("");
    let status = project.run(&db, &["status"]);
    let shown = text(&status);
    assert!(
        shown.contains("interrupted") && shown.contains("strata backfill big"),
        "{shown}"
    );
    let out = project.run(&db, &args);
    let all = expect_code(&out, 0);
    assert!(all.contains("resum"), "{all}");
    assert_eq!(
        checksum(&db, "big").await,
        want,
        "same result as one UPDATE after 20 kills\n{all}"
    );
    let resumes = db
        .column("SELECT count(*)::text FROM strata_events WHERE action = 'backfill' AND details->>'phase' = 'resume'")
        .await;
    assert_eq!(resumes, ["20"], "every run after the first resumed");
    // The time of the killed runs counts: the finish event's total is more
    // than its last run's.
    let finish = last_event(&db, "finish").await;
    let total = finish["elapsed_ms"].as_i64().unwrap_or(0);
    let last_run = db
        .column("SELECT duration_ms::text FROM strata_events WHERE action = 'backfill' AND details->>'phase' = 'finish'")
        .await[0]
        .parse::<i64>()
        .unwrap();
    assert!(total > last_run, "{finish}");
}

/// An application keeps inserting and updating rows while the backfill runs:
/// the backfill ends, the rows it was meant to change are changed, and rows
/// the application wrote are untouched unless the statement's WHERE
/// selects them.
#[tokio::test]
async fn concurrent_writers_cannot_keep_it_running_and_their_rows_are_untouched_unless_selected() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL, email_lower text);
             INSERT INTO users (email) SELECT 'User' || g || '@Example.COM' FROM generate_series(1, 100000) g;
             ANALYZE users;",
        )
        .await
        .unwrap();
    let project = Project::new();
    project.config("[backfill]\nbatch_time = \"5ms\"\n");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let app = db.connect().await;
        tokio::spawn(async move {
            let mut i: i64 = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                i += 1;
                // New rows: some with the column set by the app, some not.
                app.batch(&format!(
                    "INSERT INTO users (email, email_lower) VALUES ('New{i}@X.COM', 'app-set-{i}'), ('Plain{i}@X.COM', NULL)"
                ))
                .await
                .unwrap();
                // Existing rows the app sets itself: not selected by the WHERE.
                let id = 1 + (i * 7919) % 100000;
                app.batch(&format!(
                    "UPDATE users SET email_lower = 'app-updated' WHERE id = {id}"
                ))
                .await
                .unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        project.run_async(
            &db,
            &[
                "backfill",
                "users",
                "--set",
                "email_lower = lower(email)",
                "--where",
                "email_lower IS NULL",
            ],
        ),
    )
    .await
    .expect("the backfill ends under a continuous insert load");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let writes = writer.await.unwrap();
    let all = expect_code(&out, 0);
    assert!(
        writes > 20,
        "the application wrote during the backfill ({writes})\n{all}"
    );
    let check = |sql: &str| {
        let sql = sql.to_owned();
        let db = &db;
        async move { db.column(&sql).await.remove(0) }
    };
    // Rows of the table when it started: changed, unless the app set them.
    assert_eq!(
        check("SELECT count(*)::text FROM users WHERE id <= 100000 AND email_lower IS DISTINCT FROM lower(email) AND email_lower <> 'app-updated'").await,
        "0"
    );
    // What the application wrote is untouched.
    assert_eq!(
        check("SELECT count(*)::text FROM users WHERE email LIKE 'New%' AND email_lower NOT LIKE 'app-set-%'").await,
        "0"
    );
    assert_ne!(
        check("SELECT count(*)::text FROM users WHERE email_lower = 'app-updated'").await,
        "0"
    );
    // The upper bound was fixed when it started: rows inserted after it
    // are never walked, so a continuous insert load cannot keep it going.
    let upper =
        check("SELECT cursor->'upper'->>0 FROM strata_progress WHERE kind = 'backfill'").await;
    let after: i64 = check(&format!(
        "SELECT count(*)::text FROM users WHERE id > {upper} AND email LIKE 'Plain%' AND email_lower IS NULL"
    ))
    .await
    .parse()
    .unwrap();
    assert!(after > 0, "rows were inserted after it started");
    assert_eq!(
        check(&format!(
            "SELECT count(*)::text FROM users WHERE id > {upper} AND email_lower = lower(email)"
        ))
        .await,
        "0"
    );
}

/// A backfill that was interrupted refuses to resume with another
/// statement, changes nothing, and says why; `--restart` starts over.
#[tokio::test]
async fn refuses_to_resume_when_the_statement_changed() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE t (id int PRIMARY KEY, n int);
             INSERT INTO t SELECT g, g FROM generate_series(1, 100000) g;
             ANALYZE t;",
        )
        .await
        .unwrap();
    let project = Project::new();
    project.config("[backfill]\nbatch_time = \"2ms\"\n");
    let mut child = project.spawn(&db, &["backfill", "t", "--set", "n = n + 1"]);
    let started = Instant::now();
    while batches_done(&db).await <= 3 {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    project.config("");
    let before = checksum(&db, "t").await;
    let out = project.run(&db, &["backfill", "t", "--set", "n = n + 2"]);
    let all = expect_code(&out, 2);
    assert!(
        all.contains("cannot resume") && all.contains("statement changed"),
        "{all}"
    );
    assert!(
        all.contains("n = n + 1") && all.contains("--restart"),
        "{all}"
    );
    assert_eq!(checksum(&db, "t").await, before, "nothing ran");
    let dropped = {
        // The same statement on a table dropped and created again.
        let conn = db.connect().await;
        conn.batch("CREATE TABLE t2 AS SELECT * FROM t; DROP TABLE t; ALTER TABLE t2 RENAME TO t; ALTER TABLE t ADD PRIMARY KEY (id)")
            .await
            .unwrap();
        project.run(&db, &["backfill", "t", "--set", "n = n + 1"])
    };
    let all = expect_code(&dropped, 2);
    assert!(all.contains("not the table it started on"), "{all}");
    let out = project.run(&db, &["backfill", "t", "--set", "n = n + 2", "--restart"]);
    expect_code(&out, 0);
}

/// DELETE and INSERT … SELECT through the engine give the single
/// statement's result.
#[tokio::test]
async fn delete_and_insert_select_in_batches_equal_the_single_statement() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch(
        "CREATE TABLE orders (id int PRIMARY KEY, doc jsonb NOT NULL);
         INSERT INTO orders SELECT g, jsonb_build_object('items', jsonb_build_array(jsonb_build_object('sku', 'a' || g), jsonb_build_object('sku', 'b' || g)))
           FROM generate_series(1, 20000) g;
         CREATE TABLE items (order_id int, sku text);
         CREATE TABLE items_ref (order_id int, sku text);
         INSERT INTO items_ref (order_id, sku) SELECT o.id, x->>'sku' FROM orders o, jsonb_array_elements(o.doc->'items') x WHERE o.id % 4 <> 0;
         CREATE TABLE logs (id int PRIMARY KEY, at int);
         INSERT INTO logs SELECT g, g % 100 FROM generate_series(1, 20000) g;
         CREATE TABLE logs_ref AS SELECT * FROM logs;
         DELETE FROM logs_ref WHERE at < 30;
         ANALYZE;",
    )
    .await
    .unwrap();
    let history = History::new("public", "strata_migrations");
    history.ensure(&conn).await.unwrap();
    let target = strata::Target::parse(&db.url).unwrap();
    let settings = BackfillSettings {
        batch_time: Duration::from_millis(2),
        ..BackfillSettings::default()
    };
    for (step, sql) in [
        (
            1,
            "INSERT INTO items (order_id, sku) SELECT o.id, x->>'sku' FROM orders o, jsonb_array_elements(o.doc->'items') x WHERE o.id % 4 <> 0",
        ),
        (2, "DELETE FROM logs WHERE at < 30"),
    ] {
        let spec = BackfillSpec::from_sql(sql).unwrap();
        let id = BackfillId::new(history.clone(), "test", step);
        let mut batches = 0;
        let outcome = backfill::run(&target, &conn, &id, &spec, &settings, &mut |e| {
            if let backfill::BackfillEvent::Progress(p) = e {
                batches = p.batches;
            }
        })
        .await
        .unwrap();
        assert!(batches > 3, "{sql}: several batches ({batches})");
        assert!(!outcome.already_done);
        // Run again: it had finished, nothing is done twice.
        let again = backfill::run(&target, &conn, &id, &spec, &settings, &mut |_| {})
            .await
            .unwrap();
        assert!(again.already_done, "{sql}");
    }
    assert_eq!(
        checksum(&db, "items").await,
        checksum(&db, "items_ref").await
    );
    assert_eq!(checksum(&db, "logs").await, checksum(&db, "logs_ref").await);
}

/// Bad input: a clear error, exit 2, nothing changed, nothing recorded.
#[tokio::test]
async fn bad_input_changes_nothing() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch("CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t SELECT g, g FROM generate_series(1, 100) g;")
        .await
        .unwrap();
    let project = Project::new();
    let before = checksum(&db, "t").await;
    for (args, says) in [
        (vec!["backfill", "nope", "--set", "n = 1"], "no such table"),
        (vec!["backfill", "t", "--set", "nope = 1"], "nope"),
        (
            vec!["backfill", "t", "--set", "n = no_such_function(n)"],
            "no_such_function",
        ),
        (
            vec!["backfill", "t", "--set", "n = 1", "--where", "n >"],
            "does not parse",
        ),
        (
            vec!["backfill", "t", "--set", "n = 1; DROP TABLE t"],
            "exactly one statement",
        ),
        (vec!["backfill", "t", "--set", "id = id + 1"], "key"),
        (
            vec!["backfill", "t", "--set", "n = 1", "--batch-time", "soon"],
            "soon",
        ),
    ] {
        let out = project.run(&db, &args);
        let all = expect_code(&out, 2);
        assert!(all.contains(says), "{args:?}: {all}");
        assert!(!all.contains("panicked"), "{all}");
    }
    assert_eq!(checksum(&db, "t").await, before);
    assert!(
        !db.has_table("public.strata_progress").await
            || db
                .column("SELECT count(*)::text FROM strata_progress")
                .await
                == ["0"]
    );
}

/// The dry run shows the key, the bounds and the estimate, and changes nothing.
#[tokio::test]
async fn dry_run_shows_the_batched_plan() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch("CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t SELECT g, g FROM generate_series(1, 5000) g; ANALYZE t;")
        .await
        .unwrap();
    let project = Project::new();
    let before = checksum(&db, "t").await;
    let out = project.run(&db, &["backfill", "t", "--set", "n = n + 1", "--dry-run"]);
    let all = expect_code(&out, 0);
    assert!(all.contains("key: id (the primary key"), "{all}");
    assert!(all.contains("upper bound, fixed at start: 5000"), "{all}");
    assert!(all.contains("first batch: id <= 1000"), "{all}");
    assert!(all.contains("~5,000 rows"), "{all}");
    assert_eq!(checksum(&db, "t").await, before);
    assert!(!db.has_table("public.strata_migrations").await);
}

/// Killed in the window between a batch's statement and its cursor write
/// (the cursor row is held by another session, so the write waits): the
/// batch rolls back with the process, and the resumed backfill ends with
/// the single UPDATE's result: a batch is never applied twice.
#[tokio::test]
async fn a_kill_between_a_batch_and_its_cursor_write_loses_the_batch_not_the_count() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE t (id int PRIMARY KEY, n int);
             INSERT INTO t SELECT g, g FROM generate_series(1, 50000) g;
             ANALYZE t;",
        )
        .await
        .unwrap();
    let want = reference(&db, "t", "UPDATE t SET n = n * 3").await;
    let project = Project::new();
    project.config("[backfill]\nbatch_time = \"2ms\"\n");
    let mut child = project.spawn(&db, &["backfill", "t", "--set", "n = n * 3"]);
    let started = Instant::now();
    while batches_done(&db).await <= 2 {
        assert!(started.elapsed() < Duration::from_secs(30), "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let held = db
        .hold("SELECT 1 FROM strata_progress WHERE kind = 'backfill' FOR UPDATE")
        .await;
    crate::support::wait_for_lock_wait(&db, "INSERT INTO %strata_progress%").await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    held.batch("COMMIT").await.unwrap();
    project.config("");
    let out = project.run(&db, &["backfill", "t", "--set", "n = n * 3"]);
    let all = expect_code(&out, 0);
    assert_eq!(checksum(&db, "t").await, want, "{all}");
}

/// A replica whose replay is paused lags more and more: the backfill
/// pauses before its batches, says why, and goes on once the replica
/// replays again.
#[tokio::test]
async fn a_lagging_replica_pauses_the_backfill_until_it_catches_up() {
    use strata::localpg::Throwaway;
    let primary = Throwaway::start().expect("start a primary");
    let standby = primary.start_standby().expect("start a streaming replica");
    let connect = |info: String| async move {
        strata::Target::parse(&info)
            .unwrap()
            .connect()
            .await
            .unwrap()
    };
    connect(primary.conninfo("postgres"))
        .await
        .batch("CREATE DATABASE r")
        .await
        .unwrap();
    let url = primary.conninfo("r");
    let db = connect(url.clone()).await;
    db.batch(
        "CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t SELECT g, g FROM generate_series(1, 20000) g;
         CREATE TABLE ticks (at timestamptz); ANALYZE t;",
    )
    .await
    .unwrap();
    let started = Instant::now();
    loop {
        let rows = connect(primary.conninfo("postgres"))
            .await
            .query("SELECT state FROM pg_stat_replication", &[])
            .await
            .unwrap();
        if rows.iter().any(|r| r.get::<_, String>(0) == "streaming") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replica never streamed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let standby_conn = connect(standby.conninfo("postgres")).await;
    standby_conn
        .batch("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    let writer = {
        let app = connect(url.clone()).await;
        tokio::spawn(async move {
            loop {
                let _ = app.batch("INSERT INTO ticks VALUES (now())").await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let project = Project::new();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(project.path())
        .env("NO_COLOR", "1")
        .args([
            "--database-url",
            &url,
            "backfill",
            "t",
            "--set",
            "n = n + 1",
            "--max-replication-lag",
            "1s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let changed = db
        .query("SELECT count(*)::text FROM t WHERE n <> id", &[])
        .await
        .unwrap()[0]
        .get::<_, String>(0);
    assert_eq!(changed, "0", "no batch ran while the replica lagged");
    standby_conn
        .batch("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    writer.abort();
    let all = expect_code(&out, 0);
    assert!(
        all.contains("pause: a replica lags") && all.contains("max_replication_lag = 1s"),
        "{all}"
    );
    let changed = db
        .query("SELECT count(*)::text FROM t WHERE n = id + 1", &[])
        .await
        .unwrap()[0]
        .get::<_, String>(0);
    assert_eq!(changed, "20000", "{all}");
}
