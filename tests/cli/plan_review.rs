//! `strata plan V`: the review spec of a multi-phase plan, on the design
//! documents' example 3 (users.age varchar → integer with
//! `change_column_type`, expand → deploy gate → contract).

use std::path::Path;

use serde_json::Value;

use crate::support::{expect_code, strata, Project, TestDb};

const BASE: &str = "20260101000000";
const PLAN: &str = "20260102000000";
const GATE: &str = "app v1.1, which reads age as a number and writes only digits";

/// A project holding example 3's migrations.
fn project() -> Project {
    example("03_age_to_integer")
}

/// A project holding the migrations of one of examples/plans.
fn example(dir: &str) -> Project {
    let project = Project::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/plans")
        .join(dir)
        .join("migrations");
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), project.migrations().join(entry.file_name())).unwrap();
    }
    project
}

fn json(out: &std::process::Output) -> Value {
    let text = expect_code(out, 0);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The text of the section under `## heading`, up to the next one.
fn section<'a>(md: &'a str, heading: &str) -> &'a str {
    let start = md
        .find(&format!("\n## {heading}"))
        .unwrap_or_else(|| panic!("no section {heading}:\n{md}"));
    let rest = &md[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 4);
    &rest[..end]
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn review_of_a_plan_on_a_live_table_has_every_section() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up", "--to", BASE]), 0);
    // 5,300 rows in all (the base inserts 300), counted exactly by ANALYZE.
    db.connect()
        .await
        .batch(
            "INSERT INTO users (email, age) SELECT 'u' || g, (g % 90)::text FROM generate_series(1, 5000) g;
             ANALYZE users",
        )
        .await
        .unwrap();
    let rows: i64 = db.column("SELECT count(*)::text FROM users").await[0]
        .parse()
        .unwrap();
    assert_eq!(rows, 5300);

    let r = json(&project.run(&db, &["plan", PLAN, "--format", "json"]));
    assert_eq!(r["label"], "20260102000000_age_to_integer");
    assert_eq!(r["connected"], true);
    assert_eq!(r["progress"], "not started");
    assert_eq!(r["description"], "users.age varchar(10) -> integer");

    // Risk: no lint finding (a generated-grade plan), but the operations'
    // own risk: the contract drops the old values, and both steps take a
    // brief ACCESS EXCLUSIVE under lock_timeout.
    assert_eq!(r["risk"]["lint_class"], "NONE", "{r:#}");
    assert_eq!(r["risk"]["class"], "MEDIUM", "{r:#}");
    let op_risks = strings(&r["risk"]["operations"]).join("\n");
    assert!(
        op_risks.contains("phase 2 `contract`: `change_column_type` (line 22) drops data"),
        "{op_risks}"
    );
    assert!(
        op_risks.contains("takes ACCESS EXCLUSIVE on users in a short transaction"),
        "{op_risks}"
    );

    // Phases and gates, in order.
    let phases = r["phases"].as_array().unwrap();
    let names: Vec<_> = phases.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["expand", "contract"]);
    assert_eq!(phases[0]["gate"]["kind"], "deploy");
    assert_eq!(phases[0]["gate"]["deploy"], GATE);
    assert_eq!(phases[1]["gate"]["kind"], "none");
    assert_eq!(phases[0]["state"], "pending");

    // What each phase changes, from the compiled actions.
    let expand = strings(&phases[0]["schema_changes"]).join("\n");
    assert!(
        expand.contains("column users.strata_20260102000000_typ_")
            && expand.contains("trigger strata_20260102000000_typ_")
            && expand.contains("function public.strata_20260102000000_typ_"),
        "{expand}"
    );
    // A trigger installed re-runnably (drop if exists, create) is one change.
    assert!(!expand.contains("_trg on users dropped"), "{expand}");
    let contract = strings(&phases[1]["schema_changes"]).join("\n");
    assert!(
        contract.contains("column users.age dropped (its data with it)")
            && contract.contains("renamed to age"),
        "{contract}"
    );
    let kinds: Vec<_> = phases[0]["operations"][0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["transaction", "validate", "backfill", "validate"]);

    // Data impact: rows from the live statistics; the backfill touches them all.
    let users = &r["data_impact"][0];
    assert_eq!(users["table"], "users");
    assert_eq!(users["rows"].as_i64(), Some(rows), "{r:#}");
    assert_eq!(users["rows_touched"].as_i64(), Some(rows), "{r:#}");
    assert!(users["bytes"].as_i64().unwrap() > 0, "{r:#}");
    let backfill = &phases[0]["operations"][0]["actions"][2];
    assert_eq!(backfill["rows"].as_i64(), Some(rows));
    assert!(
        backfill["how"]
            .as_str()
            .unwrap()
            .starts_with("5300 rows of users ÷ "),
        "{backfill}"
    );

    // Estimates: per phase and in total, and how they were made.
    let source = r["estimates"]["rate_source"].as_str().unwrap();
    assert!(
        ["cached", "measured", "default"].contains(&source),
        "{source}"
    );
    assert!(r["estimates"]["rewrite_bytes_per_sec"].as_f64().unwrap() > 0.0);
    assert!(!r["estimates"]["how"].as_array().unwrap().is_empty());
    let p1 = phases[0]["estimate_ms"].as_i64().unwrap();
    let p2 = phases[1]["estimate_ms"].as_i64().unwrap();
    assert_eq!(r["total_estimate_ms"].as_i64(), Some(p1 + p2));
    assert_eq!(r["total_estimate_complete"], true);

    // The longest lock: the swap's ACCESS EXCLUSIVE, bounded by lock_timeout.
    let lock = &r["longest_lock"];
    assert_eq!(lock["lock"], "ACCESS EXCLUSIVE", "{r:#}");
    assert_eq!(lock["table"], "users");
    assert_eq!(lock["blocks_app"], true);
    assert!(
        lock["bound"]
            .as_str()
            .unwrap()
            .contains("lock_timeout (30 ms)")
            && lock["bound"]
                .as_str()
                .unwrap()
                .contains("lock_retry_budget (10m)"),
        "{lock}"
    );
    // lock_timeout, plus a catalog-only hold.
    assert_eq!(lock["bound_ms"].as_i64(), Some(30));

    // Rollback: the expand step reverses; the contract only from its backup.
    assert_eq!(phases[0]["rollback"]["reversible"], true);
    assert!(
        phases[0]["rollback"]["command"]
            .as_str()
            .unwrap()
            .starts_with(&format!("`strata rollback {PLAN} --phase 1`")),
        "{r:#}"
    );
    let contract_rollback = &phases[1]["rollback"];
    assert_eq!(contract_rollback["reversible"], false);
    assert!(
        contract_rollback["command"]
            .as_str()
            .unwrap()
            .starts_with(&format!(
                "irreversible: drops data; rollback needs `strata rollback {PLAN} --phase 2 --from-backup <the backup taken before phase 2>`"
            )),
        "{contract_rollback}"
    );
    assert_eq!(phases[1]["backup_first"], true);

    // Deploy steps: up, the gate's deploy, --continue, status; in order.
    let steps = strings(&r["deploy_steps"]);
    let at = |needle: &str| {
        steps
            .iter()
            .position(|s| s.contains(needle))
            .unwrap_or_else(|| panic!("no step {needle}: {steps:#?}"))
    };
    assert!(
        steps[0].starts_with("`strata up`: runs phase 1 `expand`"),
        "{steps:#?}"
    );
    assert!(at(&format!("Deploy: {GATE}")) > 0);
    assert!(at(&format!("`strata up --continue {PLAN}`")) > at(&format!("Deploy: {GATE}")));
    assert!(
        steps[at(&format!("`strata up --continue {PLAN}`"))].contains("runs phase 2 `contract`")
    );
    assert!(
        steps.last().unwrap().starts_with("`strata status`"),
        "{steps:#?}"
    );

    // Testing plan: through the gates on a throwaway database, and the
    // plan's own validations.
    let testing = strings(&r["testing"]["steps"]).join("\n");
    assert!(testing.contains("up --through-gates"), "{testing}");
    let validations = strings(&r["testing"]["validations"]);
    assert_eq!(validations.len(), 2, "{validations:?}");
    assert!(validations[0].contains("does not convert to integer"));
    assert!(!r["testing"]["watch"].as_array().unwrap().is_empty());

    // Markdown: every section, GitHub tables and a task list.
    let md = expect_code(&project.run(&db, &["plan", PLAN]), 0);
    assert!(
        md.starts_with("# Plan: 20260102000000_age_to_integer\n"),
        "{md}"
    );
    for heading in [
        "Risk Level: MEDIUM",
        "Phases",
        "Schema Changes",
        "Data Impact",
        "Estimated Duration",
        "Longest Lock",
        "Rollback Procedure",
        "Deploy Steps",
        "Testing Plan",
    ] {
        section(&md, heading);
    }
    assert!(
        section(&md, "Phases")
            .contains("| 2 | contract (pending) | `change_column_type` contract (line 22) |"),
        "{md}"
    );
    assert!(
        section(&md, "Data Impact").contains(&format!("| users | {rows} |")),
        "{md}"
    );
    assert!(
        section(&md, "Deploy Steps").contains(&format!("- [ ] Deploy: {GATE}\n")),
        "{md}"
    );
    // The global --json gives the JSON too.
    let again = json(&project.run(&db, &["--json", "plan", PLAN]));
    assert_eq!(again["label"], r["label"]);

    // `strata spec` on a plan hands over to the plan review.
    let spec = expect_code(&project.run(&db, &["spec", PLAN]), 0);
    assert!(
        spec.starts_with("# Plan: 20260102000000_age_to_integer\n"),
        "{spec}"
    );

    // After the first phase: progress, phase states, and the batches this
    // database really ran become the backfill rate.
    expect_code(&project.run(&db, &["up"]), 0);
    let r = json(&project.run(&db, &["plan", PLAN, "--format", "json"]));
    assert_eq!(
        r["progress"],
        format!("phase 1 of 2 done; waiting for: deploy: {GATE}")
    );
    assert_eq!(r["phases"][0]["state"], "done");
    assert_eq!(r["phases"][1]["state"], "pending");
    assert!(
        r["estimates"]["backfill_rows_per_sec"].as_f64().unwrap() > 0.0,
        "{:#}",
        r["estimates"]
    );

    // Applied: the contract's rollback names the backup `up` took.
    expect_code(&project.run(&db, &["up", "--continue", PLAN]), 0);
    let r = json(&project.run(&db, &["plan", PLAN, "--format", "json"]));
    assert_eq!(r["progress"], "applied");
    let backup = r["phases"][1]["rollback"]["backup"]
        .as_str()
        .unwrap_or_else(|| panic!("no backup: {r:#}"));
    assert!(
        r["phases"][1]["rollback"]["command"]
            .as_str()
            .unwrap()
            .contains(&format!("--from-backup {backup}`")),
        "{r:#}"
    );
}

