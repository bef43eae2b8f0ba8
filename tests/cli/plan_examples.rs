//! The design documents' ten examples (examples/plans/), each one plan run
//! end to end as a team would: `up` stops at the first deploy gate, the
//! "old" and the "new" app write while the plan is in progress, `--continue`
//! passes every gate, and the end catalog and data equal those of a twin
//! database where the example's naive SQL ran directly. Then `rollback`
//! gives back the base catalog (from the backup when a phase dropped data),
//! and `lint` finds nothing MEDIUM or HIGH in the example.

use std::path::Path;

use crate::support::{expect_code, Project, TestDb};

/// One example: its directory under examples/plans, its plan version, and
/// the texts of its deploy gates, in order.
struct Example {
    dir: &'static str,
    version: &'static str,
    name: &'static str,
    gates: &'static [&'static str],
}

/// A running example: the database the plan runs on, and a twin holding
/// the base schema only (the naive SQL is applied to it later).
struct Run {
    ex: Example,
    db: TestDb,
    project: Project,
    twin: TestDb,
    base: Vec<String>,
}

fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
}

fn example_dir(dir: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/plans")
        .join(dir)
        .join("migrations")
}

impl Run {
    /// Copies the example into a project, checks lint, builds the twin
    /// from the base migration, and runs `up`: it must stop at the first
    /// gate with exit 0 and the waiting line.
    async fn start(ex: Example) -> Run {
        let project = Project::new();
        copy_dir(&example_dir(ex.dir), &project.migrations());
        let db = TestDb::new().await;

        // The twin: the base migration alone.
        let twin = TestDb::new().await;
        let base_project = Project::new();
        for entry in std::fs::read_dir(example_dir(ex.dir)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name().to_string_lossy().ends_with(".up.sql") {
                std::fs::copy(
                    entry.path(),
                    base_project.migrations().join(entry.file_name()),
                )
                .unwrap();
            }
        }
        expect_code(&base_project.run(&twin, &["up"]), 0);
        let base = twin.catalog().await;

        // Nothing MEDIUM or HIGH in the base migration or the plan.
        let lint = expect_code(&project.run(&db, &["lint", "--fail-on", "medium"]), 0);
        assert!(
            !lint
                .lines()
                .any(|l| l.starts_with("HIGH") || l.starts_with("MEDIUM")),
            "{lint}"
        );

        let out = expect_code(&project.run(&db, &["up"]), 0);
        let n = ex.gates.len() + 1;
        let want = format!(
            "{}_{}: phase 1 of {n} done; waiting for: deploy: {}",
            ex.version, ex.name, ex.gates[0]
        );
        assert!(out.contains(&want), "wanted {want:?} in:\n{out}");
        Run {
            ex,
            db,
            project,
            twin,
            base,
        }
    }

    /// Passes the next gate (`k` counts from 1): exit 0, and either the
    /// next waiting line or, after the last gate, the plan applied.
    fn pass(&self, k: usize) {
        let out = expect_code(
            &self
                .project
                .run(&self.db, &["up", "--continue", self.ex.version]),
            0,
        );
        assert!(
            out.contains(&format!("gate after phase {k} passed")),
            "{out}"
        );
        let n = self.ex.gates.len() + 1;
        if k < self.ex.gates.len() {
            let want = format!(
                "phase {} of {n} done; waiting for: deploy: {}",
                k + 1,
                self.ex.gates[k]
            );
            assert!(out.contains(&want), "wanted {want:?} in:\n{out}");
        }
    }

    /// Runs the app's statements on the plan's database.
    async fn app(&self, sql: &str) {
        self.db.connect().await.batch(sql).await.unwrap();
    }

    async fn one(&self, sql: &str) -> String {
        self.db.column(sql).await.remove(0)
    }

