//! `strata dump` and `schema_file`: a deterministic schema file that loads
//! with psql and reproduces the catalog.

use strata::verify::catalog::Snapshot;

use crate::support::{expect_code, Project, TestDb};

/// The catalog tests' schema, plus a partitioned table, a comment on a
/// column and a rule: what a schema file must carry.
fn schema() -> String {
    format!(
        "{}
CREATE TABLE events (id bigint, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
COMMENT ON COLUMN users.email IS 'where to write';
CREATE POLICY own ON users USING (name = current_user);
CREATE RULE no_delete AS ON DELETE TO audit DO INSTEAD NOTHING;
",
        crate::catalog::BASE
    )
}

fn load(db: &TestDb, file: &std::path::Path) {
    let tools = strata::localpg::ClientTools::find(None).unwrap();
    let env = strata::Target::parse(&db.url).unwrap().libpq_env();
    tools.run_script(&env, file).unwrap();
}

#[tokio::test]
async fn the_dump_loads_with_psql_and_reproduces_the_catalog() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_base.up.sql", &schema());
    expect_code(&project.run(&db, &["up"]), 0);
    expect_code(&project.run(&db, &["dump", "--out", "schema.sql"]), 0);
    let file = project.path().join("schema.sql");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("CREATE TABLE public.users ("), "{text}");
    for run_specific in [
        "strata_",
        "Dumped by",
        "Dumped from",
        "\\restrict",
        "OWNER TO",
    ] {
        assert!(!text.contains(run_specific), "{run_specific} in\n{text}");
    }

    let fresh = TestDb::new().await;
    load(&fresh, &file);
    let original = Snapshot::take(&db.connect().await).await.unwrap();
    let loaded = Snapshot::take(&fresh.connect().await).await.unwrap();
    assert!(original.objects.len() > 30, "{:?}", original.objects.keys());
    let differences: Vec<String> = original
        .diff(&loaded)
        .iter()
        .map(|d| d.to_string())
        .collect();
    assert_eq!(differences, Vec::<String>::new());
    assert_eq!(original, loaded);

    // Dumped again from the loaded copy: the same file, byte for byte.
    let again = Project::new();
    expect_code(&again.run(&fresh, &["dump", "--out", "schema.sql"]), 0);
    assert_eq!(
        std::fs::read_to_string(again.path().join("schema.sql")).unwrap(),
        text
    );
}

#[tokio::test]
async fn two_dumps_are_byte_identical() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_base.up.sql", &schema());
    expect_code(&project.run(&db, &["up"]), 0);
    let first = project.run(&db, &["dump"]);
    let second = project.run(&db, &["dump"]);
    assert_eq!(first.status.code(), Some(0));
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout);
    expect_code(&project.run(&db, &["dump", "--out", "a.sql"]), 0);
    assert_eq!(
        std::fs::read(project.path().join("a.sql")).unwrap(),
        first.stdout
    );
}

#[tokio::test]
async fn schema_file_follows_up_and_down() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.config("schema_file = \"schema.sql\"\n");
    project.write(
        "1_users.up.sql",
        "CREATE TABLE users (id int PRIMARY KEY);\n",
    );
    project.write("1_users.down.sql", "DROP TABLE users;\n");
    project.write(
        "2_posts.up.sql",
        "CREATE TABLE posts (id int PRIMARY KEY);\n",
    );
    project.write("2_posts.down.sql", "DROP TABLE posts;\n");
    let file = project.path().join("schema.sql");
    let read = || std::fs::read_to_string(&file).unwrap_or_default();

    expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert!(!file.exists(), "a dry run writes no schema file");

    let out = expect_code(&project.run(&db, &["up", "--to", "1"]), 0);
    assert!(out.contains("schema file"), "{out}");
    assert!(read().contains("CREATE TABLE public.users"), "{}", read());
    assert!(!read().contains("posts"), "{}", read());

    expect_code(&project.run(&db, &["up"]), 0);
    assert!(read().contains("CREATE TABLE public.posts"), "{}", read());

    expect_code(&project.run(&db, &["down"]), 0);
    assert!(!read().contains("posts"), "{}", read());
    assert!(read().contains("CREATE TABLE public.users"), "{}", read());

    // The file is exactly what `strata dump` prints.
    let dumped = project.run(&db, &["dump"]);
    assert_eq!(read().as_bytes(), dumped.stdout.as_slice());
    // And it verifies against the migrations.
    let out = expect_code(&project.run(&db, &["verify"]), 0);
    assert!(out.contains("schema file"), "{out}");
}
