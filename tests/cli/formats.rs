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

/// `validate` and `status -v` show each ignored file as a warning; the run
/// is not refused. Returns the validate output.
fn warns_and_ignores(project: &Project, db: &TestDb, ignored: &[&str]) -> String {
    let out = expect_code(&project.run(db, &["validate"]), 0);
    for name in ignored {
        assert!(
            out.lines()
                .any(|l| l.starts_with("warning:") && l.contains(name) && l.contains("ignored")),
            "{name} not reported as ignored:\n{out}"
        );
    }
    out
}

#[tokio::test]
async fn golang_migrate_pairs_up_and_down_by_version_and_ignores_other_files() {
    // 0002_add_sessions.up.sql pairs with 2_drop_sessions.down.sql (same
    // version, other name); README.md and seed.sql are skipped by
    // golang-migrate, so they are warnings, not errors.
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/native_pairing");
    let out = warns_and_ignores(&project, &db, &["README.md", "seed.sql"]);
    assert!(
        out.contains("2_drop_sessions.down.sql")
            && out.contains("paired with")
            && out.contains("by version"),
        "{out}"
    );
    assert!(out.contains("2 migration(s)"), "{out}");
    round_trip(
        "native_pairing",
        &["1_create_accounts", "0002_add_sessions"],
        &["--all"],
    )
    .await;
    // The status row says the down file has another name; -v lists the
    // ignored files, the plain status does not.
    expect_code(&project.run(&db, &["up"]), 0);
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains("down script 2_drop_sessions.down.sql (paired by version"),
        "{status}"
    );
    assert!(!status.contains("seed.sql"), "{status}");
    let verbose = expect_code(&project.run(&db, &["status", "-v"]), 0);
    assert!(
        verbose.contains("warning:")
            && verbose.contains("seed.sql")
            && verbose.contains("README.md"),
        "{verbose}"
    );
    // The seed file never ran.
    assert_eq!(
        db.column("SELECT count(*)::text FROM accounts").await,
        ["0"]
    );
    // Two up files with one version (numerically) are refused, as in golang-migrate.
    project.write("02_other.up.sql", "SELECT 1;\n");
    let out = expect_code(&project.run(&db, &["validate"]), 2);
    assert!(out.contains("duplicate version 2"), "{out}");
}

#[tokio::test]
async fn diesel_ignores_files_beside_the_migration_folders() {
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/diesel_loose_files");
    warns_and_ignores(&project, &db, &["fix_emails.sql", "README.md"]);
    // Even a loose file named like another layout's migration.
    project.write("20230601_fix.sql", "SELECT 1;\n");
    project.write("20230602_fix.up.sql", "SELECT 1;\n");
    warns_and_ignores(&project, &db, &["20230601_fix.sql", "20230602_fix.up.sql"]);
    round_trip(
        "diesel_loose_files",
        &[
            "00000000000000_diesel_initial_setup",
            "20230501101500_create_accounts",
            "20230502080000_create_sessions",
        ],
        &["--steps", "1"],
    )
    .await;
}

#[tokio::test]
async fn every_layout_ignores_what_its_tool_ignores() {
    let db = TestDb::new().await;
    // Flyway skips names without the `__` separator and non-SQL files.
    let project = Project::from_fixture("formats/flyway_ignored");
    warns_and_ignores(&project, &db, &["V3_missing_separator.sql", "README.md"]);
    expect_code(&project.run(&db, &["up"]), 0);
    assert!(db.has_table("sessions").await && !db.has_table("never_created").await);
    // goose: non-SQL files are ignored; a Go migration cannot run and is an error.
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/goose");
    project.write("README.md", "goose migrations\n");
    project.write(".gitkeep", "");
    warns_and_ignores(&project, &db, &["README.md"]);
    project.write("00011_backfill.go", "package migrations\n");
    let out = expect_code(&project.run(&db, &["validate"]), 2);
    assert!(
        out.contains("00011_backfill.go") && out.contains("Go migration"),
        "{out}"
    );
    // sqlx: a `.sql` name without `_` is skipped; `x_y.sql` with a
    // non-numeric version is an error in sqlx, and here.
    let project = Project::from_fixture("formats/sqlx");
    project.write("CHANGELOG", "v1\n");
    project.write("scratch.sql", "SELECT 1;\n");
    warns_and_ignores(&project, &db, &["CHANGELOG", "scratch.sql"]);
    project.write("my_notes.sql", "SELECT 1;\n");
    let out = expect_code(&project.run(&db, &["validate"]), 2);
    assert!(out.contains("my_notes.sql"), "{out}");
}