    /// After the last gate: the plan is applied, and the catalog equals the
    /// twin's after `naive`. `data` (a query returning one text) must give
    /// the same result on both: the base rows came out as the naive change
    /// makes them.
    async fn finish(&self, naive: &str, data: &str) {
        let history = self.db.history().await;
        assert_eq!(
            history.last(),
            Some(&(self.ex.version.to_owned(), "applied".to_owned())),
            "{history:?}"
        );
        self.twin.connect().await.batch(naive).await.unwrap();
        assert_eq!(self.db.catalog().await, self.twin.catalog().await);
        assert_eq!(
            self.db.column(data).await,
            self.twin.column(data).await,
            "{data}"
        );
    }

    /// After the last gate, without a twin: the plan is applied.
    async fn applied(&self) {
        let history = self.db.history().await;
        assert_eq!(
            history.last(),
            Some(&(self.ex.version.to_owned(), "applied".to_owned())),
            "{history:?}"
        );
    }

    /// `rollback V` gives back the base catalog.
    async fn rolls_back_to_base(&self) {
        let out = expect_code(
            &self.project.run(&self.db, &["rollback", self.ex.version]),
            0,
        );
        assert_eq!(self.db.catalog().await, self.base, "{out}");
        assert_eq!(self.db.history().await.len(), 1);
    }

    /// `rollback V` is refused with the reason (a phase dropped data);
    /// with the backup taken before that phase, it gives back the base
    /// catalog.
    async fn rolls_back_from_backup(&self, dropped: &str) {
        self.refuses_rollback(dropped).await;
        self.restores_backup().await;
    }

    /// `rollback V` is refused, says why (`dropped`) and names the backup.
    async fn refuses_rollback(&self, dropped: &str) {
        let before = self.db.catalog().await;
        let out = expect_code(
            &self.project.run(&self.db, &["rollback", self.ex.version]),
            2,
        );
        assert!(out.contains(dropped), "wanted {dropped:?} in:\n{out}");
        assert!(out.contains("--from-backup"), "{out}");
        assert_eq!(self.db.catalog().await, before);
    }

    /// `rollback V --from-backup` with the backup taken before the phase
    /// that dropped data gives back the base catalog.
    async fn restores_backup(&self) {
        let backup = self
            .db
            .column("SELECT cursor->'backups'->0->>1 FROM strata_progress WHERE kind = 'plan'")
            .await;
        let out = expect_code(
            &self.project.run(
                &self.db,
                &["rollback", self.ex.version, "--from-backup", &backup[0]],
            ),
            0,
        );
        assert_eq!(self.db.catalog().await, self.base, "{out}");
        assert_eq!(self.db.history().await.len(), 1);
    }
}

#[tokio::test]
async fn example_01_email_verification() {
    let run = Run::start(Example {
        dir: "01_email_verification",
        version: "20260102000000",
        name: "email_verified",
        gates: &["app v1.1, which writes email_verified (false at sign-up, true when the link is clicked)"],
    })
    .await;
    // The old app signs up a user without the column; app v1.1 sets it.
    run.app("INSERT INTO users (email) VALUES ('old-app@example.com')")
        .await;
    run.app(
        "INSERT INTO users (email, email_verified) VALUES ('new-app@example.com', true);
         UPDATE users SET email_verified = true WHERE id = 1",
    )
    .await;
    run.pass(1);
    assert_eq!(
        run.one("SELECT string_agg(email, ',' ORDER BY id) FROM users WHERE email_verified")
            .await,
        "user1@example.com,new-app@example.com"
    );
    assert_eq!(
        run.one("SELECT count(*)::text FROM users WHERE NOT email_verified")
            .await,
        "300"
    );
    run.finish(
        "ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false",
        "SELECT string_agg(id || ':' || email_verified, ',' ORDER BY id) FROM users WHERE id BETWEEN 2 AND 300",
    )
    .await;
    run.rolls_back_to_base().await;
}

