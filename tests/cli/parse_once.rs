//! A run parses each migration once: analysis, estimates, rewrites, backup
//! decisions, the dry run and apply all use the statements of that one
//! parse (counted by `sql::parse_count`, per thread: these tests drive the
//! engine in process, on the test's own thread).

use strata::config::{Config, Flags};
use strata::engine::{self, ApplyOptions, Project as Loaded};
use strata::sql::parse_count::splits;

use crate::support::{expect_code, Project, TestDb};

/// A project with an applied first migration (a table of 2,000 rows, so
/// estimates and backup decisions have something to look at) and
/// `pending` pending ones of a few statements each.
async fn project(db: &TestDb, pending: usize) -> Project {
    let project = Project::applied(
        db,
        "CREATE TABLE t (id int PRIMARY KEY, v text);\nINSERT INTO t SELECT g, 'v' FROM generate_series(1, 2000) g;\n",
    );
    project.config("max_lock_hold = \"100ms\"\nsafe_rewrites = true\n");
    for i in 0..pending {
        let v = i + 2;
        project.write(
            &format!("{v}_m{v}.up.sql"),
            &format!(
                "-- strata:allow ban-unbatched-update-delete reason: test\n\n\
                 CREATE TABLE a{v} (id int);\nCREATE INDEX a{v}_id ON a{v} (id);\n\
                 DELETE FROM t WHERE id = {v};\nCREATE INDEX t_v_{v} ON t (v);\n"
            ),
        );
    }
    project
}

fn load(project: &Project, db: &TestDb) -> (Loaded, strata::Target) {
    let flags = Flags {
        database_url: Some(db.url.clone()),
        ..Flags::default()
    };
    let config = Config::resolve_with(&flags, &|_| None, project.path()).unwrap();
    (
        Loaded::load(config).unwrap(),
        strata::Target::parse(&db.url).unwrap(),
    )
}

#[tokio::test]
async fn up_and_its_dry_run_parse_each_migration_once() {
    let db = TestDb::new().await;
    let pending = 4;
    let project = project(&db, pending).await;
    let (loaded, target) = load(&project, &db);
    let files = (pending + 1) as u64;
    for dry_run in [true, false] {
        let before = splits();
        let options = ApplyOptions {
            target: None,
            dry_run,
            gates: Default::default(),
        };
        // A dry run hands its SQL over a migration at a time (after the
        // session setup), never as one text of the whole run.
        let mut sql = String::new();
        let mut pieces = 0;
        let mut collect = |p| {
            if let engine::Progress::DryRunSql(piece) = p {
                sql.push_str(&piece);
                pieces += 1;
            }
        };
        let report = engine::up(&loaded, &target, &options, &mut collect)
            .await
            .unwrap();
        // The applied migration is read once for the schema, each pending
        // one once for everything, and each safe rewrite's generated SQL
        // (one per pending migration: `CREATE INDEX t_v_N ON t`) once.
        assert_eq!(
            splits() - before,
            files + pending as u64,
            "dry_run = {dry_run}"
        );
        assert_eq!(report.dry_run, dry_run);
        assert_eq!(pieces, if dry_run { 1 + pending } else { 0 });
        if dry_run {
            assert!(sql.contains("CONCURRENTLY"), "{sql}");
        } else {
            assert_eq!(report.applied.len(), pending);
        }
    }
    assert_eq!(db.history().await.len(), pending + 1);
}

#[tokio::test]
async fn lint_parses_each_migration_once() {
    let db = TestDb::new().await;
    let pending = 3;
    let project = project(&db, pending).await;
    let (loaded, target) = load(&project, &db);
    let before = splits();
    let report = engine::lint_paths(&[project.migrations()], &loaded.config, Some(&target))
        .await
        .unwrap();
    // Each file once, and each safe rewrite's generated SQL once.
    assert_eq!(splits() - before, (pending + 1 + pending) as u64);
    assert!(report.statements >= 4 * pending, "{report:?}");
    // The same through the CLI, for the record: it still lints.
    expect_code(&project.run(&db, &["lint"]), 0);
}

