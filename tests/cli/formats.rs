//! Each layout on a fixture that mimics the original tool: up applies in the
//! tool's own order, status is clean, down reverts, up again re-applies.

use crate::support::{expect_code, Project, TestDb};

async fn round_trip(fixture: &str, expected_order: &[&str], down_args: &[&str]) {
    let db = TestDb::new().await;
    let project = Project::from_fixture(&format!("formats/{fixture}"));
    let out = expect_code(&project.run(&db, &["up"]), 0);
    let applied: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("ok applied "))
        .map(|l| l.rsplit_once(" in ").unwrap().0)
        .collect();
    assert_eq!(applied, expected_order, "{fixture}: wrong order\n{out}");
    assert!(db.has_table("accounts").await && db.has_table("sessions").await);
    let status = expect_code(&project.run(&db, &["status", "--exit-code"]), 0);
    assert!(
        status.contains(&format!("{} applied, 0 pending", expected_order.len())),
        "{status}"
    );
    let mut args = vec!["down"];
    args.extend_from_slice(down_args);
    expect_code(&project.run(&db, &args), 0);
    assert!(
        !db.has_table("sessions").await,
        "{fixture}: down did not revert"
    );
    expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        db.has_table("sessions").await,
        "{fixture}: up after down did not re-apply"
    );
}

#[tokio::test]
async fn native_orders_versions_numerically_and_runs_concurrent_index_outside_a_transaction() {
    round_trip(
        "native",
        &[
            "1_create_accounts",
            "2_index_accounts_email",
            "10_create_sessions",
        ],
        &["--all"],
    )
    .await;
}

#[tokio::test]
async fn goose_sections_blocks_and_no_transaction() {
    round_trip(
        "goose",
        &[
            "00001_create_accounts",
            "00002_index_accounts_email",
            "00010_create_sessions",
        ],
        &["--all"],
    )
    .await;
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/goose");
    expect_code(&project.run(&db, &["up"]), 0);
    // The StatementBegin block (a function with semicolons) ran whole.
    assert_eq!(
        db.column("SELECT proname::text FROM pg_proc WHERE proname = 'touch_updated_at'")
            .await,
        ["touch_updated_at"]
    );
}

#[tokio::test]
async fn diesel_orders_versions_as_strings_like_diesel() {
    // 2023-01-01-000000-0001 (18 digits) sorts before 2023-01-02-000000 (14
    // digits) as a string, and sessions references accounts: any other order
    // fails.
    round_trip(
        "diesel",
        &[
            "00000000000000_diesel_initial_setup",
            "202301010000000001_create_accounts",
            "20230102000000_create_sessions",
            "20230103000000_index_sessions",
        ],
        &["--steps", "2"],
    )
    .await;
}

#[tokio::test]
async fn sqlx_simple_reversible_and_no_transaction() {
    round_trip(
        "sqlx",
        &[
            "20230101000000_create_accounts",
            "20230102000000_index_accounts_email",
            "20230103000000_create_sessions",
        ],
        &[],
    )
    .await;
}

#[tokio::test]
async fn flyway_dotted_versions_undo_and_repeatable() {
    round_trip(
        "flyway",
        &[
            "1_create accounts",
            "1.2_create sessions",
            "1.10_add session expiry",
            "R__account emails",
        ],
        &["--to", "1"],
    )
    .await;
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/flyway");
    expect_code(&project.run(&db, &["up"]), 0);
    assert!(db.has_table("account_emails").await);
    // A changed repeatable migration runs again; nothing else does.
    project.write(
        "R__account_emails.sql",
        "CREATE OR REPLACE VIEW account_emails AS SELECT id, email, 1 AS v FROM accounts;\n",
    );
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(status.contains("changed since it last ran"), "{status}");
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("ok applied R__account emails") && out.contains("1 migration(s) applied"),
        "{out}"
    );
    assert_eq!(db.column("SELECT count(*)::text FROM information_schema.columns WHERE table_name = 'account_emails'").await, ["3"]);
}

#[tokio::test]
async fn format_override_in_config_wins_over_detection() {
    let db = TestDb::new().await;
    let project = Project::new();
    // Looks like sqlx by name; the config says goose.
    project.write(
        "001_a.sql",
        "-- +goose Up\nCREATE TABLE a (id int);\n-- +goose Down\nDROP TABLE a;\n",
    );
    project.config("format = \"goose\"\n");
    expect_code(&project.run(&db, &["up"]), 0);
    expect_code(&project.run(&db, &["down"]), 0);
    assert!(!db.has_table("a").await);
}
