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
/// one-statement migrations, as its debug line says.
async fn round_trips_of_up(n: usize) -> u64 {
    let db = TestDb::new().await;
    let project = Project::new();
    for i in 1..=n {
        project.write(
            &format!("{i}_t{i}.up.sql"),
            &format!("CREATE TABLE t{i} (id int);\n"),
        );
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
async fn a_one_statement_migration_costs_two_round_trips() {
    // BEGIN and SET LOCAL go with the statement; the history row with COMMIT.
    let few = round_trips_of_up(2).await;
    let more = round_trips_of_up(6).await;
    assert_eq!(more - few, 4 * 2, "{few} round trips for 2, {more} for 6");
}
