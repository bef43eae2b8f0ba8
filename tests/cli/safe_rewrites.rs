//! Safe rewrites: each gives the same catalog end state as the naive form
//! (compared with `pg_dump --schema-only`), and says what it did.

use crate::support::{expect_code, Project, TestDb};

const BASE: &str = r#"CREATE TABLE users (id bigint PRIMARY KEY, email text, name text);
INSERT INTO users SELECT g, 'u' || g || '@example.com', 'name ' || g FROM generate_series(1, 2000) g;
CREATE INDEX users_name_idx ON users (name);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total integer);
INSERT INTO orders SELECT g, 1 + g % 2000, g % 100 FROM generate_series(1, 4000) g;
CREATE TABLE items (id bigint, label text);
INSERT INTO items SELECT g, 'x' FROM generate_series(1, 100) g;
CREATE TABLE "Orders" ("OrderId" bigint, "UserId" bigint, note text);
INSERT INTO "Orders" SELECT g, 1 + g % 2000, 'n' FROM generate_series(1, 100) g;
CREATE TABLE "my.table" (id bigint, "E-mail" text);
INSERT INTO "my.table" SELECT g, 'e' || g FROM generate_series(1, 100) g;
CREATE SCHEMA "Sch";
CREATE TABLE "Sch".t (id bigint, "UserId" bigint, v text);
INSERT INTO "Sch".t SELECT g, 1 + g % 2000, 'v' FROM generate_series(1, 100) g;
CREATE INDEX "T_idx" ON "Sch".t (v);
CREATE TABLE "ÄVeryLongTableNameThatGoesOnAndOnAndOnForSixtyBytes_x" ("ÄnotherQuiteLongColumnName_y" bigint);
"#;

fn schema_dump(db: &TestDb) -> String {
    let pg_dump = strata::localpg::Binaries::find().unwrap().tool("pg_dump");
    let out = std::process::Command::new(pg_dump)
        .args([
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--exclude-table=strata_*",
            "--exclude-table=strata_events_id_seq",
        ])
        .arg(format!("--dbname={}", db.url))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !l.starts_with("--")
                && !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
                && !l.trim().is_empty()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

async fn apply(sql: &str, safe: bool) -> (TestDb, String) {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_base.up.sql", BASE);
    project.write("2_change.up.sql", sql);
    project.config(&format!("safe_rewrites = {safe}\n"));
    let out = expect_code(&project.run(&db, &["up"]), 0);
    (db, out)
}

#[tokio::test]
async fn every_rewrite_ends_in_the_naive_catalog_state() {
    let cases = [
        (
            "CREATE INDEX users_email_idx ON users (email);",
            "CREATE INDEX → CREATE INDEX CONCURRENTLY",
        ),
        (
            "CREATE UNIQUE INDEX users_email_uidx ON users (email);",
            "CREATE INDEX → CREATE INDEX CONCURRENTLY",
        ),
        (
            "DROP INDEX users_name_idx;",
            "DROP INDEX → DROP INDEX CONCURRENTLY",
        ),
        (
            "ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);",
            "ADD FOREIGN KEY → ADD FOREIGN KEY NOT VALID",
        ),
        (
            "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0);",
            "ADD CHECK → ADD CHECK NOT VALID",
        ),
        (
            "ALTER TABLE users ALTER COLUMN email SET NOT NULL;",
            "SET NOT NULL → CHECK NOT VALID, VALIDATE, SET NOT NULL",
        ),
        (
            "ALTER TABLE users ADD UNIQUE (email);",
            "ADD UNIQUE → unique index built concurrently",
        ),
        (
            "ALTER TABLE items ADD PRIMARY KEY (id);",
            "ADD PRIMARY KEY → unique index built concurrently",
        ),
    ];
    for (sql, note) in cases {
        let (naive_db, naive_out) = apply(sql, false).await;
        assert!(!naive_out.contains("safe rewrite, line"), "{naive_out}");
        let (safe_db, safe_out) = apply(sql, true).await;
        assert!(
            safe_out.contains(&format!("safe rewrite, line 1: {note}")),
            "{sql}\n{safe_out}"
        );
        assert_eq!(
            schema_dump(&naive_db),
            schema_dump(&safe_db),
            "end states differ for: {sql}"
        );
        let recorded = safe_db
            .column("SELECT details->>'rewrites' FROM strata_events WHERE version = '2'")
            .await;
        assert!(
            recorded[0].contains(note.split(" → ").next().unwrap()),
            "{recorded:?}"
        );
    }
}

/// Mixed case, dots, quotes, schemas and names over 63 bytes: the rewrite
/// must name everything exactly as PostgreSQL names it for the naive form.
#[tokio::test]
async fn rewrites_keep_names_as_postgres_sees_them() {
    let cases = [
        (
            r#"ALTER TABLE "Orders" ADD PRIMARY KEY ("OrderId");"#,
            "ADD PRIMARY KEY → unique index built concurrently",
        ),
        (
            r#"ALTER TABLE "Orders" ADD FOREIGN KEY ("UserId") REFERENCES users (id);"#,
            "ADD FOREIGN KEY → ADD FOREIGN KEY NOT VALID",
        ),
        (
            r#"ALTER TABLE "Orders" ALTER COLUMN note SET NOT NULL;"#,
            "SET NOT NULL → CHECK NOT VALID, VALIDATE, SET NOT NULL",
        ),
        (
            r#"CREATE INDEX ON "my.table" ("E-mail");"#,
            "CREATE INDEX → CREATE INDEX CONCURRENTLY",
        ),
        (
            r#"ALTER TABLE "my.table" ADD UNIQUE ("E-mail");"#,
            "ADD UNIQUE → unique index built concurrently",
        ),
        (
            r#"ALTER TABLE "Sch".t ADD PRIMARY KEY (id);"#,
            "ADD PRIMARY KEY → unique index built concurrently",
        ),
        (
            r#"ALTER TABLE "Sch".t ADD FOREIGN KEY ("UserId") REFERENCES users (id);"#,
            "ADD FOREIGN KEY → ADD FOREIGN KEY NOT VALID",
        ),
        (
            r#"DROP INDEX "Sch"."T_idx";"#,
            "DROP INDEX → DROP INDEX CONCURRENTLY",
        ),
        (
            r#"ALTER TABLE "ÄVeryLongTableNameThatGoesOnAndOnAndOnForSixtyBytes_x" ADD UNIQUE ("ÄnotherQuiteLongColumnName_y");"#,
            "ADD UNIQUE → unique index built concurrently",
        ),
    ];
    for (sql, note) in cases {
        let (naive_db, _) = apply(sql, false).await;
        let (safe_db, safe_out) = apply(sql, true).await;
        assert!(
            safe_out.contains(&format!("safe rewrite, line 1: {note}")),
            "{sql}\n{safe_out}"
        );
        assert_eq!(
            schema_dump(&naive_db),
            schema_dump(&safe_db),
            "end states differ for: {sql}"
        );
    }
}

#[tokio::test]
async fn dry_run_shows_the_rewritten_sql() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_base.up.sql", BASE);
    expect_code(&project.run(&db, &["up"]), 0);
    project.write(
        "2_fk.up.sql",
        "ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);\n",
    );
    project.config("safe_rewrites = true\n");
    let out = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert!(
        out.contains("-- safe rewrite, line 1: ADD FOREIGN KEY"),
        "{out}"
    );
    assert!(out.contains("ADD CONSTRAINT orders_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;"), "{out}");
    assert!(
        out.contains("ALTER TABLE orders VALIDATE CONSTRAINT orders_user_id_fkey;"),
        "{out}"
    );
    assert!(
        out.contains("outside a transaction (safe rewrites need separate transactions)"),
        "{out}"
    );
}

