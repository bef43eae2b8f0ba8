//! `strata lint`, `strata rules`, `strata explain`, and risk analysis in
//! `up` and `status`.

use std::path::Path;

use crate::support::{expect_code, strata, Project, TestDb};

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/lint")
        .join(name)
        .display()
        .to_string()
}

fn json_findings(out: &std::process::Output) -> Vec<(String, String, String, u64)> {
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("lint --format json prints JSON");
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let file = f["file"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned();
            (
                f["risk"].as_str().unwrap().to_owned(),
                f["rule"].as_str().unwrap().to_owned(),
                file,
                f["line"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn seed_migrations_get_the_expected_findings() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata(
        dir.path(),
        None,
        &["lint", &fixture("seed"), "--format", "json"],
    );
    assert_eq!(out.status.code(), Some(3), "HIGH findings fail by default");
    let got = json_findings(&out);
    let at_least_medium: Vec<(&str, &str, &str, u64)> = got
        .iter()
        .filter(|(risk, ..)| risk != "LOW")
        .map(|(risk, rule, file, line)| (risk.as_str(), rule.as_str(), file.as_str(), *line))
        .collect();
    let expected = [
        (
            "HIGH",
            "require-default-for-not-null-column",
            "20240301000000_add_required_column.up.sql",
            2,
        ),
        (
            "MEDIUM",
            "ban-rename-column",
            "20240302000000_rename_column.up.sql",
            2,
        ),
        (
            "MEDIUM",
            "ban-column-type-change",
            "20240303000000_change_type.up.sql",
            2,
        ),
        (
            "MEDIUM",
            "ban-statements-after-access-exclusive",
            "20240304000000_split_column.up.sql",
            3,
        ),
        (
            "MEDIUM",
            "ban-unbatched-update-delete",
            "20240304000000_split_column.up.sql",
            3,
        ),
        (
            "HIGH",
            "ban-drop-column",
            "20240304000000_split_column.up.sql",
            4,
        ),
        (
            "HIGH",
            "ban-drop-column",
            "20240306000000_normalize_attributes.up.sql",
            10,
        ),
    ];
    assert_eq!(at_least_medium, expected, "{got:#?}");
    // The wishlist migration (tables, indexes, trigger function, trigger on a
    // new table) and the partitioning with a batched DO block are clean.
    assert!(
        !got.iter()
            .any(|(risk, _, f, _)| risk != "LOW"
                && (f.contains("wishlists") || f.contains("partition"))),
        "{got:#?}"
    );
}

#[test]
fn additive_changes_have_no_medium_or_high_findings() {
    let dir = tempfile::tempdir().unwrap();
    let out = strata(
        dir.path(),
        None,
        &[
            "lint",
            &fixture("additive"),
            "--fail-on",
            "medium",
            "--format",
            "json",
        ],
    );
    let got = json_findings(&out);
    assert!(got.iter().all(|(risk, ..)| risk == "LOW"), "{got:#?}");
    assert_eq!(out.status.code(), Some(0));
    // The shipped example is additive too.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ecommerce/migrations");
    let out = strata(
        dir.path(),
        None,
        &["lint", example.to_str().unwrap(), "--fail-on", "medium"],
    );
    expect_code(&out, 0);
}

#[test]
fn every_output_format() {
    let dir = tempfile::tempdir().unwrap();
    let seed = fixture("seed");
    let human = expect_code(&strata(dir.path(), None, &["lint", &seed]), 3);
    assert!(
        human.contains("HIGH   ban-drop-column")
            && human.contains(" 4 | ALTER TABLE users DROP COLUMN display_name"),
        "{human}"
    );
    assert!(
        human.contains("= lock: ACCESS EXCLUSIVE: blocks everything")
            && human.contains("= safe rewrite:"),
        "{human}"
    );
    assert!(human.contains("finding(s): 3 HIGH, 4 MEDIUM"), "{human}");

    let out = strata(dir.path(), None, &["lint", &seed, "--format", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let rules = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap();
    assert!(
        rules.len() >= 40
            && rules.iter().all(|r| r["help"]["text"]
                .as_str()
                .unwrap()
                .contains("## Safe rewrite"))
    );
    let result = &sarif["runs"][0]["results"][0];
    assert!(result["locations"][0]["physicalLocation"]["region"]["startLine"].is_number());

    let out = strata(dir.path(), None, &["lint", &seed, "--format", "github"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.starts_with("::error file=") && l.contains("title=ban-drop-column (HIGH)::")), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("::warning file=")),
        "{text}"
    );

    let out = strata(dir.path(), None, &["lint", &seed, "--format", "gitlab"]);
    let gitlab: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &gitlab[0];
    assert!(
        first["fingerprint"].as_str().unwrap().len() == 64
            && first["location"]["lines"]["begin"].is_number()
    );
    assert!(["critical", "major", "minor"].contains(&first["severity"].as_str().unwrap()));

    let out = strata(
        dir.path(),
        None,
        &["lint", &seed, "--format", "json", "--fail-on", "low"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["summary"]["high"], 3);
    assert_eq!(out.status.code(), Some(3));
}

#[tokio::test]
async fn connected_lint_uses_real_table_sizes_and_estimates() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE big (id bigint PRIMARY KEY, note text);
             INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 120000) g;
             CREATE TABLE tiny (id bigint PRIMARY KEY, note text);
             INSERT INTO tiny SELECT g, 'x' FROM generate_series(1, 10) g;
             ANALYZE big; ANALYZE tiny;",
        )
        .await
        .unwrap();
    let project = Project::new();
    // A project (strata.toml): the rate is cached in its .strata/.
    project.config("");
    project.write("1_x.up.sql", "ALTER TABLE tiny DROP COLUMN note;\nCREATE INDEX big_note ON big (note);\nCREATE INDEX tiny_note ON tiny (note);\n");
    let out = project.run(&db, &["lint", "--format", "json", "--fail-on", "high"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let find = |rule: &str, table: &str| {
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["rule"] == rule && f["table"] == table)
            .cloned()
            .unwrap_or_else(|| panic!("{rule} on {table}: {v:#}"))
    };
    // Under 1,000 rows: one level down (HIGH → MEDIUM, MEDIUM → LOW).
    assert_eq!(find("ban-drop-column", "tiny")["risk"], "MEDIUM");
    assert_eq!(
        find("require-concurrent-index-creation", "tiny")["risk"],
        "LOW"
    );
    let big = find("require-concurrent-index-creation", "big");
    assert_eq!(big["risk"], "MEDIUM");
    assert!(big["table_rows"].as_i64().unwrap() >= 100_000, "{big}");
    assert!(big["table_bytes"].as_i64().unwrap() > 1_000_000, "{big}");
    assert!(big["estimate_ms"].as_i64().unwrap() >= 1, "{big}");
    assert_eq!(
        out.status.code(),
        Some(0),
        "nothing HIGH after size adjustment"
    );
    // The measured rate is cached per server.
    let cache = std::fs::read_to_string(project.path().join(".strata/rates.json")).unwrap();
    assert!(cache.contains(" v15") || cache.contains(" v1"), "{cache}");
}

#[tokio::test]
async fn high_findings_block_up_unless_acknowledged() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, legacy text);\n",
    );
    expect_code(&project.run(&db, &["up"]), 0);
    // Connected, risk follows real sizes: give the table enough rows that
    // dropping a column stays HIGH.
    db.connect()
        .await
        .batch("INSERT INTO users SELECT g, 'x' FROM generate_series(1, 2000) g; ANALYZE users;")
        .await
        .unwrap();
    project.write("2_drop.up.sql", "ALTER TABLE users DROP COLUMN legacy;\n");
    let out = expect_code(&project.run(&db, &["up"]), 3);
    assert!(
        out.contains("ban-drop-column")
            && out.contains("1 finding(s) at or above HIGH block `strata up`"),
        "{out}"
    );
    assert!(db.has_table("users").await);
    assert_eq!(db.history().await.len(), 1, "nothing ran");
    // status shows the pending migration's findings.
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert!(
        status.contains("pending migrations: 1 finding(s): 1 HIGH"),
        "{status}"
    );
    // The dry run shows the SQL and says it would be blocked.
    let dry = expect_code(&project.run(&db, &["up", "--dry-run"]), 3);
    assert!(
        dry.contains("ALTER TABLE users DROP COLUMN legacy;") && dry.contains("would block"),
        "{dry}"
    );
    // Acknowledged with a reason, it runs.
    project.write("2_drop.up.sql", "-- strata:allow ban-drop-column reason: legacy has been unused since v41\nALTER TABLE users DROP COLUMN legacy;\n");
    expect_code(&project.run(&db, &["up"]), 0);
    assert_eq!(db.history().await.len(), 2);
}

