//! `strata lint`, `strata rules`, `strata explain`, and risk analysis in
//! `up` and `status`.

use std::path::Path;

use crate::support::{expect_code, strata, text, Project, TestDb};

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
        // One finding per lock span, on the statement that takes the lock.
        (
            "MEDIUM",
            "ban-statements-after-access-exclusive",
            "20240304000000_split_column.up.sql",
            2,
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

/// A history where migration 2 widens a varchar created by migration 1
/// (metadata only, known from the history; alone it looks like a rewrite)
/// and 3 adds a plain column.
fn widening_history() -> Project {
    let project = Project::new();
    project.write(
        "1_t.up.sql",
        "CREATE TABLE t (id bigint PRIMARY KEY, name varchar(10));\n",
    );
    project.write(
        "2_widen.up.sql",
        "ALTER TABLE t ALTER COLUMN name TYPE varchar(20);\n",
    );
    project.write("3_c.up.sql", "ALTER TABLE t ADD COLUMN c int;\n");
    project
}

fn lint_json(project: &Project, args: &[&str]) -> Vec<(String, String, String, u64)> {
    let mut all = vec!["lint", "--format", "json", "--fail-on", "high"];
    all.extend_from_slice(args);
    let out = strata(project.path(), None, &all);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{}",
        crate::support::text(&out)
    );
    json_findings(&out)
}

#[test]
fn a_file_of_the_migrations_directory_is_linted_within_its_history() {
    let project = widening_history();
    let whole = lint_json(&project, &[]);
    let in_dir: Vec<_> = whole
        .iter()
        .filter(|f| f.2 == "2_widen.up.sql")
        .cloned()
        .collect();
    let file = project.migrations().join("2_widen.up.sql");
    let alone = lint_json(&project, &[file.to_str().unwrap()]);
    assert_eq!(alone, in_dir);
    assert!(
        !alone.iter().any(|f| f.1 == "ban-column-type-change"),
        "{alone:?}"
    );
    // Outside the configured directory a file has no history.
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("2_widen.up.sql");
    std::fs::copy(&file, &copy).unwrap();
    let alone = lint_json(&project, &[copy.to_str().unwrap()]);
    assert!(
        alone.iter().any(|f| f.1 == "ban-column-type-change"),
        "{alone:?}"
    );
}

#[test]
fn since_reports_the_later_migrations_with_the_history_as_context() {
    let project = widening_history();
    let out = strata(
        project.path(),
        None,
        &["lint", "--since", "1", "--format", "json"],
    );
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["statements"], 2, "{v}");
    let files: Vec<String> = json_findings(&out).into_iter().map(|f| f.2).collect();
    assert!(
        !files.is_empty() && files.iter().all(|f| f != "1_t.up.sql"),
        "{files:?}"
    );
    assert!(!json_findings(&out)
        .iter()
        .any(|f| f.1 == "ban-column-type-change"));
    // The file's name names the version too (diesel folders likewise).
    let out = strata(
        project.path(),
        None,
        &["lint", "--since", "1_t", "--format", "json"],
    );
    let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["summary"]["statements"], 2, "{again}");
    let out = expect_code(&strata(project.path(), None, &["lint", "--since", "7"]), 2);
    assert!(out.contains("no migration has version 7"), "{out}");
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn changed_reports_the_files_changed_since_the_base_with_the_history_as_context() {
    let project = widening_history();
    // Not a repository yet: a clear error, exit 2.
    let out = expect_code(&strata(project.path(), None, &["lint", "--changed"]), 2);
    assert!(out.contains("needs a git repository"), "{out}");
    std::fs::remove_file(project.migrations().join("2_widen.up.sql")).unwrap();
    std::fs::remove_file(project.migrations().join("3_c.up.sql")).unwrap();
    git(project.path(), &["init", "-q", "-b", "main"]);
    git(project.path(), &["add", "."]);
    git(project.path(), &["commit", "-q", "-m", "base"]);
    git(project.path(), &["checkout", "-q", "-b", "feature"]);
    // Committed on the branch, then one more left untracked.
    project.write(
        "2_widen.up.sql",
        "ALTER TABLE t ALTER COLUMN name TYPE varchar(20);\n",
    );
    git(project.path(), &["add", "."]);
    git(project.path(), &["commit", "-q", "-m", "widen"]);
    project.write("3_c.up.sql", "ALTER TABLE t ADD COLUMN c int;\n");
    // main moves on meanwhile: not part of this branch's change.
    git(project.path(), &["checkout", "-q", "main"]);
    std::fs::write(project.path().join("README"), "x\n").unwrap();
    git(project.path(), &["add", "README"]);
    git(project.path(), &["commit", "-q", "-m", "readme"]);
    git(project.path(), &["checkout", "-q", "feature"]);
    let out = strata(
        project.path(),
        None,
        &["lint", "--changed", "--format", "json"],
    );
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            v["summary"]["files"].as_u64(),
            v["summary"]["statements"].as_u64()
        ),
        (Some(2), Some(2)),
        "{v}"
    );
    let found = json_findings(&out);
    assert!(found.iter().all(|f| f.2 != "1_t.up.sql"), "{found:?}");
    assert!(
        !found.iter().any(|f| f.1 == "ban-column-type-change"),
        "{found:?}"
    );
    // An explicit base: relative to the branch point, same selection.
    let out = strata(
        project.path(),
        None,
        &["lint", "--changed", "--base", "main", "--format", "json"],
    );
    expect_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["files"].as_u64(), Some(2), "{v}");
    let out = expect_code(
        &strata(
            project.path(),
            None,
            &["lint", "--changed", "--base", "nope"],
        ),
        2,
    );
    assert!(
        out.contains("--base nope") && out.contains("help:"),
        "{out}"
    );
}

