//! `strata adopt`: taking over a database that another tool migrated.
//!
//! Each test writes the other tool's history table with the DDL and rows
//! that tool writes on PostgreSQL (from their sources: golang-migrate's
//! `database/postgres`, goose's `dialectquery/postgres.go`, diesel's
//! `setup_migration_table.sql`, sqlx-postgres `migrate.rs`, Flyway's
//! PostgreSQL `createMetaDataTable.sql`, dbmate's `driver/postgres`), and
//! creates the tables those migrations made, as the tool would have.

use sha2::Digest;

use crate::support::{expect_code, Project, TestDb};

/// The state `strata status` shows for `version` (leading zeros aside:
/// goose files say `00001`, the history says `1`).
fn state_of(status: &str, version: &str) -> String {
    status
        .lines()
        .find(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|v| v.trim_start_matches('0') == version.trim_start_matches('0'))
        })
        .map(|l| {
            ["applied", "pending", "modified", "missing", "failed"]
                .into_iter()
                .find(|s| l.contains(s))
                .unwrap_or("?")
                .to_owned()
        })
        .unwrap_or_else(|| format!("no line for {version} in:\n{status}"))
}

async fn events(db: &TestDb) -> Vec<String> {
    db.column(
        "SELECT action || ':' || coalesce(version, details->>'from' || ' count=' || (details->>'count'))
         FROM strata_events ORDER BY id",
    )
    .await
}

/// Adopts, then checks status and that `up` runs only the rest.
async fn adopt_then_up(
    db: &TestDb,
    project: &Project,
    applied: &[&str],
    pending: &[&str],
    table: &str,
) -> String {
    let out = expect_code(&project.run(db, &["adopt"]), 0);
    assert!(
        out.contains(&format!("adopted {} migration(s)", applied.len())) && out.contains(table),
        "{out}"
    );
    let status = expect_code(&project.run(db, &["status"]), 0);
    for v in applied {
        assert_eq!(state_of(&status, v), "applied", "{v}: {status}");
    }
    for v in pending {
        assert_eq!(state_of(&status, v), "pending", "{v}: {status}");
    }
    let up = expect_code(&project.run(db, &["up"]), 0);
    assert!(
        up.contains(&format!("{} migration(s) applied", pending.len())),
        "{up}"
    );
    let ev = events(db).await;
    for v in applied {
        assert!(ev.contains(&format!("adopt:{v}")), "{ev:?}");
    }
    assert!(
        ev.iter().any(|e| e.starts_with("adopt:")
            && e.contains(table)
            && e.ends_with(&format!("count={}", applied.len()))),
        "{ev:?}"
    );
    out
}

const GOLANG_MIGRATE_DDL: &str = r#"CREATE TABLE IF NOT EXISTS "public"."schema_migrations" (version bigint not null primary key, dirty boolean not null)"#;

fn three_native(project: &Project) {
    for (v, t) in [("1", "a"), ("2", "b"), ("3", "c")] {
        project.write(
            &format!("{v}_create_{t}.up.sql"),
            &format!("CREATE TABLE {t} (id int);\n"),
        );
        project.write(
            &format!("{v}_create_{t}.down.sql"),
            &format!("DROP TABLE {t};\n"),
        );
    }
}

#[tokio::test]
async fn golang_migrate_version_counts_every_migration_up_to_it() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int); CREATE TABLE b (id int); {GOLANG_MIGRATE_DDL};
             INSERT INTO schema_migrations (version, dirty) VALUES (2, false);"
        ))
        .await
        .unwrap();
    let project = Project::new();
    three_native(&project);
    let out = adopt_then_up(&db, &project, &["1", "2"], &["3"], "schema_migrations").await;
    assert!(
        out.contains("golang-migrate") && out.contains("3_create_c"),
        "{out}"
    );
    assert!(db.has_table("c").await);
    // Adopting again records nothing twice.
    let again = expect_code(&project.run(&db, &["adopt"]), 0);
    assert!(again.contains("adopted 0 migration(s)"), "{again}");
}

