//! `strata trace`: locks, rewrites and catalog changes observed on a
//! throwaway copy, and what `lint` makes of a stored trace.

use serde_json::Value;

use crate::support::{expect_code, strata, Project};

/// The history every trace test starts from: tables with an FK, a NOT
/// VALID check, a trigger function, a materialized view, two spare tables.
const SETUP: &str = "
CREATE TABLE orgs (id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (id bigint PRIMARY KEY, org_id bigint NOT NULL REFERENCES orgs, email varchar(100) NOT NULL UNIQUE, n int NOT NULL, score int);
ALTER TABLE users ADD CONSTRAINT users_n_positive CHECK (n > 0) NOT VALID;
CREATE TABLE posts (id bigint PRIMARY KEY, user_id bigint NOT NULL);
CREATE TABLE scratch (id int);
CREATE TABLE old_stuff (id int);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE MATERIALIZED VIEW user_counts AS SELECT org_id, count(*) AS n FROM users GROUP BY org_id;
";

fn project() -> Project {
    let project = Project::new();
    project.config("block_on = \"never\"\n");
    project.write("1_setup.up.sql", SETUP);
    project
}

/// `strata trace V --format json` in the project, offline (a trace never
/// needs the configured database).
fn trace_json(project: &Project, args: &[&str]) -> Value {
    let mut all = vec!["trace"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = expect_code(&strata(project.path(), None, &all), 0);
    let stdout = &out[..out.rfind('}').map_or(out.len(), |i| i + 1)];
    let start = stdout.find('{').expect(&out);
    serde_json::from_str(&stdout[start..]).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The statement traced at `line`.
fn at(trace: &Value, line: u64) -> &Value {
    trace["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["line"] == line)
        .unwrap_or_else(|| panic!("no statement at line {line}: {trace:#}"))
}

/// The modes the statement took on `relation` (a relation that existed
/// before the migration).
fn modes(s: &Value, relation: &str) -> Vec<String> {
    s["locks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["relation"] == relation && l["existed"] == true)
        .map(|l| l["mode"].as_str().unwrap().to_owned())
        .collect()
}

#[track_caller]
fn takes(s: &Value, relation: &str, mode: &str) {
    assert!(
        modes(s, relation).iter().any(|m| m == mode),
        "expected {mode} on {relation}, observed {:?}: {s:#}",
        modes(s, relation)
    );
}

#[test]
fn trace_observes_the_documented_lock_of_each_kind_of_statement() {
    let project = project();
    project.write(
        "2_changes.up.sql",
        "CREATE INDEX users_n_idx ON users (n);
ALTER TABLE users ADD COLUMN x int;
ALTER TABLE users VALIDATE CONSTRAINT users_n_positive;
ALTER TABLE posts ADD CONSTRAINT posts_user_fk FOREIGN KEY (user_id) REFERENCES users (id);
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch();
ALTER TABLE users ALTER COLUMN n SET STATISTICS 500;
TRUNCATE scratch;
REFRESH MATERIALIZED VIEW user_counts;
UPDATE users SET score = 1;
DROP TABLE old_stuff;
ALTER TABLE users ALTER COLUMN n TYPE bigint;
ALTER TABLE users ALTER COLUMN email TYPE varchar(200);
",
    );
    project.write(
        "3_concurrently.up.sql",
        "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);\nDROP INDEX CONCURRENTLY users_email_idx;\n",
    );
    let t = trace_json(&project, &["2", "--sample-rows", "500"]);
    assert_eq!(t["mode"], "transaction");
    takes(at(&t, 1), "users", "SHARE");
    takes(at(&t, 2), "users", "ACCESS EXCLUSIVE");
    takes(at(&t, 3), "users", "SHARE UPDATE EXCLUSIVE");
    takes(at(&t, 4), "posts", "SHARE ROW EXCLUSIVE");
    takes(at(&t, 4), "users", "SHARE ROW EXCLUSIVE");
    takes(at(&t, 5), "users", "SHARE ROW EXCLUSIVE");
    takes(at(&t, 6), "users", "SHARE UPDATE EXCLUSIVE");
    takes(at(&t, 7), "scratch", "ACCESS EXCLUSIVE");
    takes(at(&t, 8), "user_counts", "ACCESS EXCLUSIVE");
    takes(at(&t, 9), "users", "ROW EXCLUSIVE");
    takes(at(&t, 10), "old_stuff", "ACCESS EXCLUSIVE");
    takes(at(&t, 11), "users", "ACCESS EXCLUSIVE");
    // No statement is credited with a lock it did not take: the UPDATE
    // takes nothing stronger than ROW EXCLUSIVE on users.
    assert_eq!(modes(at(&t, 9), "users"), vec!["ROW EXCLUSIVE"], "{t:#}");
    // int → bigint rewrites the table and its indexes; widening a varchar
    // rewrites nothing.
    let rewrites = |line| at(&t, line)["rewrites"].as_array().unwrap().clone();
    assert!(
        rewrites(11).iter().any(|r| r == "table users"),
        "{:?}",
        rewrites(11)
    );
    assert!(rewrites(12).is_empty(), "{:?}", rewrites(12));
    assert!(rewrites(2).is_empty(), "{:?}", rewrites(2));
    // Catalog changes per statement, from the snapshot diff.
    let changes = |line| at(&t, line)["changes"].to_string();
    assert!(changes(2).contains("users.x"), "{}", changes(2));
    assert!(changes(11).contains("bigint"), "{}", changes(11));
    assert!(changes(10).contains("old_stuff"), "{}", changes(10));
    // The sample filled the touched tables, referenced ones first.
    let sample = t["sample"].to_string();
    assert!(
        sample.contains("orgs: 500 rows") && sample.contains("users: 500 rows"),
        "{sample}"
    );
    // What `up` holds until COMMIT in one transaction.
    let held = t["held_until_commit"].to_string();
    assert!(held.contains("ACCESS EXCLUSIVE on users"), "{held}");

    // CONCURRENTLY runs outside a transaction: watched from a second
    // connection while it runs.
    let c = trace_json(&project, &["3"]);
    let s = at(&c, 1);
    assert_eq!(s["observed_from"], "second connection", "{c:#}");
    takes(s, "users", "SHARE UPDATE EXCLUSIVE");
    assert!(modes(s, "users").iter().all(|m| m != "SHARE"), "{c:#}");
    let s = at(&c, 2);
    assert_eq!(s["observed_from"], "second connection", "{c:#}");
    takes(s, "users", "SHARE UPDATE EXCLUSIVE");
}

#[test]
fn trace_prints_one_line_per_statement_and_stores_the_trace() {
    let project = project();
    let file = project.write(
        "2_widen.up.sql",
        "ALTER TABLE users ADD COLUMN x int;\nALTER TABLE users ALTER COLUMN n TYPE bigint;\n",
    );
    let out = expect_code(
        &strata(
            project.path(),
            None,
            &["trace", file.to_str().unwrap(), "--sample-rows", "100"],
        ),
        0,
    );
    assert!(
        out.contains("migrations/2_widen.up.sql:1  ACCESS EXCLUSIVE on users; no rewrite; "),
        "{out}"
    );
    assert!(
        out.contains("migrations/2_widen.up.sql:2  ACCESS EXCLUSIVE on users; rewrite (relfilenode changed: ")
            && out.contains("table users"),
        "{out}"
    );
    assert!(out.contains("changed: column users.x: added"), "{out}");
    let stored = project.path().join(".strata/traces/2.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&stored).unwrap()).unwrap();
    assert_eq!(json["label"], "2_widen");
    assert_eq!(json["statements"].as_array().unwrap().len(), 2);
}

#[test]
fn lint_shows_observed_facts_and_reports_where_the_prediction_differs() {
    let project = project();
    project.write(
        "2_tune.up.sql",
        "ALTER TABLE users ALTER COLUMN n TYPE bigint;\nALTER TABLE users SET (fillfactor = 70);\n",
    );
    // Without a trace, lint says nothing about observations.
    let before = strata(project.path(), None, &["lint"]);
    let before = crate::support::text(&before);
    assert!(
        !before.contains("observed:") && !before.contains("prediction-mismatch"),
        "{before}"
    );
    trace_json(&project, &["2"]);
    let out = crate::support::text(&strata(project.path(), None, &["lint"]));
    // Beside the type change's finding: what the trace saw.
    assert!(
        out.contains("= observed: ACCESS EXCLUSIVE on users, rewrite"),
        "{out}"
    );
    // SET (fillfactor) takes SHARE UPDATE EXCLUSIVE, not the ACCESS
    // EXCLUSIVE the analysis predicts for ALTER TABLE: a defect of the
    // prediction, reported as its own kind of finding.
    assert!(
        out.contains("LOW    prediction-mismatch  migrations/2_tune.up.sql:2:1"),
        "{out}"
    );
    assert!(
        out.contains(
            "predicted ACCESS EXCLUSIVE on users; observed SHARE UPDATE EXCLUSIVE on users"
        ),
        "{out}"
    );
    // A stored trace that disagrees with a predicted rewrite.
    let path = project.path().join(".strata/traces/2.json");
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["statements"][0]["rewrites"] = Value::Array(Vec::new());
    std::fs::write(&path, json.to_string()).unwrap();
    let out = crate::support::text(&strata(project.path(), None, &["lint", "--format", "json"]));
    assert!(
        out.contains("predicted a table rewrite; observed none"),
        "{out}"
    );
    assert!(out.contains("\"observed\":"), "{out}");
    // The file changed since it was traced: the trace is stale and unused.
    project.write(
        "2_tune.up.sql",
        "ALTER TABLE users ALTER COLUMN n TYPE bigint;\nALTER TABLE users SET (fillfactor = 80);\n",
    );
    let out = crate::support::text(&strata(project.path(), None, &["lint"]));
    assert!(
        !out.contains("observed:") && !out.contains("prediction-mismatch"),
        "{out}"
    );
}

#[test]
fn trace_of_an_unknown_migration_is_bad_input() {
    let project = project();
    let out = expect_code(&strata(project.path(), None, &["trace", "42"]), 2);
    assert!(out.contains("no migration is named 42"), "{out}");
    assert!(!project.path().join(".strata/traces").exists());
}

#[test]
fn a_statement_that_fails_on_the_copy_is_reported_with_exit_3() {
    let project = project();
    project.write(
        "2_bad.up.sql",
        "ALTER TABLE users ADD COLUMN y int;\nALTER TABLE users ADD COLUMN y int;\nALTER TABLE users ADD COLUMN z int;\n",
    );
    let out = expect_code(&strata(project.path(), None, &["trace", "2"]), 3);
    assert!(
        out.contains("migrations/2_bad.up.sql:2  failed: ")
            && out.contains("column \"y\" of relation \"users\" already exists"),
        "{out}"
    );
    // The trace stops at the failure, as the runner would.
    assert!(!out.contains("2_bad.up.sql:3"), "{out}");
}

#[test]
fn a_history_that_does_not_replay_is_bad_input_naming_the_migration() {
    let project = project();
    project.write(
        "2_needs.up.sql",
        "INSERT INTO schema_migrations VALUES (1);\n",
    );
    project.write("3_next.up.sql", "ALTER TABLE users ADD COLUMN y int;\n");
    let out = expect_code(&strata(project.path(), None, &["trace", "3"]), 2);
    assert!(
        out.contains("the history up to 2_needs does not apply")
            && out.contains("relation \"schema_migrations\" does not exist"),
        "{out}"
    );
}
