//! `strata repair`: accepting changed checksums and clearing failed state,
//! each action audited.

use crate::support::{expect_code, Project, TestDb};

#[tokio::test]
async fn accepts_changed_checksums() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    expect_code(&project.run(&db, &["up"]), 0);
    project.write("1_a.up.sql", "-- reformatted\nCREATE TABLE a (id int);\n");
    expect_code(&project.run(&db, &["up"]), 2);
    let out = expect_code(&project.run(&db, &["repair"]), 0);
    assert!(
        out.contains("accepted the changed checksum of 1_a"),
        "{out}"
    );
    expect_code(&project.run(&db, &["status", "--exit-code"]), 0);
    let details = db
        .column("SELECT details->>'repair' FROM strata_events WHERE action = 'repair'")
        .await;
    assert_eq!(details, ["checksum"]);
    let out = expect_code(&project.run(&db, &["repair"]), 0);
    assert!(out.contains("nothing to repair"), "{out}");
}

#[tokio::test]
async fn keeps_the_progress_of_a_failed_migration() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_a.up.sql",
        "-- strata:no-transaction\nCREATE TABLE IF NOT EXISTS a (id int);\nINSERT INTO a SELECT generate_series(1, 10);\nSELECT 1/0;\nCREATE TABLE b (id int);\n",
    );
    expect_code(&project.run(&db, &["up"]), 1);
    let out = expect_code(&project.run(&db, &["repair"]), 0);
    assert!(
        out.contains("1_a stopped at statement 3 of 4: statements 1 to 2 ran and stay recorded as applied; the next `strata up` resumes at statement 3"),
        "{out}"
    );
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(status.contains("stopped at statement 3 of 4"), "{status}");
    // The cause fixed, the next up runs statements 3 and 4 only.
    project.write(
        "1_a.up.sql",
        "-- strata:no-transaction\nCREATE TABLE IF NOT EXISTS a (id int);\nINSERT INTO a SELECT generate_series(1, 10);\nSELECT 1;\nCREATE TABLE b (id int);\n",
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(out.contains("resuming at statement 3 of 4"), "{out}");
    assert_eq!(
        db.column("SELECT count(*)::text FROM a").await,
        ["10"],
        "statements that ran before the repair ran again"
    );
    assert_eq!(db.history().await, [("1".to_owned(), "applied".to_owned())]);
}

#[tokio::test]
async fn refuses_when_the_statements_that_ran_changed() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_a.up.sql",
        "-- strata:no-transaction\nCREATE TABLE IF NOT EXISTS a (id int);\nINSERT INTO a SELECT generate_series(1, 10);\nSELECT 1/0;\n",
    );
    expect_code(&project.run(&db, &["up"]), 1);
    project.write(
        "1_a.up.sql",
        "-- strata:no-transaction\nCREATE TABLE IF NOT EXISTS a (id int);\nINSERT INTO a SELECT generate_series(1, 20);\nSELECT 1;\n",
    );
    let before = db
        .column("SELECT state || ' ' || statements_done FROM strata_migrations")
        .await;
    let out = expect_code(&project.run(&db, &["repair"]), 2);
    assert!(
        out.contains("statements 1 to 2 of 1_a ran before it stopped, and they changed since"),
        "{out}"
    );
    assert!(
        out.contains("restore statements 1 to 2 as they were"),
        "{out}"
    );
    assert_eq!(
        db.column("SELECT state || ' ' || statements_done FROM strata_migrations")
            .await,
        before,
        "nothing changed"
    );
    // up refuses the same way, and runs nothing.
    let out = expect_code(&project.run(&db, &["up"]), 2);
    assert!(
        out.contains("restore statements 1 to 2 as they were"),
        "{out}"
    );
    assert_eq!(db.column("SELECT count(*)::text FROM a").await, ["10"]);
}