#[tokio::test]
async fn golang_migrate_dirty_is_refused_with_the_force_command() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int); {GOLANG_MIGRATE_DDL};
             INSERT INTO schema_migrations (version, dirty) VALUES (2, true);"
        ))
        .await
        .unwrap();
    let project = Project::new();
    three_native(&project);
    let out = expect_code(&project.run(&db, &["adopt"]), 2);
    assert!(
        out.contains("version 2 is dirty") && out.contains("force 2"),
        "{out}"
    );
    assert!(db.history().await.is_empty());
    // `up` refuses too, rather than running 1_create_a into "already exists".
    let up = expect_code(&project.run(&db, &["up"]), 2);
    assert!(up.contains("dirty"), "{up}");
    assert!(!db.has_table("b").await);
}

#[tokio::test]
async fn up_on_an_empty_history_points_to_adopt() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int); CREATE TABLE b (id int); {GOLANG_MIGRATE_DDL};
             INSERT INTO schema_migrations (version, dirty) VALUES (2, false);"
        ))
        .await
        .unwrap();
    let project = Project::new();
    three_native(&project);
    let out = expect_code(&project.run(&db, &["up"]), 2);
    assert!(
        out.contains("migrated by golang-migrate") && out.contains("run `strata adopt`"),
        "{out}"
    );
    assert!(!out.contains("already exists"), "{out}");
    assert!(!db.has_table("c").await);
    assert!(!db.has_table("strata_migrations").await);
}

#[tokio::test]
async fn history_table_pointing_at_another_tools_table_is_named() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(&format!(
            "{GOLANG_MIGRATE_DDL}; INSERT INTO schema_migrations (version, dirty) VALUES (1, false);"
        ))
        .await
        .unwrap();
    let project = Project::new();
    three_native(&project);
    project.config("history_table = \"schema_migrations\"\n");
    for cmd in ["status", "up"] {
        let out = expect_code(&project.run(&db, &[cmd]), 2);
        assert!(
            out.contains("history table schema_migrations is not Strata's")
                && out.contains("version bigint, dirty boolean")
                && out.contains("golang-migrate")
                && !out.contains("42703"),
            "{cmd}: {out}"
        );
    }
    assert!(!db.has_table("a").await);
}

#[tokio::test]
async fn goose_newest_row_of_a_version_wins() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE a (id int); CREATE TABLE b (id int);
             CREATE TABLE goose_db_version (
                id serial NOT NULL,
                version_id bigint NOT NULL,
                is_applied boolean NOT NULL,
                tstamp timestamp NULL default now(),
                PRIMARY KEY(id)
             );
             INSERT INTO goose_db_version (version_id, is_applied) VALUES
                (0, true), (1, true), (2, true), (3, true), (3, false), (9, true);",
        )
        .await
        .unwrap();
    let project = Project::new();
    for (v, t) in [
        ("00001", "a"),
        ("00002", "b"),
        ("00003", "c"),
        ("00004", "d"),
    ] {
        project.write(
            &format!("{v}_create_{t}.sql"),
            &format!(
                "-- +goose Up\nCREATE TABLE {t} (id int);\n\n-- +goose Down\nDROP TABLE {t};\n"
            ),
        );
    }
    let out = adopt_then_up(&db, &project, &["1", "2"], &["3", "4"], "goose_db_version").await;
    assert!(
        out.contains("1 version(s) recorded by goose have no file here") && out.contains(": 9"),
        "{out}"
    );
    assert!(
        out.contains("2 file(s) are not in goose's history"),
        "{out}"
    );
}

#[tokio::test]
async fn diesel_versions_are_matched_to_folders() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE a (id int);
             CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
                version VARCHAR(50) PRIMARY KEY NOT NULL,
                run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
             );
             INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101000001');",
        )
        .await
        .unwrap();
    let project = Project::new();
    for (v, t) in [("2024-01-01-000001", "a"), ("2024-01-02-000001", "b")] {
        project.write(
            &format!("{v}_create_{t}/up.sql"),
            &format!("CREATE TABLE {t} (id int);\n"),
        );
        project.write(
            &format!("{v}_create_{t}/down.sql"),
            &format!("DROP TABLE {t};\n"),
        );
    }
    adopt_then_up(
        &db,
        &project,
        &["20240101000001"],
        &["20240102000001"],
        "__diesel_schema_migrations",
    )
    .await;
}

const SQLX_DDL: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
)";

fn sqlx_project() -> (Project, Vec<String>) {
    let project = Project::new();
    project.config("format = \"sqlx\"\n");
    let mut texts = Vec::new();
    for (v, t) in [("1", "a"), ("2", "b"), ("3", "c")] {
        // CRLF on purpose: sqlx hashes the file exactly as it is.
        let text = format!("-- create {t}\r\nCREATE TABLE {t} (id int);\r\n");
        project.write(&format!("{v}_create_{t}.sql"), &text);
        texts.push(text);
    }
    (project, texts)
}