/// Without a config file, statements run exactly as written: rewrites are
/// an explicit choice (README, "Safe rewrites").
#[tokio::test]
async fn without_a_config_statements_run_as_written() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_base.up.sql", BASE);
    project.write(
        "2_idx.up.sql",
        "CREATE INDEX users_email_idx ON users (email);\n",
    );
    let out = expect_code(&project.run(&db, &["up", "--dry-run"]), 0);
    assert!(
        !out.contains("safe rewrite, line")
            && out.contains("\nCREATE INDEX users_email_idx ON users (email);"),
        "{out}"
    );
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(!out.contains("safe rewrite, line"), "{out}");
    let mode = db
        .column("SELECT details->>'mode' FROM strata_events WHERE version = '2' AND action = 'up'")
        .await;
    assert_eq!(mode, ["in a transaction"]);
}

/// A file with its own BEGIN/COMMIT asked for exactly those transactions:
/// it runs as written, even with safe rewrites on (a CONCURRENTLY form
/// would fail inside its BEGIN).
#[tokio::test]
async fn files_with_their_own_transactions_are_not_rewritten() {
    let db = TestDb::new().await;
    let project = Project::new();
    project.write("1_base.up.sql", BASE);
    project.write(
        "2_tx.up.sql",
        "BEGIN;\nCREATE INDEX users_email_idx ON users (email);\nALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);\nCOMMIT;\n",
    );
    project.config("safe_rewrites = true\n");
    let out = expect_code(&project.run(&db, &["up"]), 0);
    assert!(!out.contains("safe rewrite, line"), "{out}");
    assert_eq!(
        db.column("SELECT indexrelid::regclass::text FROM pg_index WHERE indexrelid::regclass::text = 'users_email_idx'").await,
        ["users_email_idx"]
    );
}
