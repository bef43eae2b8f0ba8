//! Strata's own tables have a versioned layout: a newer Strata upgrades an
//! older layout (here the one every database had before layouts had
//! versions, kept in `tests/fixtures/own-tables/v1.sql`) in one transaction
//! under the migration lock, and an older Strata refuses a newer layout.

use crate::support::{expect_code, text, Project, TestDb};

const V1: &str = include_str!("../fixtures/own-tables/v1.sql");

/// The layout of Strata's tables in `schema`: columns and constraints, to
/// compare an upgraded database with a new one.
async fn layout(db: &TestDb, schema: &str) -> Vec<String> {
    db.column(&format!(
        "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || coalesce(column_default, '')
         FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name LIKE 'strata\\_%'
         UNION ALL
         SELECT conrelid::regclass::text || ' ' || contype::text || ' ' || pg_get_constraintdef(oid)
         FROM pg_constraint WHERE connamespace = '{schema}'::regnamespace AND conrelid::regclass::text LIKE '%strata\\_%'
         ORDER BY 1"
    ))
    .await
}

/// A project with migration 2 whose down script (outside a transaction)
/// failed at statement 3 of 4: the migration is partly reverted.
async fn partly_reverted(db: &TestDb) -> Project {
    let project = Project::applied(
        db,
        "CREATE TABLE t (id int);\nINSERT INTO t SELECT generate_series(1, 10);\nCREATE TABLE log (x text);\n",
    );
    project.write("2_index.up.sql", "CREATE INDEX t_id ON t (id);\n");
    project.write(
        "2_index.down.sql",
        "-- strata:no-transaction\nINSERT INTO log VALUES ('d1');\nDELETE FROM t WHERE id = (SELECT min(id) FROM t);\nINSERT INTO nothere VALUES (1);\nDROP INDEX t_id;\n",
    );
    expect_code(&project.run(db, &["up"]), 0);
    expect_code(&project.run(db, &["down"]), 1);
    project
}

