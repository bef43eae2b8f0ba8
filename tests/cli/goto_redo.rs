//! `strata goto` and `strata redo`.

use crate::support::{expect_code, Project, TestDb};

#[tokio::test]
async fn goto_moves_both_ways_and_redo_reapplies_the_last() {
    let db = TestDb::new().await;
    let project = Project::new();
    for (v, t) in [("1", "a"), ("2", "b"), ("3", "c")] {
        project.write(
            &format!("{v}_{t}.up.sql"),
            &format!("CREATE TABLE {t} (id int);\nINSERT INTO {t} VALUES (1);\n"),
        );
        project.write(&format!("{v}_{t}.down.sql"), &format!("DROP TABLE {t};\n"));
    }
    expect_code(&project.run(&db, &["goto", "2"]), 0);
    assert!(db.has_table("b").await && !db.has_table("c").await);
    expect_code(&project.run(&db, &["goto", "3"]), 0);
    assert!(db.has_table("c").await);
    expect_code(&project.run(&db, &["goto", "1"]), 0);
    assert!(db.has_table("a").await && !db.has_table("b").await);
    let out = expect_code(&project.run(&db, &["goto", "7"]), 2);
    assert!(out.contains("no migration has version 7"));

    expect_code(&project.run(&db, &["up"]), 0);
    db.connect()
        .await
        .batch("INSERT INTO c VALUES (2)")
        .await
        .unwrap();
    let out = expect_code(&project.run(&db, &["redo"]), 0);
    assert!(
        out.contains("reverted 3_c") && out.contains("applied 3_c"),
        "{out}"
    );
    // The table was dropped and re-created: the extra row is gone.
    assert_eq!(db.column("SELECT count(*)::text FROM c").await, ["1"]);
    let actions = db
        .column("SELECT action FROM strata_events WHERE version = '3' ORDER BY id")
        .await;
    assert_eq!(actions.last().map(String::as_str), Some("up"));
}
