//! `strata changelog`: markdown from the files and the event log.

use crate::support::{expect_code, strata, Project, TestDb};

/// Three migrations: a described table with a down, a HIGH-risk drop
/// without a down, and an index whose MEDIUM finding is acknowledged.
fn project() -> Project {
    let project = Project::new();
    project.config("block_on = \"never\"\n");
    project.write(
        "1_users.up.sql",
        "-- Creates the users table,\n--   which sign-up needs.\n\n-- Not part of the description.\nCREATE TABLE users (id bigint PRIMARY KEY, email text);\n",
    );
    project.write("1_users.down.sql", "DROP TABLE users;\n");
    project.write(
        "2_drop_email.up.sql",
        "-- strata:no-transaction\n-- Drops the email column.\nALTER TABLE users DROP COLUMN email;\n",
    );
    project.write(
        "3_users_idx.up.sql",
        "-- strata:allow require-concurrent-index-creation reason: users is tiny\nCREATE INDEX users_id_idx ON users (id);\n",
    );
    project.write("3_users_idx.down.sql", "DROP INDEX users_id_idx;\n");
    project
}

fn read(project: &Project, name: &str) -> String {
    std::fs::read_to_string(project.path().join(name)).unwrap()
}

#[test]
fn changelog_from_files_only_is_complete_and_idempotent() {
    let project = project();
    expect_code(&strata(project.path(), None, &["changelog"]), 0);
    let first = read(&project, "CHANGELOG.migrations.md");
    // Newest first, each with its description, down and risk.
    let (three, two, one) = (
        first.find("## 3 users_idx").expect(&first),
        first.find("## 2 drop_email").expect(&first),
        first.find("## 1 users").expect(&first),
    );
    assert!(three < two && two < one, "{first}");
    let section = |start: usize| {
        let rest = &first[start..];
        rest[..rest[3..].find("## ").map_or(rest.len(), |i| i + 3)].to_owned()
    };
    let users = section(one);
    assert!(
        users.contains("Creates the users table, which sign-up needs.")
            && !users.contains("Not part")
            && users.contains("- Down: yes")
            && users.contains("- Risk: none"),
        "{users}"
    );
    let drop = section(two);
    assert!(
        drop.contains("Drops the email column.")
            && !drop.contains("strata:no-transaction")
            && drop.contains("- Down: no")
            && drop.contains("- Risk: HIGH (`ban-drop-column`)"),
        "{drop}"
    );
    // The acknowledged finding does not count.
    assert!(
        section(three).contains("- Risk: none"),
        "{}",
        section(three)
    );
    assert!(
        !first.contains("Applied:") && first.contains("files only"),
        "{first}"
    );

    // Twice: byte-identical.
    expect_code(&strata(project.path(), None, &["changelog"]), 0);
    assert_eq!(read(&project, "CHANGELOG.migrations.md"), first);
    // `-` prints the same text; --out writes elsewhere.
    let out = strata(project.path(), None, &["changelog", "--out", "-"]);
    expect_code(&out, 0);
    assert_eq!(String::from_utf8_lossy(&out.stdout), first);
    expect_code(
        &strata(project.path(), None, &["changelog", "--out", "docs.md"]),
        0,
    );
    assert_eq!(read(&project, "docs.md"), first);
}

#[tokio::test]
async fn changelog_with_a_database_says_when_and_by_whom() {
    let db = TestDb::new().await;
    let project = project();
    expect_code(&project.run(&db, &["up"]), 0);
    expect_code(&project.run(&db, &["down"]), 0);
    expect_code(&project.run(&db, &["changelog"]), 0);
    let text = read(&project, "CHANGELOG.migrations.md");
    let applied = db
        .column(
            "SELECT to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC by `' || applied_by || '`'
             FROM strata_migrations ORDER BY version",
        )
        .await;
    assert_eq!(applied.len(), 2);
    for line in &applied {
        assert!(
            text.contains(&format!("- Applied: {line}")),
            "{line}\n{text}"
        );
    }
    let reverted = db
        .column(
            "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC by `' || actor || '`'
             FROM strata_events WHERE action = 'down'",
        )
        .await;
    assert!(
        text.contains(&format!("- Applied: no (reverted {})", reverted[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!("database `{}` on", db.name)),
        "{text}"
    );

    // Twice: byte-identical, and nothing was written to the database.
    let events = db.column("SELECT count(*)::text FROM strata_events").await;
    expect_code(&project.run(&db, &["changelog"]), 0);
    assert_eq!(read(&project, "CHANGELOG.migrations.md"), text);
    assert_eq!(
        db.column("SELECT count(*)::text FROM strata_events").await,
        events
    );

    // An applied migration whose file is gone is still listed.
    std::fs::remove_file(project.migrations().join("2_drop_email.up.sql")).unwrap();
    expect_code(&project.run(&db, &["changelog"]), 0);
    let text = read(&project, "CHANGELOG.migrations.md");
    let missing = &text[text.find("## 2 drop_email").expect(&text)..];
    assert!(
        missing.contains("the file is missing") && missing.contains("- Down: unknown"),
        "{text}"
    );

    // --files-only leaves the database out.
    let out = project.run(&db, &["changelog", "--files-only", "--out", "-"]);
    let files_only = expect_code(&out, 0);
    assert!(!files_only.contains("Applied:"), "{files_only}");
}

#[test]
fn a_directory_with_problems_is_refused() {
    let project = Project::new();
    project.write("1_x.up.sql", "-- nothing here\n");
    let out = expect_code(&strata(project.path(), None, &["changelog"]), 2);
    assert!(out.contains("1_x.up.sql"), "{out}");
    assert!(!project.path().join("CHANGELOG.migrations.md").exists());
}