#[tokio::test]
async fn dbmate_markers_options_and_new() {
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/dbmate");
    let out = warns_and_ignores(&project, &db, &["README.md"]);
    assert!(out.contains("(dbmate layout)"), "{out}");
    round_trip(
        "dbmate",
        &[
            "20230101000000_create_accounts",
            "20230102000000_index_accounts_email",
            "20230103000000_create_sessions",
        ],
        &["--all"],
    )
    .await;
    // `transaction:false` ran the CONCURRENTLY index outside a transaction.
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(
        out.contains("ok applied 20230102000000_index_accounts_email"),
        "{out}"
    );
    assert_eq!(
        db.column("SELECT indexrelid::regclass::text FROM pg_index WHERE indexrelid = 'accounts_email_idx'::regclass AND indisvalid").await,
        ["accounts_email_idx"]
    );
    // `strata new` writes the dbmate shape.
    let out = expect_code(&project.run(&db, &["new", "add_plans"]), 0);
    let created = std::fs::read_dir(project.migrations())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_add_plans.sql"))
        .unwrap_or_else(|| panic!("no dbmate file created:\n{out}"));
    let text = std::fs::read_to_string(created).unwrap();
    assert!(
        text.contains("-- migrate:up") && text.contains("-- migrate:down"),
        "{text}"
    );
    // A dbmate file without its down marker is refused, as dbmate refuses it.
    project.write("20230104000000_no_down.sql", "-- migrate:up\nSELECT 1;\n");
    let out = expect_code(&project.run(&db, &["validate"]), 2);
    assert!(out.contains("no `-- migrate:down`"), "{out}");
}

#[tokio::test]
async fn down_suffix_files_pair_with_their_up_file() {
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/sqlx_down_suffix");
    warns_and_ignores(&project, &db, &["NOTES.txt", "scratch.sql"]);
    round_trip(
        "sqlx_down_suffix",
        &["20240127_create_accounts", "20240128_add_wishlist_feature"],
        &[],
    )
    .await;
}

#[tokio::test]
async fn strata_markers_split_up_and_down_in_any_layout() {
    round_trip(
        "native_markers",
        &["1_create_accounts", "2_create_sessions"],
        &["--all"],
    )
    .await;
    // diesel and Flyway, written by hand here.
    for (files, down_args) in [
        (
            vec![
                ("2024-01-01-000000_accounts/up.sql", "-- strata:up\nCREATE TABLE accounts (id int PRIMARY KEY);\n-- strata:down\nDROP TABLE accounts;\n"),
                ("2024-01-02-000000_sessions/up.sql", "-- strata:up\nCREATE TABLE sessions (id int);\n-- strata:down\nDROP TABLE sessions;\n"),
            ],
            "--all",
        ),
        (
            vec![
                ("V1__accounts.sql", "CREATE TABLE accounts (id int PRIMARY KEY);\n-- strata:down\nDROP TABLE accounts;\n"),
                ("V2__sessions.sql", "-- strata:up\nCREATE TABLE sessions (id int);\n-- strata:down\nDROP TABLE sessions;\n"),
            ],
            "--all",
        ),
    ] {
        let db = TestDb::new().await;
        let project = Project::new();
        for (name, text) in &files {
            project.write(name, text);
        }
        expect_code(&project.run(&db, &["validate"]), 0);
        expect_code(&project.run(&db, &["up"]), 0);
        assert!(db.has_table("accounts").await && db.has_table("sessions").await, "{files:?}");
        expect_code(&project.run(&db, &["down", down_args]), 0);
        assert!(!db.has_table("accounts").await && !db.has_table("sessions").await, "{files:?}");
    }
    // A marker plus a separate down file is ambiguous.
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_a.up.sql",
        "CREATE TABLE a (id int);\n-- strata:down\nDROP TABLE a;\n",
    );
    project.write("1_a.down.sql", "DROP TABLE a;\n");
    let out = expect_code(&project.run(&db, &["validate"]), 2);
    assert!(
        out.contains("`-- strata:down` part and a down file"),
        "{out}"
    );
}

#[tokio::test]
async fn a_file_that_undoes_itself_is_high_and_blocks_up() {
    let db = TestDb::new().await;
    let project = Project::from_fixture("formats/self_undoing");
    let out = expect_code(&project.run(&db, &["validate"]), 2);
    assert!(
        out.contains("ban-self-undoing-migration")
            && out.contains(":9:")
            && out.contains("-- strata:up")
            && out.contains("-- strata:down"),
        "{out}"
    );
    let out = expect_code(&project.run(&db, &["lint"]), 3);
    assert!(
        out.contains("ban-self-undoing-migration") && out.contains("HIGH"),
        "{out}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 3);
    assert!(!out.contains("ok applied"), "{out}");
    assert!(db.history().await.is_empty());
    // With the markers the fix suggests, it applies and reverts.
    let file = "20240128_add_wishlist_feature.up.sql";
    let text = std::fs::read_to_string(project.migrations().join(file)).unwrap();
    let text = text
        .replace("-- ====== UP Migration ======", "-- strata:up")
        .replace("-- ====== DOWN Migration ======", "-- strata:down");
    project.write(file, &text);
    expect_code(&project.run(&db, &["up"]), 0);
    assert!(db.has_table("wishlists").await);
    expect_code(&project.run(&db, &["down"]), 0);
    assert!(!db.has_table("wishlists").await);
}