#[tokio::test]
async fn example_02_rename_column() {
    let run = Run::start(Example {
        dir: "02_rename_column",
        version: "20260102000000",
        name: "rename_name_to_full_name",
        gates: &[
            "app v1.2, which reads full_name (and may still write name: the trigger copies it)",
            "app v2.0, which only uses full_name",
        ],
    })
    .await;
    // The old app writes name only; app v1.2 writes full_name only.
    run.app(
        "INSERT INTO users (id, name, email) VALUES (1001, 'Old App', 'old@example.com');
         UPDATE users SET name = 'Renamed By Old' WHERE id = 1",
    )
    .await;
    run.app(
        "INSERT INTO users (id, full_name, email) VALUES (1002, 'New App', 'new@example.com');
         UPDATE users SET full_name = 'Renamed By New' WHERE id = 2",
    )
    .await;
    run.pass(1);
    run.app("UPDATE users SET full_name = 'Late Write' WHERE id = 3")
        .await;
    run.pass(2);
    assert_eq!(
        run.one("SELECT string_agg(id || '=' || full_name, ',' ORDER BY id) FROM users WHERE id IN (1, 2, 3, 1001, 1002)")
            .await,
        "1=Renamed By Old,2=Renamed By New,3=Late Write,1001=Old App,1002=New App"
    );
    run.finish(
        "ALTER TABLE users RENAME COLUMN name TO full_name",
        "SELECT md5(string_agg(id || full_name, ',' ORDER BY id)) FROM users WHERE id BETWEEN 4 AND 300",
    )
    .await;
    run.rolls_back_to_base().await;
    assert_eq!(
        run.one("SELECT name FROM users WHERE id = 1").await,
        "Renamed By Old"
    );
}

/// The example's `using` expression, for the naive twin.
const AGE_USING: &str = "CASE WHEN trim(age) ~ '^[0-9]+$' THEN trim(age)::integer END";

#[tokio::test]
async fn example_03_age_to_integer() {
    example_03(false).await;
}

/// `--from-backup` after the contract: pg_restore of the users backup
/// recreates the expand step's sync trigger, whose function the contract
/// dropped and the table backup does not hold, and fails.
#[tokio::test]
async fn example_03_rolls_back_from_backup() {
    example_03(true).await;
}

async fn example_03(restore: bool) {
    let run = Run::start(Example {
        dir: "03_age_to_integer",
        version: "20260102000000",
        name: "age_to_integer",
        gates: &["app v1.1, which reads age as a number and writes only digits"],
    })
    .await;
    // The old app writes text ages, padded and not; app v1.1 digits.
    run.app(
        "INSERT INTO users (id, email, age) VALUES (1001, 'old@example.com', ' 33 ');
         UPDATE users SET age = 'n/a' WHERE id = 1",
    )
    .await;
    run.app(
        "INSERT INTO users (id, email, age) VALUES (1002, 'new@example.com', '41');
         UPDATE users SET age = '52' WHERE id = 2",
    )
    .await;
    run.pass(1);
    assert_eq!(
        run.one("SELECT string_agg(id || '=' || coalesce(age::text, 'null'), ',' ORDER BY id) FROM users WHERE id IN (1, 2, 1001, 1002)")
            .await,
        "1=null,2=52,1001=33,1002=41"
    );
    run.finish(
        &format!("ALTER TABLE users ALTER COLUMN age TYPE integer USING {AGE_USING}"),
        "SELECT md5(string_agg(id || ':' || coalesce(age::text, 'null'), ',' ORDER BY id)) FROM users WHERE id BETWEEN 3 AND 300",
    )
    .await;
    // The contract step dropped the text column: only its backup brings it back.
    run.refuses_rollback("dropped the old age values").await;
    if restore {
        run.restores_backup().await;
    }
}

#[tokio::test]
async fn example_04_composite_index() {
    let run = Run::start(Example {
        dir: "04_composite_index",
        version: "20260102000000",
        name: "orders_user_created_index",
        gates: &["app v1.1, whose order history (WHERE user_id = $1 ORDER BY created_at DESC) uses the new index"],
    })
    .await;
    run.app("INSERT INTO orders (user_id, total) VALUES (7, 10)")
        .await;
    run.pass(1);
    run.app("INSERT INTO orders (user_id, total) VALUES (7, 20)")
        .await;
    assert_eq!(
        run.one("SELECT count(*)::text FROM orders WHERE user_id = 7")
            .await,
        "12"
    );
    run.finish(
        "CREATE INDEX idx_orders_user_created ON orders (user_id, created_at);
         DROP INDEX orders_user_id_idx;",
        "SELECT count(*)::text FROM orders WHERE id <= 400",
    )
    .await;
    run.rolls_back_to_base().await;
}

