//! What an `up` costs besides the migrations themselves: no TLS set-up when
//! the server refuses TLS, no rewrite-rate measurement unless an estimate
//! needs it, the rate cache kept out of arbitrary directories, and the
//! round trips per migration.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{cluster, expect_code, text, Project, TestDb};

/// Runs strata in `project` with `XDG_CACHE_HOME` pointing at `cache`, so
/// the user's cache directory is one the test can look into.
fn run_with_cache(project: &Project, cache: &Path, url: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(project.path())
        .env("NO_COLOR", "1")
        .env("XDG_CACHE_HOME", cache);
    for var in ["DATABASE_URL", "STRATA_DATABASE_URL", "PGHOST", "PGPORT"] {
        cmd.env_remove(var);
    }
    cmd.arg("--database-url").arg(url).args(args);
    cmd.output().expect("run strata")
}

async fn big_table(db: &TestDb) {
    db.connect()
        .await
        .batch(
            "CREATE TABLE big (id bigint PRIMARY KEY, note text);
             INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 120000) g;
             ANALYZE big;",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_up_that_needs_no_estimate_measures_no_rewrite_rate() {
    let db = TestDb::new().await;
    // The database has a big table, but the migrations only add new ones.
    big_table(&db).await;
    let project = Project::new();
    project.config("");
    project.write(
        "1_a.up.sql",
        "CREATE TABLE a (id bigint PRIMARY KEY, name text);\nCREATE INDEX a_name ON a (name);\n",
    );
    project.write("2_b.up.sql", "CREATE TABLE b (id bigint PRIMARY KEY);\n");
    let out = expect_code(&project.run(&db, &["-vv", "up"]), 0);
    assert_eq!(db.history().await.len(), 2);
    assert!(
        !out.contains("measuring the server's rewrite rate"),
        "{out}"
    );
    assert!(!project.path().join(".strata/rates.json").exists());
}

#[tokio::test]
async fn the_rate_is_measured_when_an_estimate_needs_it_and_cached_outside_arbitrary_directories() {
    let db = TestDb::new().await;
    big_table(&db).await;
    // No strata.toml: the working directory is not a project.
    let project = Project::new();
    project.write("1_x.up.sql", "CREATE INDEX big_note ON big (note);\n");
    let cache = tempfile::tempdir().unwrap();
    let out = run_with_cache(
        &project,
        cache.path(),
        &db.url,
        &["lint", "--format", "json"],
    );
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    let finding = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["table"] == "big")
        .cloned()
        .unwrap_or_else(|| panic!("{v:#}"));
    assert!(finding["estimate_ms"].as_i64().unwrap() >= 1, "{finding}");
    let cached = std::fs::read_to_string(cache.path().join("strata/rates.json")).unwrap();
    assert!(cached.contains(" v1"), "{cached}");
    assert!(
        !project.path().join(".strata").exists(),
        "nothing written into a directory without strata.toml"
    );
}

/// A role with a password: TCP connections to the test cluster need one.
async fn tcp_url(db: &TestDb) -> String {
    let role = format!("r_{}", db.name);
    db.connect()
        .await
        .batch(&format!(
            "CREATE ROLE {role} LOGIN SUPERUSER PASSWORD 'pw-{role}'"
        ))
        .await
        .unwrap();
    let info = cluster().conninfo("postgres");
    let port = info
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap()
        .to_owned();
    format!("postgres://{role}:pw-{role}@127.0.0.1:{port}/{}", db.name)
}

#[tokio::test]
async fn no_tls_is_set_up_when_the_server_refuses_it() {
    let db = TestDb::new().await;
    let url = tcp_url(&db).await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    // sslmode=prefer (libpq's default): the server without TLS says no,
    // and the connector (the system's CA certificates) is never loaded.
    let cache = tempfile::tempdir().unwrap();
    let out = run_with_cache(&project, cache.path(), &url, &["-vv", "up"]);
    let out = expect_code(&out, 0);
    assert_eq!(db.history().await.len(), 1);
    assert!(!out.contains("building the TLS connector"), "{out}");
}

/// Round trips of the main connection of `strata -vv up` of `n`
/// migrations of `body(i)`, as its debug line says.
async fn round_trips_of_up(n: usize, body: impl Fn(usize) -> String) -> u64 {
    let db = TestDb::new().await;
    let project = Project::new();
    for i in 1..=n {
        project.write(&format!("{i}_t{i}.up.sql"), &body(i));
    }
    let out = expect_code(&project.run(&db, &["-vv", "up"]), 0);
    assert_eq!(db.history().await.len(), n);
    out.lines()
        .filter(|l| l.contains("connection strata (pid"))
        .filter_map(|l| {
            l.split("): ")
                .nth(1)?
                .strip_suffix(" round trips")?
                .parse()
                .ok()
        })
        .max()
        .unwrap_or_else(|| panic!("no round-trip count in:\n{out}"))
}

#[tokio::test]
async fn a_one_statement_transactional_migration_costs_one_round_trip() {
    // BEGIN, SET LOCAL, the statement, the history row and COMMIT are
    // sent together.
    let one = |i: usize| format!("CREATE TABLE t{i} (id int);\n");
    let few = round_trips_of_up(2, one).await;
    let more = round_trips_of_up(6, one).await;
    assert_eq!(more - few, 4, "{few} round trips for 2, {more} for 6");
}

#[tokio::test]
async fn each_further_ddl_statement_of_a_transactional_migration_costs_one_round_trip() {
    // DDL statements go one by one (progress, lock diagnosis); the history
    // row and COMMIT ride with the last.
    let two = |i: usize| {
        format!("CREATE TABLE t{i} (id int, name text);\nCREATE INDEX t{i}_name ON t{i} (name);\n")
    };
    let few = round_trips_of_up(2, two).await;
    let more = round_trips_of_up(6, two).await;
    assert_eq!(more - few, 4 * 2, "{few} round trips for 2, {more} for 6");
}

#[tokio::test]
async fn the_recorded_duration_covers_the_statement_run_with_its_history_row() {
    // The history row goes in the statement's round trip, so the server
    // computes how long the transaction took.
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_slow.up.sql", "SELECT pg_sleep(0.3);\n");
    project.write("2_fast.up.sql", "CREATE TABLE fast (id int);\n");
    expect_code(&project.run(&db, &["up"]), 0);
    let rows = db
        .connect()
        .await
        .query(
            "SELECT version, duration_ms FROM strata_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let ms: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(ms.len(), 2, "{ms:?}");
    assert!((300..5_000).contains(&ms[0].1), "{ms:?}");
    assert!(ms[1].1 < 300, "{ms:?}");
    let events = db
        .connect()
        .await
        .query(
            "SELECT duration_ms FROM strata_events WHERE action = 'up' AND version = '1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].get::<_, Option<i64>>(0), Some(ms[0].1));
}

#[tokio::test]
async fn a_failing_one_statement_migration_names_its_line_and_records_nothing() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("2_b.up.sql", "-- a comment\n\nCREATE TABLE a (id int);\n");
    let out = project.run(&db, &["up"]);
    let out = expect_code(&out, 1);
    assert!(out.contains("statement 1 of 1"), "{out}");
    assert!(out.contains("2_b.up.sql:3"), "{out}");
    assert!(out.contains("already exists"), "{out}");
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
    // The session is usable: nothing left open, and a fixed file applies.
    project.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(db.history().await.len(), 2);
}