#[test]
fn review_from_the_files_alone_says_it_is_not_connected() {
    let project = project();
    let out = strata(project.path(), None, &["plan", PLAN, "--format", "json"]);
    let r = json(&out);
    assert_eq!(r["connected"], false);
    assert!(r["progress"].is_null());
    assert!(r["total_estimate_ms"].is_null());
    assert!(r["data_impact"][0]["rows"].is_null());
    assert_eq!(r["estimates"]["rate_source"], "none");
    // The operations that carry the table's catalog over are described
    // from the plan file, and the contract is still known to drop data.
    let op = &r["phases"][0]["operations"][0];
    assert_eq!(op["compiled"], false);
    assert!(
        op["note"].as_str().unwrap().starts_with("not connected"),
        "{op}"
    );
    assert_eq!(r["phases"][1]["rollback"]["reversible"], false);
    assert_eq!(r["risk"]["class"], "MEDIUM", "{r:#}");
    let steps = strings(&r["deploy_steps"]);
    assert!(
        steps.iter().any(|s| s == &format!("Deploy: {GATE}")),
        "{steps:?}"
    );

    let md = expect_code(&strata(project.path(), None, &["plan", PLAN]), 0);
    assert!(md.contains("Not connected: no sizes"), "{md}");
    assert!(
        section(&md, "Data Impact").contains("| users | – | – | – |"),
        "{md}"
    );
}

