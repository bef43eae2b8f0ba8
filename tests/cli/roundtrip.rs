//! `strata test`: up, down and up again of each migration on a throwaway
//! cluster, each reported as ok, irreversible, broken down or not inverse.
//! Every run starts its own cluster (the configured database is not used).

use crate::support::{strata, text, Project};

/// Runs `strata test ARGS` in the project; (exit code, stdout).
fn run_test(project: &Project, args: &[&str]) -> (i32, String) {
    let mut all = vec!["test"];
    all.extend_from_slice(args);
    let out = strata(project.path(), None, &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        !text(&out).contains("panicked"),
        "strata panicked:\n{}",
        text(&out)
    );
    (code, stdout)
}

/// A history with one migration of each kind: ok, irreversible, broken
/// down, not inverse (the down forgets an index and restores a column with
/// another type, so the second up fails), and ok again after it (it runs
/// on the state the first up gave).
fn mixed_history() -> Project {
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY, email varchar(100));\n",
    );
    p.write("1_users.down.sql", "DROP TABLE users;\n");
    p.write("2_seed.up.sql", "INSERT INTO users VALUES (1, 'a@b.c');\n");
    p.write(
        "3_answer.up.sql",
        "CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42';\n\
         CREATE VIEW answers AS SELECT answer() AS a;\n",
    );
    p.write(
        "3_answer.down.sql",
        "-- the view still uses the function\nDROP FUNCTION answer();\nDROP VIEW answers;\n",
    );
    p.write(
        "4_email.up.sql",
        "CREATE INDEX users_email_idx ON users (email);\n\
         ALTER TABLE users ALTER COLUMN email TYPE text;\n",
    );
    p.write(
        "4_email.down.sql",
        "ALTER TABLE users ALTER COLUMN email TYPE varchar(200);\n",
    );
    p.write("5_audit.up.sql", "CREATE TABLE audit (user_id int);\n");
    p.write("5_audit.down.sql", "DROP TABLE audit;\n");
    p
}

#[test]
fn each_problem_is_reported_with_its_place_and_the_run_goes_on() {
    let p = mixed_history();
    let (code, out) = run_test(&p, &[]);
    assert_eq!(code, 3, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "ok              1_users",
            "irreversible    2_seed (no down script)",
            "broken down     3_answer",
            "    migrations/3_answer.down.sql:2: ERROR 2BP01: cannot drop function answer() because other objects depend on it",
            "      detail: view answers depends on function answer()",
            "      hint: Use DROP ... CASCADE to drop the dependent objects too.",
            "    continued from the state after its up",
            "not inverse     4_email",
            "    after down: column users.email: type character varying(100) → character varying(200)",
            "    after down: index users_email_idx: added",
            "    up again failed: migrations/4_email.up.sql:1: ERROR 42P07: relation \"users_email_idx\" already exists",
            "    continued from the state after its first up",
            "ok              5_audit",
        ],
        "{out}"
    );
}

#[test]
fn json_output_has_one_object_per_migration() {
    let p = mixed_history();
    let (code, out) = run_test(&p, &["--format", "json", "--to", "3"]);
    assert_eq!(code, 3, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let statuses: Vec<&str> = v["migrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["result"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok", "irreversible", "broken-down"], "{out}");
    let broken = &v["migrations"][2]["result"]["error"];
    assert_eq!(broken["line"], 2, "{out}");
    assert_eq!(
        broken["details"][0], "detail: view answers depends on function answer()",
        "{out}"
    );
    assert!(
        broken["file"]
            .as_str()
            .unwrap()
            .ends_with("migrations/3_answer.down.sql"),
        "{out}"
    );
}

#[test]
fn a_good_history_in_every_layout_with_downs_exits_0() {
    // Flyway with its undo files (U1__…); its repeatable migration is not
    // tested (it has no undo).
    for fixture in ["native", "goose", "diesel", "dbmate", "flyway"] {
        let p = Project::from_fixture(&format!("formats/{fixture}"));
        let (code, out) = run_test(&p, &[]);
        assert_eq!(code, 0, "{fixture}:\n{out}");
        assert!(
            !out.is_empty() && out.lines().all(|l| l.starts_with("ok ")),
            "{fixture}:\n{out}"
        );
    }
}

