//! `strata init` and `strata new`.

use crate::support::{expect_code, strata, Project};

#[test]
fn init_writes_config_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    expect_code(&strata(dir.path(), None, &["init"]), 0);
    let config = std::fs::read_to_string(dir.path().join("strata.toml")).unwrap();
    assert!(
        config.contains("# database_url")
            && config.contains("history_table = \"strata_migrations\"")
    );
    assert!(dir.path().join("migrations").is_dir());
    let out = expect_code(&strata(dir.path(), None, &["init"]), 2);
    assert!(out.contains("never overwrites"), "{out}");
    // The written config is valid.
    expect_code(&strata(dir.path(), None, &["validate"]), 0);
}

#[test]
fn new_uses_timestamps_or_continues_sequences() {
    let project = Project::new();
    let out = expect_code(&strata(project.path(), None, &["new", "Add users"]), 0);
    let first = out.lines().next().unwrap();
    let name = std::path::Path::new(first)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.len() == "20240101120000_add_users.up.sql".len()
            && name.ends_with("_add_users.up.sql"),
        "{name}"
    );
    assert!(out.contains("_add_users.down.sql"));

    let seq = Project::new();
    seq.write("0001_a.up.sql", "SELECT 1;\n");
    seq.write("0002_b.up.sql", "SELECT 1;\n");
    let out = expect_code(&strata(seq.path(), None, &["new", "c"]), 0);
    assert!(
        out.contains("0003_c.up.sql") && out.contains("0003_c.down.sql"),
        "{out}"
    );

    let goose = Project::new();
    goose.write("00001_a.sql", "-- +goose Up\nSELECT 1;\n");
    let out = expect_code(&strata(goose.path(), None, &["new", "b"]), 0);
    let path = out.lines().next().unwrap();
    assert!(path.ends_with("00002_b.sql"), "{out}");
    assert!(std::fs::read_to_string(path)
        .unwrap()
        .contains("-- +goose Down"));
}
