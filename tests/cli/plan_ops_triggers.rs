//! The trigger family of plan operations (`add_required_column`,
//! `set_not_null`, `rename_column`, `change_column_type`, `split_column`)
//! on a real server: each ends in the catalog and data of its naive form
//! (one plain `ALTER`, run on a second database), each step's reverse
//! returns the exact catalog before it, the sync triggers keep every row
//! right under concurrent writers of the old and the new shape, and bad
//! data is reported with its keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata::plan::{Compiled, TableFacts};

use crate::plan_exec::{compile, run, run_down};
use crate::support::TestDb;

const V: &str = "20260301120000";

/// Two fresh databases with the same tables: one for the plan, one for the
/// naive statement.
async fn twin(setup: &str) -> (TestDb, TestDb) {
    let plan = TestDb::new().await;
    let naive = TestDb::new().await;
    for db in [&plan, &naive] {
        db.connect().await.batch(setup).await.unwrap();
    }
    (plan, naive)
}

/// The table as the engine reads it when a step starts.
async fn facts(db: &TestDb, table: &str) -> TableFacts {
    let conn = db.connect().await;
    strata::engine::table_facts(&conn, table)
        .await
        .expect("read the table's facts")
}

/// Compiles one step of `op` against the table's current facts.
async fn step(db: &TestDb, table: &str, step: Option<&str>, op: &str) -> Compiled {
    let facts = facts(db, table).await;
    compile(V, step, Some(&facts), op)
}

/// A checksum of the rows of `select` (a column list and table), in a fixed
/// order, comparable between the two databases whatever the column order.
async fn checksum(db: &TestDb, select: &str) -> String {
    db.column(&format!(
        "SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM (SELECT {select}) r"
    ))
    .await
    .remove(0)
}

/// Strata's helper objects still in the database: triggers and functions.
async fn helpers_left(db: &TestDb) -> Vec<String> {
    db.column(
        "SELECT tgname::text FROM pg_trigger WHERE tgname LIKE 'strata\\_%'
         UNION ALL SELECT proname::text FROM pg_proc WHERE proname LIKE 'strata\\_%'",
    )
    .await
}

/// Runs `up`, failing the test with the executor's message.
async fn up(db: &TestDb, c: &Compiled) {
    if let Err(e) = run(db, &c.up).await {
        panic!("up failed: {e}");
    }
}

/// Runs `down`, failing the test with the executor's message.
async fn down(db: &TestDb, c: &Compiled) {
    if let Err(e) = run_down(db, c).await {
        panic!("down failed: {e}");
    }
}

/// A session of its own running `statements` round robin (`{i}` is a
/// counter) until `stop`; any failed write fails the test.
fn writer(
    db: &TestDb,
    statements: &[&str],
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<usize, String>> {
    let url = db.url.clone();
    let statements: Vec<String> = statements.iter().map(|s| s.to_string()).collect();
    tokio::spawn(async move {
        let conn = strata::Target::parse(&url)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| e.to_string())?;
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            let s = statements[n % statements.len()].replace("{i}", &n.to_string());
            conn.batch(&s).await.map_err(|e| format!("{s}: {e}"))?;
            n += 1;
        }
        Ok(n)
    })
}

/// Stops the writers and checks that each wrote.
async fn stop_writers(
    stop: &AtomicBool,
    writers: Vec<tokio::task::JoinHandle<Result<usize, String>>>,
) {
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        let n = w
            .await
            .expect("writer task")
            .expect("every concurrent write succeeds");
        assert!(n > 0, "a writer ran no statement");
    }
}

const USERS: &str = "CREATE TABLE users (id bigint PRIMARY KEY, email text);
    INSERT INTO users SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'u' || g || '@x.org' END
    FROM generate_series(1, 500) g;";

