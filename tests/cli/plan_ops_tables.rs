//! The index, constraint and table operations of plans (`add_index`,
//! `soft_delete`, `add_jsonb_column`, `add_foreign_key`, `normalize_json`,
//! `partition_table`) on a real server: each ends in the catalog and data
//! of its naive form, each step's reverse gives back the catalog before
//! it, and the sync triggers and batched copies stay exact under
//! concurrent writers. Backfills run through the real batched engine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use strata::engine::backfill::{self, BackfillId, BackfillSettings, BackfillSpec};
use strata::engine::History;
use strata::plan::{Action, Compiled, TableFacts};

use crate::plan_exec::{compile, run, run_down};
use crate::support::TestDb;

const V: &str = "20260301120000";

/// The table's facts, as the engine reads them when a step starts.
async fn facts(db: &TestDb, table: &str) -> TableFacts {
    let conn = db.connect().await;
    strata::engine::table_facts(&conn, table)
        .await
        .expect("read the table's facts")
}

/// Two databases with the same starting schema and data: one for the naive
/// form, one for the plan.
async fn pair(setup: &str) -> (TestDb, TestDb) {
    let naive = TestDb::new().await;
    let plan = TestDb::new().await;
    for db in [&naive, &plan] {
        db.connect().await.batch(setup).await.unwrap();
    }
    (naive, plan)
}

