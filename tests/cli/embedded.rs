//! The library with embedded migrations (issue 12): the example application
//! (examples/embedded) migrates a fresh database at startup and writes the
//! history `strata up` writes for the same files; a bad embedded file fails
//! the build with file:line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::support::{expect_code, strata, text, TestDb};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> SystemTime {
    let mut latest = SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let time = if path.is_dir() {
            newest(&path)
        } else {
            path.metadata().unwrap().modified().unwrap()
        };
        latest = latest.max(time);
    }
    latest
}

/// The example's binary. `cargo test --workspace` builds it (the example's
/// own integration test needs it); when only this test binary was built, or
/// the example changed since, build it here.
fn example_binary() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_strata")).with_file_name("strata-example-embedded");
    let example = root().join("examples/embedded");
    let fresh = bin
        .metadata()
        .and_then(|m| m.modified())
        .is_ok_and(|built| {
            built >= newest(&example.join("src")).max(newest(&example.join("migrations")))
        });
    if !fresh {
        let out = Command::new(env!("CARGO"))
            .current_dir(root())
            .args(["build", "-p", "strata-example-embedded"])
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo build: {}", text(&out));
    }
    bin
}

/// What a history row says about a migration, as text.
const ROWS: &str = "SELECT version || ' ' || kind || ' ' || name || ' ' || checksum || ' ' \
    || checksum_algorithm || ' ' || state || ' ' || statements_done || '/' || statements_total \
    FROM strata_migrations ORDER BY version";
const EVENTS: &str = "SELECT action || ' ' || version || ' ' || success || ' ' \
    || coalesce(details->>'dir', '-') FROM strata_events WHERE action = 'up' ORDER BY id";

#[tokio::test]
async fn the_embedded_example_migrates_at_startup_like_strata_up() {
    let app = example_binary();
    let db = TestDb::new().await;
    // Its own empty working directory: nothing of the source tree is read.
    let cwd = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(&app)
            .arg(&db.url)
            .current_dir(cwd.path())
            .env_remove("DATABASE_URL")
            .output()
            .unwrap()
    };
    let out = expect_code(&run(), 0);
    assert!(out.contains("applied 3 migration(s)"), "{out}");
    assert!(out.contains("20240103080000_index_notes_account"), "{out}");
    assert!(db.has_table("accounts").await && db.has_table("notes").await);
    assert!(db.has_table("notes_account_id_idx").await);

    // The same files applied by the CLI to another fresh database.
    let cli_db = TestDb::new().await;
    let project = tempfile::tempdir().unwrap();
    let migrations = project.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    for entry in std::fs::read_dir(root().join("examples/embedded/migrations")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, migrations.join(path.file_name().unwrap())).unwrap();
    }
    expect_code(&strata(project.path(), Some(&cli_db.url), &["up"]), 0);
    let (embedded, cli) = (db.column(ROWS).await, cli_db.column(ROWS).await);
    assert_eq!(embedded.len(), 3, "{embedded:?}");
    assert_eq!(embedded, cli, "history rows differ");
    assert_eq!(db.column(EVENTS).await, cli_db.column(EVENTS).await);

    // A second start finds nothing to do, and the CLI takes over the
    // database as if it had migrated it.
    let out = expect_code(&run(), 0);
    assert!(out.contains("applied 0 migration(s)"), "{out}");
    expect_code(
        &strata(project.path(), Some(&db.url), &["status", "--exit-code"]),
        0,
    );
}

#[tokio::test]
async fn a_failing_embedded_migration_exits_like_the_cli() {
    let app = example_binary();
    let db = TestDb::new().await;
    // `accounts` exists already: the first migration fails on the server.
    db.connect()
        .await
        .batch("CREATE TABLE accounts (id int)")
        .await
        .unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = Command::new(&app)
        .arg(&db.url)
        .current_dir(cwd.path())
        .output()
        .unwrap();
    let all = expect_code(&out, 1);
    assert!(all.contains("20240101120000_create_accounts"), "{all}");
    assert!(all.contains("already exists"), "{all}");
    assert!(
        !db.has_table("notes").await,
        "nothing after the failure ran"
    );
}

/// The newest `lib<name>-<hash>.<ext>` cargo built next to this test.
fn artifact(name: &str, ext: &str) -> PathBuf {
    let deps = Path::new(env!("CARGO_BIN_EXE_strata")).with_file_name("deps");
    std::fs::read_dir(&deps)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.starts_with(&format!("lib{name}-")) && file.ends_with(ext)
        })
        .max_by_key(|p| p.metadata().unwrap().modified().unwrap())
        .unwrap_or_else(|| panic!("no lib{name}-*{ext} in {}", deps.display()))
}

/// Compiles a one-line crate that embeds `migrations/` of `dir` with the
/// real macro (rustc directly, on the artifacts cargo built for this test:
/// no second build of the dependencies).
fn compile_embedding(dir: &Path) -> std::process::Output {
    std::fs::write(
        dir.join("main.rs"),
        "static M: strata::EmbeddedMigrations = strata::embed_migrations!(\"migrations\");\nfn main() { let _ = strata::Migrator::embedded(M); }\n",
    )
    .unwrap();
    let deps = artifact("strata", ".rlib");
    Command::new("rustc")
        .current_dir(dir)
        .env("CARGO_MANIFEST_DIR", dir)
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "bin",
            "--emit",
            "metadata",
        ])
        .arg("--extern")
        .arg(format!("strata={}", deps.display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.parent().unwrap().display()))
        .arg("-o")
        .arg(dir.join("out.rmeta"))
        .arg("main.rs")
        .output()
        .expect("run rustc")
}

#[test]
fn a_bad_embedded_file_fails_the_build_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(migrations.join("1_ok.up.sql"), "CREATE TABLE a (id int);\n").unwrap();
    std::fs::write(
        migrations.join("2_bad.up.sql"),
        "-- a comment\nCREATE TABLE b (id int);\nCREATE TABLE c (id int,);\n",
    )
    .unwrap();
    std::fs::write(
        migrations.join("3_typo.up.sql"),
        "-- strata:no-transacton\nSELECT 1;\n",
    )
    .unwrap();
    let out = compile_embedding(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("migrations/2_bad.up.sql:3: syntax error"),
        "{stderr}"
    );
    assert!(stderr.contains("migrations/3_typo.up.sql:1:"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");

    // The control: fixed, the same crate compiles.
    std::fs::write(
        migrations.join("2_bad.up.sql"),
        "CREATE TABLE b (id int);\n",
    )
    .unwrap();
    std::fs::write(migrations.join("3_typo.up.sql"), "SELECT 1;\n").unwrap();
    let out = compile_embedding(dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_bad_embedded_plan_file_fails_the_build_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(migrations.join("1_a.up.sql"), "CREATE TABLE a (id int);\n").unwrap();
    let plan = |extra: &str| {
        format!("[[phase]]\nname = \"expand\"\noperations = [\n  {{ op = \"add_column\", table = \"a\", column = \"c\", type = \"int\"{extra} }},\n]\n")
    };
    std::fs::write(migrations.join("2_c.plan.toml"), plan(", nullable = true")).unwrap();
    let out = compile_embedding(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("migrations/2_c.plan.toml:4: unknown field `nullable`"),
        "{stderr}"
    );
    assert!(stderr.contains("help:"), "{stderr}");

    // The control: fixed, the same crate compiles.
    std::fs::write(migrations.join("2_c.plan.toml"), plan("")).unwrap();
    let out = compile_embedding(dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