/// The row sqlx writes after running a migration.
fn sqlx_row(version: i64, description: &str, text: &str, success: bool) -> String {
    let sum: String = sha2::Sha384::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES ({version}, '{description}', {success}, '\\x{sum}'::bytea, 1234567);"
    )
}

#[tokio::test]
async fn sqlx_checksums_are_checked_against_the_files() {
    let db = TestDb::new().await;
    let (project, texts) = sqlx_project();
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int); CREATE TABLE b (id int); {SQLX_DDL}; {} {}",
            sqlx_row(1, "create a", &texts[0], true),
            sqlx_row(2, "create b", &texts[1], true)
        ))
        .await
        .unwrap();
    // A file edited since sqlx ran it is refused, naming it.
    project.write("2_create_b.sql", "CREATE TABLE b (id bigint);\n");
    let out = expect_code(&project.run(&db, &["adopt"]), 2);
    assert!(
        out.contains("1 file(s) differ from what sqlx applied") && out.contains("2_create_b.sql"),
        "{out}"
    );
    assert!(!out.contains("1_create_a.sql"), "{out}");
    assert!(db.history().await.is_empty());
    project.write("2_create_b.sql", &texts[1]);
    adopt_then_up(&db, &project, &["1", "2"], &["3"], "_sqlx_migrations").await;
}

#[tokio::test]
async fn sqlx_failed_migration_is_refused_with_the_fix() {
    let db = TestDb::new().await;
    let (project, texts) = sqlx_project();
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int); {SQLX_DDL}; {} {}",
            sqlx_row(1, "create a", &texts[0], true),
            sqlx_row(2, "create b", &texts[1], false)
        ))
        .await
        .unwrap();
    let out = expect_code(&project.run(&db, &["adopt"]), 2);
    assert!(
        out.contains("records migration 2 as failed")
            && out.contains("DELETE FROM _sqlx_migrations WHERE version = 2"),
        "{out}"
    );
    assert!(db.history().await.is_empty());
}

const FLYWAY_DDL: &str = r#"CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");"#;

fn flyway_project() -> Project {
    let project = Project::new();
    project.write("V1__create_a.sql", "CREATE TABLE a (id int);\n");
    project.write("V1.1__create_b.sql", "CREATE TABLE b (id int);\n");
    project.write("V2__create_c.sql", "CREATE TABLE c (id int);\n");
    project.write(
        "R__a_view.sql",
        "CREATE OR REPLACE VIEW a_view AS SELECT id FROM a;\n",
    );
    project
}

#[tokio::test]
async fn flyway_versioned_rows_are_adopted_and_repeatables_run_again() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int); CREATE TABLE b (id int);
             CREATE VIEW a_view AS SELECT id FROM a;
             {FLYWAY_DDL}
             INSERT INTO flyway_schema_history VALUES
               (1, '1', 'create a', 'SQL', 'V1__create_a.sql', -1820381521, 'app', now(), 12, true),
               (2, '1.1', 'create b', 'SQL', 'V1.1__create_b.sql', 1062954434, 'app', now(), 9, true),
               (3, NULL, 'a view', 'SQL', 'R__a_view.sql', 588722381, 'app', now(), 7, true);"
        ))
        .await
        .unwrap();
    let project = flyway_project();
    let out = expect_code(&project.run(&db, &["adopt"]), 0);
    assert!(
        out.contains("adopted 2 migration(s) from Flyway's history table flyway_schema_history")
            && out.contains("1 repeatable migration(s)"),
        "{out}"
    );
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert_eq!(state_of(&status, "1"), "applied", "{status}");
    assert_eq!(state_of(&status, "1.1"), "applied", "{status}");
    assert_eq!(state_of(&status, "2"), "pending", "{status}");
    let up = expect_code(&project.run(&db, &["up"]), 0);
    assert!(up.contains("2 migration(s) applied"), "{up}");
    assert!(db.has_table("c").await);
}