#[tokio::test]
async fn add_required_column_ends_as_the_naive_add_and_reverses() {
    for (op, naive) in [
        (
            r#"{ op = "add_required_column", table = "users", column = "verified", type = "boolean", default = "false" }"#,
            "ALTER TABLE users ADD COLUMN verified boolean NOT NULL DEFAULT false",
        ),
        (
            r#"{ op = "add_required_column", table = "users", column = "verified", type = "boolean", default = "false", backfill = "email IS NOT NULL" }"#,
            "ALTER TABLE users ADD COLUMN verified boolean; UPDATE users SET verified = email IS NOT NULL;
             ALTER TABLE users ALTER COLUMN verified SET DEFAULT false, ALTER COLUMN verified SET NOT NULL",
        ),
        (
            r#"{ op = "add_required_column", table = "users", column = "\"Joined At\"", type = "date", default = "'2026-01-01'::date + 0" }"#,
            "ALTER TABLE users ADD COLUMN \"Joined At\" date NOT NULL DEFAULT '2026-01-01'::date + 0",
        ),
    ] {
        let (db, naive_db) = twin(USERS).await;
        let before = db.catalog().await;
        let c = compile(V, None, None, op);
        up(&db, &c).await;
        naive_db.connect().await.batch(naive).await.unwrap();
        assert_eq!(db.catalog().await, naive_db.catalog().await, "{op}");
        assert_eq!(
            checksum(&db, "* FROM users").await,
            checksum(&naive_db, "* FROM users").await,
            "{op}"
        );
        // New rows get the default.
        db.connect().await.batch("INSERT INTO users (id) VALUES (1000)").await.unwrap();
        down(&db, &c).await;
        assert_eq!(db.catalog().await, before, "{op}");
        // The reverse may run again (abort after a rollback).
        down(&db, &c).await;
    }
}

