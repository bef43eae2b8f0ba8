//! Every rewrite a finding offers runs, and ends in the catalog the
//! original statement ends in (issue 11, items 11 and 13).

use std::collections::HashSet;

use crate::support::{text, Project, TestDb};

/// relfilenode of each named relation, in order.
async fn filenodes(db: &TestDb, names: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        out.extend(
            db.column(&format!(
                "SELECT relfilenode::text FROM pg_class WHERE oid = '{n}'::regclass"
            ))
            .await,
        );
    }
    out
}

/// The claim behind the `timestamp` → `timestamptz` advice: on PostgreSQL
/// 12 and later the change keeps the table's file when the session TimeZone
/// is UTC (no rewrite), and rewrites it otherwise. Indexes on the column are
/// rebuilt either way (their operator class changes), which the finding
/// says when the history knows such an index.
#[tokio::test]
async fn timestamptz_change_is_metadata_only_under_utc() {
    let db = TestDb::new().await;
    let conn = db.connect().await;
    conn.batch(
        "CREATE TABLE ev (id bigint PRIMARY KEY, at timestamp NOT NULL, back timestamptz);
         CREATE INDEX ev_at_idx ON ev (at);
         CREATE INDEX ev_back_idx ON ev (back);
         INSERT INTO ev SELECT g, now(), now() FROM generate_series(1, 1000) g;",
    )
    .await
    .unwrap();
    let rels = ["ev", "ev_at_idx", "ev_back_idx"];
    let before = filenodes(&db, &rels).await;
    conn.batch(
        "BEGIN; SET LOCAL TimeZone = 'UTC';
         ALTER TABLE ev ALTER COLUMN at TYPE timestamptz, ALTER COLUMN back TYPE timestamp;
         COMMIT;",
    )
    .await
    .unwrap();
    let utc = filenodes(&db, &rels).await;
    assert_eq!(before[0], utc[0], "under UTC the table is not rewritten");
    assert_ne!(before[1], utc[1], "the index on the column is rebuilt");
    conn.batch(
        "BEGIN; SET LOCAL TimeZone = 'Europe/Paris';
         ALTER TABLE ev ALTER COLUMN at TYPE timestamp;
         COMMIT;",
    )
    .await
    .unwrap();
    let paris = filenodes(&db, &rels).await;
    assert_ne!(utc[0], paris[0], "another zone rewrites the table");
    assert_ne!(utc[1], paris[1], "another zone rebuilds the index");
}

/// The tables every example and hard case runs against, with rows, so that
/// scans, backfills and validations have something to do. Examples in the
/// rules' docs name these tables.
const SETUP: &str = r#"CREATE TABLE users (id bigint PRIMARY KEY, email text, name text, phone text, legacy_flags integer);
INSERT INTO users SELECT g, 'u' || g || '@example.com', 'name ' || g, '+' || g, g % 3 FROM generate_series(1, 200) g;
CREATE INDEX users_name_idx ON users (name);
CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint, total integer NOT NULL DEFAULT 0, placed_at timestamp NOT NULL DEFAULT now(), created_at timestamptz);
INSERT INTO orders SELECT g, 1 + g % 200, g % 100, timestamp '2024-05-01 12:00' + g * interval '1 hour', timestamptz '2024-05-01 12:00+02' FROM generate_series(1, 400) g;
CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE INDEX orders_total_idx ON orders (total) WHERE total > 0;
CREATE TABLE events (id bigint, payload text);
INSERT INTO events SELECT g, 'p' || g FROM generate_series(1, 100) g;
CREATE TABLE accounts (id bigint PRIMARY KEY, code uuid NOT NULL, region text);
INSERT INTO accounts SELECT g, md5(g::text)::uuid, 'eu' FROM generate_series(1, 100) g;
CREATE SCHEMA "Sch";
CREATE TABLE "Sch"."Mixed" ("Id" bigint PRIMARY KEY, "UserId" bigint, "Amount" integer NOT NULL DEFAULT 0, "Code" text, "At" timestamp);
INSERT INTO "Sch"."Mixed" SELECT g, 1 + g % 200, g, 'c' || g, timestamp '2024-05-01 12:00' FROM generate_series(1, 100) g;
CREATE INDEX "Mixed_code_idx" ON "Sch"."Mixed" ("Code");
CREATE DOMAIN email AS text;
CREATE TABLE contacts (id bigint, addr email);
INSERT INTO contacts SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 50) g;
CREATE TABLE measurements (id bigint, taken date) PARTITION BY RANGE (taken);
CREATE TABLE measurements_2023 PARTITION OF measurements FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
INSERT INTO measurements SELECT g, date '2023-01-01' + g FROM generate_series(1, 100) g;
"#;

