//! The shipped example (examples/ecommerce) applies, reverts and re-applies.

use std::path::Path;

use crate::support::{expect_code, strata, TestDb};

#[tokio::test]
async fn ecommerce_example_round_trips() {
    let db = TestDb::new().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("examples/ecommerce/migrations");
    let dir = dir.to_str().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--dir", dir];
        all.extend_from_slice(args);
        strata(cwd.path(), Some(&db.url), &all)
    };
    let out = expect_code(&run(&["up"]), 0);
    assert!(out.contains("8 migration(s) applied"), "{out}");
    assert!(
        out.contains("runs outside a transaction: CREATE INDEX CONCURRENTLY"),
        "{out}"
    );
    for table in [
        "users",
        "products",
        "orders",
        "product_images",
        "wishlists",
        "wishlist_items",
        "user_profiles",
        "user_preferences",
    ] {
        assert!(db.has_table(table).await, "{table} missing");
    }
    // The wishlist trigger works.
    db.connect()
        .await
        .batch(
            "INSERT INTO users (email, name) VALUES ('a@example.com', 'A');
             INSERT INTO wishlists (user_id) SELECT id FROM users;
             UPDATE wishlists SET updated_at = '2000-01-01', name = 'Renamed';",
        )
        .await
        .unwrap();
    assert_eq!(
        db.column("SELECT (updated_at > '2001-01-01')::text FROM wishlists")
            .await,
        ["true"]
    );
    expect_code(&run(&["status", "--exit-code"]), 0);
    db.connect()
        .await
        .batch("DELETE FROM wishlists; DELETE FROM users;")
        .await
        .unwrap();
    expect_code(&run(&["down", "--all"]), 0);
    assert!(!db.has_table("users").await);
    expect_code(&run(&["up"]), 0);
}
