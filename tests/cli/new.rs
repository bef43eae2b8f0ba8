//! `strata new --type` templates and `--sequential` numbering.

use std::path::Path;

use crate::support::{expect_code, strata, Project, TestDb};

/// The layouts `strata new` writes, with the version `--to` takes for the
/// third migration of a sequentially numbered directory.
const LAYOUTS: [(&str, &str); 5] = [
    ("native", "0003"),
    ("goose", "0003"),
    ("diesel", "0003"),
    ("sqlx", "0003"),
    ("flyway", "3"),
];

const KINDS: [&str; 6] = ["table", "column", "index", "data", "function", "trigger"];

/// Every file below `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// What a user does after generating: put real names in place of the
/// template's placeholders.
fn fill_names(dir: &Path) {
    for path in files(dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replace("my_table", "accounts")
            .replace("my_column", "nickname")
            .replace("my_function", "normalize_name");
        std::fs::write(&path, text).unwrap();
    }
}

/// A project in `layout` with one migration of every template type, in the
/// order in which they build on each other.
fn generated(layout: &str) -> Project {
    let project = Project::new();
    project.config(&format!("format = \"{layout}\"\n"));
    for kind in KINDS {
        let out = expect_code(
            &strata(
                project.path(),
                None,
                &[
                    "new",
                    &format!("{kind} example"),
                    "--type",
                    kind,
                    "--sequential",
                ],
            ),
            0,
        );
        assert!(!out.trim().is_empty(), "{layout} {kind}: no file written");
    }
    project
}

#[tokio::test]
async fn every_template_validates_lints_clean_applies_and_reverts_in_every_layout() {
    for (layout, third) in LAYOUTS {
        let project = generated(layout);
        let out = expect_code(&strata(project.path(), None, &["validate"]), 0);
        assert!(out.contains(&format!("{layout} layout")), "{layout}: {out}");
        let out = expect_code(&strata(project.path(), None, &["lint"]), 0);
        assert!(
            out.contains("0 HIGH, 0 MEDIUM"),
            "{layout}: templates must lint clean:\n{out}"
        );

        fill_names(&project.migrations());
        let db = TestDb::new().await;
        // Table, column and the concurrent index first; then rows for the
        // backfill to work through in batches.
        expect_code(&project.run(&db, &["up", "--to", third]), 0);
        db.connect()
            .await
            .batch("INSERT INTO accounts (name) SELECT 'n' || g FROM generate_series(1, 2500) g")
            .await
            .unwrap();
        let out = expect_code(&project.run(&db, &["up"]), 0);
        assert_eq!(db.history().await.len(), 6, "{layout}: {out}");
        let valid = db
            .column("SELECT indisvalid::text FROM pg_index WHERE indexrelid = 'accounts_nickname_idx'::regclass")
            .await;
        assert_eq!(valid, ["true"], "{layout}: the index is built and valid");
        let filled = db
            .column("SELECT count(*)::text FROM accounts WHERE nickname = 'new value'")
            .await;
        assert_eq!(filled, ["2500"], "{layout}: the backfill reached every row");
        // Batches of 1,000 rows commit separately: at least three
        // transactions wrote the 2,500 rows.
        let writers = db
            .column("SELECT count(DISTINCT xmin::text)::text FROM accounts")
            .await;
        assert_eq!(writers, ["3"], "{layout}: one transaction per batch");
        let normalized = db.column("SELECT normalize_name('  Ab ')").await;
        assert_eq!(normalized, ["ab"], "{layout}");
        let touched = db
            .column(
                "UPDATE accounts SET name = 'x' WHERE id = 1 RETURNING (updated_at > created_at)::text",
            )
            .await;
        assert_eq!(touched, ["true"], "{layout}: the trigger sets updated_at");

        // Down: trigger, function and the backfill (reset in batches).
        expect_code(&project.run(&db, &["down", "--steps", "3"]), 0);
        let left = db
            .column("SELECT count(*)::text FROM accounts WHERE nickname IS NOT NULL")
            .await;
        assert_eq!(left, ["0"], "{layout}: the data down resets the column");
        let functions = db
            .column("SELECT count(*)::text FROM pg_proc WHERE proname IN ('normalize_name', 'accounts_set_updated_at')")
            .await;
        assert_eq!(
            functions,
            ["0"],
            "{layout}: function and trigger downs drop them"
        );
        let triggers = db
            .column("SELECT count(*)::text FROM pg_trigger WHERE NOT tgisinternal")
            .await;
        assert_eq!(triggers, ["0"], "{layout}");
        // Then the index (concurrently), the column and the table.
        expect_code(&project.run(&db, &["down", "--all"]), 0);
        assert!(!db.has_table("accounts").await, "{layout}");
        assert!(db.history().await.is_empty(), "{layout}");
        // And up again from scratch: every down left a clean slate.
        expect_code(&project.run(&db, &["up"]), 0);
    }
}