#[tokio::test]
async fn set_not_null_ends_as_the_naive_alter_and_lists_null_rows() {
    let setup = "CREATE TABLE \"User Data\" (id int PRIMARY KEY, \"E Mail\" text);
        INSERT INTO \"User Data\" SELECT g, 'm' || g FROM generate_series(1, 300) g;";
    let (db, naive_db) = twin(setup).await;
    let before = db.catalog().await;
    let op = r#"{ op = "set_not_null", table = "\"User Data\"", column = "\"E Mail\"" }"#;
    let c = step(&db, "\"User Data\"", None, op).await;
    up(&db, &c).await;
    naive_db
        .connect()
        .await
        .batch("ALTER TABLE \"User Data\" ALTER COLUMN \"E Mail\" SET NOT NULL")
        .await
        .unwrap();
    assert_eq!(db.catalog().await, naive_db.catalog().await);
    down(&db, &c).await;
    assert_eq!(db.catalog().await, before);

    // NULL rows are named by their keys, and nothing is left half done
    // that a retry would trip on.
    db.connect()
        .await
        .batch("UPDATE \"User Data\" SET \"E Mail\" = NULL WHERE id IN (7, 42)")
        .await
        .unwrap();
    let c = step(&db, "\"User Data\"", None, op).await;
    let e = run(&db, &c.up).await.unwrap_err();
    assert!(
        e.contains(r#"{"id": 7}"#) && e.contains(r#"{"id": 42}"#),
        "{e}"
    );
    db.connect()
        .await
        .batch("UPDATE \"User Data\" SET \"E Mail\" = 'fixed' WHERE \"E Mail\" IS NULL")
        .await
        .unwrap();
    up(&db, &c).await;
    assert_eq!(db.catalog().await, naive_db.catalog().await);
}

const RENAME: &str = "CREATE TABLE \"User Data\" (
        id bigint PRIMARY KEY,
        \"Name\" varchar(100) NOT NULL DEFAULT 'anon' CONSTRAINT name_len CHECK (length(\"Name\") > 0),
        email text,
        UNIQUE (\"Name\")
    );
    CREATE INDEX ON \"User Data\" (lower(\"Name\")) WHERE email IS NOT NULL;
    INSERT INTO \"User Data\" SELECT g, 'name ' || g, CASE WHEN g % 2 = 0 THEN 'e' || g END
    FROM generate_series(1, 400) g;";

const RENAME_OP: &str =
    r#"{ op = "rename_column", table = "\"User Data\"", from = "\"Name\"", to = "\"Full Name\"" }"#;

#[tokio::test]
async fn rename_column_ends_as_the_naive_rename_and_reverses_step_by_step() {
    let (db, naive_db) = twin(RENAME).await;
    let table = "\"User Data\"";
    let before = db.catalog().await;

    let expand = step(&db, table, Some("expand"), RENAME_OP).await;
    up(&db, &expand).await;
    let expanded = db.catalog().await;
    assert!(
        expanded
            .iter()
            .any(|c| c.contains("\"Full Name\" character varying(100) NOT NULL")),
        "{expanded:#?}"
    );
    down(&db, &expand).await;
    assert_eq!(db.catalog().await, before, "expand's reverse");
    assert!(helpers_left(&db).await.is_empty());
    down(&db, &expand).await; // twice: abort after a rollback

    up(&db, &expand).await;
    assert_eq!(db.catalog().await, expanded);
    let contract = step(&db, table, Some("contract"), RENAME_OP).await;
    assert!(contract.drops_data);
    up(&db, &contract).await;
    naive_db
        .connect()
        .await
        .batch("ALTER TABLE \"User Data\" RENAME COLUMN \"Name\" TO \"Full Name\"")
        .await
        .unwrap();
    assert_eq!(db.catalog().await, naive_db.catalog().await);
    let cols = "id, \"Full Name\", email FROM \"User Data\"";
    assert_eq!(checksum(&db, cols).await, checksum(&naive_db, cols).await);
    assert!(helpers_left(&db).await.is_empty());

    // Rows written after the contract come back in the old column.
    db.connect()
        .await
        .batch("INSERT INTO \"User Data\" (id, \"Full Name\") VALUES (1000, 'late')")
        .await
        .unwrap();
    down(&db, &contract).await;
    assert_eq!(db.catalog().await, expanded, "contract's reverse");
    assert_eq!(
        db.column("SELECT \"Name\" FROM \"User Data\" WHERE id = 1000")
            .await,
        ["late"]
    );
    down(&db, &contract).await; // twice
    assert_eq!(db.catalog().await, expanded);
    // And the plan can go forward again.
    up(&db, &contract).await;
    assert_eq!(db.catalog().await, naive_db.catalog().await);
}

#[tokio::test]
async fn rename_column_keeps_both_columns_equal_under_old_and_new_writers() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE people (id bigserial PRIMARY KEY, name text NOT NULL, note text);
             INSERT INTO people (name) SELECT 'p' || g FROM generate_series(1, 20000) g;",
        )
        .await
        .unwrap();
    let op = r#"{ op = "rename_column", table = "people", from = "name", to = "full_name" }"#;
    let expand = step(&db, "people", None, op).await;
    let stop = Arc::new(AtomicBool::new(false));
    let old_app = writer(
        &db,
        &[
            "INSERT INTO people (name) VALUES ('old {i}')",
            "UPDATE people SET name = 'old upd {i}' WHERE id = 1 + ({i} * 13) % 20000",
            "UPDATE people SET note = 'n {i}' WHERE id = 1 + ({i} * 17) % 20000",
        ],
        stop.clone(),
    );
    // The new app can only name the new column once it exists.
    up(
        &db,
        &Compiled {
            up: expand.up[..1].to_vec(),
            ..expand.clone()
        },
    )
    .await;
    let new_app = writer(
        &db,
        &[
            "INSERT INTO people (full_name) VALUES ('new {i}')",
            "UPDATE people SET full_name = 'new upd {i}' WHERE id = 1 + ({i} * 7) % 20000",
            "UPDATE people SET name = 'both {i}', full_name = 'both {i}' WHERE id = 1 + ({i} * 11) % 20000",
        ],
        stop.clone(),
    );
    run(&db, &expand.up[1..])
        .await
        .expect("the rest of expand, with the writers");
    stop_writers(&stop, vec![old_app, new_app]).await;
    assert_eq!(
        db.column("SELECT count(*)::text FROM people WHERE name IS DISTINCT FROM full_name")
            .await,
        ["0"]
    );
}

const AGES: &str =
    "CREATE TABLE people (id int PRIMARY KEY, age varchar(10) NOT NULL, score integer DEFAULT 0);
    CREATE INDEX people_age_idx ON people (age);
    INSERT INTO people SELECT g, (g % 90)::text, g FROM generate_series(1, 400) g;";

