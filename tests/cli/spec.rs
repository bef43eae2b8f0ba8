//! `strata spec`: the migration spec template, section by section.

use serde_json::Value;

use crate::support::{expect_code, strata, Project, TestDb};

fn project() -> Project {
    let project = Project::new();
    project.config("block_on = \"never\"\n");
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email text, n int);\n",
    );
    project.write(
        "2_drop_email.up.sql",
        "-- Drops the email column: sign-in uses the accounts service now.\nALTER TABLE users DROP COLUMN email;\n",
    );
    project.write(
        "2_drop_email.down.sql",
        "ALTER TABLE users ADD COLUMN email text;\n",
    );
    project.write(
        "3_audit.up.sql",
        "CREATE TABLE audit (id bigint PRIMARY KEY, note text);\n",
    );
    project.write(
        "4_widen.up.sql",
        "ALTER TABLE users ALTER COLUMN n TYPE bigint;\n",
    );
    project
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

#[test]
fn spec_in_markdown_has_every_section_of_the_template() {
    let project = project();
    let md = expect_code(&strata(project.path(), None, &["spec", "2"]), 0);
    assert!(md.starts_with("# Migration: 2_drop_email\n"), "{md}");
    let risk = section(&md, "Risk Level");
    assert!(
        risk.starts_with("## Risk Level: HIGH") && risk.contains("ban-drop-column (line 2)"),
        "{risk}"
    );
    assert!(
        section(&md, "Description").contains("sign-in uses the accounts service now"),
        "{md}"
    );
    assert!(
        section(&md, "Schema Changes")
            .contains("```sql\nALTER TABLE users DROP COLUMN email;\n```"),
        "{md}"
    );
    let impact = section(&md, "Data Impact");
    assert!(
        impact.contains("| table | rows | size | effect |")
            && impact.contains("| users | – | – | locked |"),
        "{impact}"
    );
    let duration = section(&md, "Estimated Duration");
    assert!(
        duration
            .contains("| 2 | `ALTER TABLE users DROP COLUMN email` | ACCESS EXCLUSIVE on users |")
            && duration.contains("Total: unknown offline"),
        "{duration}"
    );
    let downtime = section(&md, "Downtime Required");
    assert!(
        downtime.contains("YES") && downtime.contains("line 2: ACCESS EXCLUSIVE on users"),
        "{downtime}"
    );
    let rollback = section(&md, "Rollback Procedure");
    assert!(
        rollback.contains("`strata down")
            && rollback.contains("```sql\nALTER TABLE users ADD COLUMN email text;\n```"),
        "{rollback}"
    );
    let testing = section(&md, "Testing Plan");
    assert!(
        testing.contains("Not traced yet")
            && testing.contains("`strata trace 2 --sample-rows 10000`")
            && testing.contains("`strata test --from 2 --to 2`"),
        "{testing}"
    );
    let app = section(&md, "Application Changes Required");
    assert!(
        app.contains("run it after the application deploy") && app.contains("drops a column"),
        "{app}"
    );

    // An additive migration: no downtime, before the deploy, no rollback
    // script and no backup needed.
    let md = expect_code(&strata(project.path(), None, &["spec", "3"]), 0);
    assert!(
        section(&md, "Risk Level").contains("## Risk Level: NONE")
            || section(&md, "Risk Level").contains("LOW"),
        "{md}"
    );
    assert!(section(&md, "Downtime Required").contains("NO - "), "{md}");
    assert!(
        section(&md, "Application Changes Required").contains("before the application deploy"),
        "{md}"
    );
    assert!(
        section(&md, "Data Impact").contains("| audit | – | – | created by this migration |"),
        "{md}"
    );
}

#[tokio::test]
async fn spec_in_json_uses_live_sizes_estimates_the_backup_decision_and_a_trace() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up", "--to", "3"]), 0);
    db.connect()
        .await
        .batch(
            "INSERT INTO users (id, n) SELECT g, g FROM generate_series(1, 50000) g; ANALYZE users",
        )
        .await
        .unwrap();
    let out = project.run(&db, &["spec", "4", "--format", "json"]);
    let text = expect_code(&out, 0);
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(spec["label"], "4_widen");
    assert_eq!(spec["connected"], true);
    assert!(
        ["MEDIUM", "HIGH"].contains(&spec["risk"]["class"].as_str().unwrap()),
        "{spec:#}"
    );
    assert!(
        spec["risk"]["reasons"]
            .to_string()
            .contains("ban-column-type-change"),
        "{spec:#}"
    );
    assert_eq!(spec["schema_changes"]["source"], "statements");
    let users = &spec["data_impact"][0];
    assert_eq!(users["table"], "users");
    assert!(users["rows"].as_i64().unwrap() > 40_000, "{spec:#}");
    assert!(users["bytes"].as_i64().unwrap() > 0, "{spec:#}");
    let statement = &spec["statements"][0];
    assert_eq!(statement["lock"], "ACCESS EXCLUSIVE on users");
    assert!(statement["estimate_ms"].is_i64(), "{spec:#}");
    assert!(spec["total_estimate_ms"].is_i64(), "{spec:#}");
    assert_eq!(spec["downtime"]["needed"], true);
    assert!(
        spec["downtime"]["locks"][0]
            .as_str()
            .unwrap()
            .starts_with("line 1: ACCESS EXCLUSIVE on users for about "),
        "{spec:#}"
    );
    // No down script: the backup `up` would take is the way back.
    assert!(spec["rollback"]["down_sql"].is_null());
    let backup = spec["rollback"]["backup"].as_str().unwrap();
    assert!(
        backup.starts_with("`up` dumps public.users first"),
        "{backup}"
    );
    assert!(
        spec["rollback"]["procedure"]
            .as_str()
            .unwrap()
            .contains("restore the backup"),
        "{spec:#}"
    );
    assert!(
        spec["deploy_order"]["order"]
            .as_str()
            .unwrap()
            .starts_with("in two steps"),
        "{spec:#}"
    );
    assert!(spec["testing"]["trace"].as_array().unwrap().is_empty());

    // Traced: schema changes come from the observed catalog differences,
    // and the testing plan shows the observations.
    expect_code(&strata(project.path(), None, &["trace", "4"]), 0);
    let out = project.run(&db, &["spec", "4", "--format", "json"]);
    let spec: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["schema_changes"]["source"], "trace");
    assert!(
        spec["schema_changes"]["changes"][0]
            .as_str()
            .unwrap()
            .starts_with("column users.n: type integer → bigint"),
        "{spec:#}"
    );
    assert!(
        spec["testing"]["trace"][0]
            .as_str()
            .unwrap()
            .contains("rewrite (relfilenode changed"),
        "{spec:#}"
    );
    let md = expect_code(&project.run(&db, &["spec", "4"]), 0);
    assert!(
        section(&md, "Testing Plan").contains("Traced by `strata trace`"),
        "{md}"
    );
    assert!(
        section(&md, "Schema Changes").contains("Observed by `strata trace`"),
        "{md}"
    );
}

#[test]
fn spec_of_an_unknown_migration_is_bad_input() {
    let project = project();
    let out = expect_code(&strata(project.path(), None, &["spec", "9"]), 2);
    assert!(out.contains("no migration is named 9"), "{out}");
}
