//! `strata status`: every state, the JSON form and `--exit-code`.

use crate::support::{expect_code, Project, TestDb};

#[tokio::test]
async fn shows_every_state_in_table_and_json() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    project.write("2_b.up.sql", "CREATE TABLE b (id int);\n");
    project.write("3_gone.up.sql", "CREATE TABLE gone (id int);\n");
    project.write(
        "4_f.up.sql",
        "-- strata:no-transaction\nCREATE TABLE f (id int);\nSELECT 1/0;\n",
    );
    expect_code(&project.run(&db, &["up", "--to", "3"]), 0);
    expect_code(&project.run(&db, &["up"]), 1);
    project.write("2_b.up.sql", "CREATE TABLE b (id bigint);\n");
    std::fs::remove_file(project.migrations().join("3_gone.up.sql")).unwrap();
    project.write("5_new.up.sql", "CREATE TABLE n (id int);\n");

    let table = expect_code(&project.run(&db, &["status"]), 0);
    for needle in [
        "VERSION",
        "APPLIED AT",
        "DURATION",
        "1 applied, 1 pending, 1 modified, 1 missing, 1 failed",
        "division by zero",
    ] {
        assert!(table.contains(needle), "missing {needle:?}:\n{table}");
    }
    let out = project.run(&db, &["status", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let states: Vec<(String, String)> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["version"].as_str().unwrap().to_owned(),
                m["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("1", "applied"),
        ("2", "modified"),
        ("3", "missing"),
        ("4", "failed"),
        ("5", "pending"),
    ];
    assert_eq!(states, expected.map(|(v, s)| (v.to_owned(), s.to_owned())));
    assert!(
        json[0]["applied_at"].is_string()
            && json[0]["duration_ms"].is_number()
            && json[0]["name"] == "a"
    );
    expect_code(&project.run(&db, &["status", "--exit-code"]), 3);
}

#[tokio::test]
async fn exit_code_is_zero_when_clean_and_status_never_writes() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    let out = expect_code(&project.run(&db, &["status", "--exit-code"]), 3);
    assert!(out.contains("pending"));
    // status on a fresh database creates nothing, not even the history table.
    assert!(!db.has_table("public.strata_migrations").await);
    expect_code(&project.run(&db, &["up"]), 0);
    expect_code(&project.run(&db, &["status", "--exit-code"]), 0);
}