#[tokio::test]
async fn change_column_type_ends_as_the_naive_alter_and_expand_reverses() {
    for (setup, op, naive, cols) in [
        (
            AGES,
            r#"{ op = "change_column_type", table = "people", column = "age", type = "integer", using = "trim(age)::integer" }"#,
            "ALTER TABLE people ALTER COLUMN age TYPE integer USING trim(age)::integer",
            "id, age, score FROM people",
        ),
        (
            AGES,
            r#"{ op = "change_column_type", table = "people", column = "score", type = "bigint" }"#,
            "ALTER TABLE people ALTER COLUMN score TYPE bigint",
            "id, age, score FROM people",
        ),
        (
            // Names that need quotes, in a schema off the search_path, a
            // check constraint and a unique constraint on the column.
            "CREATE SCHEMA app;
             CREATE TABLE app.\"People\" (id int PRIMARY KEY,
                 \"Age Text\" text NOT NULL CONSTRAINT \"Age ok\" CHECK ((\"Age Text\" || '') <> '-1') UNIQUE);
             INSERT INTO app.\"People\" SELECT g, (g * 3)::text FROM generate_series(1, 300) g;",
            r#"{ op = "change_column_type", table = 'app."People"', column = '"Age Text"', type = "numeric(10,2)", using = '"Age Text"::numeric / 2' }"#,
            "ALTER TABLE app.\"People\" ALTER COLUMN \"Age Text\" TYPE numeric(10,2) USING \"Age Text\"::numeric / 2",
            "id, \"Age Text\" FROM app.\"People\"",
        ),
    ] {
        let (db, naive_db) = twin(setup).await;
        let before = db.catalog().await;
        let table = if op.contains("app.") { "app.\"People\"" } else { "people" };
        let expand = step(&db, table, Some("expand"), op).await;
        up(&db, &expand).await;
        down(&db, &expand).await;
        assert_eq!(db.catalog().await, before, "expand's reverse: {op}");
        assert!(helpers_left(&db).await.is_empty());
        up(&db, &expand).await;
        let contract = step(&db, table, Some("contract"), op).await;
        assert!(contract.down.is_err(), "the old values are gone");
        up(&db, &contract).await;
        naive_db.connect().await.batch(naive).await.unwrap();
        assert_eq!(db.catalog().await, naive_db.catalog().await, "{op}");
        assert_eq!(checksum(&db, cols).await, checksum(&naive_db, cols).await);
        assert!(helpers_left(&db).await.is_empty());
    }
}

#[tokio::test]
async fn change_column_type_lists_rows_that_do_not_convert_before_any_batch() {
    let db = TestDb::new().await;
    db.connect().await.batch(AGES).await.unwrap();
    db.connect()
        .await
        .batch("UPDATE people SET age = 'abc' WHERE id = 3; UPDATE people SET age = '4x' WHERE id = 250")
        .await
        .unwrap();
    let before = db.catalog().await;
    let op = r#"{ op = "change_column_type", table = "people", column = "age", type = "integer" }"#;
    let expand = step(&db, "people", None, op).await;
    let e = run(&db, &expand.up).await.unwrap_err();
    assert!(e.contains("does not convert to integer"), "{e}");
    assert!(
        e.contains(r#"{"id": 3}"#) && e.contains(r#"{"id": 250}"#),
        "{e}"
    );
    let shadow = db
        .column("SELECT attname::text FROM pg_attribute WHERE attrelid = 'people'::regclass AND attname LIKE 'strata%'")
        .await
        .remove(0);
    assert_eq!(
        db.column(&format!(
            "SELECT count(*)::text FROM people WHERE {shadow} IS NOT NULL"
        ))
        .await,
        ["0"],
        "the backfill did not start"
    );
    // A write of a value that does not convert now fails, as the plain
    // ALTER would have failed.
    let conn = db.connect().await;
    assert!(conn
        .batch("INSERT INTO people (id, age) VALUES (999, 'nope')")
        .await
        .is_err());
    down(&db, &expand).await;
    assert_eq!(db.catalog().await, before);
}

#[tokio::test]
async fn change_column_type_keeps_the_shadow_in_sync_under_writers() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE scores (id bigserial PRIMARY KEY, age varchar(10) NOT NULL);
             INSERT INTO scores (age) SELECT (g % 100)::text FROM generate_series(1, 20000) g;",
        )
        .await
        .unwrap();
    let op = r#"{ op = "change_column_type", table = "scores", column = "age", type = "integer" }"#;
    let expand = step(&db, "scores", None, op).await;
    let stop = Arc::new(AtomicBool::new(false));
    let app = writer(
        &db,
        &[
            "INSERT INTO scores (age) VALUES ('{i}')",
            "UPDATE scores SET age = '{i}' WHERE id = 1 + ({i} * 13) % 20000",
        ],
        stop.clone(),
    );
    up(&db, &expand).await;
    stop_writers(&stop, vec![app]).await;
    let shadow = db
        .column("SELECT attname::text FROM pg_attribute WHERE attrelid = 'scores'::regclass AND attname LIKE 'strata%'")
        .await
        .remove(0);
    assert_eq!(
        db.column(&format!(
            "SELECT count(*)::text FROM scores WHERE {shadow} IS DISTINCT FROM age::integer"
        ))
        .await,
        ["0"]
    );
    let contract = step(&db, "scores", Some("contract"), op).await;
    up(&db, &contract).await;
    assert_eq!(
        db.column("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'scores'::regclass AND attname = 'age'").await,
        ["integer"]
    );
}