/// Statements harder than the documented examples: several actions in one
/// ALTER TABLE, USING clauses, quoted, mixed-case and schema-qualified
/// names, NOT NULL with a volatile default, a primary-key swap, inline
/// constraints on a new column. Every finding with a rewrite that any of
/// them raises is run; statements that raise none are fine (some exist for
/// rules that other changes add rewrites to).
const HARD: &[&str] = &[
    "ALTER TABLE orders ALTER COLUMN total TYPE bigint USING total::bigint * 100;",
    r#"ALTER TABLE "Sch"."Mixed" ALTER COLUMN "Amount" TYPE numeric(12,2) USING "Amount"::numeric / 100, ADD COLUMN note text;"#,
    "ALTER TABLE orders ALTER COLUMN placed_at TYPE timestamptz;",
    r#"ALTER TABLE "Sch"."Mixed" ALTER COLUMN "At" TYPE timestamptz, ALTER COLUMN "Code" SET DEFAULT 'x';"#,
    "ALTER TABLE events ALTER COLUMN id TYPE text;",
    "ALTER TABLE users ADD COLUMN token uuid NOT NULL DEFAULT gen_random_uuid();",
    r#"ALTER TABLE "Sch"."Mixed" ADD COLUMN "Ref" uuid NOT NULL DEFAULT gen_random_uuid(), ADD COLUMN flag boolean DEFAULT false;"#,
    "ALTER TABLE accounts DROP CONSTRAINT accounts_pkey, ADD PRIMARY KEY (code);",
    "ALTER TABLE accounts ADD CONSTRAINT accounts_code_region_key UNIQUE (code, region), ADD COLUMN nickname text;",
    r#"ALTER TABLE "Sch"."Mixed" ADD UNIQUE ("Code");"#,
    "ALTER TABLE events ADD PRIMARY KEY (id);",
    "ALTER TABLE orders ADD CONSTRAINT orders_total_check CHECK (total >= 0), ADD COLUMN note text;",
    "ALTER TABLE orders ADD CHECK (total >= 0), ADD CHECK (total < 1000000), ADD CHECK (total >= 0 OR user_id IS NULL), ADD FOREIGN KEY (user_id) REFERENCES users (id);",
    r#"ALTER TABLE "Sch"."Mixed" ADD FOREIGN KEY ("UserId") REFERENCES users (id);"#,
    "ALTER TABLE orders ADD COLUMN buyer_id bigint, ADD CONSTRAINT orders_buyer_fkey FOREIGN KEY (buyer_id) REFERENCES users (id) ON DELETE SET NULL;",
    "ALTER TABLE users ALTER COLUMN name SET NOT NULL, ALTER COLUMN phone SET NOT NULL;",
    r#"ALTER TABLE "Sch"."Mixed" ALTER COLUMN "Code" SET NOT NULL;"#,
    "CREATE UNIQUE INDEX orders_user_id_id_idx ON orders (user_id, id) WHERE total > 0;",
    r#"CREATE INDEX ON "Sch"."Mixed" (lower("Code"));"#,
    "DROP INDEX orders_user_id_idx, users_name_idx;",
    r#"DROP INDEX IF EXISTS "Sch"."Mixed_code_idx";"#,
    "ALTER TABLE users ADD COLUMN n serial;",
    "ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;",
    "ALTER TABLE events ADD COLUMN seq2 integer GENERATED BY DEFAULT AS IDENTITY;",
    "REINDEX TABLE orders;",
    "ALTER TABLE orders ADD COLUMN buyer bigint REFERENCES users (id);",
    "ALTER TABLE users ADD COLUMN handle text UNIQUE;",
    "ALTER DOMAIN email ADD CHECK (VALUE LIKE '%@%');",
];