#[test]
fn templates_use_each_layouts_own_no_transaction_directive() {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    for (layout, _) in LAYOUTS {
        let project = generated(layout);
        let all = files(&project.migrations());
        let index: Vec<_> = all
            .iter()
            .filter(|p| p.to_string_lossy().contains("index_example"))
            .collect();
        let text: String = index.iter().map(|p| read(p)).collect();
        assert!(
            text.contains("CREATE INDEX CONCURRENTLY") && text.contains("DROP INDEX CONCURRENTLY"),
            "{layout}: {text}"
        );
        match layout {
            "goose" => assert!(text.starts_with("-- +goose NO TRANSACTION\n"), "{text}"),
            "diesel" => assert!(
                index.iter().any(|p| p.ends_with("metadata.toml")
                    && read(p).contains("run_in_transaction = false")),
                "{index:?}"
            ),
            "sqlx" => assert!(
                index
                    .iter()
                    .all(|p| read(p).starts_with("-- no-transaction\n")),
                "{text}"
            ),
            _ => assert!(
                index
                    .iter()
                    .all(|p| read(p).starts_with("-- strata:no-transaction\n")),
                "{text}"
            ),
        }
        let data: String = all
            .iter()
            .filter(|p| p.to_string_lossy().contains("data_example"))
            .map(|p| read(p))
            .collect();
        for needle in ["DO $$", "LIMIT batch_size", "COMMIT;", "RAISE NOTICE"] {
            assert!(data.contains(needle), "{layout}: data lacks {needle}");
        }
        let column: String = all
            .iter()
            .filter(|p| p.to_string_lossy().contains("column_example"))
            .map(|p| read(p))
            .collect();
        assert!(
            column.contains("ADD COLUMN my_column text;")
                && column.contains("DROP COLUMN my_column;"),
            "{layout}: {column}"
        );
        // Templates without CONCURRENTLY or COMMIT stay transactional.
        let table: String = all
            .iter()
            .filter(|p| p.to_string_lossy().contains("table_example"))
            .map(|p| read(p))
            .collect();
        assert!(!table.to_lowercase().contains("transaction\n"), "{table}");
    }
}

#[test]
fn sequential_numbers_start_in_an_empty_directory() {
    let name = |out: &str| {
        Path::new(out.lines().next().unwrap())
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    };
    // --sequential starts at 0001; the next `new` continues the sequence.
    let project = Project::new();
    let out = expect_code(
        &strata(project.path(), None, &["new", "a", "--sequential"]),
        0,
    );
    assert_eq!(name(&out), "0001_a.up.sql");
    let out = expect_code(&strata(project.path(), None, &["new", "b"]), 0);
    assert_eq!(name(&out), "0002_b.up.sql");

    // numbering = "sequential" in strata.toml does the same, in any layout.
    let goose = Project::new();
    goose.config("numbering = \"sequential\"\nformat = \"goose\"\n");
    let out = expect_code(&strata(goose.path(), None, &["new", "first"]), 0);
    assert_eq!(name(&out), "0001_first.sql");
    let out = expect_code(&strata(goose.path(), None, &["new", "second"]), 0);
    assert_eq!(name(&out), "0002_second.sql");
    let diesel = Project::new();
    diesel.config("numbering = \"sequential\"\nformat = \"diesel\"\n");
    let out = expect_code(
        &strata(diesel.path(), None, &["new", "first", "--type", "table"]),
        0,
    );
    assert!(out.contains("0001_first/up.sql"), "{out}");

    // A directory of timestamps cannot switch: the new number would sort first.
    let stamped = Project::new();
    stamped.write("20240101120000_a.up.sql", "SELECT 1;\n");
    let out = expect_code(
        &strata(stamped.path(), None, &["new", "b", "--sequential"]),
        2,
    );
    assert!(
        out.contains("20240101120000") && out.contains("help:"),
        "{out}"
    );
    assert_eq!(files(&stamped.migrations()).len(), 1, "nothing written");

    // A typo in the setting is a config error.
    let bad = Project::new();
    bad.config("numbering = \"serial\"\n");
    let out = expect_code(&strata(bad.path(), None, &["new", "x"]), 2);
    assert!(out.contains("numbering"), "{out}");
}

#[test]
fn unknown_type_is_a_usage_error() {
    let project = Project::new();
    let out = expect_code(
        &strata(project.path(), None, &["new", "x", "--type", "view"]),
        2,
    );
    assert!(out.contains("table") && out.contains("trigger"), "{out}");
    assert!(files(&project.migrations()).is_empty());
}

#[test]
fn each_template_alone_validates_and_lints_clean_in_every_layout() {
    for (layout, _) in LAYOUTS {
        for kind in KINDS {
            let project = Project::new();
            project.config(&format!("format = \"{layout}\"\n"));
            expect_code(
                &strata(project.path(), None, &["new", "x", "--type", kind]),
                0,
            );
            expect_code(&strata(project.path(), None, &["validate"]), 0);
            let out = expect_code(&strata(project.path(), None, &["lint"]), 0);
            assert!(out.contains("0 HIGH, 0 MEDIUM"), "{layout} {kind}:\n{out}");
        }
    }
}
