//! No input makes `strata` panic: output into a pipe whose reader is gone
//! (`strata rules | head -1`), durations and counts that overflow, huge
//! versions. Each case runs the real binary and checks the exit code and
//! that no panic message appears.

use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{expect_code, text, Project, TestDb};

/// A pipe whose read end is already closed: every write to the other end
/// fails with EPIPE, deterministically (no race with `head` exiting).
fn closed_pipe() -> OwnedFd {
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    write
}

/// Runs `strata ARGS` with stdout (and, with `both`, stderr too, as in
/// `strata … 2>&1 | head -1`) writing into a closed pipe. Gives up after
/// 60 s (a loop that never notices its reader left).
fn run_into_closed_pipe(cwd: &Path, url: Option<&str>, args: &[&str], both: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(cwd).env("NO_COLOR", "1");
    for var in [
        "DATABASE_URL",
        "STRATA_DATABASE_URL",
        "PGHOST",
        "PGDATABASE",
    ] {
        cmd.env_remove(var);
    }
    if let Some(url) = url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(closed_pipe()))
        .stderr(if both {
            Stdio::from(closed_pipe())
        } else {
            Stdio::piped()
        });
    let mut child = cmd.spawn().expect("run strata");
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("strata {args:?} still runs 60 s after its reader left");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[track_caller]
fn assert_quiet(out: &Output, code: i32, what: &str) {
    let all = text(out);
    assert!(!all.contains("panicked"), "{what}: {all}");
    assert_eq!(out.status.code(), Some(code), "{what}: {all}");
}

#[test]
fn offline_commands_end_quietly_when_the_reader_is_gone() {
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id serial);\n");
    for args in [
        &["rules"][..],
        &["explain", "prefer-bigint"],
        &["lint", "migrations"],
        &["lint", "migrations", "--format", "json"],
        &["lint", "migrations", "--format", "sarif"],
        &["local", "status"],
    ] {
        let out = run_into_closed_pipe(project.path(), None, args, false);
        assert_quiet(&out, 0, &format!("{args:?}"));
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out));
    }
}

/// Output lost to a full disk is a failure (exit 1, said on stderr), not a
/// panic and not a silent success.
#[test]
fn a_full_disk_on_stdout_is_an_error() {
    let project = Project::new();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .current_dir(project.path())
        .arg("rules")
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("cannot write to standard output") && !all.contains("panicked"),
        "{all}"
    );
}

/// A closed pipe does not hide the outcome: `strata lint | head` in CI
/// still fails on a HIGH finding.
#[test]
fn a_closed_pipe_keeps_the_exit_code() {
    let project = Project::new();
    project.write("1_a.up.sql", "ALTER TABLE a DROP COLUMN b;\n");
    let out = run_into_closed_pipe(project.path(), None, &["lint"], false);
    assert_quiet(&out, 3, "lint with a HIGH finding");
}

#[tokio::test]
async fn database_commands_end_quietly_when_the_reader_is_gone() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
    // `strata up 2>&1 | head -1`: progress and results both go nowhere;
    // the run still completes.
    let out = run_into_closed_pipe(project.path(), Some(&db.url), &["up"], true);
    assert_quiet(&out, 0, "up");
    assert!(db.has_table("b").await);
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["up", "--dry-run"],
        &["monitor", "--once", "--json"],
        // Without --count, monitor must stop once nobody reads.
        &["monitor", "--json", "--interval", "100ms"],
        &["monitor", "--interval", "100ms"],
    ] {
        let out = run_into_closed_pipe(project.path(), Some(&db.url), args, false);
        assert_quiet(&out, 0, &format!("{args:?}"));
    }
}

#[test]
fn overflowing_durations_and_counts_are_usage_errors() {
    let project = Project::new();
    for args in [
        &["monitor", "--interval", "99999999999999999999h"][..],
        &[
            "monitor",
            "--interval",
            "99999999999999999999999999999999999999999",
        ],
        &["monitor", "--interval", "1e400s"],
        &["monitor", "--interval", "100000000h"],
        &["monitor", "--count", "99999999999999999999999"],
        &["down", "--steps", "99999999999999999999999"],
    ] {
        let out = crate::support::strata(project.path(), Some("host=/nonexistent"), args);
        let all = expect_code(&out, 2);
        assert!(!all.contains("panicked"), "{args:?}: {all}");
    }
    for (key, value) in [
        ("lock_wait", "99999999999999999999h"),
        ("lock_timeout", "99999999999999999999999999999ms"),
        ("lock_retry_budget", "1e400s"),
        ("watchdog", "100000000h"),
        ("max_lock_hold", "99999999999999999999h"),
        ("preflight_wait", "99999999999999999999h"),
        ("statement_timeout", "99999999999999999999h"),
        ("max_replication_lag", "99999999999999999999h"),
    ] {
        project.config(&format!("{key} = \"{value}\"\n"));
        let out = crate::support::strata(project.path(), Some("host=/nonexistent"), &["status"]);
        let all = expect_code(&out, 2);
        assert!(
            all.contains(key) && !all.contains("panicked"),
            "{key}: {all}"
        );
    }
}