/// The triggering part of a rule's documented example: the lines between
/// `-- before` and `-- after` when the example has them, else nothing.
fn example_before(doc: &str) -> Option<String> {
    let example = doc.split("## Example").nth(1)?;
    let code = example.split("```sql").nth(1)?.split("```").next()?;
    let before = code.split("-- before").nth(1)?;
    let before = before.split("-- after").next()?;
    Some(before.trim().to_owned())
}

/// The data of every user column, values sorted per column, except columns
/// whose default is random (a volatile default gives each run other values):
/// a rewrite must also keep what the statement does to the rows (a `USING`
/// expression, the numbering of a serial column).
async fn contents(db: &TestDb) -> Vec<String> {
    let columns = db
        .connect()
        .await
        .query(
            "SELECT format('%I.%I', c.table_schema, c.table_name), quote_ident(c.column_name)
             FROM information_schema.columns c JOIN information_schema.tables t USING (table_schema, table_name)
             WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema') AND t.table_type = 'BASE TABLE'
               AND c.table_name NOT LIKE 'strata\\_%'
               AND coalesce(c.column_default, '') !~ 'random'
             ORDER BY 1, 2",
            &[],
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    for row in columns {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        let values = db
            .column(&format!(
                "SELECT coalesce(string_agg(coalesce(v, 'NULL'), ',' ORDER BY v), '') FROM (SELECT {column}::text v FROM ONLY {table}) s"
            ))
            .await;
        out.push(format!("{table}.{column}: {}", values.join("")));
    }
    out
}

/// Lints `case` after SETUP and returns its findings.
fn lint_case(case: &str) -> Vec<strata::lint::Finding> {
    let project = Project::new();
    project.write("1_setup.up.sql", SETUP);
    project.write("2_case.up.sql", case);
    let loaded = strata::source::load(&project.migrations(), None);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let report: HashSet<usize> = [1].into();
    strata::lint::lint_migrations(
        &loaded.migrations,
        &report,
        &strata::lint::LintOptions::default(),
    )
    .unwrap()
    .findings
}

/// A `<words in angle brackets>` placeholder, which a rewrite must not
/// have (SQL operators such as `a < b` or `<>` are not one).
fn placeholder(sql: &str) -> Option<String> {
    let mut rest = sql;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        if let Some(end) = after.find('>') {
            let inner = &after[..end];
            if inner.starts_with(|c: char| c.is_ascii_alphabetic())
                && inner
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _-.…".contains(c))
            {
                return Some(format!("<{inner}>"));
            }
        }
        rest = after;
    }
    None
}

/// `case` with the statement at `line` replaced by `fix`.
fn splice(case: &str, line: usize, fix: &str) -> String {
    let statements = strata::sql::split(case, &[]).unwrap();
    let mut out = String::new();
    for s in &statements {
        if s.line == line {
            out.push_str(fix);
        } else {
            out.push_str(&s.sql);
            out.push(';');
        }
        out.push('\n');
    }
    out
}

/// A database with SETUP applied, copied for each run (`CREATE DATABASE …
/// TEMPLATE`), and one project directory for every run, so the rewrite
/// rate Strata measures once per server stays cached.
struct Runs {
    template: TestDb,
    project: Project,
    count: usize,
}

impl Runs {
    async fn new() -> Runs {
        let template = TestDb::new().await;
        let project = Project::new();
        project.config("block_on = \"never\"\n");
        project.write("1_setup.up.sql", SETUP);
        let out = project.run_async(&template, &["up"]).await;
        assert!(out.status.success(), "{}", text(&out));
        Runs {
            template,
            project,
            count: 0,
        }
    }

