//! Bad input: each case gets a clear message, exit 2 (1 for server errors),
//! and leaves the database exactly as it was.

use crate::support::{cluster, expect_code, strata, Project, TestDb};

/// Applies `1_a`, then sets up the bad case, runs `up` and checks code,
/// message and that nothing changed.
async fn check(setup: impl Fn(&Project), code: i32, needles: &[&str]) {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("2_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("2_a.down.sql", "DROP TABLE a;\n");
    expect_code(&project.run(&db, &["up"]), 0);
    setup(&project);
    let before = db.schema_fingerprint().await;
    let out = expect_code(&project.run(&db, &["up"]), code);
    for needle in needles {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert_eq!(
        db.schema_fingerprint().await,
        before,
        "the database changed"
    );
}

#[tokio::test]
async fn out_of_order_names_the_files() {
    check(
        |p| {
            p.write("1_old.up.sql", "CREATE TABLE old (id int);\n");
        },
        2,
        &[
            "older than the newest applied version 2",
            "1_old.up.sql",
            "--allow-out-of-order",
        ],
    )
    .await;
}

#[tokio::test]
async fn out_of_order_is_allowed_on_request() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("2_a.up.sql", "CREATE TABLE a (id int);\n");
    expect_code(&project.run(&db, &["up"]), 0);
    project.write("1_old.up.sql", "CREATE TABLE old (id int);\n");
    expect_code(&project.run(&db, &["up", "--allow-out-of-order"]), 0);
    assert!(db.has_table("old").await);
}

#[tokio::test]
async fn missing_file() {
    check(
        |p| {
            std::fs::remove_file(p.migrations().join("2_a.up.sql")).unwrap();
            std::fs::remove_file(p.migrations().join("2_a.down.sql")).unwrap();
        },
        2,
        &["have no file any more: 2_a", "--ignore-missing"],
    )
    .await;
}

#[tokio::test]
async fn modified_file_shows_what_changed() {
    check(
        |p| {
            p.write("2_a.up.sql", "CREATE TABLE a (id bigint);\n");
        },
        2,
        &[
            "changed since they were applied",
            "2_a.up.sql",
            "recorded checksum",
            "strata repair",
        ],
    )
    .await;
}

#[tokio::test]
async fn duplicate_version() {
    check(
        |p| {
            p.write("3_x.up.sql", "SELECT 1;\n");
            p.write("03_y.up.sql", "SELECT 2;\n");
        },
        2,
        &["duplicate version 3"],
    )
    .await;
}

#[tokio::test]
async fn empty_file() {
    check(
        |p| {
            p.write("3_empty.up.sql", "-- nothing here\n\n");
        },
        2,
        &["3_empty.up.sql: migration has no SQL statements"],
    )
    .await;
}

#[tokio::test]
async fn non_utf8_file() {
    check(
        |p| {
            std::fs::write(
                p.migrations().join("3_latin1.up.sql"),
                b"SELECT 1;\n-- caf\xe9\n",
            )
            .unwrap();
        },
        2,
        &["3_latin1.up.sql:2: file is not valid UTF-8", "iconv"],
    )
    .await;
}

#[tokio::test]
async fn unknown_directive() {
    check(
        |p| {
            p.write("3_x.up.sql", "-- strata:no-transacton\nSELECT 1;\n");
        },
        2,
        &["3_x.up.sql:1: unknown directive `strata:no-transacton`"],
    )
    .await;
}

#[tokio::test]
async fn psql_meta_command() {
    check(
        |p| {
            p.write("3_x.up.sql", "SELECT 1;\n\\i other.sql\nSELECT 2;\n");
        },
        2,
        &["3_x.up.sql:2:1: psql meta-command `\\i`"],
    )
    .await;
}

#[tokio::test]
async fn syntax_error_in_a_later_file_runs_nothing() {
    check(
        |p| {
            p.write("3_ok.up.sql", "CREATE TABLE ok (id int);\n");
            p.write(
                "4_bad.up.sql",
                "CREATE TABLE fine (id int);\nCREAT TABLE broken ();\n",
            );
        },
        2,
        &["4_bad.up.sql:2:1: syntax error"],
    )
    .await;
}

#[tokio::test]
async fn bad_url() {
    let project = Project::new();
    let out = expect_code(
        &strata(
            project.path(),
            Some("postgres://bob:hunter2@host:notaport/db"),
            &["status"],
        ),
        2,
    );
    assert!(
        out.contains("invalid database URL") && !out.contains("hunter2"),
        "{out}"
    );
    let out = expect_code(
        &strata(
            project.path(),
            Some("host=h sslmode=sometimes password=hunter2"),
            &["status"],
        ),
        2,
    );
    assert!(
        out.contains("unknown sslmode `sometimes`") && !out.contains("hunter2"),
        "{out}"
    );
}

#[tokio::test]
async fn wrong_password_is_redacted() {
    let project = Project::new();
    // TCP connections to the test cluster need a password; the superuser has none.
    let info = cluster().conninfo("postgres");
    let port = info
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("port="))
        .unwrap();
    let url = format!("postgres://postgres:hunter2@127.0.0.1:{port}/postgres?sslmode=disable");
    let out = expect_code(&strata(project.path(), Some(&url), &["status"]), 1);
    assert!(out.contains("password authentication failed"), "{out}");
    assert!(out.contains("check the user name and password"), "{out}");
    assert!(
        !out.contains("hunter2") && out.contains("postgres:***@"),
        "{out}"
    );
}