#[test]
fn from_and_to_select_the_migrations_tested_after_replaying_the_ones_before() {
    let p = mixed_history();
    // 4 needs 1 (users), 2 and 3 replayed first: only 4 and 5 are tested.
    let (code, out) = run_test(&p, &["--from", "4"]);
    assert_eq!(code, 3, "{out}");
    let heads: Vec<&str> = out.lines().filter(|l| !l.starts_with(' ')).collect();
    assert_eq!(
        heads,
        ["not inverse     4_email", "ok              5_audit"]
    );
    let (code, out) = run_test(&p, &["--from", "1", "--to", "1"]);
    assert_eq!((code, out.as_str()), (0, "ok              1_users\n"));
    let (code, out) = run_test(&p, &["--from", "5", "--to", "5"]);
    assert_eq!((code, out.as_str()), (0, "ok              5_audit\n"));
    // Bad input: exit 2, nothing run.
    let out = strata(p.path(), None, &["test", "--from", "9"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("--from 9: no migration has this version"),
        "{all}"
    );
    let out = strata(p.path(), None, &["test", "--from", "4", "--to", "2"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("--from 4 comes after --to 2"), "{all}");
}

#[test]
fn idempotent_applies_each_up_twice() {
    let p = Project::new();
    p.write(
        "1_t.up.sql",
        "CREATE TABLE IF NOT EXISTS t (id int);\nCREATE INDEX IF NOT EXISTS t_id ON t (id);\n",
    );
    p.write("1_t.down.sql", "DROP TABLE t;\n");
    p.write(
        "2_u.up.sql",
        "-- not re-runnable\nALTER TABLE t ADD COLUMN u int;\n",
    );
    p.write("2_u.down.sql", "ALTER TABLE t DROP COLUMN u;\n");
    let (code, out) = run_test(&p, &[]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_test(&p, &["--idempotent"]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "ok              1_t",
            "ok              2_u",
            "not idempotent  2_u",
            "    second up: migrations/2_u.up.sql:2: ERROR 42701: column \"u\" of relation \"t\" already exists",
        ],
        "{out}"
    );
}

#[test]
fn flyway_without_undo_files_is_irreversible() {
    let p = Project::new();
    p.write("V1__create.sql", "CREATE TABLE t (id int);\n");
    let (code, out) = run_test(&p, &[]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(out, "irreversible    1_create (no down script)\n");
}

/// A history with plans: one that adds an index, one that adds and fills
/// a column across a deploy gate, a rename across a deploy gate (its
/// contract has a reverse, which brings the old column back filled from
/// the new one, but at the end of the table), a type change whose contract
/// drops the old values, and a SQL migration after them.
fn history_with_plans() -> Project {
    let p = Project::new();
    p.write(
        "1_users.up.sql",
        "CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, age text);\n\
         INSERT INTO users SELECT g, 'User ' || g, g::text FROM generate_series(1, 100) g;\n",
    );
    p.write("1_users.down.sql", "DROP TABLE users;\n");
    p.write(
        "2_name_idx.plan.toml",
        r#"[[phase]]
name = "expand"
operations = [
  { op = "add_index", table = "users", columns = ["name"] },
]
"#,
    );
    p.write(
        "3_name_lower.plan.toml",
        r#"[[phase]]
name = "expand"
operations = [
  { op = "add_column", table = "users", column = "name_lower", type = "text" },
]
gate = { deploy = "app v2, which writes name_lower" }

[[phase]]
name = "migrate"
operations = [
  { op = "backfill", table = "users", set = "name_lower = lower(name)", where = "name_lower IS NULL" },
  { op = "validate", sql = "SELECT id FROM users WHERE name_lower IS DISTINCT FROM lower(name)", message = "rows not backfilled" },
]
"#,
    );
    p.write(
        "4_rename.plan.toml",
        r#"[[phase]]
name = "expand"
operations = [
  { op = "rename_column", table = "users", from = "name", to = "full_name" },
]
gate = { deploy = "app v3, which reads full_name" }

[[phase]]
name = "contract"
operations = [
  { op = "rename_column", step = "contract", table = "users", from = "name", to = "full_name" },
]
"#,
    );
    p.write(
        "5_age_int.plan.toml",
        r#"[[phase]]
name = "expand"
operations = [
  { op = "change_column_type", table = "users", column = "age", type = "integer", using = "age::integer" },
]
gate = { deploy = "app v4, which writes integers" }

[[phase]]
name = "contract"
operations = [
  { op = "change_column_type", step = "contract", table = "users", column = "age", type = "integer", using = "age::integer" },
]
"#,
    );
    p.write("6_audit.up.sql", "CREATE TABLE audit (user_id bigint);\n");
    p.write("6_audit.down.sql", "DROP TABLE audit;\n");
    p
}

#[test]
fn plans_run_through_their_gates_and_roll_back_or_are_irreversible_with_the_reason() {
    let p = history_with_plans();
    let (code, out) = run_test(&p, &[]);
    assert_eq!(code, 3, "{out}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "ok              1_users",
            "ok              2_name_idx",
            "ok              3_name_lower",
            // PostgreSQL cannot put a column back in its place: the
            // rolled-back rename is the same table but for the order.
            "not inverse     4_rename",
            "    after down: table users: column order id, name, age, name_lower → id, age, name_lower, name",
            // The contract dropped the old text values: only the backup
            // taken before it brings them back, and a test cluster has none.
            "irreversible    5_age_int (its rollback needs the backup taken before the phase: phase 2: migrations/5_age_int.plan.toml:11: the contract step of `change_column_type` dropped the old age values; only the backup taken before it brings them back)",
            // The run goes on from the state the plan's up gave.
            "ok              6_audit",
        ],
        "{out}"
    );

    // A plan tested alone after replaying the ones before it, its up
    // applied twice.
    let (code, out) = run_test(&p, &["--from", "3", "--to", "3", "--idempotent"]);
    assert_eq!((code, out.as_str()), (0, "ok              3_name_lower\n"));
}

#[test]
fn a_plan_whose_reverse_does_not_undo_it_is_not_inverse() {
    let p = Project::new();
    p.write("1_t.up.sql", "CREATE TABLE t (id int);\n");
    p.write("1_t.down.sql", "DROP TABLE t;\n");
    // The `sql` operation's down forgets the index its up made.
    p.write(
        "2_u.plan.toml",
        r#"[[phase]]
name = "expand"
operations = [
  { op = "sql", up = "ALTER TABLE t ADD COLUMN u int; CREATE INDEX t_id ON t (id);", down = "ALTER TABLE t DROP COLUMN u;" },
]
"#,
    );
    p.write("3_v.up.sql", "CREATE TABLE v (id int);\n");
    p.write("3_v.down.sql", "DROP TABLE v;\n");
    let (code, out) = run_test(&p, &[]);
    assert_eq!(code, 3, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "ok              1_t", "{out}");
    assert_eq!(lines[1], "not inverse     2_u", "{out}");
    assert!(
        lines.contains(&"    after down: index t_id: added"),
        "{out}"
    );
    assert_eq!(lines.last(), Some(&"ok              3_v"), "{out}");
}