#[tokio::test]
async fn block_on_and_disabled_rules_come_from_the_config() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, legacy text);\n",
    );
    project.write("2_drop.up.sql", "ALTER TABLE users DROP COLUMN legacy;\n");
    project.config("block_on = \"never\"\n");
    expect_code(&project.run(&db, &["up"]), 0);
    let db = TestDb::new().await;
    project.config("[lint]\ndisable = [\"ban-drop-column\"]\n");
    expect_code(&project.run(&db, &["up"]), 0);
    project.config("[lint]\ndisable = [\"ban-drop-colum\"]\n");
    let out = expect_code(&project.run(&db, &["status"]), 2);
    assert!(out.contains("unknown rule `ban-drop-colum`"), "{out}");
    project.config("block_on = \"medium\"\n[lint.risk]\nprefer-text = \"medium\"\n");
    project.write("3_t.up.sql", "CREATE TABLE t (name varchar(10));\n");
    let out = expect_code(&project.run(&db, &["up"]), 3);
    assert!(out.contains("MEDIUM prefer-text"), "{out}");
}

#[test]
fn rules_and_explain() {
    let dir = tempfile::tempdir().unwrap();
    let out = expect_code(&strata(dir.path(), None, &["rules"]), 0);
    assert!(
        out.lines().count() >= 45 && out.contains("require-concurrent-index-creation"),
        "{out}"
    );
    let out = expect_code(
        &strata(dir.path(), None, &["explain", "ban-set-not-null"]),
        0,
    );
    for section in [
        "## What it does",
        "## Why is this bad?",
        "## Safe rewrite",
        "## Example",
        "lock: ACCESS EXCLUSIVE",
    ] {
        assert!(out.contains(section), "{out}");
    }
    let out = expect_code(&strata(dir.path(), None, &["explain", "no-such-rule"]), 2);
    assert!(out.contains("strata rules"), "{out}");
}

#[test]
fn lints_single_files_and_reports_syntax_errors_with_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.sql");
    std::fs::write(&file, "SELECT 1;\n  CREAT TABLE t ();\n").unwrap();
    let out = strata(
        dir.path(),
        None,
        &["lint", file.to_str().unwrap(), "--format", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["rule"], "syntax-error");
    assert_eq!(
        (
            v["findings"][0]["line"].as_u64(),
            v["findings"][0]["column"].as_u64()
        ),
        (Some(2), Some(3))
    );
    assert_eq!(out.status.code(), Some(3));
    // A goose file is split at its annotations: the Down section is not linted as up.
    std::fs::write(
        &file,
        "-- +goose Up\nCREATE TABLE t (id bigint);\n-- +goose Down\nDROP TABLE t;\n",
    )
    .unwrap();
    expect_code(
        &strata(dir.path(), None, &["lint", file.to_str().unwrap()]),
        0,
    );
}