#[test]
fn a_sql_migration_or_an_unknown_version_is_a_clear_error() {
    let project = project();
    let out = expect_code(&strata(project.path(), None, &["plan", BASE]), 2);
    assert!(
        out.contains("20260101000000 is not a plan: it is the SQL migration")
            && out.contains(&format!("`strata spec {BASE}`")),
        "{out}"
    );
    let out = expect_code(&strata(project.path(), None, &["plan", "99"]), 2);
    assert!(out.contains("no migration is named 99"), "{out}");
}

#[tokio::test]
async fn a_concurrent_index_build_is_estimated_from_the_table_size_and_blocks_no_writes() {
    let db = TestDb::new().await;
    let project = example("04_composite_index");
    expect_code(&project.run(&db, &["up", "--to", BASE]), 0);
    db.connect().await.batch("ANALYZE orders").await.unwrap();
    let r = json(&project.run(&db, &["plan", PLAN, "--format", "json"]));
    let build = &r["phases"][0]["operations"][0]["actions"][0];
    assert_eq!(build["kind"], "alone");
    assert_eq!(build["lock"], "SHARE UPDATE EXCLUSIVE on orders");
    assert!(build["estimate_ms"].is_i64(), "{build}");
    let how = build["how"].as_str().unwrap();
    assert!(
        how.starts_with("an index build scans and sorts the table: orders, ")
            && (how.contains("measured on this server") || how.contains("the default")),
        "{how}"
    );
    // Reads and writes go on: no lock of the plan blocks the application.
    let lock = &r["longest_lock"];
    assert_eq!(lock["lock"], "SHARE UPDATE EXCLUSIVE", "{r:#}");
    assert_eq!(lock["blocks_app"], false);
    assert!(lock["bound_ms"].is_null());
    assert!(r["locks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["blocks_app"] == false));
    assert_eq!(
        strings(&r["phases"][0]["schema_changes"]),
        ["index idx_orders_user_created on orders built concurrently"]
    );
    // Both phases have a reverse.
    assert_eq!(r["phases"][1]["rollback"]["reversible"], true);
    assert_eq!(
        strings(&r["phases"][1]["rollback"]["reverse_changes"]),
        ["index orders_user_id_idx on orders built concurrently"]
    );
}

/// A `backfill` operation's WHERE counts the rows it selects (the
/// planner's estimate), not the whole table.
#[tokio::test]
async fn a_backfill_with_a_where_touches_the_rows_it_selects() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE items (id bigint PRIMARY KEY, flag boolean NOT NULL DEFAULT false);
             INSERT INTO items SELECT g, false FROM generate_series(1, 10000) g;
             ANALYZE items;",
        )
        .await
        .unwrap();
    let project = Project::new();
    project.write(
        "1_flag.plan.toml",
        "[[phase]]\nname = \"mark\"\noperations = [\n  { op = \"backfill\", table = \"items\", set = \"flag = true\", where = \"id <= 1000\" },\n]\n",
    );
    let r = json(&project.run(&db, &["plan", "1", "--format", "json"]));
    let items = r["data_impact"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "items")
        .unwrap_or_else(|| panic!("{r:#}"))
        .clone();
    assert_eq!(items["rows"], 10000, "{items}");
    let touched = items["rows_touched"].as_i64().unwrap();
    assert!((800..=1200).contains(&touched), "{items}");
}