#[tokio::test]
async fn unreachable_server() {
    let project = Project::new();
    let out = expect_code(
        &strata(
            project.path(),
            Some("postgres://u:hunter2@127.0.0.1:1/db?connect_timeout=2"),
            &["up"],
        ),
        1,
    );
    assert!(
        out.contains("cannot connect to postgres://u:***@127.0.0.1:1/db"),
        "{out}"
    );
    assert!(out.contains("is the server running"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
}

#[tokio::test]
async fn bad_config_file_says_where() {
    let project = Project::new();
    project.config("dir = \"migrations\"\nlock_wiat = \"1s\"\n");
    let out = expect_code(&strata(project.path(), None, &["status"]), 2);
    assert!(
        out.contains("strata.toml:2") && out.contains("lock_wiat"),
        "{out}"
    );
}

#[tokio::test]
async fn long_operator_chains_run_and_lint_with_a_note() {
    let db = TestDb::new().await;
    let project = Project::new();
    let chain = vec!["'x'"; 300].join(" || ");
    project.write(
        "1_deep.up.sql",
        &format!("CREATE TABLE t (v text);\nINSERT INTO t VALUES ({chain});\nINSERT INTO t VALUES ('end');\n"),
    );
    let out = expect_code(&project.run(&db, &["lint"]), 0);
    assert!(
        out.contains("unanalysed-statement") && out.contains("1_deep.up.sql:2"),
        "{out}"
    );
    assert!(
        !out.contains("syntax") && !out.contains("recursion limit"),
        "{out}"
    );
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT length(v)::text FROM t ORDER BY length(v) DESC")
            .await,
        ["300", "3"]
    );
}

/// No form of connection string, however malformed, gets its password
/// printed: every command's connection error is redacted.
#[tokio::test]
async fn connection_errors_never_print_the_password() {
    let project = Project::new();
    let cases: [(&str, &[&str]); 13] = [
        ("bob:Xq7 Zr9@127.0.0.1/db", &["Xq7", "Zr9"]),
        ("host=127.0.0.1 port=1 password=Xq7 Zr9", &["Xq7", "Zr9"]),
        ("host=127.0.0.1 port=1 password='Xq7 Zr9", &["Xq7", "Zr9"]),
        ("postgres://bob:Xq7 Zr9@127.0.0.1:1/db", &["Xq7", "Zr9"]),
        ("postgres://bob:Xq7@Zr9@127.0.0.1:1/db", &["Xq7", "Zr9"]),
        ("postgres://bob:Xq7/Zr9@127.0.0.1:1/db", &["Xq7", "Zr9"]),
        (
            "postgresql://bob:Xq7Zr9@127.0.0.1:1,127.0.0.1:2/db",
            &["Xq7"],
        ),
        ("postgres://bob@127.0.0.1:1/db?PASSWORD=Xq7Zr9", &["Xq7"]),
        (
            "postgres://bob@127.0.0.1:1/db?password=Xq7Zr9&connect_timeout=2",
            &["Xq7"],
        ),
        ("bob:Xq7Zr9@127.0.0.1/db", &["Xq7"]),
        ("host=127.0.0.1 port=1 PASSWORD=Xq7Zr9", &["Xq7"]),
        (
            "host=127.0.0.1 port=1 password = 'Xq7 \\' Zr9'",
            &["Xq7", "Zr9"],
        ),
        ("host=127.0.0.1 port=1 user=bob password=Xq7Zr9", &["Xq7"]),
    ];
    for (url, secrets) in cases {
        for command in [&["status"][..], &["up"], &["lint"], &["backup"]] {
            let out = strata(project.path(), Some(url), command);
            let all = crate::support::text(&out);
            assert_ne!(out.status.code(), Some(0), "{url} {command:?}: {all}");
            for secret in secrets {
                assert!(
                    !all.contains(secret),
                    "{url} {command:?} printed the password:\n{all}"
                );
            }
        }
    }
}

/// Runs strata, failing the test instead of hanging if it does not finish
/// in 30 s (reading a FIFO blocks forever).
fn strata_bounded(project: &Project, url: Option<&str>, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(project.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(url) = url {
        cmd.arg("--database-url").arg(url);
    }
    let mut child = cmd.args(args).spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("strata {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Entries that cannot be migrations are errors naming the path, for
/// every command that reads the directory, and are never opened.
#[tokio::test]
async fn special_entries_in_the_migration_directory_are_errors() {
    type Setup = fn(&std::path::Path);
    let cases: [(&str, Setup, &str); 5] = [
        (
            "3_loop.up.sql",
            |p| std::os::unix::fs::symlink(p, p).unwrap(),
            "symlink loop",
        ),
        (
            "3_gone.up.sql",
            |p| std::os::unix::fs::symlink(p.with_file_name("nowhere.sql"), p).unwrap(),
            "broken symlink",
        ),
        (
            "3_pipe.up.sql",
            |p| nix::unistd::mkfifo(p, nix::sys::stat::Mode::S_IRWXU).unwrap(),
            "is a FIFO",
        ),
        (
            "3_dev.up.sql",
            |p| std::os::unix::fs::symlink("/dev/null", p).unwrap(),
            "is a device",
        ),
        (
            "3_x.up.sql",
            |p| std::fs::create_dir(p).unwrap(),
            "is a directory",
        ),
    ];
    for (name, make, what) in cases {
        let db = TestDb::new().await;
        let project = Project::new();
        project.write("2_a.up.sql", "CREATE TABLE a (id int);\n");
        expect_code(&project.run(&db, &["up"]), 0);
        let before = db.schema_fingerprint().await;
        let path = project.migrations().join(name);
        make(&path);
        for args in [&["up"][..], &["status"], &["validate"], &["lint"]] {
            let out = strata_bounded(&project, Some(&db.url), args);
            let all = expect_code(&out, 2);
            assert!(
                all.contains(name) && all.contains(what),
                "{name} {args:?}:\n{all}"
            );
        }
        let lint_file = format!("migrations/{name}");
        if name != "3_x.up.sql" {
            let all = expect_code(&strata_bounded(&project, None, &["lint", &lint_file]), 2);
            assert!(
                all.contains(name) && all.contains(what),
                "lint {name}:\n{all}"
            );
        }
        assert_eq!(db.schema_fingerprint().await, before, "{name}");
    }
}

#[tokio::test]
async fn a_diesel_folder_without_up_sql_is_an_error() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("2024-01-01-000000_a/up.sql", "CREATE TABLE a (id int);\n");
    project.write("2024-01-01-000000_a/down.sql", "DROP TABLE a;\n");
    expect_code(&project.run(&db, &["up"]), 0);
    project.write("2024-01-02-000000_b/down.sql", "DROP TABLE b;\n");
    let all = expect_code(&project.run(&db, &["status"]), 2);
    assert!(
        all.contains("2024-01-02-000000_b") && all.contains("no up.sql"),
        "{all}"
    );
    // Alone in its directory, too.
    let lone = Project::new();
    lone.write("2024-01-02-000000_b/down.sql", "DROP TABLE b;\n");
    let all = expect_code(&lone.run(&db, &["validate"]), 2);
    assert!(
        all.contains("2024-01-02-000000_b") && all.contains("no up.sql"),
        "{all}"
    );
}

/// Durations beyond what PostgreSQL accepts are config errors naming the
/// key when the config is read: nothing is created, nothing panics.
#[tokio::test]
async fn out_of_range_durations_are_config_errors() {
    for (key, value) in [
        ("lock_timeout", "600h"),
        ("statement_timeout", "25d"),
        ("statement_timeout", "2147483648ms"),
        ("lock_retry_budget", "99999999999999999999999h"),
        ("watchdog", "1e400s"),
        ("preflight_wait", "184467440737095516160s"),
        ("lock_wait", "1000h"),
    ] {
        let db = TestDb::new().await;
        let project = Project::new();
        project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
        project.config(&format!("{key} = \"{value}\"\n"));
        let before = db.schema_fingerprint().await;
        let out = expect_code(&project.run(&db, &["up"]), 2);
        assert!(
            out.contains(key) && !out.contains("panicked"),
            "{key} = {value}:\n{out}"
        );
        assert_eq!(db.schema_fingerprint().await, before, "{key} = {value}");
        assert!(!db.has_table("strata_migrations").await);
    }
}