/// The example's expressions, for the naive twin.
const FIRST: &str = "CASE WHEN position(' ' IN trim(full_name)) > 0 THEN trim(split_part(trim(full_name), ' ', 1)) ELSE trim(full_name) END";
const LAST: &str = "CASE WHEN position(' ' IN trim(full_name)) > 0 THEN trim(substring(trim(full_name) FROM position(' ' IN trim(full_name)))) ELSE '' END";

#[tokio::test]
async fn example_05_split_full_name() {
    let run = Run::start(Example {
        dir: "05_split_full_name",
        version: "20260102000000",
        name: "split_full_name",
        gates: &[
            "app v2.0, which writes first_name and last_name itself (and still writes full_name)",
            "app v2.1, which no longer reads full_name (it writes it until the column is gone)",
        ],
    })
    .await;
    // The old app writes full_name only: the trigger splits it.
    run.app(
        "INSERT INTO users (id, full_name, email) VALUES (1001, '  Old   App ', 'old@example.com');
         UPDATE users SET full_name = 'Ada Lovelace' WHERE id = 1",
    )
    .await;
    assert_eq!(
        run.one("SELECT string_agg(id || '=' || first_name || '|' || last_name, ',' ORDER BY id) FROM users WHERE id IN (1, 1001)")
            .await,
        "1=Ada|Lovelace,1001=Old|App"
    );
    run.pass(1);
    // App v2.0 writes the parts itself.
    run.app(
        "INSERT INTO users (id, full_name, first_name, last_name, email) VALUES (1002, 'New App', 'New', 'App', 'new@example.com')",
    )
    .await;
    run.pass(2);
    assert_eq!(
        run.one("SELECT string_agg(id || '=' || first_name || '|' || last_name, ',' ORDER BY id) FROM users WHERE id IN (1, 40, 60, 1001, 1002)")
            .await,
        "1=Ada|Lovelace,40=Plato|,60=Grace|Hopper,1001=Old|App,1002=New|App"
    );
    run.finish(
        &format!(
            "ALTER TABLE users ADD COLUMN first_name varchar(100), ADD COLUMN last_name varchar(100);
             UPDATE users SET first_name = {FIRST}, last_name = {LAST};
             ALTER TABLE users DROP COLUMN full_name;"
        ),
        "SELECT md5(string_agg(id || ':' || first_name || '|' || last_name, ',' ORDER BY id)) FROM users WHERE id BETWEEN 2 AND 300",
    )
    .await;
    run.rolls_back_from_backup("users.full_name").await;
}

#[tokio::test]
async fn example_06_orders_foreign_key() {
    let run = Run::start(Example {
        dir: "06_orders_foreign_key",
        version: "20260102000000",
        name: "orders_user_fk",
        gates: &["app v1.1, which checks that the user exists before writing an order"],
    })
    .await;
    // The old app still writes an order for a user that is gone.
    run.app("INSERT INTO orders (id, user_id, total) VALUES (1001, 99999, 1)")
        .await;
    run.app("INSERT INTO orders (id, user_id, total) VALUES (1002, 2, 1)")
        .await;
    run.pass(1);
    assert_eq!(
        run.one("SELECT count(*)::text FROM orphaned_orders").await,
        "13"
    );
    assert_eq!(
        run.one("SELECT (max(id) = 1001)::text FROM orphaned_orders")
            .await,
        "true"
    );
    assert_eq!(run.one("SELECT count(*)::text FROM orders").await, "289");
    // From now on an orphan cannot be written.
    let err = run
        .db
        .connect()
        .await
        .batch("INSERT INTO orders (user_id, total) VALUES (99999, 1)")
        .await;
    assert!(err.is_err());
    // The side table is created `LIKE orders` (columns and NOT NULL only),
    // so the twin creates it the same way.
    run.finish(
        "CREATE TABLE orphaned_orders (LIKE orders);
         WITH moved AS (DELETE FROM orders o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id) RETURNING o.*)
           INSERT INTO orphaned_orders SELECT * FROM moved;
         CREATE INDEX idx_orders_user_id ON orders (user_id);
         ALTER TABLE orders ADD CONSTRAINT fk_orders_user_id FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE;",
        "SELECT md5(string_agg(id::text, ',' ORDER BY id)) FROM orphaned_orders WHERE id <= 300",
    )
    .await;
    // The reverse drops the constraint and the index; the moved rows stay
    // in orphaned_orders (move them back by hand if wanted), so the catalog
    // is the base one plus the side table.
    let out = expect_code(&run.project.run(&run.db, &["rollback", run.ex.version]), 0);
    let now: Vec<String> = run
        .db
        .catalog()
        .await
        .into_iter()
        .filter(|l| !l.contains("orphaned_orders"))
        .collect();
    assert_eq!(now, run.base, "{out}");
}

