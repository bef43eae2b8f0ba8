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

#[test]
fn root_gets_a_clear_error_when_postgres_cannot_reach_the_project() {
    if !nix::unistd::geteuid().is_root() {
        return; // only root runs the server as another user
    }
    let outer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        outer.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let project = outer.path().join("app");
    std::fs::create_dir_all(project.join("migrations")).unwrap();
    let out = expect_code(&strata(&project, None, &["status"]), 1);
    assert!(
        out.contains("cannot enter") && out.contains("chmod o+x"),
        "{out}"
    );
}
