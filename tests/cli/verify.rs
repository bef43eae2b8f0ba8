//! `strata verify` and `strata baseline --verify`: the live database
//! against its migrations replayed on a throwaway cluster.

use crate::support::{expect_code, Project, TestDb};

fn project() -> Project {
    let project = Project::new();
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            email text NOT NULL,
            name text DEFAULT 'x',
            bio text
        );\n",
    );
    project.write("1_users.down.sql", "DROP TABLE users;\n");
    project.write(
        "2_posts.up.sql",
        "CREATE TABLE posts (id bigserial PRIMARY KEY, user_id bigint REFERENCES users, body text);
         CREATE VIEW recent AS SELECT id, body FROM posts ORDER BY id DESC LIMIT 10;
         CREATE FUNCTION post_count() RETURNS bigint LANGUAGE sql STABLE AS 'SELECT count(*) FROM posts';\n",
    );
    project.write(
        "2_posts.down.sql",
        "DROP FUNCTION post_count(); DROP VIEW recent; DROP TABLE posts;\n",
    );
    project
}

/// The lines of the output that are indented (the per-object reports).
fn object_lines(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("  ")).collect()
}

#[tokio::test]
async fn a_clean_database_verifies() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up"]), 0);
    let out = expect_code(&project.run(&db, &["verify"]), 0);
    assert!(
        out.contains("checksums: 2 applied migration(s) match their files"),
        "{out}"
    );
    assert!(
        out.contains("drift: none (2 applied migration(s) replayed on a throwaway PostgreSQL"),
        "{out}"
    );
    assert!(out.contains("verify: ok"), "{out}");
}

#[tokio::test]
async fn drift_made_by_hand_is_found_object_by_object() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up"]), 0);
    db.connect()
        .await
        .batch(
            "CREATE INDEX users_email_idx ON users (email);
             ALTER TABLE users ALTER COLUMN name SET DEFAULT 'y';
             ALTER TABLE users DROP COLUMN bio;",
        )
        .await
        .unwrap();
    let before = db.schema_fingerprint().await;
    let out = expect_code(&project.run(&db, &["verify"]), 3);
    assert_eq!(
        object_lines(&out),
        [
            "  column users.bio: removed",
            "  column users.name: default 'x'::text → 'y'::text",
            "  index users_email_idx: added",
        ],
        "{out}"
    );
    assert!(
        out.contains("drift: 3 object(s) differ from the migrations"),
        "{out}"
    );
    assert!(out.contains("verify: 3 problem(s)"), "{out}");
    // verify changes nothing.
    assert_eq!(db.schema_fingerprint().await, before);

    // The same as JSON, one object per difference.
    let out = project.run(&db, &["--json", "verify"]);
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let objects: Vec<&str> = json["drift"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["object"].as_str().unwrap())
        .collect();
    assert_eq!(
        objects,
        [
            "column public.users.bio",
            "column public.users.name",
            "index public.users_email_idx"
        ]
    );
}

#[tokio::test]
async fn a_changed_file_fails_the_checksums() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up"]), 0);
    // Same schema, different text: only the checksum differs.
    let path = project.migrations().join("1_users.up.sql");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("-- reviewed\n{text}")).unwrap();
    let out = expect_code(&project.run(&db, &["verify"]), 3);
    assert!(
        out.contains("checksums: 1 of 2 applied migration(s) do not match their files"),
        "{out}"
    );
    assert!(out.contains("  1_users: modified"), "{out}");
    assert!(out.contains("drift: none"), "{out}");
    assert!(out.contains("verify: 1 problem(s)"), "{out}");
}

#[tokio::test]
async fn only_applied_migrations_are_replayed() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up", "--to", "1"]), 0);
    let out = expect_code(&project.run(&db, &["verify"]), 0);
    assert!(out.contains("drift: none (1 applied migration(s)"), "{out}");
}

#[tokio::test]
async fn a_schema_file_that_lacks_a_table_is_reported() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up"]), 0);
    expect_code(&project.run(&db, &["dump", "--out", "schema.sql"]), 0);
    let out = expect_code(
        &project.run(&db, &["verify", "--schema-file", "schema.sql"]),
        0,
    );
    assert!(
        out.contains("schema file schema.sql: matches the migrations"),
        "{out}"
    );

    // A schema file made before migration 2 (posts, its view and function).
    let db1 = TestDb::new().await;
    let p1 = project_with_only_first();
    expect_code(&p1.run(&db1, &["up"]), 0);
    expect_code(&p1.run(&db1, &["dump", "--out", "old.sql"]), 0);
    std::fs::copy(p1.path().join("old.sql"), project.path().join("old.sql")).unwrap();
    let out = expect_code(
        &project.run(&db, &["verify", "--schema-file", "old.sql"]),
        3,
    );
    assert_eq!(
        object_lines(&out),
        [
            "  function post_count(): removed",
            "  table posts: removed",
            "  view recent: removed",
        ],
        "{out}"
    );

    // One that does not load at all.
    std::fs::write(project.path().join("bad.sql"), "CREATE TABLE x (;\n").unwrap();
    let out = expect_code(
        &project.run(&db, &["verify", "--schema-file", "bad.sql"]),
        3,
    );
    assert!(
        out.contains("schema file bad.sql: does not load with psql"),
        "{out}"
    );

    // A configured schema_file that does not exist is a problem found;
    // the other checks still run.
    project.config("schema_file = \"missing.sql\"\n");
    let out = expect_code(&project.run(&db, &["verify"]), 3);
    assert!(out.contains("drift: none"), "{out}");
    assert!(
        out.contains("schema file ") && out.contains("missing.sql: does not exist"),
        "{out}"
    );
}

fn project_with_only_first() -> Project {
    let p = project();
    std::fs::remove_file(p.migrations().join("2_posts.up.sql")).unwrap();
    std::fs::remove_file(p.migrations().join("2_posts.down.sql")).unwrap();
    p
}

#[tokio::test]
async fn baseline_verify_refuses_a_database_that_lacks_two_tables() {
    let db = TestDb::new().await;
    // The case: the existing database (loaded from a schema.sql)
    // has the first table only.
    db.connect()
        .await
        .batch("CREATE TABLE a (id int PRIMARY KEY);")
        .await
        .unwrap();
    let project = Project::new();
    for t in ["a", "b", "c"] {
        let v = match t {
            "a" => "1",
            "b" => "2",
            _ => "3",
        };
        project.write(
            &format!("{v}_{t}.up.sql"),
            &format!("CREATE TABLE {t} (id int PRIMARY KEY);\n"),
        );
    }
    let out = expect_code(&project.run(&db, &["baseline", "3", "--verify"]), 3);
    assert_eq!(
        object_lines(&out),
        ["  table b: removed", "  table c: removed"],
        "{out}"
    );
    assert!(out.contains("nothing was marked as applied"), "{out}");
    assert!(db.history().await.is_empty());

    // Up to 1 it matches: marked.
    let out = expect_code(&project.run(&db, &["baseline", "1", "--verify"]), 0);
    assert!(
        out.contains("the schema matches the 1 migration(s) up to 1"),
        "{out}"
    );
    assert!(out.contains("marked 1_a as applied"), "{out}");
    expect_code(&project.run(&db, &["baseline", "9", "--verify"]), 2);
}