#[tokio::test]
async fn example_07_partition_orders() {
    let run = Run::start(Example {
        dir: "07_partition_orders",
        version: "20260102000000",
        name: "partition_orders",
        gates: &[
            "app v1.1, whose order queries filter on created_at so they prune partitions",
            "app v1.2, after a day on the partitioned table without incident",
        ],
    })
    .await;
    // Writes while the copy is in sync, and after the swap.
    run.app(
        "INSERT INTO orders (user_id, total, created_at) VALUES (1, 5, '2024-05-05 00:00+00');
         UPDATE orders SET total = 77 WHERE id = 1;
         DELETE FROM orders WHERE id = 2;",
    )
    .await;
    run.pass(1);
    assert_eq!(
        run.one("SELECT relkind::text FROM pg_class WHERE oid = 'orders'::regclass")
            .await,
        "p"
    );
    run.app(
        "INSERT INTO orders (user_id, total, created_at) VALUES (2, 6, '2025-06-01 00:00+00');
         UPDATE orders SET total = 88 WHERE id = 3;",
    )
    .await;
    run.pass(2);
    run.applied().await;
    assert!(!run.db.has_table("public.orders_old").await);
    assert_eq!(
        run.one("SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'orders'::regclass")
            .await,
        "orders_default,orders_p2024_q1,orders_p2024_q2,orders_p2024_q3,orders_p2024_q4"
    );
    assert_eq!(
        run.one("SELECT count(*) || ' ' || sum(total) FROM orders").await,
        run.twin
            .column(
                "SELECT count(*) + 2 || ' ' || sum(CASE id WHEN 1 THEN 77 WHEN 3 THEN 88 ELSE total END) + 5 + 6 FROM orders WHERE id <> 2"
            )
            .await
            .remove(0)
    );
    assert_eq!(
        run.one("SELECT count(*)::text FROM orders_default").await,
        "55" // the 54 base rows of 2025 and the one written after the swap
    );
    // No naive twin: there is no one-statement form of partitioning an
    // existing table, and the documents' `LIKE … INCLUDING ALL` copy names
    // its constraints and indexes after the copy. The contract dropped
    // orders_old: only its backup brings the plain table back.
    run.rolls_back_from_backup("orders_old").await;
}