/// (risk, rule, line) of each finding `up --dry-run -v` prints in full.
fn up_findings(text: &str) -> Vec<(String, String, u64)> {
    let mut out: Vec<(String, String, u64)> = text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let risk = words.next()?;
            if !matches!(risk, "LOW" | "MEDIUM" | "HIGH") {
                return None;
            }
            let rule = words.next()?;
            let place = words.next()?;
            let line = place.rsplit(':').nth(1)?.parse().ok()?;
            Some((risk.to_owned(), rule.to_owned(), line))
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn lint_and_up_judge_the_same_facts_alike() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE big (id bigint PRIMARY KEY, note text);
             INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 120000) g;
             CREATE INDEX big_note_idx ON big (note);
             CREATE TABLE tiny (id bigint PRIMARY KEY, note text);
             INSERT INTO tiny SELECT g, 'x' FROM generate_series(1, 10) g;
             CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
             ANALYZE big; ANALYZE tiny;",
        )
        .await
        .unwrap();
    let project = Project::new();
    // No lock-hold limit: the comparison is about rules and risks.
    project.config("block_on = \"never\"\n");
    project.write(
        "1_change.up.sql",
        "ALTER TABLE big ADD COLUMN label varchar(20), ADD COLUMN at timestamp, ADD COLUMN owner_id int;
ALTER TABLE tiny ALTER COLUMN note TYPE varchar(5);
DROP INDEX big_note_idx;
CREATE INDEX big_label ON big (label);
CREATE TRIGGER big_touch BEFORE UPDATE ON big FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE tiny DROP COLUMN note;
UPDATE big SET label = 'x';
",
    );
    // What the migration itself creates is new to both.
    project.write(
        "2_fresh.up.sql",
        "CREATE TABLE fresh (id bigint PRIMARY KEY, note text);
CREATE INDEX fresh_note ON fresh (note);
DROP INDEX fresh_note;
CREATE TYPE mood AS ENUM ('sad');
ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
",
    );
    let lint = project.run(&db, &["lint", "--format", "json", "--fail-on", "high"]);
    let mut linted: Vec<(String, String, u64)> = json_findings(&lint)
        .into_iter()
        .map(|(risk, rule, _, line)| (risk, rule, line))
        .collect();
    assert!(
        linted
            .iter()
            .any(|(_, rule, _)| rule == "ban-rename-enum-value"),
        "{linted:?}"
    );
    linted.sort();
    let up = expect_code(&project.run(&db, &["-v", "up", "--dry-run"]), 0);
    let analysed = up_findings(&up);
    assert!(!linted.is_empty(), "{}", text(&lint));
    assert_eq!(linted, analysed, "lint:\n{}\nup:\n{up}", text(&lint));
    // Style rules, and the brief lock of CREATE TRIGGER, are never raised
    // by the size of big.
    for (risk, rule, _) in &linted {
        if [
            "prefer-text",
            "prefer-timestamptz",
            "prefer-bigint",
            "ban-create-trigger-on-existing-table",
        ]
        .contains(&rule.as_str())
        {
            assert_eq!(risk, "LOW", "{linted:?}");
        }
    }
}

