//! The typed templates of `strata new --type`: a commented forward and
//! reverse script for the changes that most often hurt a busy database when
//! written naively.
//!
//! A template is layout-neutral ([`Template`]: pieces of SQL and comments,
//! and whether it must run outside a transaction); `create` renders it in
//! the directory's layout. Every template uses the same placeholder names
//! (`my_table`, `my_column`), so templates generated one after another in
//! the order table, column, index, data, function, trigger apply as they
//! are; a user replaces the names with real ones.

/// What kind of change a template writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A new table (down drops it).
    Table,
    /// A nullable column on an existing table (down drops it).
    Column,
    /// An index built and dropped concurrently, outside a transaction.
    Index,
    /// A batched backfill that commits per batch and reports progress.
    Data,
    /// A function (down drops it).
    Function,
    /// A trigger with its trigger function (down drops both).
    Trigger,
}

impl Kind {
    /// Every kind, in the order the CLI lists them.
    pub const ALL: [Kind; 6] = [
        Kind::Table,
        Kind::Column,
        Kind::Index,
        Kind::Data,
        Kind::Function,
        Kind::Trigger,
    ];

    /// The name used on the command line (`--type index`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Table => "table",
            Kind::Column => "column",
            Kind::Index => "index",
            Kind::Data => "data",
            Kind::Function => "function",
            Kind::Trigger => "trigger",
        }
    }

    /// Parses a name as given on the command line.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// One piece of a script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Comment lines (without the `-- ` prefix; an empty line is a blank).
    Comment(&'static str),
    /// One SQL statement, terminated by its `;`.
    Sql(&'static str),
    /// One SQL statement with a body of its own statements (a `DO` block,
    /// a function): goose must send it whole (`StatementBegin/End`).
    Body(&'static str),
}

/// A layout-neutral template.
#[derive(Debug, Clone)]
pub struct Template {
    /// The template must run outside a transaction.
    pub no_transaction: bool,
    /// The guidance under the description, forward script.
    pub up: Vec<Piece>,
    /// The reverse script.
    pub down: Vec<Piece>,
}

/// The template of `kind`.
pub fn template(kind: Kind) -> Template {
    use Piece::{Body, Comment, Sql};
    match kind {
        Kind::Table => Template {
            no_transaction: false,
            up: vec![
                Comment(
                    "Template `table`: replace my_table and the columns. A new table is\n\
                     instant and blocks nobody. Prefer bigint identity keys, text and\n\
                     timestamptz; index the columns of foreign keys.",
                ),
                Sql("CREATE TABLE my_table (\n    \
                     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n    \
                     name text NOT NULL,\n    \
                     created_at timestamptz NOT NULL DEFAULT now(),\n    \
                     updated_at timestamptz NOT NULL DEFAULT now()\n);"),
            ],
            down: vec![
                Comment("Drops the table and every row in it."),
                Sql("DROP TABLE my_table;"),
            ],
        },
        Kind::Column => Template {
            no_transaction: false,
            up: vec![
                Comment(
                    "Template `column`: replace my_table, my_column and the type. A nullable\n\
                     column without a default (or with a constant one) changes only the\n\
                     catalog: no rewrite, a lock held for an instant. Fill existing rows\n\
                     with a separate `--type data` migration, and add NOT NULL later through\n\
                     a CHECK (my_column IS NOT NULL) NOT VALID constraint and VALIDATE.",
                ),
                Sql("ALTER TABLE my_table ADD COLUMN my_column text;"),
            ],
            down: vec![
                Comment("Drops the column and its values."),
                Sql("ALTER TABLE my_table DROP COLUMN my_column;"),
            ],
        },
        Kind::Index => Template {
            no_transaction: true,
            up: vec![
                Comment(
                    "Template `index`: replace my_table and my_column. CONCURRENTLY builds the\n\
                     index without blocking writes; it cannot run inside a transaction, so\n\
                     this file runs outside one (keep it to this one statement). A failed\n\
                     build leaves an INVALID index, which Strata drops and rebuilds.",
                ),
                Sql("CREATE INDEX CONCURRENTLY my_table_my_column_idx ON my_table (my_column);"),
            ],
            down: vec![
                Comment("Drops the index without blocking reads or writes."),
                Sql("DROP INDEX CONCURRENTLY IF EXISTS my_table_my_column_idx;"),
            ],
        },
        Kind::Data => Template {
            no_transaction: true,
            up: vec![
                Comment(
                    "Template `data`: a batched backfill. Replace my_table, my_column and the\n\
                     new value. Each batch of batch_size rows (walked in id order) commits on\n\
                     its own, so row locks last one batch and the application keeps writing;\n\
                     a NOTICE reports the rows done after each batch. The file runs outside a\n\
                     transaction (COMMIT inside DO needs that). Running it again continues:\n\
                     rows already filled are skipped.",
                ),
                Body("DO $$\n\
                      DECLARE\n    \
                      batch_size constant integer := 1000;\n    \
                      last_id bigint := 0;\n    \
                      batch_end bigint;\n    \
                      changed integer;\n    \
                      done bigint := 0;\n\
                      BEGIN\n    \
                      LOOP\n        \
                      SELECT max(id) INTO batch_end\n          \
                      FROM (SELECT id FROM my_table WHERE id > last_id ORDER BY id LIMIT batch_size) AS batch;\n        \
                      EXIT WHEN batch_end IS NULL;\n        \
                      UPDATE my_table\n           \
                      SET my_column = 'new value'  -- the new value, e.g. an expression of other columns\n         \
                      WHERE id > last_id AND id <= batch_end\n           \
                      AND my_column IS NULL;\n        \
                      GET DIAGNOSTICS changed = ROW_COUNT;\n        \
                      done := done + changed;\n        \
                      last_id := batch_end;\n        \
                      COMMIT;\n        \
                      RAISE NOTICE 'my_table.my_column: % rows backfilled (up to id %)', done, last_id;\n    \
                      END LOOP;\n\
                      END\n\
                      $$;"),
            ],
            down: vec![
                Comment(
                    "Undoes the backfill in batches by setting the column back to NULL. If\n\
                     the values existed before the backfill, write here how to restore them,\n\
                     or keep the down a no-op (`SELECT 1;`).",
                ),
                Body("DO $$\n\
                      DECLARE\n    \
                      batch_size constant integer := 1000;\n    \
                      last_id bigint := 0;\n    \
                      batch_end bigint;\n    \
                      changed integer;\n    \
                      done bigint := 0;\n\
                      BEGIN\n    \
                      LOOP\n        \
                      SELECT max(id) INTO batch_end\n          \
                      FROM (SELECT id FROM my_table WHERE id > last_id ORDER BY id LIMIT batch_size) AS batch;\n        \
                      EXIT WHEN batch_end IS NULL;\n        \
                      UPDATE my_table\n           \
                      SET my_column = NULL\n         \
                      WHERE id > last_id AND id <= batch_end\n           \
                      AND my_column IS NOT NULL;\n        \
                      GET DIAGNOSTICS changed = ROW_COUNT;\n        \
                      done := done + changed;\n        \
                      last_id := batch_end;\n        \
                      COMMIT;\n        \
                      RAISE NOTICE 'my_table.my_column: % rows reset (up to id %)', done, last_id;\n    \
                      END LOOP;\n\
                      END\n\
                      $$;"),
            ],
        },
        Kind::Function => Template {
            no_transaction: false,
            up: vec![
                Comment(
                    "Template `function`: replace my_function, its arguments, result and body.\n\
                     CREATE (not CREATE OR REPLACE), so that an existing function of the same\n\
                     name is never overwritten and then dropped by the down. Mark it\n\
                     IMMUTABLE or STABLE when it is, so the planner can use it in indexes.",
                ),
                Body("CREATE FUNCTION my_function(value text)\n\
                      RETURNS text\n\
                      LANGUAGE plpgsql\n\
                      IMMUTABLE\n\
                      AS $$\n\
                      BEGIN\n    \
                      RETURN lower(trim(value));\n\
                      END;\n\
                      $$;"),
            ],
            down: vec![
                Comment("Drops the function (name and argument types, as overloads share names)."),
                Sql("DROP FUNCTION my_function(text);"),
            ],
        },
        Kind::Trigger => Template {
            no_transaction: false,
            up: vec![
                Comment(
                    "Template `trigger`: keeps my_table.updated_at current on every UPDATE;\n\
                     replace my_table and the function body. The trigger runs on every write\n\
                     of the table, so keep its function cheap.",
                ),
                Body("CREATE FUNCTION my_table_set_updated_at()\n\
                      RETURNS trigger\n\
                      LANGUAGE plpgsql\n\
                      AS $$\n\
                      BEGIN\n    \
                      NEW.updated_at := now();\n    \
                      RETURN NEW;\n\
                      END;\n\
                      $$;"),
                Comment(""),
                Comment(
                    "strata:allow ban-create-trigger-on-existing-table reason: the lock is held for an instant, and Strata takes it under a short lock_timeout with retries, so writes never queue behind it",
                ),
                Sql("CREATE TRIGGER my_table_set_updated_at\n    \
                     BEFORE UPDATE ON my_table\n    \
                     FOR EACH ROW\n    \
                     EXECUTE FUNCTION my_table_set_updated_at();"),
            ],
            down: vec![
                Comment("Drops the trigger, then its function."),
                Sql("DROP TRIGGER my_table_set_updated_at ON my_table;"),
                Sql("DROP FUNCTION my_table_set_updated_at();"),
            ],
        },
    }
}

/// Renders pieces as SQL text. With `goose`, statements with bodies are
/// wrapped in `StatementBegin`/`StatementEnd`, because goose splits at
/// every `;` that ends a line.
pub fn render(pieces: &[Piece], goose: bool) -> String {
    let mut out = String::new();
    for (i, piece) in pieces.iter().enumerate() {
        let after_comment = i > 0 && matches!(pieces[i - 1], Piece::Comment(_));
        match piece {
            Piece::Comment(text) => {
                if i > 0 && !after_comment && !text.is_empty() {
                    out.push('\n');
                }
                if text.is_empty() {
                    out.push('\n');
                    continue;
                }
                for line in text.lines() {
                    out.push_str("-- ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Piece::Sql(sql) => {
                if i > 0 && !after_comment {
                    out.push('\n');
                }
                out.push_str(sql);
                out.push('\n');
            }
            Piece::Body(sql) => {
                if i > 0 && !after_comment {
                    out.push('\n');
                }
                if goose {
                    out.push_str("-- +goose StatementBegin\n");
                }
                out.push_str(sql);
                out.push('\n');
                if goose {
                    out.push_str("-- +goose StatementEnd\n");
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(Kind::from_name("view"), None);
    }

    #[test]
    fn goose_wraps_bodies_only() {
        let text = render(&template(Kind::Trigger).up, true);
        assert_eq!(text.matches("-- +goose StatementBegin").count(), 1);
        let plain = render(&template(Kind::Trigger).up, false);
        assert!(!plain.contains("+goose"));
        // Every statement of every template parses.
        for kind in Kind::ALL {
            let t = template(kind);
            for pieces in [&t.up, &t.down] {
                let sql = render(pieces, false);
                assert!(
                    crate::sql::split(&sql, &[]).is_ok(),
                    "{}: {sql}",
                    kind.name()
                );
            }
        }
    }
}