const NAMES: &str = "CREATE TABLE users (id int PRIMARY KEY, full_name text);
    INSERT INTO users VALUES (1, 'Ada Lovelace'), (2, 'Plato'), (3, '  Jean   Paul  Sartre '),
        (4, NULL), (5, ''), (6, 'Grace Brewster Murray Hopper');";

/// The design documents' split, with their handling of single names and
/// extra spaces.
const FIRST: &str = "CASE WHEN POSITION(' ' IN TRIM(full_name)) > 0 THEN TRIM(SPLIT_PART(TRIM(full_name), ' ', 1)) ELSE TRIM(full_name) END";
const LAST: &str = "CASE WHEN POSITION(' ' IN TRIM(full_name)) > 0 THEN TRIM(SUBSTRING(TRIM(full_name) FROM POSITION(' ' IN TRIM(full_name)))) ELSE '' END";

fn split_op(last: &str) -> String {
    format!(
        r#"{{ op = "split_column", table = "users", column = "full_name", into = [
            {{ column = "first_name", type = "varchar(100)", expression = "{FIRST}" }},
            {{ column = "last_name", type = "varchar(100)", expression = "{last}" }},
        ] }}"#
    )
}

#[tokio::test]
async fn split_column_ends_as_the_naive_split_and_reverses_step_by_step() {
    let (db, naive_db) = twin(NAMES).await;
    let before = db.catalog().await;
    let op = split_op(LAST);
    let expand = step(&db, "users", Some("expand"), &op).await;
    up(&db, &expand).await;
    let expanded = db.catalog().await;
    down(&db, &expand).await;
    assert_eq!(db.catalog().await, before);
    assert!(helpers_left(&db).await.is_empty());
    up(&db, &expand).await;
    let contract = step(&db, "users", Some("contract"), &op).await;
    up(&db, &contract).await;
    assert!(helpers_left(&db).await.is_empty());
    naive_db
        .connect()
        .await
        .batch(&format!(
            "ALTER TABLE users ADD COLUMN first_name varchar(100), ADD COLUMN last_name varchar(100);
             UPDATE users SET first_name = {FIRST}, last_name = {LAST};"
        ))
        .await
        .unwrap();
    assert_eq!(db.catalog().await, naive_db.catalog().await);
    let cols = "id, full_name, first_name, last_name FROM users";
    assert_eq!(checksum(&db, cols).await, checksum(&naive_db, cols).await);
    assert_eq!(
        db.column(
            "SELECT first_name || '|' || last_name FROM users WHERE id IN (2, 3) ORDER BY id"
        )
        .await,
        ["Plato|", "Jean|Paul  Sartre"]
    );
    down(&db, &contract).await;
    assert_eq!(db.catalog().await, expanded);
    assert!(!helpers_left(&db).await.is_empty(), "the trigger is back");
}