#[test]
fn external_lint_of_a_diesel_layout_follows_diesel_transactions() {
    let project = Project::new();
    let dir = project
        .migrations()
        .join("2024-01-01-000000_orders_user_idx");
    let up = "CREATE INDEX CONCURRENTLY orders_user_idx ON orders (user_id);\n";
    project.write("2024-01-01-000000_orders_user_idx/up.sql", up);
    project.write(
        "2024-01-01-000000_orders_user_idx/down.sql",
        "DROP INDEX CONCURRENTLY orders_user_idx;\n",
    );
    let run = |args: &[&str]| {
        let mut all = vec!["lint", "--format", "json"];
        all.extend_from_slice(args);
        strata(project.path(), None, &all)
    };
    // Strata's own runner takes the file out of its transaction.
    let out = run(&[]);
    assert!(
        !json_findings(&out)
            .iter()
            .any(|(_, rule, ..)| rule == "ban-concurrently-in-transaction"),
        "{}",
        text(&out)
    );
    // diesel runs it in a transaction: certain failure.
    let out = run(&["--external"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "ban-concurrently-in-transaction")
        .unwrap_or_else(|| panic!("{v:#}"))
        .clone();
    assert_eq!(f["risk"], "HIGH");
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("run_in_transaction = false"),
        "{f:#}"
    );
    // A strata directive is a comment to diesel; its metadata.toml is not.
    project.write(
        "2024-01-01-000000_orders_user_idx/up.sql",
        &format!("-- strata:no-transaction\n{up}"),
    );
    let out = run(&["--external"]);
    assert!(
        json_findings(&out)
            .iter()
            .any(|(_, rule, ..)| rule == "ban-concurrently-in-transaction"),
        "{}",
        text(&out)
    );
    std::fs::write(dir.join("metadata.toml"), "run_in_transaction = false\n").unwrap();
    let out = run(&["--external"]);
    assert!(
        !json_findings(&out)
            .iter()
            .any(|(_, rule, ..)| rule == "ban-concurrently-in-transaction"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn drop_index_locks_the_table_the_server_catalog_names() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE users (id bigint PRIMARY KEY, email text);
             INSERT INTO users SELECT g, g::text FROM generate_series(1, 5000) g;
             CREATE INDEX users_email_idx ON users (email);
             CREATE TABLE accounts (id bigint PRIMARY KEY, active bool);
             ANALYZE users; ANALYZE accounts;",
        )
        .await
        .unwrap();
    let project = Project::new();
    // The index is not in the migrations: only the server knows its table.
    project.write(
        "1_x.up.sql",
        "DROP INDEX users_email_idx;\nUPDATE accounts SET active = true;\n",
    );
    let out = project.run(&db, &["lint", "--format", "json", "--fail-on", "high"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let span = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "ban-statements-after-access-exclusive")
        .cloned()
        .unwrap_or_else(|| panic!("{v:#}"));
    assert_eq!(span["line"], 1, "{span:#}");
    assert_eq!(span["table"], "public.users", "{span:#}");
    assert!(span["table_rows"].as_i64().unwrap() >= 5000, "{span:#}");
}

/// Issue 11 item 1: a default calling a function the migrations created
/// without a volatility marker rewrites the table (VOLATILE); a function
/// the history does not know counts as volatile offline, and takes the
/// volatility the connected server's pg_proc gives it (also when written
/// `f ()`, as SQL formatters write calls).
#[tokio::test]
async fn defaults_take_function_volatility_from_the_history_then_the_server() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE accounts (id bigint PRIMARY KEY);
             INSERT INTO accounts SELECT g FROM generate_series(1, 2000) g;
             CREATE FUNCTION ext_slug() RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x' $$;
             ANALYZE accounts;",
        )
        .await
        .unwrap();
    let project = Project::new();
    project.write(
        "1_f.up.sql",
        "CREATE FUNCTION mk_token() RETURNS text LANGUAGE sql AS $$ SELECT md5(random()::text) $$;\n",
    );
    project.write(
        "2_a.up.sql",
        "ALTER TABLE accounts ADD COLUMN slug text DEFAULT ext_slug ();\nALTER TABLE accounts ADD COLUMN token text DEFAULT mk_token();\nALTER TABLE accounts ADD COLUMN seen timestamptz DEFAULT date_trunc('day', now());\n",
    );
    let volatile_lines = |out: &std::process::Output| {
        json_findings(out)
            .into_iter()
            .filter(|(_, rule, ..)| rule == "ban-volatile-default")
            .map(|(risk, _, file, line)| (risk, file, line))
            .collect::<Vec<_>>()
    };
    let offline = strata(project.path(), None, &["lint", "--format", "json"]);
    assert_eq!(
        volatile_lines(&offline),
        [
            ("MEDIUM".to_owned(), "2_a.up.sql".to_owned(), 1),
            ("MEDIUM".to_owned(), "2_a.up.sql".to_owned(), 2)
        ],
        "{}",
        String::from_utf8_lossy(&offline.stdout)
    );
    let connected = project.run(&db, &["lint", "--format", "json"]);
    assert_eq!(
        volatile_lines(&connected),
        [("MEDIUM".to_owned(), "2_a.up.sql".to_owned(), 2)],
        "{}",
        String::from_utf8_lossy(&connected.stdout)
    );
}
