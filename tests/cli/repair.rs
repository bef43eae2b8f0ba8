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
async fn clears_failed_state() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_a.up.sql",
        "-- strata:no-transaction\nCREATE TABLE a (id int);\nSELECT 1/0;\n",
    );
    expect_code(&project.run(&db, &["up"]), 1);
    let out = expect_code(&project.run(&db, &["repair"]), 0);
    assert!(
        out.contains("cleared the failed state of 1_a (statements 1 to 1 had run"),
        "{out}"
    );
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(status.contains("0 applied, 1 pending"), "{status}");
    let details = db
        .column("SELECT details->>'repair' FROM strata_events WHERE action = 'repair'")
        .await;
    assert_eq!(details, ["failed"]);
}
