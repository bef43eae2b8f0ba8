//! Shared test support: one throwaway PostgreSQL cluster per test binary, a
//! fresh database per test, and a runner for the `strata` binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use strata::localpg::Throwaway;

static CLUSTER: OnceLock<Throwaway> = OnceLock::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The cluster of this test binary, started on first use and removed when
/// the process exits.
pub fn cluster() -> &'static Throwaway {
    CLUSTER.get_or_init(|| Throwaway::start().expect("start a throwaway PostgreSQL cluster"))
}

/// A fresh, empty database of its own for one test.
pub struct TestDb {
    #[allow(dead_code)]
    pub name: String,
    pub url: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let cluster = cluster();
        let name = format!(
            "t{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let admin = strata::Target::parse(&cluster.conninfo("postgres"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        admin
            .batch(&format!("CREATE DATABASE {name} TEMPLATE template0"))
            .await
            .expect("create a test database");
        TestDb {
            url: cluster.conninfo(&name),
            name,
        }
    }

    pub async fn connect(&self) -> strata::db::Connection {
        strata::Target::parse(&self.url)
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Runs a query and returns the first column of every row as text.
    pub async fn column(&self, sql: &str) -> Vec<String> {
        let conn = self.connect().await;
        conn.query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
            .collect()
    }

    /// True when a relation exists.
    pub async fn has_table(&self, name: &str) -> bool {
        let conn = self.connect().await;
        let row = conn
            .query("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await
            .unwrap();
        row[0].get(0)
    }

    /// `state` of every history row, ordered by version text.
    pub async fn history(&self) -> Vec<(String, String)> {
        let conn = self.connect().await;
        if !self.has_table("public.strata_migrations").await {
            return Vec::new();
        }
        conn.query(
            "SELECT version, state FROM strata_migrations ORDER BY applied_at, version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }

    /// Fills `big (id bigint, payload text)` (created by the caller's
    /// migrations) with `rows` rows of 64-character text: enough for an
    /// index build that lasts a second or two.
    pub async fn fill_big_table(&self, rows: i64) {
        self.connect()
            .await
            .batch(&format!(
                "INSERT INTO big SELECT g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, {rows}) g"
            ))
            .await
            .unwrap();
    }

    /// A session of its own that runs `sql` in a transaction it keeps open,
    /// holding its locks until the caller runs `COMMIT` on it: a gate a
    /// statement of a run waits behind, or a hold on what its next write
    /// needs (see [`kill_in_window`]).
    pub async fn hold(&self, sql: &str) -> strata::db::Connection {
        let session = self.connect().await;
        session.batch(&format!("BEGIN; {sql}")).await.unwrap();
        session
    }

    /// A fingerprint of the user schema, to check that nothing changed.
    pub async fn schema_fingerprint(&self) -> String {
        let conn = self.connect().await;
        let rows = conn
            .query(
                "SELECT string_agg(c.relname || ':' || c.relkind::text, ',' ORDER BY c.relname)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')",
                &[],
            )
            .await
            .unwrap();
        let classes: Option<String> = rows[0].get(0);
        let history = self.history().await;
        format!("{classes:?} {history:?}")
    }
}

/// Runs `strata` in `cwd` against `url`, with no stray database
/// environment variables.
pub fn strata(cwd: &Path, url: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.current_dir(cwd).env("NO_COLOR", "1");
    for var in [
        "DATABASE_URL",
        "STRATA_DATABASE_URL",
        "PGHOST",
        "PGDATABASE",
        "PGPORT",
        "PGUSER",
        "PGPASSWORD",
    ] {
        cmd.env_remove(var);
    }
    if let Some(url) = url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.args(args).output().expect("run strata")
}

/// Stdout and stderr together, for assertions on messages.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts the exit code and returns the combined output.
#[track_caller]
pub fn expect_code(out: &Output, code: i32) -> String {
    let all = text(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit code; output:\n{all}"
    );
    all
}

/// A temporary project directory with a `migrations/` folder.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        Project { dir }
    }

    /// A project whose migrations are a copy of a fixture tree.
    pub fn from_fixture(name: &str) -> Project {
        let project = Project::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        copy_dir(&src, &project.migrations());
        project
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn migrations(&self) -> PathBuf {
        self.dir.path().join("migrations")
    }

    /// A first migration `1_t` with `sql`, applied: the usual starting point
    /// of a test about what a later migration does.
    pub fn applied(db: &TestDb, sql: &str) -> Project {
        let project = Project::new();
        project.write("1_t.up.sql", sql);
        expect_code(&project.run(db, &["up"]), 0);
        project
    }

    /// Writes `strata.toml` in the project directory.
    pub fn config(&self, text: &str) {
        std::fs::write(self.path().join("strata.toml"), text).unwrap();
    }

    /// Writes a file below `migrations/`.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.migrations().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn run(&self, db: &TestDb, args: &[&str]) -> Output {
        strata(self.path(), Some(&db.url), args)
    }

    /// Like [`Project::run`], without blocking the test's runtime, so the
    /// test can act on the database while strata runs.
    pub async fn run_async(&self, db: &TestDb, args: &[&str]) -> Output {
        let (dir, url) = (self.path().to_path_buf(), db.url.clone());
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            strata(&dir, Some(&url), &args)
        })
        .await
        .unwrap()
    }