#[tokio::test]
async fn example_08_jsonb_preferences() {
    let run = Run::start(Example {
        dir: "08_jsonb_preferences",
        version: "20260102000000",
        name: "user_preferences",
        gates: &["app v1.1, which reads and writes users.preferences"],
    })
    .await;
    // The old app signs up a user without preferences ('{}' by default);
    // app v1.1 changes a preference.
    run.app("INSERT INTO users (id, email) VALUES (1001, 'old@example.com')")
        .await;
    run.app(
        "UPDATE users SET preferences = jsonb_set(preferences, '{theme}', '\"dark\"') WHERE id = 1",
    )
    .await;
    run.pass(1);
    assert_eq!(
        run.one("SELECT string_agg(id || '=' || preferences::text, ' ' ORDER BY id) FROM users WHERE id IN (1, 2, 1001)")
            .await,
        r#"1={"theme": "dark", "language": "en", "email_notifications": true} 2={"theme": "light", "language": "en", "email_notifications": true} 1001={}"#
    );
    run.finish(
        "ALTER TABLE users ADD COLUMN preferences jsonb DEFAULT '{}'::jsonb;
         UPDATE users SET preferences = jsonb_build_object('email_notifications', true, 'theme', 'light', 'language', 'en');
         CREATE INDEX ON users USING gin (preferences);
         CREATE INDEX ON users ((preferences->>'theme'));",
        "SELECT md5(string_agg(id || preferences::text, ',' ORDER BY id)) FROM users WHERE id BETWEEN 2 AND 300",
    )
    .await;
    run.rolls_back_to_base().await;
}

#[tokio::test]
async fn example_09_soft_delete() {
    let run = Run::start(Example {
        dir: "09_soft_delete",
        version: "20260102000000",
        name: "soft_delete_users",
        gates: &["app v1.1, which sets deleted_at instead of deleting and reads users_active"],
    })
    .await;
    // The old app still deletes; app v1.1 sets deleted_at.
    run.app("DELETE FROM users WHERE id = 5").await;
    run.app("UPDATE users SET deleted_at = now() WHERE id = 6")
        .await;
    run.pass(1);
    assert_eq!(
        run.one("SELECT count(*) || ' ' || count(*) FILTER (WHERE id = 6) FROM users_active")
            .await,
        "298 0"
    );
    run.finish(
        "ALTER TABLE users ADD COLUMN deleted_at timestamptz;
         CREATE INDEX users_active_idx ON users (id) WHERE deleted_at IS NULL;
         CREATE VIEW users_active AS SELECT * FROM users WHERE deleted_at IS NULL;
         CREATE INDEX idx_users_active ON users (id, email) WHERE deleted_at IS NULL;",
        "SELECT count(*)::text FROM users WHERE deleted_at IS NULL AND id <> 5 AND id <> 6",
    )
    .await;
    run.rolls_back_to_base().await;
}

/// The order_items columns of example 10, as the naive twin writes them.
const NAIVE_10: &str = "
CREATE TABLE order_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, order_id bigint NOT NULL, ordinal bigint NOT NULL, product_id bigint, quantity integer, unit_price numeric(10,2), FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE, UNIQUE (order_id, ordinal));
INSERT INTO order_items (order_id, ordinal, product_id, quantity, unit_price)
  SELECT o.id, e.ord, (e.elem->>'product_id')::bigint, (e.elem->>'quantity')::integer, (e.elem->>'unit_price')::numeric(10,2)
  FROM orders o, jsonb_array_elements(o.items) WITH ORDINALITY e(elem, ord)
  WHERE jsonb_typeof(o.items) = 'array' ORDER BY o.id, e.ord;
CREATE INDEX ON order_items (product_id);
ALTER TABLE order_items ADD FOREIGN KEY (product_id) REFERENCES products (id);
CREATE TABLE orphaned_orders (LIKE orders);
WITH moved AS (DELETE FROM orders o WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id) RETURNING o.*)
  INSERT INTO orphaned_orders SELECT * FROM moved;
CREATE INDEX ON orders (user_id);
ALTER TABLE orders ADD FOREIGN KEY (user_id) REFERENCES users (id);
ALTER TABLE orders DROP COLUMN items;
";

#[tokio::test]
async fn example_10_ecommerce_normalize() {
    example_10(false).await;
}

/// `--from-backup` after the contract: order_items' foreign key into
/// orders is lifted around the restore and put back, and a line written
/// since the backup makes the restore refuse rather than orphan it.
#[tokio::test]
async fn example_10_rolls_back_from_backup() {
    example_10(true).await;
}

