//! `db::catalog::tables`: which tables' sizes are measured.

use strata::db::catalog::{self, Sizes};

use crate::support::TestDb;

/// Bytes of each table by name.
fn bytes(tables: &catalog::Tables) -> std::collections::HashMap<String, i64> {
    tables
        .tables
        .iter()
        .map(|t| (t.name.clone(), t.bytes))
        .collect()
}

#[tokio::test]
async fn named_sizes_measure_the_named_tables_their_indexes_tables_and_partitions_only() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch(
        "CREATE TABLE events (at date NOT NULL, v int) PARTITION BY RANGE (at);
         CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
         INSERT INTO events SELECT '2026-03-01', g FROM generate_series(1, 1000) g;
         CREATE TABLE \"Orders\" (id int);
         INSERT INTO \"Orders\" SELECT generate_series(1, 1000);
         CREATE TABLE items (id int);
         CREATE INDEX items_by_id ON items (id);
         INSERT INTO items SELECT generate_series(1, 1000);
         CREATE TABLE untouched (id int);
         INSERT INTO untouched SELECT generate_series(1, 1000);",
    )
    .await
    .unwrap();
    let names: Vec<String> = ["events", "Orders", "items_by_id", "nothing_by_this_name"]
        .map(String::from)
        .to_vec();
    let named = bytes(&catalog::tables(&conn, Sizes::Named(&names)).await.unwrap());
    // A partitioned parent's own size is 0; its partition is measured, so
    // the parent's total (`Tables::totals`) holds the rows.
    assert!(named["events_2026"] > 0, "{named:?}");
    // Quoted names match as written; an index's name measures its table.
    assert!(named["Orders"] > 0, "{named:?}");
    assert!(named["items"] > 0, "{named:?}");
    // What no migration mentions is listed, with its rows, but not opened.
    assert_eq!(named["untouched"], 0, "{named:?}");
    let all = bytes(&catalog::tables(&conn, Sizes::All).await.unwrap());
    assert!(all["untouched"] > 0, "{all:?}");
    assert_eq!(all["items"], named["items"]);
    let none = bytes(&catalog::tables(&conn, Sizes::None).await.unwrap());
    assert!(none.values().all(|&b| b == 0), "{none:?}");
}