#[tokio::test]
async fn huge_versions_are_errors_or_work_never_a_panic() {
    let db = TestDb::new().await;
    // Too large for any integer Strata keeps: an error naming the file.
    let project = Project::new();
    project.write(
        "99999999999999999999999999999999999999999_x.up.sql",
        "SELECT 1;\n",
    );
    let all = expect_code(&project.run(&db, &["up"]), 2);
    assert!(all.contains("version is too large"), "{all}");
    // Large, but within range: applied, and moved to and from.
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("1_a.down.sql", "DROP TABLE a;\n");
    project.write(
        "99999999999999999999999_x.up.sql",
        "CREATE TABLE x (id int);\n",
    );
    project.write("99999999999999999999999_x.down.sql", "DROP TABLE x;\n");
    expect_code(&project.run(&db, &["up"]), 0);
    assert!(db.has_table("x").await);
    let all = expect_code(&project.run(&db, &["status", "--exit-code"]), 0);
    assert!(all.contains("99999999999999999999999"), "{all}");
    for args in [
        &["goto", "999999999999999999999999999999999999999999999"][..],
        &[
            "down",
            "--to",
            "999999999999999999999999999999999999999999999",
        ],
        &[
            "up",
            "--to",
            "999999999999999999999999999999999999999999999",
        ],
    ] {
        let all = text(&project.run(&db, args));
        assert!(!all.contains("panicked"), "{args:?}: {all}");
    }
    expect_code(
        &project.run(&db, &["down", "--steps", "18446744073709551615"]),
        0,
    );
    assert!(!db.has_table("a").await);
    // Flyway: the next version after the largest 64-bit one.
    let project = Project::new();
    project.write("V18446744073709551615__big.sql", "SELECT 1;\n");
    let all = text(&crate::support::strata(
        project.path(),
        None,
        &["new", "next"],
    ));
    assert!(!all.contains("panicked"), "{all}");
}

/// A `%` before a multi-byte character in a URL query (`?x%a€=1`) is not
/// a percent escape; decoding it sliced the text inside the character.
#[test]
fn a_percent_before_a_multibyte_character_in_a_url() {
    let project = Project::new();
    for url in [
        "postgres://u:secret@127.0.0.1:1/db?x%a€=1",
        "postgres://u:secret@127.0.0.1:1/db?x%€x=1",
        "postgres://u:secret@127.0.0.1:1/db?sslmode=%a€x",
    ] {
        let out = crate::support::strata(project.path(), Some(url), &["status"]);
        let all = text(&out);
        assert!(
            matches!(out.status.code(), Some(1 | 2))
                && !all.contains("panicked")
                && !all.contains("secret"),
            "{url}: {all}"
        );
    }
}

/// `index_build_retries` may be as large as u32 allows; counting the
/// attempts for the retry message must not overflow. The index function
/// fails the first build with a serialization failure (transient), so
/// the build is retried once. (The sequence is schema-qualified: from
/// PostgreSQL 17 on, index builds run functions with a search_path of
/// pg_catalog only.)
#[tokio::test]
async fn the_largest_index_build_retries_count_does_not_overflow() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE t (c int); INSERT INTO t VALUES (1);
             CREATE SEQUENCE s;
             CREATE FUNCTION f(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
             BEGIN
               IF nextval('public.s') = 1 THEN
                 RAISE EXCEPTION 'first build fails' USING ERRCODE = 'serialization_failure';
               END IF;
               RETURN $1;
             END $$;",
        )
        .await
        .unwrap();
    let project = Project::new();
    project.config("index_build_retries = 4294967295\n");
    project.write("1_i.up.sql", "CREATE INDEX CONCURRENTLY i ON t (f(c));\n");
    let all = expect_code(&project.run(&db, &["up"]), 0);
    assert!(all.contains("attempt 2 of 4294967296"), "{all}");
    assert!(db.has_table("i").await);
}