    /// Applies `sql` with `strata up` to a fresh copy of the template;
    /// returns the database, or strata's output when it fails.
    async fn apply(&mut self, sql: &str) -> Result<TestDb, String> {
        self.count += 1;
        let name = format!("{}_{}", self.template.name, self.count);
        let admin = strata::Target::parse(&crate::support::cluster().conninfo("postgres"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        admin
            .batch(&format!(
                "CREATE DATABASE {name} TEMPLATE {}",
                self.template.name
            ))
            .await
            .unwrap();
        let db = TestDb {
            url: crate::support::cluster().conninfo(&name),
            name,
        };
        self.project.write("2_change.up.sql", sql);
        let out = self.project.run_async(&db, &["up"]).await;
        if out.status.success() {
            Ok(db)
        } else {
            Err(text(&out))
        }
    }
}

/// Every finding with a rewrite, over every rule's documented example and
/// the hard cases: the original statement and the rewrite each run in a
/// fresh database after the same setup, the rewrite succeeds, and both end
/// in the same catalog. Rules come from the registry, so a rule that gains
/// a rewrite is covered by its example; a rule whose rewrite fires on a
/// hard case but not on its own example fails the test.
#[tokio::test]
async fn every_rewrite_runs_and_ends_in_the_original_catalog() {
    let mut cases: Vec<(String, String)> = Vec::new();
    for rule in strata::lint::rules::RULES {
        let meta = rule.meta();
        if let Some(before) = example_before(meta.doc) {
            cases.push((format!("example of {}", meta.id), before));
        }
    }
    cases.extend(HARD.iter().map(|h| ("hard case".to_owned(), h.to_string())));
    let mut runs = Runs::new().await;
    let mut failures = Vec::new();
    let mut rewritten_rules: HashSet<&str> = HashSet::new();
    let mut example_rewrites: HashSet<String> = HashSet::new();
    let mut checked = 0;
    for (origin, case) in &cases {
        let findings = lint_case(case);
        let rewrites: Vec<_> = findings.iter().filter(|f| f.rewrite).collect();
        if rewrites.is_empty() {
            continue;
        }
        let original = match runs.apply(case).await {
            Ok(db) => (db.catalog().await, contents(&db).await),
            Err(out) => {
                failures.push(format!("{origin}: the original fails:\n{case}\n{out}"));
                continue;
            }
        };
        for f in rewrites {
            rewritten_rules.insert(f.rule);
            if origin == &format!("example of {}", f.rule) {
                example_rewrites.insert(f.rule.to_owned());
            }
            checked += 1;
            let fix = f.fix.as_deref().unwrap_or_default();
            let what = format!("{} on {origin}:\n{case}\nrewrite:\n{fix}", f.rule);
            if let Some(p) = placeholder(fix) {
                failures.push(format!("{what}\nhas a placeholder: {p}"));
                continue;
            }
            let spliced = splice(case, f.line, fix);
            match runs.apply(&spliced).await {
                Err(out) => failures.push(format!("{what}\nfails:\n{out}")),
                Ok(db) => {
                    let got = db.catalog().await;
                    let data = contents(&db).await;
                    let (original, original_data) = (&original.0, &original.1);
                    if &data != original_data {
                        let differ: Vec<_> = data
                            .iter()
                            .filter(|l| !original_data.contains(l))
                            .map(|l| l.chars().take(200).collect::<String>())
                            .collect();
                        failures.push(format!("{what}\nleaves other data: {differ:#?}"));
                    }
                    if &got != original {
                        let missing: Vec<_> =
                            original.iter().filter(|l| !got.contains(l)).collect();
                        let extra: Vec<_> = got.iter().filter(|l| !original.contains(l)).collect();
                        failures.push(format!(
                            "{what}\nends in another catalog:\n  original only: {missing:#?}\n  rewrite only: {extra:#?}"
                        ));
                    }
                }
            }
        }
    }
    for rule in &rewritten_rules {
        if !example_rewrites.contains(*rule) {
            failures.push(format!(
                "{rule} offers a rewrite but its documented example (`-- before` … `-- after`) does not raise one"
            ));
        }
    }
    // The rules with rewrites today; more may come (from the registry),
    // none may silently drop out.
    for rule in [
        "ban-add-serial-or-identity-column",
        "ban-column-type-change",
        "ban-domain-constraint",
        "ban-set-not-null",
        "ban-volatile-default",
        "require-concurrent-detach-partition",
        "require-concurrent-index-creation",
        "require-concurrent-index-deletion",
        "require-concurrent-reindex",
        "require-not-valid-constraint",
        "require-unique-index-for-constraint",
    ] {
        assert!(
            rewritten_rules.contains(rule),
            "no rewrite of {rule} was checked"
        );
    }
    let mut covered: Vec<_> = rewritten_rules.iter().collect();
    covered.sort();
    eprintln!(
        "{checked} rewrites checked, of {} rules: {covered:?}",
        covered.len()
    );
    assert!(checked >= 20, "only {checked} rewrites were checked");
    assert!(
        failures.is_empty(),
        "{} failure(s):\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