/// Turns the database's Strata tables into layout 1 holding the same rows:
/// what a database migrated (and partly reverted) by a Strata from before
/// versioned layouts looks like. Its down progress was recorded only as
/// `down-progress` events, as that Strata did.
async fn back_to_v1(db: &TestDb) {
    db.connect()
        .await
        .batch(&format!(
            "CREATE TEMP TABLE m AS SELECT * FROM strata_migrations;
             CREATE TEMP TABLE e AS SELECT * FROM strata_events;
             DROP TABLE strata_migrations, strata_events, strata_progress, strata_schema;
             {V1}
             INSERT INTO strata_migrations SELECT * FROM m;
             INSERT INTO strata_events SELECT * FROM e;
             SELECT setval(pg_get_serial_sequence('strata_events', 'id'), (SELECT max(id) FROM strata_events));"
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn todays_layout_is_upgraded_once_and_keeps_the_history_and_a_down_in_progress() {
    let db = TestDb::new().await;
    let project = partly_reverted(&db).await;
    back_to_v1(&db).await;
    assert!(!db.has_table("strata_schema").await);
    let events_before = db.column("SELECT count(*)::text FROM strata_events").await;

    // Read-only `status` reads layout 1 as it is, and writes nothing.
    let before = text(&project.run(&db, &["status"]));
    assert!(
        before.contains("down stopped at statement 3 of 4"),
        "{before}"
    );
    assert!(!db.has_table("strata_schema").await && !db.has_table("strata_progress").await);

    // The first command that writes (under the lock) upgrades.
    let repair = expect_code(&project.run(&db, &["repair"]), 0);
    assert!(
        repair.contains("the next `strata down` resumes at statement 3"),
        "{repair}"
    );
    assert_eq!(
        db.column("SELECT history_table || ' ' || version FROM strata_schema")
            .await,
        ["strata_migrations 2"]
    );
    assert_eq!(
        db.column(
            "SELECT (details->>'from') || '->' || (details->>'to') || ' ' || (details->>'history_table')
             FROM strata_events WHERE action = 'own-tables-upgrade'"
        )
        .await,
        ["1->2 strata_migrations"]
    );
    assert_eq!(
        db.column("SELECT version || ' ' || step || ' ' || state || ' ' || done || '/' || total FROM strata_progress")
            .await,
        ["2 down failed 2/4"],
        "the down progress moved into strata_progress"
    );
    // The same history, the same down in progress.
    assert_eq!(text(&project.run(&db, &["status"])), before);
    // Kinds and states are no longer fixed by CHECKs.
    assert_eq!(
        db.column("SELECT count(*)::text FROM pg_constraint WHERE conrelid = 'strata_migrations'::regclass AND contype = 'c'")
            .await,
        ["0"]
    );

    // A second run does nothing more.
    expect_code(&project.run(&db, &["repair"]), 0);
    assert_eq!(
        db.column("SELECT count(*)::text FROM strata_events WHERE action = 'own-tables-upgrade'")
            .await,
        ["1"]
    );
    assert_eq!(
        db.column("SELECT count(*)::text FROM strata_events").await,
        [(events_before[0].parse::<i64>().unwrap() + 1).to_string()]
    );

    // The down resumes where the old Strata stopped: statements 1 and 2
    // do not run again.
    project.write(
        "2_index.down.sql",
        "-- strata:no-transaction\nINSERT INTO log VALUES ('d1');\nDELETE FROM t WHERE id = (SELECT min(id) FROM t);\nINSERT INTO log VALUES ('d3');\nDROP INDEX t_id;\n",
    );
    let out = expect_code(&project.run(&db, &["down"]), 0);
    assert!(out.contains("resuming at statement 3 of 4"), "{out}");
    assert_eq!(
        db.column("SELECT x FROM log ORDER BY x").await,
        ["d1", "d3"]
    );
    assert_eq!(
        db.column("SELECT count(*)::text FROM strata_progress")
            .await,
        ["0"]
    );

    // The upgraded layout is the one a new database gets directly, without
    // an upgrade event.
    let fresh = TestDb::new().await;
    let other = Project::applied(&fresh, "CREATE TABLE t (id int);\n");
    expect_code(&other.run(&fresh, &["status"]), 0);
    assert_eq!(layout(&db, "public").await, layout(&fresh, "public").await);
    assert_eq!(
        fresh
            .column("SELECT count(*)::text FROM strata_events WHERE action = 'own-tables-upgrade'")
            .await,
        ["0"]
    );
    assert_eq!(
        fresh
            .column("SELECT version::text FROM strata_schema")
            .await,
        ["2"]
    );
}

#[tokio::test]
async fn a_newer_layout_is_refused_naming_both_versions_and_nothing_runs() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id int);\n");
    db.connect()
        .await
        .batch("UPDATE strata_schema SET version = 7")
        .await
        .unwrap();
    project.write("2_u.up.sql", "CREATE TABLE u (id int);\n");
    for args in [&["up"][..], &["status"], &["down"]] {
        let out = expect_code(&project.run(&db, args), 2);
        assert!(
            out.contains("layout version 7") && out.contains("versions up to 2"),
            "{args:?}: {out}"
        );
    }
    assert!(!db.has_table("u").await, "nothing ran");
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
}

#[tokio::test]
async fn each_history_table_has_its_own_layout_version_in_its_schema() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.config("history_schema = \"ops\"\nhistory_table = \"app_history\"\n");
    project.write("1_t.up.sql", "CREATE TABLE t (id int);\n");
    expect_code(&project.run(&db, &["up"]), 0);
    let other = Project::new();
    other.config("history_schema = \"ops\"\nhistory_table = \"other_history\"\n");
    other.write("1_u.up.sql", "CREATE TABLE u (id int);\n");
    expect_code(&other.run(&db, &["up"]), 0);
    assert_eq!(
        db.column("SELECT history_table || ' ' || version FROM ops.strata_schema ORDER BY 1")
            .await,
        ["app_history 2", "other_history 2"]
    );
    assert!(!db.has_table("public.strata_schema").await);
    // One history table on a newer layout does not stop the other.
    db.connect()
        .await
        .batch("UPDATE ops.strata_schema SET version = 3 WHERE history_table = 'other_history'")
        .await
        .unwrap();
    expect_code(&other.run(&db, &["status"]), 2);
    expect_code(&project.run(&db, &["status"]), 0);
}