/// Past the run's memory budget (`engine::statements`: 1 MiB of parsed
/// statements), a run drops the statements of later migrations after the
/// first parse and parses them again where they are used. The dry run and
/// the real run then print and run exactly what the first parse gave, in
/// both directions, and memory does not hold every migration's statements.
#[tokio::test]
async fn past_the_memory_budget_statements_are_parsed_again_where_used() {
    let db = TestDb::new().await;
    let project = Project::applied(&db, "CREATE TABLE t (id int PRIMARY KEY, v text);\n");
    project.config("safe_rewrites = true\nbackup = \"never\"\n");
    // Four data migrations of about 800 KB of statements each (a 400 KB
    // literal: its text and its parse tree), twice that with the safe
    // rewrite's copy: none fits in the budget.
    let pending = 4u64;
    let big = "x".repeat(400_000);
    for i in 0..pending {
        let v = i + 2;
        project.write(
            &format!("{v}_m{v}.up.sql"),
            &format!("INSERT INTO t VALUES ({v}, '{big}');\nCREATE INDEX t_v_{v} ON t (id);\n"),
        );
        project.write(
            &format!("{v}_m{v}.down.sql"),
            &format!("DROP INDEX t_v_{v};\nDELETE FROM t WHERE id = {v} AND v = '{big}';\n"),
        );
    }
    let (loaded, target) = load(&project, &db);
    for dry_run in [true, false] {
        let before = splits();
        let mut sql = String::new();
        let mut collect = |p| {
            if let engine::Progress::DryRunSql(piece) = p {
                sql.push_str(&piece);
            }
        };
        let options = ApplyOptions {
            target: None,
            dry_run,
            gates: Default::default(),
        };
        let report = engine::up(&loaded, &target, &options, &mut collect)
            .await
            .unwrap();
        // Held, the first parse (and its safe rewrite's generated SQL)
        // would serve everything: 1 + 2 * pending splits. Released, each
        // file is split again by the analysis (once per lint pass, and for
        // estimates) and parsed again (with its rewrite) by the dry run or
        // the run: more splits, but a bounded number per migration.
        let count = splits() - before;
        assert!(
            count > 1 + 2 * pending && count <= 1 + 2 * pending + 6 * pending,
            "dry_run = {dry_run}: {count} splits"
        );
        if dry_run {
            assert_eq!(sql.matches(big.as_str()).count(), pending as usize);
            assert_eq!(
                sql.matches("CREATE INDEX CONCURRENTLY t_v_").count(),
                pending as usize
            );
        } else {
            assert_eq!(report.applied.len(), pending as usize);
        }
    }
    let lengths = db
        .column("SELECT id || ':' || length(v) FROM t ORDER BY id")
        .await;
    assert_eq!(lengths, ["2:400000", "3:400000", "4:400000", "5:400000"]);
    let indexes = db
        .column("SELECT indexname::text FROM pg_indexes WHERE indexname LIKE 't_v_%' ORDER BY 1")
        .await;
    assert_eq!(indexes, ["t_v_2", "t_v_3", "t_v_4", "t_v_5"]);
    // Down, past the budget too: each down script runs as written.
    for dry_run in [true, false] {
        let mut sql = String::new();
        let mut collect = |p| {
            if let engine::Progress::DryRunSql(piece) = p {
                sql.push_str(&piece);
            }
        };
        let options = engine::DownOptions {
            target: engine::DownTarget::Steps(pending as usize),
            dry_run,
        };
        let report = engine::down(&loaded, &target, &options, &mut collect)
            .await
            .unwrap();
        if dry_run {
            assert_eq!(sql.matches(big.as_str()).count(), pending as usize);
        } else {
            assert_eq!(report.reverted.len(), pending as usize);
        }
    }
    assert!(db.column("SELECT id::text FROM t").await.is_empty());
    assert_eq!(db.history().await.len(), 1);
}

/// Past the loading budget (`source::TEXT_BUDGET`, 2 MiB of script text),
/// a run holds no migration's text: each step reads its file again, and
/// checks it is the text loaded at the start. A file edited after loading
/// never runs as other SQL under the checksum recorded at the start: edited
/// before anything ran, the run refuses (exit 2, nothing ran); edited while
/// the run goes, it stops at that migration (exit 1, the ones before it
/// applied and recorded). Held in memory, the edit would go unseen.
#[tokio::test]
async fn past_the_text_budget_files_are_read_again_and_an_edit_mid_run_stops_there() {
    let db = TestDb::new().await;
    let project = Project::applied(
        &db,
        "CREATE TABLE t (id int PRIMARY KEY, v text, pad text);\n",
    );
    project.config("backup = \"never\"\n");
    // 30 migrations of one 100 KB INSERT: 3 MB of text (2 MiB held) and
    // more statements than the parse budget holds (`engine::statements`).
    let big = "x".repeat(100_000);
    let pending = 30;
    let mut last = std::path::PathBuf::new();
    for v in 2..2 + pending {
        last = project.write(
            &format!("{v}_m{v}.up.sql"),
            &format!("INSERT INTO t VALUES ({v}, 'as loaded', '{big}');\n"),
        );
    }
    let options = ApplyOptions {
        target: None,
        dry_run: false,
        gates: Default::default(),
    };
    let original = std::fs::read_to_string(&last).unwrap();
    // Same length, other SQL, in the last migration.
    let edited = original.replace("'as loaded'", "'as edited'");

    // Edited after loading, before the run.
    let (loaded, target) = load(&project, &db);
    let released = loaded
        .migrations
        .iter()
        .filter(|m| m.up.text.held().is_none())
        .count();
    assert!((5..pending).contains(&released), "{released} released");
    std::fs::write(&last, &edited).unwrap();
    let error = engine::up(&loaded, &target, &options, &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(error.exit_code(), 2, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("{}:1: changed since", last.display())),
        "{message}"
    );
    assert_eq!(db.history().await.len(), 1);

    // Edited while the run goes: when the first pending migration starts.
    std::fs::write(&last, &original).unwrap();
    let (loaded, target) = load(&project, &db);
    let mut edit = Some((last.clone(), edited));
    let mut observer = |p| {
        if let engine::Progress::Started { .. } = p {
            if let Some((path, text)) = edit.take() {
                std::fs::write(path, text).unwrap();
            }
        }
    };
    let error = engine::up(&loaded, &target, &options, &mut observer)
        .await
        .unwrap_err();
    assert!(matches!(error, engine::EngineError::Reread(_)), "{error}");
    assert_eq!(error.exit_code(), 1);
    assert!(
        error
            .to_string()
            .contains(&format!("{}:1: changed since", last.display())),
        "{error}"
    );
    let rows = db.column("SELECT v FROM t ORDER BY id").await;
    assert_eq!(rows.len(), pending - 1);
    assert!(rows.iter().all(|v| v == "as loaded"), "{rows:?}");
    assert_eq!(db.history().await.len(), pending);

    // Loaded again, the edited file runs as it now is.
    let (loaded, target) = load(&project, &db);
    engine::up(&loaded, &target, &options, &mut |_| {})
        .await
        .unwrap();
    let rows = db.column("SELECT v FROM t ORDER BY id DESC LIMIT 1").await;
    assert_eq!(rows, ["as edited"]);
}