#[tokio::test]
async fn flyway_failed_row_is_refused_with_repair() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int);
             {FLYWAY_DDL}
             INSERT INTO flyway_schema_history VALUES
               (1, '1', 'create a', 'SQL', 'V1__create_a.sql', -1820381521, 'app', now(), 12, true),
               (2, '1.1', 'create b', 'SQL', 'V1.1__create_b.sql', 1062954434, 'app', now(), 9, false);"
        ))
        .await
        .unwrap();
    let project = flyway_project();
    let out = expect_code(&project.run(&db, &["adopt"]), 2);
    assert!(
        out.contains("records migration 1.1 as failed") && out.contains("flyway repair"),
        "{out}"
    );
    assert!(db.history().await.is_empty());
}

#[tokio::test]
async fn dbmate_text_versions_are_told_apart_from_golang_migrate() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            r#"CREATE TABLE a (id int);
             create table if not exists "public"."schema_migrations" (version varchar(255) primary key);
             insert into "public"."schema_migrations" (version) values ('20240101120000');"#,
        )
        .await
        .unwrap();
    let project = Project::new();
    project.write(
        "20240101120000_create_a.up.sql",
        "CREATE TABLE a (id int);\n",
    );
    project.write(
        "20240102120000_create_b.up.sql",
        "CREATE TABLE b (id int);\n",
    );
    let out = adopt_then_up(
        &db,
        &project,
        &["20240101120000"],
        &["20240102120000"],
        "schema_migrations",
    )
    .await;
    assert!(out.contains("dbmate"), "{out}");
}

#[tokio::test]
async fn from_names_a_table_at_another_name_and_bad_tables_are_errors() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(
            "CREATE TABLE a (id int); CREATE SCHEMA app;
             CREATE TABLE app.migrate_history (version bigint not null primary key, dirty boolean not null);
             INSERT INTO app.migrate_history VALUES (1, false);
             CREATE TABLE other (a int);
             CREATE TABLE odd (version text, dirty text);
             INSERT INTO odd VALUES ('x', 'maybe');",
        )
        .await
        .unwrap();
    let project = Project::new();
    three_native(&project);
    let out = expect_code(&project.run(&db, &["adopt"]), 2);
    assert!(
        out.contains("no other tool's history table found") && out.contains("--from"),
        "{out}"
    );
    let out = expect_code(&project.run(&db, &["adopt", "--from", "app.nope"]), 2);
    assert!(out.contains("table app.nope does not exist"), "{out}");
    let out = expect_code(&project.run(&db, &["adopt", "--from", "other"]), 2);
    assert!(
        out.contains("table other (a integer) is not the history table"),
        "{out}"
    );
    // A look-alike with the right names and wrong types: a server error
    // naming the problem, never a panic.
    let out = expect_code(&project.run(&db, &["adopt", "--from", "odd"]), 1);
    assert!(out.contains("invalid input syntax"), "{out}");
    assert!(db.history().await.is_empty());
    let out = expect_code(
        &project.run(&db, &["adopt", "--from", "app.migrate_history"]),
        0,
    );
    assert!(
        out.contains(
            "adopted 1 migration(s) from golang-migrate's history table app.migrate_history"
        ),
        "{out}"
    );
    let up = expect_code(&project.run(&db, &["up"]), 0);
    assert!(up.contains("2 migration(s) applied"), "{up}");
}

#[tokio::test]
async fn flyway_baseline_row_stands_for_every_version_up_to_it() {
    let db = TestDb::new().await;
    db.connect()
        .await
        .batch(&format!(
            "CREATE TABLE a (id int); CREATE TABLE b (id int);
             {FLYWAY_DDL}
             INSERT INTO flyway_schema_history VALUES
               (1, '1.1', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', NULL, 'app', now(), 0, true),
               (2, '2', 'create c', 'SQL', 'V2__create_c.sql', 1177412372, 'app', now(), 4, true),
               (3, '2', 'create c', 'UNDO_SQL', 'U2__create_c.sql', 118541224, 'app', now(), 3, true);"
        ))
        .await
        .unwrap();
    let project = flyway_project();
    // V2 was applied and undone: `up` applies it (and the repeatable).
    let out = expect_code(&project.run(&db, &["adopt"]), 0);
    assert!(out.contains("adopted 2 migration(s)"), "{out}");
    let status = expect_code(&project.run(&db, &["status"]), 0);
    assert_eq!(state_of(&status, "1"), "applied", "{status}");
    assert_eq!(state_of(&status, "1.1"), "applied", "{status}");
    assert_eq!(state_of(&status, "2"), "pending", "{status}");
}
