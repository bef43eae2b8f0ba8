//! `strata validate`: offline checks with file:line for each problem.

use crate::support::{expect_code, strata, Project};

#[test]
fn reports_every_problem_with_its_position() {
    let project = Project::new();
    project.write("1_ok.up.sql", "CREATE TABLE a (id int);\n");
    project.write("2_syntax.up.sql", "SELECT 1;\nSELEC 2;\n");
    project.write("3_meta.up.sql", "\\set x 1\n");
    project.write(
        "4_directive.up.sql",
        "-- strata:allow some-rule\nSELECT 1;\n",
    );
    project.write("5_tx.up.sql", "BEGIN;\nCREATE TABLE t (id int);\n");
    project.write("6_orphan.down.sql", "SELECT 1;\n");
    project.write("7_nested.up.sql", "BEGIN;\nBEGIN;\nCOMMIT;\n");
    let out = expect_code(&strata(project.path(), None, &["validate"]), 2);
    for needle in [
        "2_syntax.up.sql:2: syntax error",
        "3_meta.up.sql:1: psql meta-command `\\set`",
        "4_directive.up.sql:1: `strata:allow some-rule` needs a reason",
        "5_tx.up.sql:1: BEGIN without a matching COMMIT",
        "6_orphan.down.sql: down migration has no matching .up.sql",
        "7_nested.up.sql:2: BEGIN inside a transaction that is already open",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!out.contains("1_ok"), "{out}");
}

#[test]
fn clean_directories_pass_in_every_layout() {
    for layout in ["native", "goose", "diesel", "sqlx", "flyway"] {
        let project = Project::from_fixture(&format!("formats/{layout}"));
        let out = expect_code(&strata(project.path(), None, &["validate"]), 0);
        assert!(
            out.contains(&format!("({layout} layout): no problems")),
            "{layout}: {out}"
        );
    }
}

#[test]
fn mixed_layouts_need_an_explicit_format() {
    let project = Project::new();
    project.write("1_a.up.sql", "SELECT 1;\n");
    project.write("V2__b.sql", "SELECT 1;\n");
    let out = expect_code(&strata(project.path(), None, &["validate"]), 2);
    assert!(
        out.contains("cannot tell the migration layout") && out.contains("format = "),
        "{out}"
    );
}
