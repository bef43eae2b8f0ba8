//! `strata local …` and the embedded default: with no URL configured,
//! commands use the managed cluster in .strata/pg.

use crate::support::{expect_code, strata, Project};

#[test]
fn lifecycle_and_embedded_default() {
    let project = Project::new();
    project.write("1_a.up.sql", "CREATE TABLE a (id int);\n");
    let status = expect_code(&strata(project.path(), None, &["local", "status"]), 0);
    assert!(status.contains("missing"), "{status}");
    // No URL anywhere: up creates and starts the cluster itself.
    expect_code(&strata(project.path(), None, &["up"]), 0);
    let status = expect_code(&strata(project.path(), None, &["local", "status"]), 0);
    assert!(status.contains("running (pid"), "{status}");
    let url = expect_code(&strata(project.path(), None, &["local", "url"]), 0);
    assert!(
        url.starts_with("postgresql://postgres@/strata?host=/tmp/strata-")
            && url.contains("&port="),
        "{url}"
    );
    // The URL works for other tools, here strata itself.
    let out = expect_code(
        &strata(project.path(), Some(url.trim()), &["status", "--exit-code"]),
        0,
    );
    assert!(out.contains("1 applied"), "{out}");
    expect_code(&strata(project.path(), None, &["local", "stop"]), 0);
    assert!(
        expect_code(&strata(project.path(), None, &["local", "status"]), 0).contains("stopped")
    );
    // Commands start it again on demand.
    expect_code(&strata(project.path(), None, &["status", "--exit-code"]), 0);
    expect_code(&strata(project.path(), None, &["local", "destroy"]), 0);
    assert!(!project.path().join(".strata/pg").exists());
}

/// Destroys a project's cluster even when an assertion fails first, so
/// a failing test leaves no server running.
struct DestroyOnDrop<'a>(&'a std::path::Path);

impl Drop for DestroyOnDrop<'_> {
    fn drop(&mut self) {
        let _ = strata(self.0, None, &["local", "destroy"]);
    }
}

/// As root the server runs as `postgres`, which cannot enter a project in
/// a mode-700 directory (a clone in root's home): the cluster's data then
/// lives in a per-project directory outside, recorded in
/// `.strata/pg-location`, and `local destroy` removes it.
#[test]
fn root_keeps_the_cluster_outside_a_project_postgres_cannot_enter() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only root runs the server as another OS user");
        return;
    }
    let outer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outer.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let project = outer.path().join("app");
    std::fs::create_dir_all(project.join("migrations")).unwrap();
    std::fs::write(
        project.join("migrations/1_a.up.sql"),
        "CREATE TABLE a (id int);\n",
    )
    .unwrap();
    let _cleanup = DestroyOnDrop(&project);

    let out = expect_code(&strata(&project, None, &["local", "start"]), 0);
    let recorded = std::fs::read_to_string(project.join(".strata/pg-location"))
        .unwrap_or_else(|e| panic!("no .strata/pg-location ({e}); output:\n{out}"));
    let data = std::path::PathBuf::from(recorded.trim());
    assert!(!data.starts_with(outer.path()), "{}", data.display());
    assert!(out.contains(&data.display().to_string()), "{out}");
    let meta = std::fs::metadata(&data).unwrap();
    let postgres = nix::unistd::User::from_name("postgres").unwrap().unwrap();
    assert_eq!(meta.uid(), postgres.uid.as_raw());
    assert_eq!(meta.mode() & 0o777, 0o700);
    assert!(data.join("data/PG_VERSION").is_file());

    let out = expect_code(&strata(&project, None, &["up"]), 0);
    assert!(out.contains("1_a") || out.contains("applied"), "{out}");
    let url = expect_code(&strata(&project, None, &["local", "url"]), 0);
    let out = expect_code(
        &strata(&project, Some(url.trim()), &["status", "--exit-code"]),
        0,
    );
    assert!(out.contains("1 applied"), "{out}");
    let status = expect_code(&strata(&project, None, &["local", "status"]), 0);
    assert!(
        status.contains("running (pid") && status.contains(&data.display().to_string()),
        "{status}"
    );

    expect_code(&strata(&project, None, &["local", "destroy"]), 0);
    assert!(!data.exists(), "{} still exists", data.display());
    assert!(!project.join(".strata/pg-location").exists());
    assert!(!project.join(".strata/pg").exists());
}

/// `destroy` deletes only a directory Strata would have chosen: an edited
/// `.strata/pg-location` pointing elsewhere is ignored.
#[test]
fn an_edited_location_record_is_never_deleted() {
    let project = Project::new();
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("keep"), "x").unwrap();
    std::fs::create_dir_all(project.path().join(".strata")).unwrap();
    std::fs::write(
        project.path().join(".strata/pg-location"),
        format!("{}\n", victim.path().display()),
    )
    .unwrap();
    let _ = strata(project.path(), None, &["local", "destroy"]);
    assert!(victim.path().join("keep").is_file());
}
