//! Environments: `[env.NAME]` tables in strata.toml selected with `--env`
//! or `STRATA_ENV`, several migration directories merged into one order,
//! and `${name}` placeholders in files that opt in.

use std::process::{Command, Output};

use crate::support::{expect_code, Project, TestDb};

/// Runs strata in the project with no `--database-url` (the config decides)
/// and the given extra environment variables.
fn run_env(project: &Project, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(project.path()).env("NO_COLOR", "1");
    for var in [
        "DATABASE_URL",
        "STRATA_DATABASE_URL",
        "STRATA_ENV",
        "PGHOST",
        "PGDATABASE",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.args(args).output().expect("run strata")
}

/// The versions recorded in the history, in the order they were applied.
async fn versions(db: &TestDb) -> Vec<String> {
    db.history().await.into_iter().map(|(v, _)| v).collect()
}

/// A TOML basic string holding `text`.
fn toml_str(text: &str) -> String {
    format!("{:?}", text)
}

#[tokio::test]
async fn env_table_overrides_database_url_and_block_on() {
    let prod = TestDb::new().await;
    let dev = TestDb::new().await;
    let project = Project::new();
    project.write("1_t.up.sql", "CREATE TABLE t (id int, junk int);\n");
    project.write("2_drop.up.sql", "ALTER TABLE t DROP COLUMN junk;\n");
    project.config(&format!(
        "database_url = {}\nblock_on = \"medium\"\n\n[env.dev]\ndatabase_url = {}\nblock_on = \"never\"\n",
        toml_str(&prod.url),
        toml_str(&dev.url)
    ));
    // Top level: the production database, HIGH findings block.
    expect_code(&run_env(&project, &[], &["up", "--to", "1"]), 0);
    let out = expect_code(&run_env(&project, &[], &["up"]), 3);
    assert!(out.contains("ban-drop-column"), "{out}");
    assert_eq!(versions(&prod).await, ["1"]);
    // --env dev: another database, and block_on = "never" lets the drop run.
    expect_code(&run_env(&project, &[], &["--env", "dev", "up"]), 0);
    assert_eq!(versions(&dev).await, ["1", "2"]);
    assert_eq!(versions(&prod).await, ["1"]);
}

#[tokio::test]
async fn strata_env_selects_like_the_flag_and_the_flag_wins() {
    let a = TestDb::new().await;
    let b = TestDb::new().await;
    let project = Project::new();
    project.write("1_t.up.sql", "CREATE TABLE t (id int);\n");
    project.config(&format!(
        "[env.a]\ndatabase_url = {}\n\n[env.b]\ndatabase_url = {}\n",
        toml_str(&a.url),
        toml_str(&b.url)
    ));
    expect_code(&run_env(&project, &[("STRATA_ENV", "a")], &["up"]), 0);
    assert_eq!(versions(&a).await, ["1"]);
    assert!(versions(&b).await.is_empty());
    expect_code(
        &run_env(&project, &[("STRATA_ENV", "a")], &["--env", "b", "up"]),
        0,
    );
    assert_eq!(versions(&b).await, ["1"]);
    // An unknown name lists the defined ones; nothing runs.
    let out = expect_code(&run_env(&project, &[("STRATA_ENV", "prod")], &["up"]), 2);
    assert!(
        out.contains("`prod`") && out.contains("a, b"),
        "unknown env should list the defined ones: {out}"
    );
    // A typo inside an env table names its line.
    project.config("[env.a]\n\nblock_onn = \"never\"\n");
    let out = expect_code(&run_env(&project, &[], &["validate"]), 2);
    assert!(
        out.contains("strata.toml:3") && out.contains("block_onn"),
        "{out}"
    );
}

#[tokio::test]
async fn merged_directories_apply_in_one_version_order() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", "CREATE TABLE users (id int);\n");
    project.write("3_orders.up.sql", "CREATE TABLE orders (id int);\n");
    project.write(
        "development/2_seed.up.sql",
        "INSERT INTO users VALUES (1), (2);\n",
    );
    project.config(
        "dir = \"migrations\"\n\n[env.dev]\ndirs = [\"migrations\", \"migrations/development\"]\n",
    );
    expect_code(&project.run(&db, &["--env", "dev", "up"]), 0);
    // Applied in version order across both directories (history in
    // applied_at order), and 2_seed found the table 1_users created.
    assert_eq!(versions(&db).await, ["1", "2", "3"]);
    assert_eq!(db.column("SELECT count(*)::text FROM users").await, ["2"]);

    // The same version in two directories is an error naming both files.
    project.write(
        "development/3_other.up.sql",
        "CREATE TABLE other (id int);\n",
    );
    let out = expect_code(&project.run(&db, &["--env", "dev", "validate"]), 2);
    assert!(
        out.contains("3_other.up.sql") && out.contains("3_orders.up.sql"),
        "{out}"
    );
}