async fn exec(db: &TestDb, sql: &str) {
    db.connect()
        .await
        .batch(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A checksum of a query's rows, in a fixed order.
async fn checksum(db: &TestDb, query: &str) -> String {
    db.column(&format!(
        "SELECT md5(coalesce(string_agg(r::text, ',' ORDER BY r::text), '')) FROM ({query}) r"
    ))
    .await
    .remove(0)
}

/// Runs actions as the engine would, backfills in small batches through
/// the backfill engine (so a batch boundary can fall between a row's
/// read and a concurrent write to it).
async fn run_batched(db: &TestDb, actions: &[Action]) -> Result<(), String> {
    let conn = db.connect().await;
    let history = History::new("public", "strata_migrations");
    history.ensure(&conn).await.unwrap();
    let target = strata::Target::parse(&db.url).unwrap();
    let settings = BackfillSettings {
        batch_time: Duration::from_millis(2),
        ..BackfillSettings::default()
    };
    for (step, action) in actions.iter().enumerate() {
        match action {
            Action::Backfill(sql) => {
                let spec = BackfillSpec::from_sql(sql).map_err(|e| e.to_string())?;
                let id = BackfillId::new(history.clone(), "plan-test", step);
                backfill::run(&target, &conn, &id, &spec, &settings, &mut |_| {})
                    .await
                    .map_err(|e| format!("{action}: {e}"))?;
            }
            other => run(db, std::slice::from_ref(other)).await?,
        }
    }
    Ok(())
}

fn up(c: &Compiled) -> &[Action] {
    &c.up
}

// ---------------------------------------------------------------- add_index

#[tokio::test]
async fn add_index_matches_create_index_and_reverses() {
    let setup = "CREATE SCHEMA app;
        CREATE TABLE app.\"User Data\" (id int PRIMARY KEY, \"Email Address\" text, name text);
        INSERT INTO app.\"User Data\" SELECT g, 'u' || g || '@x', 'n' || g FROM generate_series(1, 500) g;";
    let (naive, plan) = pair(setup).await;
    exec(
        &naive,
        "CREATE INDEX ON app.\"User Data\" ((lower(\"Email Address\")), name) WHERE name IS NOT NULL;
         CREATE UNIQUE INDEX ON app.\"User Data\" (\"Email Address\")",
    )
    .await;
    let before = plan.catalog().await;
    let f = facts(&plan, "app.\"User Data\"").await;
    let first = compile(
        V,
        None,
        Some(&f),
        r#"{ op = "add_index", table = 'app."User Data"', columns = ['(lower("Email Address"))', "name"], where = "name IS NOT NULL" }"#,
    );
    let second = compile(
        V,
        None,
        Some(&f),
        r#"{ op = "add_index", table = 'app."User Data"', columns = ['"Email Address"'], unique = true }"#,
    );
    run(&plan, up(&first)).await.unwrap();
    let middle = plan.catalog().await;
    run(&plan, up(&second)).await.unwrap();
    // Running a step again (a resume after a crash) changes nothing.
    run(&plan, up(&second)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    run_down(&plan, &second).await.unwrap();
    assert_eq!(plan.catalog().await, middle);
    run_down(&plan, &first).await.unwrap();
    run_down(&plan, &first).await.unwrap();
    assert_eq!(plan.catalog().await, before);
}

// -------------------------------------------------------------- soft_delete

#[tokio::test]
async fn soft_delete_matches_naive_and_reverses() {
    let setup = "CREATE TABLE users (id bigint PRIMARY KEY, email text);
        INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 100) g;";
    let (naive, plan) = pair(setup).await;
    exec(
        &naive,
        "ALTER TABLE users ADD COLUMN deleted_at timestamptz;
         CREATE INDEX users_active_idx ON users (id) WHERE deleted_at IS NULL;
         CREATE VIEW active_users AS SELECT * FROM users WHERE deleted_at IS NULL;",
    )
    .await;
    let before = plan.catalog().await;
    let f = facts(&plan, "users").await;
    let c = compile(
        V,
        None,
        Some(&f),
        r#"{ op = "soft_delete", table = "users" }"#,
    );
    run(&plan, up(&c)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    exec(&plan, "UPDATE users SET deleted_at = now() WHERE id <= 10").await;
    assert_eq!(
        plan.column("SELECT count(*)::text FROM active_users").await,
        vec!["90"]
    );
    run_down(&plan, &c).await.unwrap();
    run_down(&plan, &c).await.unwrap();
    assert_eq!(plan.catalog().await, before);
}

// --------------------------------------------------------- add_jsonb_column

#[tokio::test]
async fn add_jsonb_column_matches_naive_and_reverses() {
    let setup = "CREATE TABLE users (id bigint PRIMARY KEY, theme text);
        INSERT INTO users SELECT g, CASE WHEN g % 3 = 0 THEN 'dark' END FROM generate_series(1, 3000) g;";
    let (naive, plan) = pair(setup).await;
    exec(
        &naive,
        "ALTER TABLE users ADD COLUMN prefs jsonb DEFAULT '{}'::jsonb;
         UPDATE users SET prefs = jsonb_strip_nulls(jsonb_build_object('theme', theme));
         CREATE INDEX ON users USING gin (prefs);
         CREATE INDEX ON users ((prefs->>'theme'));
         CREATE INDEX ON users ((prefs->'lang'));
         CREATE INDEX ON users (((prefs->>'n')::int));",
    )
    .await;
    let before = plan.catalog().await;
    let f = facts(&plan, "users").await;
    let c = compile(
        V,
        None,
        Some(&f),
        r#"{ op = "add_jsonb_column", table = "users", column = "prefs", backfill = "jsonb_strip_nulls(jsonb_build_object('theme', theme))", path_indexes = ["prefs->>'theme'", "prefs->'lang'", "(prefs->>'n')::int"] }"#,
    );
    run_batched(&plan, up(&c)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    let rows = "SELECT id, theme, prefs FROM users";
    assert_eq!(checksum(&plan, rows).await, checksum(&naive, rows).await);
    run_down(&plan, &c).await.unwrap();
    run_down(&plan, &c).await.unwrap();
    assert_eq!(plan.catalog().await, before);
}

// ---------------------------------------------------------- add_foreign_key

const FK_SETUP: &str = "CREATE TABLE users (id bigint PRIMARY KEY);
    INSERT INTO users SELECT generate_series(1, 50);
    CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total int);
    INSERT INTO orders SELECT g, CASE WHEN g % 10 = 0 THEN 1000 + g WHEN g % 7 = 0 THEN NULL ELSE g % 50 + 1 END, g
      FROM generate_series(1, 400) g;";

/// Orders whose user does not exist (every tenth one).
const ORPHANS: &str = "SELECT * FROM orders o WHERE user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id)";

fn fk(policy: &str) -> String {
    format!(
        r#"{{ op = "add_foreign_key", table = "orders", columns = ["user_id"], references = "users", references_columns = ["id"], orphans = {policy}, on_delete = "cascade" }}"#
    )
}

const NAIVE_FK: &str = "CREATE INDEX ON orders (user_id);
    ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;";

#[tokio::test]
async fn foreign_key_fail_policy_lists_orphans_and_changes_nothing() {
    let db = TestDb::new().await;
    exec(&db, FK_SETUP).await;
    let before = db.catalog().await;
    let f = facts(&db, "orders").await;
    let c = compile(V, None, Some(&f), &fk("\"fail\""));
    let err = run(&db, up(&c)).await.unwrap_err();
    assert!(err.contains("match no row of users"), "{err}");
    // The first orphans, by key: order 10 (user 1010), 20, …
    assert!(err.contains("\"id\": 10, \"user_id\": 1010"), "{err}");
    assert_eq!(err.matches("\"user_id\"").count(), 20, "{err}");
    assert_eq!(db.catalog().await, before);

    // Without orphans it adds the key, and its reverse gives the catalog back.
    exec(
        &db,
        &format!("DELETE FROM orders WHERE id IN (SELECT id FROM ({ORPHANS}) x)"),
    )
    .await;
    let (naive, _) = pair(FK_SETUP).await;
    exec(
        &naive,
        &format!("DELETE FROM orders WHERE id IN (SELECT id FROM ({ORPHANS}) x); {NAIVE_FK}"),
    )
    .await;
    run(&db, up(&c)).await.unwrap();
    assert_eq!(db.catalog().await, naive.catalog().await);
    assert!(
        db.catalog().await.iter().any(|l| l.contains(
            "orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE"
        ) && !l.contains("not validated")),
        "{:#?}",
        db.catalog().await
    );
    run_down(&db, &c).await.unwrap();
    run_down(&db, &c).await.unwrap();
    assert_eq!(db.catalog().await, before);
}

#[tokio::test]
async fn foreign_key_move_to_moves_exactly_the_orphans() {
    let (naive, plan) = pair(FK_SETUP).await;
    exec(
        &naive,
        &format!(
            "CREATE TABLE orphaned_orders (LIKE orders);
             INSERT INTO orphaned_orders {ORPHANS};
             DELETE FROM orders WHERE id IN (SELECT id FROM orphaned_orders);
             {NAIVE_FK}"
        ),
    )
    .await;
    let orphan_ids = plan
        .column(&format!(
            "SELECT string_agg(id::text, ',' ORDER BY id) FROM ({ORPHANS}) x"
        ))
        .await;
    let before = plan.catalog().await;
    let rows_before = checksum(&plan, "SELECT * FROM orders").await;
    let f = facts(&plan, "orders").await;
    let c = compile(V, None, Some(&f), &fk("{ move_to = \"orphaned_orders\" }"));
    run_batched(&plan, up(&c)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    for q in ["SELECT * FROM orders", "SELECT * FROM orphaned_orders"] {
        assert_eq!(checksum(&plan, q).await, checksum(&naive, q).await, "{q}");
    }
    assert_eq!(
        plan.column("SELECT string_agg(id::text, ',' ORDER BY id) FROM orphaned_orders")
            .await,
        orphan_ids
    );
    // The move again (a resume) moves nothing more.
    run(&plan, &up(&c)[2..3]).await.unwrap();
    assert_eq!(
        plan.column("SELECT count(*)::text FROM orphaned_orders")
            .await,
        vec![orphan_ids[0].split(',').count().to_string()]
    );
    // The reverse drops the key and its index, and moves the orphans back
    // into orders: the catalog and the rows are as before.
    run_down(&plan, &c).await.unwrap();
    assert_eq!(plan.catalog().await, before);
    assert_eq!(checksum(&plan, "SELECT * FROM orders").await, rows_before);
    assert!(!plan.has_table("orphaned_orders").await);
}

#[tokio::test]
async fn foreign_key_delete_and_set_null_policies() {
    let (naive, plan) = pair(FK_SETUP).await;
    exec(
        &naive,
        &format!("DELETE FROM orders WHERE id IN (SELECT id FROM ({ORPHANS}) x); {NAIVE_FK}"),
    )
    .await;
    let f = facts(&plan, "orders").await;
    let c = compile(V, None, Some(&f), &fk("\"delete\""));
    assert!(c.drops_data);
    assert!(c.down.is_err());
    run_batched(&plan, up(&c)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    let q = "SELECT * FROM orders";
    assert_eq!(checksum(&plan, q).await, checksum(&naive, q).await);

    let (naive, plan) = pair(FK_SETUP).await;
    exec(&naive, &format!("UPDATE orders SET user_id = NULL WHERE id IN (SELECT id FROM ({ORPHANS}) x); {NAIVE_FK}")).await;
    let f = facts(&plan, "orders").await;
    let c = compile(V, None, Some(&f), &fk("\"set_null\""));
    run_batched(&plan, up(&c)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    assert_eq!(checksum(&plan, q).await, checksum(&naive, q).await);
    assert_eq!(
        plan.column("SELECT count(*)::text FROM orders WHERE user_id IS NULL")
            .await,
        naive
            .column("SELECT count(*)::text FROM orders WHERE user_id IS NULL")
            .await
    );
}

// ----------------------------------------------------------- normalize_json

const ORDERS_JSON: &str = "CREATE TABLE orders (id bigint PRIMARY KEY, items jsonb);
    INSERT INTO orders SELECT g,
      CASE g % 5
        WHEN 0 THEN NULL
        WHEN 1 THEN '[]'::jsonb
        WHEN 2 THEN 'null'::jsonb
        ELSE (SELECT jsonb_agg(jsonb_build_object('sku', 's' || g || '-' || i, 'qty', i)) FROM generate_series(1, g % 5) i)
      END
    FROM generate_series(1, 2000) g;";

const NORMALIZE: &str = r#"{ op = "normalize_json", table = "orders", column = "items", into = "order_items", columns = [
    { column = "sku", type = "text", expression = "elem->>'sku'" },
    { column = "qty", type = "integer", expression = "(elem->>'qty')::int" } ] }"#;

const NAIVE_CHILD: &str = "CREATE TABLE order_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      order_id bigint NOT NULL, ordinal bigint NOT NULL, sku text, qty integer,
      FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE, UNIQUE (order_id, ordinal));
    INSERT INTO order_items (order_id, ordinal, sku, qty)
      SELECT o.id, e.ordinal, e.elem->>'sku', (e.elem->>'qty')::int
      FROM orders o, jsonb_array_elements(CASE WHEN jsonb_typeof(o.items) = 'array' THEN o.items END) WITH ORDINALITY e(elem, ordinal);";

/// The child rows the parent's arrays say there should be, and those there are.
const EXPECTED_ITEMS: &str = "SELECT o.id, e.ordinal, e.elem->>'sku', (e.elem->>'qty')::int
    FROM orders o, jsonb_array_elements(CASE WHEN jsonb_typeof(o.items) = 'array' THEN o.items END) WITH ORDINALITY e(elem, ordinal)";
const ACTUAL_ITEMS: &str = "SELECT order_id, ordinal, sku, qty FROM order_items";

#[tokio::test]
async fn normalize_json_matches_naive_counts_empty_arrays_and_reverses() {
    let (naive, plan) = pair(ORDERS_JSON).await;
    exec(&naive, NAIVE_CHILD).await;
    let before = plan.catalog().await;
    let f = facts(&plan, "orders").await;
    let expand = compile(V, None, Some(&f), NORMALIZE);
    run_batched(&plan, up(&expand)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    assert_eq!(
        checksum(&plan, ACTUAL_ITEMS).await,
        checksum(&naive, ACTUAL_ITEMS).await
    );
    // The app keeps writing the JSON column: the trigger follows.
    exec(
        &plan,
        "UPDATE orders SET items = '[{\"sku\": \"new\", \"qty\": 9}]' WHERE id = 3;
         UPDATE orders SET items = '[]' WHERE id = 4;
         UPDATE orders SET items = NULL WHERE id = 8;
         INSERT INTO orders VALUES (5000, '[{\"sku\": \"a\", \"qty\": 1}, {\"sku\": \"b\", \"qty\": 2}]');
         DELETE FROM orders WHERE id = 9;",
    )
    .await;
    assert_eq!(
        checksum(&plan, ACTUAL_ITEMS).await,
        checksum(&plan, EXPECTED_ITEMS).await
    );
    run(&plan, &up(&expand)[3..]).await.unwrap();

    let f = facts(&plan, "orders").await;
    let contract = compile(V, Some("contract"), Some(&f), NORMALIZE);
    assert!(contract.drops_data);
    assert!(contract.down.is_err());
    run(&plan, up(&contract)).await.unwrap();
    exec(&naive, "ALTER TABLE orders DROP COLUMN items").await;
    assert_eq!(plan.catalog().await, naive.catalog().await);
    // Nothing of Strata's is left behind.
    assert_eq!(
        plan.column("SELECT count(*)::text FROM pg_proc WHERE proname LIKE 'strata%'")
            .await,
        vec!["0"]
    );

    // The reverse of expand, on a fresh copy.
    let db = TestDb::new().await;
    exec(&db, ORDERS_JSON).await;
    let f = facts(&db, "orders").await;
    let expand = compile(V, None, Some(&f), NORMALIZE);
    run_batched(&db, up(&expand)).await.unwrap();
    run_down(&db, &expand).await.unwrap();
    run_down(&db, &expand).await.unwrap();
    assert_eq!(db.catalog().await, before);
}

#[tokio::test]
async fn normalize_json_refuses_values_that_are_not_arrays() {
    let db = TestDb::new().await;
    exec(
        &db,
        "CREATE TABLE orders (id bigint PRIMARY KEY, items jsonb);
         INSERT INTO orders VALUES (1, '[]'), (2, '{\"sku\": 1}'), (3, '7');",
    )
    .await;
    let before = db.catalog().await;
    let f = facts(&db, "orders").await;
    let c = compile(V, None, Some(&f), NORMALIZE);
    let err = run(&db, up(&c)).await.unwrap_err();
    assert!(err.contains("not an array"), "{err}");
    assert!(
        err.contains("\"id\": 2") && err.contains("\"id\": 3"),
        "{err}"
    );
    assert_eq!(db.catalog().await, before);
}

#[tokio::test]
async fn normalize_json_of_a_json_column() {
    let db = TestDb::new().await;
    exec(
        &db,
        "CREATE TABLE orders (id bigint PRIMARY KEY, items json);
         INSERT INTO orders VALUES (1, '[]'), (2, NULL), (3, 'null'),
           (4, '[{\"sku\": \"a\", \"qty\": 1}, {\"sku\": \"b\", \"qty\": 2}]');",
    )
    .await;
    let f = facts(&db, "orders").await;
    let c = compile(V, None, Some(&f), NORMALIZE);
    run_batched(&db, up(&c)).await.unwrap();
    exec(
        &db,
        "UPDATE orders SET items = '[{\"sku\": \"c\", \"qty\": 3}]' WHERE id = 1",
    )
    .await;
    assert_eq!(
        db.column("SELECT string_agg(order_id || ':' || ordinal || ':' || sku || ':' || qty, ',' ORDER BY order_id, ordinal) FROM order_items")
            .await,
        vec!["1:1:c:3,4:1:a:1,4:2:b:2"]
    );
}

/// Writes to `orders` (updates of the array, inserts, deletes) until told
/// to stop; returns how many statements it ran.
fn json_writer(db: &TestDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let url = db.url.clone();
    tokio::spawn(async move {
        let conn = strata::Target::parse(&url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut n = 0u64;
        let mut next_id = 10_000;
        while !stop.load(Ordering::SeqCst) {
            let id = (n * 37) % 2000 + 1;
            let sql = match n % 4 {
                0 => format!(
                    "UPDATE orders SET items = (SELECT jsonb_agg(jsonb_build_object('sku', 'w{n}-' || i, 'qty', i)) FROM generate_series(1, {}) i) WHERE id = {id}",
                    n % 4 + 1
                ),
                1 => format!("UPDATE orders SET items = '[]' WHERE id = {id}"),
                2 => {
                    next_id += 1;
                    format!("INSERT INTO orders VALUES ({next_id}, '[{{\"sku\": \"i{n}\", \"qty\": 1}}]')")
                }
                _ => format!("DELETE FROM orders WHERE id = {id}"),
            };
            conn.batch(&sql).await.unwrap();
            n += 1;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normalize_json_stays_exact_under_concurrent_writers() {
    let db = TestDb::new().await;
    exec(&db, ORDERS_JSON).await;
    let f = facts(&db, "orders").await;
    let c = compile(V, None, Some(&f), NORMALIZE);
    run(&db, &up(&c)[..2]).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = json_writer(&db, stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    run_batched(&db, &up(&c)[2..3]).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.unwrap();
    assert!(
        writes > 10,
        "the writer ran during the copy ({writes} writes)"
    );
    run(&db, &up(&c)[3..]).await.unwrap();
    assert_eq!(
        checksum(&db, ACTUAL_ITEMS).await,
        checksum(&db, EXPECTED_ITEMS).await
    );
}

// ---------------------------------------------------------- partition_table

const EVENTS: &str = "CREATE TABLE events (id bigserial, created_at timestamptz NOT NULL, note text,
      kind text NOT NULL DEFAULT 'x' CHECK (kind <> ''), PRIMARY KEY (id, created_at));
    CREATE INDEX events_note_idx ON events (note);
    INSERT INTO events (created_at, note)
      SELECT timestamptz '2023-12-20' + g * interval '1 hour', 'n' || g FROM generate_series(1, 5000) g;";

const PARTITION: &str = r#"{ op = "partition_table", table = "events", key = "created_at", interval = "quarter", from = "2024-01-01", to = "2024-07-01" }"#;

/// The naive form: a partitioned copy filled in one statement, the old
/// table dropped and the copy renamed.
/// NOT NULL constraints keep the table's names (they have names on
/// PostgreSQL 18; older servers ignore them), as the plan does.
const NAIVE_PARTITION: &str = "CREATE TABLE events_new (id bigint CONSTRAINT events_id_not_null NOT NULL DEFAULT nextval('events_id_seq'::regclass),
      created_at timestamptz CONSTRAINT events_created_at_not_null NOT NULL, note text, kind text CONSTRAINT events_kind_not_null NOT NULL DEFAULT 'x',
      CONSTRAINT events_kind_check CHECK (kind <> '')) PARTITION BY RANGE (created_at);
    CREATE TABLE events_p2024_q1 PARTITION OF events_new FOR VALUES FROM ('2024-01-01') TO ('2024-04-01');
    CREATE TABLE events_p2024_q2 PARTITION OF events_new FOR VALUES FROM ('2024-04-01') TO ('2024-07-01');
    CREATE TABLE events_default PARTITION OF events_new DEFAULT;
    INSERT INTO events_new SELECT * FROM events;
    ALTER SEQUENCE events_id_seq OWNED BY events_new.id;
    DROP TABLE events;
    ALTER TABLE events_new RENAME TO events;
    ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id, created_at);
    CREATE INDEX events_note_idx ON events (note);";

/// Inserts, updates (moving rows between partitions too) and deletes on
/// `events` until told to stop.
fn events_writer(db: &TestDb, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let url = db.url.clone();
    tokio::spawn(async move {
        let conn = strata::Target::parse(&url)
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let id = (n * 53) % 5000 + 1;
            let sql = match n % 4 {
                0 => format!("INSERT INTO events (created_at, note) VALUES (timestamptz '2024-02-01' + {n} * interval '1 minute', 'w{n}')"),
                1 => format!("UPDATE events SET note = 'u{n}' WHERE id = {id}"),
                2 => format!("UPDATE events SET created_at = created_at + interval '100 days' WHERE id = {id}"),
                _ => format!("DELETE FROM events WHERE id = {id}"),
            };
            conn.batch(&sql).await.unwrap();
            n += 1;
        }
        n
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_table_copies_under_writes_swaps_and_matches_naive() {
    let (naive, plan) = pair(EVENTS).await;
    exec(&naive, NAIVE_PARTITION).await;
    let before = plan.catalog().await;
    let f = facts(&plan, "events").await;
    let expand = compile(V, None, Some(&f), PARTITION);
    run(&plan, &up(&expand)[..1]).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = events_writer(&plan, stop.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    run_batched(&plan, &up(&expand)[1..2]).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let writes = writer.await.unwrap();
    assert!(
        writes > 10,
        "the writer ran during the copy ({writes} writes)"
    );
    run(&plan, &up(&expand)[2..]).await.unwrap();
    let all = "SELECT * FROM events";
    assert_eq!(
        checksum(&plan, all).await,
        checksum(&plan, "SELECT * FROM events_strata_new").await,
        "the copy has exactly the table's rows"
    );
    // Rows are in the partition their key says.
    assert_eq!(
        plan.column(
            "SELECT count(*)::text FROM events_strata_new WHERE
               (tableoid = 'events_p2024_q1'::regclass) <> (created_at >= '2024-01-01' AND created_at < '2024-04-01')
            OR (tableoid = 'events_p2024_q2'::regclass) <> (created_at >= '2024-04-01' AND created_at < '2024-07-01')
            OR (tableoid = 'events_default'::regclass) <> (created_at < '2024-01-01' OR created_at >= '2024-07-01')"
        )
        .await,
        vec!["0"]
    );
    assert_ne!(
        plan.column("SELECT count(*)::text FROM events_default")
            .await,
        vec!["0"]
    );
    let expanded = plan.catalog().await;

    // Swap, write through the new table, swap back: nothing is lost.
    let f = facts(&plan, "events").await;
    let swap = compile(V, Some("swap"), Some(&f), PARTITION);
    // The swap's reverse before any swap (an abort) changes nothing.
    run_down(&plan, &swap).await.unwrap();
    assert_eq!(plan.catalog().await, expanded);
    run(&plan, up(&swap)).await.unwrap();
    exec(
        &plan,
        "INSERT INTO events (created_at, note) VALUES ('2024-03-03', 'after swap');
         UPDATE events SET note = 'changed after swap' WHERE id = 7;
         DELETE FROM events WHERE id = 8;",
    )
    .await;
    let swapped_rows = checksum(&plan, all).await;
    run_down(&plan, &swap).await.unwrap();
    run_down(&plan, &swap).await.unwrap();
    assert_eq!(plan.catalog().await, expanded);
    assert_eq!(checksum(&plan, all).await, swapped_rows);
    assert_eq!(
        checksum(&plan, "SELECT * FROM events_strata_new").await,
        swapped_rows
    );

    // Swap again, then contract: the naive form's catalog and rows.
    run(&plan, up(&swap)).await.unwrap();
    let contract = compile(V, Some("contract"), None, PARTITION);
    run(&plan, up(&contract)).await.unwrap();
    assert_eq!(plan.catalog().await, naive.catalog().await);
    exec(
        &plan,
        "INSERT INTO events (created_at) VALUES ('2024-05-05')",
    )
    .await;

    // The reverse of expand, on a fresh copy.
    let db = TestDb::new().await;
    exec(&db, EVENTS).await;
    let f = facts(&db, "events").await;
    let expand = compile(V, None, Some(&f), PARTITION);
    run_batched(&db, up(&expand)).await.unwrap();
    run_down(&db, &expand).await.unwrap();
    run_down(&db, &expand).await.unwrap();
    assert_eq!(db.catalog().await, before);
}

#[tokio::test]
async fn partition_table_refuses_a_key_without_the_partition_column() {
    let db = TestDb::new().await;
    exec(
        &db,
        "CREATE TABLE events (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL)",
    )
    .await;
    let f = facts(&db, "events").await;
    let value: toml::Value = toml::from_str(&format!("x = {PARTITION}")).unwrap();
    let op: strata::plan::file::OperationKind = value["x"].clone().try_into().unwrap();
    let err = strata::plan::ops::compile(
        &op,
        &strata::plan::Context {
            version: V,
            step: None,
            table: Some(&f),
        },
    )
    .unwrap_err();
    assert!(
        err.message.contains("does not include the partition key"),
        "{}",
        err.message
    );
    assert!(err.help.unwrap().contains("(id, created_at)"));
}