    /// Starts `strata ARGS` against `db` in the background, output captured.
    pub fn spawn(&self, db: &TestDb, args: &[&str]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_strata"))
            .current_dir(self.path())
            .arg("--database-url")
            .arg(&db.url)
            .args(args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start strata")
    }
}

/// Waits until `sql` (run on `db`) returns `want`, for at most 30 s.
pub async fn wait_for(db: &TestDb, sql: &str, want: &str) {
    let started = Instant::now();
    loop {
        if db.column(sql).await.first().map(String::as_str) == Some(want) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {sql} = {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// Deliberate kills at a chosen point of a run. A "gate" session (see
// [`TestDb::hold`]) holds a lock a statement of the run needs, so the test
// knows where the run is whatever the timing. To kill it in the window
// between a statement and its progress write, a second session holds what
// that write needs (the history row FOR UPDATE, or the event log) before
// the gate opens: the runner finishes the statement, waits to record it,
// and is killed exactly there.

/// Config for the window tests: a lock_timeout long enough that the runner
/// waits for the gate and the held write instead of retrying, and no
/// pre-flight wait for the gate session.
pub const WINDOW_CONFIG: &str = "lock_timeout = \"60s\"\npreflight_wait = \"0s\"\n";

/// Waits until a backend waits for a lock while running a query that
/// matches `like`.
pub async fn wait_for_lock_wait(db: &TestDb, like: &str) {
    wait_for(
        db,
        &format!(
            "SELECT (count(*) > 0)::text FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '{like}' AND pid <> pg_backend_pid() AND datname = current_database()"
        ),
        "true",
    )
    .await;
}

/// Waits until no backend but ours runs a statement matching `like` (the
/// killed runner's backend has gone).
pub async fn wait_until_gone(db: &TestDb, like: &str) {
    wait_for(
        db,
        &format!(
            "SELECT count(*)::text FROM pg_stat_activity WHERE query LIKE '{like}' AND pid <> pg_backend_pid() AND datname = current_database() AND state <> 'idle'"
        ),
        "0",
    )
    .await;
}

/// Runs `strata COMMAND` until it waits behind `gate` in a statement
/// matching `like`, kills it there (SIGKILL), waits until its backend has
/// gone, and commits `gate`: the statement never took effect.
pub async fn kill_while_it_waits(
    db: &TestDb,
    project: &Project,
    command: &str,
    gate: &strata::db::Connection,
    like: &str,
) {
    let mut child = project.spawn(db, &[command]);
    wait_for_lock_wait(db, like).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_until_gone(db, like).await;
    gate.batch("COMMIT").await.unwrap();
}

/// Runs `strata COMMAND` until it waits behind `gate` in a statement
/// matching `like`, `hold`s (in a session of its own) what the write after
/// that statement needs, opens the gate, waits until the runner waits in
/// the write (matching `write_like`), and kills it there (SIGKILL). Returns
/// once the server has ended the dead client's backend while it waited
/// (client_connection_check_interval), before the write could happen; the
/// caller commits the returned session.
pub async fn kill_in_window(
    db: &TestDb,
    project: &Project,
    command: &str,
    gate: &strata::db::Connection,
    like: &str,
    hold: &str,
    write_like: &str,
) -> strata::db::Connection {
    let mut child = project.spawn(db, &[command]);
    wait_for_lock_wait(db, like).await;
    let held = db.hold(hold).await;
    gate.batch("COMMIT").await.unwrap();
    wait_for_lock_wait(db, write_like).await;
    child.kill().unwrap(); // SIGKILL
    let killed = child.wait_with_output().unwrap();
    eprintln!("the killed run said:\n{}", text(&killed));
    wait_until_gone(db, write_like).await;
    held
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let target = dst.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

impl TestDb {
    /// The user catalog as sorted lines, for comparing the end states of
    /// two ways of doing the same change: every column (type, NOT NULL,
    /// default, identity, generated; by name, since an expand/contract
    /// rewrite legitimately moves a column to the end), every constraint
    /// (definition, validated), every index (definition, valid) and every
    /// sequence (type, owning column). Strata's own tables are left out.
    pub async fn catalog(&self) -> Vec<String> {
        let conn = self.connect().await;
        let user = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
                    AND n.nspname NOT LIKE 'pg_temp%'";
        let queries = [
            format!(
                "SELECT 'column ' || c.oid::regclass::text || '.' || quote_ident(a.attname) || ' '
                        || format_type(a.atttypid, a.atttypmod)
                        || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                        || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                        || CASE a.attidentity WHEN '' THEN '' ELSE ' IDENTITY ' || a.attidentity::text END
                        || CASE a.attgenerated WHEN '' THEN '' ELSE ' GENERATED ' || a.attgenerated::text END
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm')
                   AND c.relname NOT LIKE 'strata\\_%' AND {user}"
            ),
            format!(
                "SELECT 'constraint ' || coalesce(nullif(co.conrelid, 0)::regclass::text, co.contypid::regtype::text)
                        || ' ' || quote_ident(co.conname) || ' ' || pg_get_constraintdef(co.oid)
                        || CASE WHEN co.convalidated THEN '' ELSE ' (not validated)' END
                 FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
                 WHERE {user} AND coalesce(nullif(co.conrelid, 0)::regclass::text, '') NOT LIKE 'strata\\_%'"
            ),
            format!(
                "SELECT 'index ' || pg_get_indexdef(i.indexrelid)
                        || CASE WHEN i.indisvalid THEN '' ELSE ' (INVALID)' END
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE {user} AND i.indrelid::regclass::text NOT LIKE 'strata\\_%'"
            ),
            format!(
                "SELECT 'sequence ' || s.seqrelid::regclass::text || ' ' || format_type(s.seqtypid, NULL)
                        || coalesce(' OWNED BY ' || dep.refobjid::regclass::text || '.'
                                    || quote_ident(a.attname) || ' ' || dep.deptype::text, '')
                 FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 LEFT JOIN pg_depend dep ON dep.classid = 'pg_class'::regclass AND dep.objid = s.seqrelid
                      AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
                 LEFT JOIN pg_attribute a ON a.attrelid = dep.refobjid AND a.attnum = dep.refobjsubid
                 WHERE {user} AND c.relname NOT LIKE 'strata\\_%'"
            ),
        ];
        let mut out = Vec::new();
        for q in queries {
            for row in conn.query(&q, &[]).await.unwrap() {
                out.push(row.get::<_, String>(0));
            }
        }
        out.sort();
        out
    }
}