#[tokio::test]
async fn switching_environments_never_makes_migrations_missing() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_users.up.sql", "CREATE TABLE users (id int);\n");
    project.write(
        "development/2_seed.up.sql",
        "INSERT INTO users VALUES (1);\n",
    );
    project.config("[env.dev]\ndirs = [\"migrations\", \"migrations/development\"]\n");
    expect_code(&project.run(&db, &["--env", "dev", "up"]), 0);
    // The up event records the directory each migration came from.
    assert_eq!(
        db.column("SELECT details->>'dir' FROM strata_events WHERE action = 'up' ORDER BY version")
            .await,
        ["migrations", "migrations/development"]
    );
    // `down` without --env does not revert dev's migration; it says how.
    let out = expect_code(&project.run(&db, &["down"]), 2);
    assert!(
        out.contains("applied (from migrations/development, env dev)") && out.contains("--env"),
        "{out}"
    );
    assert_eq!(versions(&db).await, ["1", "2"]);
    project.write("3_more.up.sql", "CREATE TABLE more (id int);\n");
    // Without --env, 2_seed's directory is not included: it is shown as
    // applied from that directory, not missing, and `up` goes on.
    let out = expect_code(&project.run(&db, &["status", "--exit-code"]), 3);
    assert!(out.contains(", 0 missing"), "{out}");
    assert!(
        out.contains("applied (from migrations/development, env dev)"),
        "{out}"
    );
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(versions(&db).await, ["1", "2", "3"]);
    let out = expect_code(&project.run(&db, &["status", "--exit-code"]), 0);
    assert!(out.contains(", 0 missing"), "{out}");
    // A migration whose file is in no configured directory is still missing.
    std::fs::remove_file(project.migrations().join("development/2_seed.up.sql")).unwrap();
    let out = expect_code(&project.run(&db, &["status"]), 0);
    assert!(out.contains(", 1 missing"), "{out}");
}

#[tokio::test]
async fn placeholders_are_substituted_outside_dollar_quotes_and_do_not_change_checksums() {
    let db = TestDb::new().await;
    let project = Project::new();
    let sql = "-- strata:placeholders\n\
               CREATE TABLE ${table} (id int, note text DEFAULT '${note}');\n\
               CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '${table}' $$;\n";
    project.write("1_t.up.sql", sql);
    // A file that does not opt in is left alone.
    project.write("2_u.up.sql", "SELECT '${table}' AS untouched;\n");
    project.config(
        "[placeholders]\ntable = \"items\"\nnote = \"top\"\n\n[env.dev.placeholders]\nnote = \"dev\"\n",
    );
    expect_code(&project.run(&db, &["--env", "dev", "up"]), 0);
    assert_eq!(
        db.column("SELECT column_default FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'")
            .await,
        ["'dev'::text"]
    );
    assert_eq!(db.column("SELECT f()").await, ["${table}"]);
    let recorded = db
        .column("SELECT checksum FROM strata_migrations WHERE version = '1'")
        .await;
    assert_eq!(recorded, [strata::source::checksum(sql)]);
    // Other values (the top level's) change nothing recorded: not modified.
    let out = expect_code(&project.run(&db, &["status", "--exit-code"]), 0);
    assert!(out.contains(", 0 modified"), "{out}");
}

#[tokio::test]
async fn an_undefined_placeholder_names_file_and_line() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_t.up.sql",
        "-- strata:placeholders\nCREATE TABLE t (id int);\nCREATE TABLE ${missing_name} (id int);\n",
    );
    project.config("[placeholders]\nother = \"x\"\n");
    let file = ["lint", "migrations/1_t.up.sql"];
    for cmd in [&["validate"][..], &["up"], &["lint"], &file] {
        let out = expect_code(&project.run(&db, cmd), 2);
        assert!(
            out.contains("1_t.up.sql:3") && out.contains("${missing_name}"),
            "{cmd:?}: {out}"
        );
    }
    assert!(versions(&db).await.is_empty());
}