async fn example_10(restore: bool) {
    let run = Run::start(Example {
        dir: "10_ecommerce_normalize",
        version: "20260102000000",
        name: "normalize_orders",
        gates: &[
            "app v1.1, which reads order lines from order_items (and still writes orders.items)",
            "app v2.0, which writes order_items itself and no longer uses orders.items",
        ],
    })
    .await;
    // The old app writes orders.items: the trigger keeps order_items in step.
    run.app(
        r#"INSERT INTO orders (id, user_id, items) VALUES (1001, 1, '[{"product_id": 3, "quantity": 2, "unit_price": 3.99}]');
           UPDATE orders SET items = '[{"product_id": 5, "quantity": 1, "unit_price": 5.99}]' WHERE id = 1"#,
    )
    .await;
    assert_eq!(
        run.one("SELECT string_agg(order_id || ':' || product_id || 'x' || quantity, ',' ORDER BY order_id, ordinal) FROM order_items WHERE order_id IN (1, 1001)")
            .await,
        "1:5x1,1001:3x2"
    );
    run.pass(1);
    // Orders of deleted users went to orphaned_orders, their lines with them.
    assert_eq!(
        run.one("SELECT count(*)::text FROM orphaned_orders").await,
        "5"
    );
    run.app(
        r#"INSERT INTO orders (id, user_id, items) VALUES (1002, 2, '[{"product_id": 4, "quantity": 1, "unit_price": 4.99}]')"#,
    )
    .await;
    run.pass(2);
    // App v2.0 writes order_items itself.
    run.app(
        "INSERT INTO orders (id, user_id) VALUES (1003, 3);
         INSERT INTO order_items (order_id, ordinal, product_id, quantity, unit_price) VALUES (1003, 1, 6, 4, 6.99)",
    )
    .await;
    assert_eq!(
        run.one("SELECT string_agg(order_id || ':' || product_id || 'x' || quantity, ',' ORDER BY order_id, ordinal) FROM order_items WHERE order_id > 1000")
            .await,
        "1001:3x2,1002:4x1,1003:6x4"
    );
    run.finish(
        NAIVE_10,
        "SELECT md5(string_agg(order_id || ':' || ordinal || ':' || product_id || ':' || quantity || ':' || unit_price, ',' ORDER BY order_id, ordinal)) FROM order_items WHERE order_id BETWEEN 2 AND 200",
    )
    .await;
    run.refuses_rollback("orders.items was dropped").await;
    if restore {
        // Order 1003 and its line were written after the backup taken
        // before the contract: restoring orders would orphan the line, so
        // the restore refuses and changes nothing.
        let backup = run
            .db
            .column("SELECT cursor->'backups'->0->>1 FROM strata_progress WHERE kind = 'plan'")
            .await;
        let lines = "SELECT string_agg(order_id || ':' || ordinal, ',' ORDER BY order_id, ordinal) FROM order_items";
        let (catalog, before) = (run.db.catalog().await, run.one(lines).await);
        let out = expect_code(
            &run.project.run(
                &run.db,
                &["rollback", run.ex.version, "--from-backup", &backup[0]],
            ),
            2,
        );
        assert!(
            out.contains("would orphan them") && out.contains("(order_id)=(1003)"),
            "{out}"
        );
        assert_eq!(run.db.catalog().await, catalog);
        assert_eq!(run.one(lines).await, before);
        // With the newer rows moved away, it restores orders as they were
        // (items included) and reverses the earlier phases.
        run.app(
            "DELETE FROM order_items WHERE order_id = 1003; DELETE FROM orders WHERE id = 1003",
        )
        .await;
        run.restores_backup().await;
        assert_eq!(
            run.one("SELECT string_agg(id || '=' || items::text, ' ' ORDER BY id) FROM orders WHERE id IN (1, 1001, 1002, 1003)")
                .await,
            r#"1=[{"quantity": 1, "product_id": 5, "unit_price": 5.99}] 1001=[{"quantity": 2, "product_id": 3, "unit_price": 3.99}] 1002=[{"quantity": 1, "product_id": 4, "unit_price": 4.99}]"#
        );
    }
}
