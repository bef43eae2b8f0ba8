//! Plans through the library (issue 9 with issue 12): `embed_migrations!`
//! embeds `.plan.toml` files as the CLI loads them, and `Migrator::up`
//! stops at a gate and says which plan waits for what, passes one gate with
//! `continue_plan` and every gate with `through_gates`, and writes the
//! history `strata up` writes.

use std::path::Path;

use crate::support::{expect_code, strata, TestDb};

/// `users`, a plan behind a deploy gate (add a column, then backfill and
/// validate it), and a migration that waits for the plan.
static EMBEDDED: strata::EmbeddedMigrations =
    strata::embed_migrations!("tests/fixtures/embedded-plan");

fn fixture() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/embedded-plan"
    ))
}

/// A migrator for `db` that needs no `pg_dump` on the host (the plan drops
/// nothing) and keeps `.strata/` out of the source tree.
fn migrator(m: strata::Migrator, db: &TestDb, project: &Path) -> strata::Migrator {
    m.database_url(&db.url).project_dir(project).backups(false)
}

const ROWS: &str =
    "SELECT version || ' ' || kind || ' ' || name || ' ' || checksum || ' ' || state \
    FROM strata_migrations ORDER BY version";

#[tokio::test]
async fn an_embedded_plan_stops_at_its_gate_and_continue_plan_passes_it() {
    let db = TestDb::new().await;
    let project = tempfile::tempdir().unwrap();
    let m = migrator(strata::Migrator::embedded(EMBEDDED), &db, project.path());

    let report = m.up().await.unwrap();
    let applied: Vec<&str> = report
        .applied
        .iter()
        .map(|s| s.migration.as_str())
        .collect();
    assert_eq!(applied, ["1_users"]);
    assert_eq!(report.waiting.len(), 1, "{:?}", report.waiting);
    let w = &report.waiting[0];
    assert_eq!(w.plan, "2_email_lower");
    assert_eq!(w.version, "2");
    assert_eq!((w.phases_done, w.phases), (1, 2));
    assert_eq!(w.gate, "deploy: app v2, which writes email_lower");
    assert_eq!(w.held_back, ["3_after"]);
    assert!(!db.has_table("public.after_plan").await);
    // The expand phase ran: the column is there, not filled yet.
    assert_eq!(
        db.column("SELECT count(*)::text FROM users WHERE email_lower IS NULL")
            .await,
        ["50"]
    );

    // `status` says where the plan is, as `strata status` does.
    let status = m.status().await.unwrap();
    let plan = status.iter().find(|s| s.version == "2").unwrap();
    assert_eq!(plan.state, strata::MigrationState::Pending);
    assert_eq!(
        plan.detail.as_deref(),
        Some("phase 1 of 2 done; waiting for: deploy: app v2, which writes email_lower")
    );

    // Running again without passing the gate changes nothing.
    let again = m.up().await.unwrap();
    assert!(again.applied.is_empty(), "{again:?}");
    assert_eq!(again.waiting, report.waiting);

    // The deploy happened: pass that gate.
    let report = m.clone().continue_plan("2").up().await.unwrap();
    let applied: Vec<&str> = report
        .applied
        .iter()
        .map(|s| s.migration.as_str())
        .collect();
    assert_eq!(applied, ["2_email_lower", "3_after"]);
    assert!(report.waiting.is_empty(), "{:?}", report.waiting);
    assert_eq!(
        db.column("SELECT count(*)::text FROM users WHERE email_lower = lower(email)")
            .await,
        ["50"]
    );
    assert!(db.has_table("public.after_plan").await);

    // The history is the one `strata up` writes for the same files.
    let cli_db = TestDb::new().await;
    let cli_project = tempfile::tempdir().unwrap();
    let dir = cli_project.path().join("migrations");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixture()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    let out = expect_code(&strata(cli_project.path(), Some(&cli_db.url), &["up"]), 0);
    assert!(
        out.contains("2_email_lower: phase 1 of 2 done; waiting for: deploy: app v2"),
        "{out}"
    );
    expect_code(
        &strata(
            cli_project.path(),
            Some(&cli_db.url),
            &["up", "--continue", "2"],
        ),
        0,
    );
    let (lib, cli) = (db.column(ROWS).await, cli_db.column(ROWS).await);
    assert_eq!(lib.len(), 3, "{lib:?}");
    assert_eq!(lib, cli, "history rows differ");
    // And the CLI takes the library's database over as if it had migrated it.
    expect_code(
        &strata(
            cli_project.path(),
            Some(&db.url),
            &["status", "--exit-code"],
        ),
        0,
    );
}

#[tokio::test]
async fn through_gates_runs_every_phase_in_one_go() {
    let db = TestDb::new().await;
    let project = tempfile::tempdir().unwrap();
    let report = migrator(strata::Migrator::from_dir(fixture()), &db, project.path())
        .through_gates(true)
        .up()
        .await
        .unwrap();
    let applied: Vec<&str> = report
        .applied
        .iter()
        .map(|s| s.migration.as_str())
        .collect();
    assert_eq!(applied, ["1_users", "2_email_lower", "3_after"]);
    assert!(report.waiting.is_empty(), "{:?}", report.waiting);
    assert_eq!(
        db.column("SELECT count(*)::text FROM users WHERE email_lower = lower(email)")
            .await,
        ["50"]
    );
}

#[tokio::test]
async fn continue_plan_of_no_plan_in_progress_refuses_and_runs_nothing() {
    let db = TestDb::new().await;
    let project = tempfile::tempdir().unwrap();
    let m = migrator(strata::Migrator::embedded(EMBEDDED), &db, project.path());
    for version in ["3", "x"] {
        let e = m.clone().continue_plan(version).up().await.unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        assert!(e.to_string().contains(version), "{e}");
        assert!(e.help().is_some(), "{e}");
        assert!(!db.has_table("public.users").await, "nothing ran: {e}");
    }
}