#[tokio::test]
async fn split_column_reports_rows_that_split_badly() {
    let db = TestDb::new().await;
    db.connect().await.batch(NAMES).await.unwrap();
    // A last name that is NULL for single names: Plato splits badly.
    let op = split_op("NULLIF(TRIM(SUBSTRING(TRIM(full_name) FROM POSITION(' ' IN TRIM(full_name)))), TRIM(full_name))");
    let expand = step(&db, "users", None, &op).await;
    let e = run(&db, &expand.up).await.unwrap_err();
    assert!(e.contains("split badly"), "{e}");
    assert!(e.contains(r#"{"id": 2}"#), "{e}");
    for fine in [1, 3, 4, 5, 6] {
        assert!(!e.contains(&format!(r#"{{"id": {fine}}}"#)), "{e}");
    }
}

#[tokio::test]
async fn split_column_trigger_splits_rows_written_during_the_backfill() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE users (id bigserial PRIMARY KEY, full_name text);
             INSERT INTO users (full_name) SELECT 'A' || g || ' B' || g FROM generate_series(1, 20000) g;",
        )
        .await
        .unwrap();
    let op = split_op(LAST);
    let expand = step(&db, "users", None, &op).await;
    let stop = Arc::new(AtomicBool::new(false));
    let app = writer(
        &db,
        &[
            "INSERT INTO users (full_name) VALUES ('New {i} Person')",
            "UPDATE users SET full_name = 'Up {i}' WHERE id = 1 + ({i} * 13) % 20000",
        ],
        stop.clone(),
    );
    up(&db, &expand).await;
    stop_writers(&stop, vec![app]).await;
    assert_eq!(
        db.column(&format!(
            "SELECT count(*)::text FROM users WHERE first_name IS DISTINCT FROM ({FIRST}) OR last_name IS DISTINCT FROM ({LAST})"
        ))
        .await,
        ["0"]
    );
}

/// With a plan version long enough to need clipping, every helper name the
/// compiler writes fits PostgreSQL's 63 bytes (a longer one would be
/// truncated by the server, and the contract step would not find it), so
/// the contract removes every helper object the expand made.
#[tokio::test]
async fn helper_names_fit_so_contract_finds_them() {
    let db = TestDb::new().await;
    db.connect().await.batch(RENAME).await.unwrap();
    let version = "7".repeat(60);
    let expand = compile(
        &version,
        None,
        Some(&facts(&db, "\"User Data\"").await),
        RENAME_OP,
    );
    for a in &expand.up {
        let text = a.to_string();
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with("strata_") {
                assert!(word.len() <= 63, "{word}");
            }
        }
    }
    up(&db, &expand).await;
    let contract = compile(
        &version,
        Some("contract"),
        Some(&facts(&db, "\"User Data\"").await),
        RENAME_OP,
    );
    up(&db, &contract).await;
    assert!(helpers_left(&db).await.is_empty());
    let left = db
        .column(
            "SELECT conname::text FROM pg_constraint WHERE conname LIKE 'strata%'
             UNION ALL SELECT relname::text FROM pg_class WHERE relname LIKE 'strata%'
             UNION ALL SELECT attname::text FROM pg_attribute WHERE attname LIKE 'strata%'",
        )
        .await;
    assert!(left.is_empty(), "{left:?}");
}

/// `strata abort` runs the reverse of a step that stopped anywhere: after
/// every prefix of a step's actions, the reverse returns the catalog from
/// before the step, and it leaves no helper object behind.
#[tokio::test]
async fn a_step_stopped_anywhere_reverses_to_the_previous_catalog() {
    let split = split_op(LAST);
    for (setup, table, op, step_name) in [
        (RENAME, "\"User Data\"", RENAME_OP, "expand"),
        (RENAME, "\"User Data\"", RENAME_OP, "contract"),
        (
            AGES,
            "people",
            r#"{ op = "change_column_type", table = "people", column = "age", type = "integer" }"#,
            "expand",
        ),
        (NAMES, "users", split.as_str(), "expand"),
        (
            USERS,
            "users",
            r#"{ op = "add_required_column", table = "users", column = "v", type = "int", default = "1", backfill = "id" }"#,
            "expand",
        ),
        (
            AGES,
            "people",
            r#"{ op = "set_not_null", table = "people", column = "score" }"#,
            "expand",
        ),
    ] {
        let db = TestDb::new().await;
        db.connect().await.batch(setup).await.unwrap();
        if step_name == "contract" {
            let expand = step(&db, table, Some("expand"), op).await;
            up(&db, &expand).await;
        }
        let s = if op.contains("set_not_null") || op.contains("add_required") {
            None
        } else {
            Some(step_name)
        };
        let compiled = step(&db, table, s, op).await;
        assert!(!compiled.up.is_empty(), "{op}");
        let before = db.catalog().await;
        let helpers_before = helpers_left(&db).await;
        for k in 0..=compiled.up.len() {
            run(&db, &compiled.up[..k])
                .await
                .unwrap_or_else(|e| panic!("{op}: first {k} actions: {e}"));
            down(&db, &compiled).await;
            assert_eq!(
                db.catalog().await,
                before,
                "{op} {step_name}: reverse after {k} actions"
            );
            assert_eq!(
                helpers_left(&db).await,
                helpers_before,
                "{op} {step_name}: after {k}"
            );
        }
    }
}
