//! `partition_table`: a busy table becomes range-partitioned without a long
//! lock, through a shadow table swapped in by rename.
//!
//! `expand`:
//! 1. One short transaction: the shadow `<table>_strata_new`, `PARTITION BY
//!    RANGE (key)` with the table's columns (types, NOT NULL, defaults,
//!    generated expressions), its constraints and indexes (under temporary
//!    names, renamed at the swap), one partition per `interval` from `from`
//!    to `to` (`<table>_p2024_01`, `_p2024_q1`, `_p2024`) and a DEFAULT
//!    partition; and a trigger on the table that applies every insert,
//!    update and delete to the shadow. The shadow is empty and unknown to
//!    the app, so its indexes are built in the transaction at no cost
//!    (CONCURRENTLY does not exist for partitioned tables anyway).
//! 2. The batched copy: `INSERT INTO shadow SELECT … FROM table … FOR SHARE
//!    ON CONFLICT (primary key) DO NOTHING`. The row lock orders each batch
//!    with the app's writes to a row: a write that came first was applied
//!    by the trigger and the batch, which sees its new version, skips it as
//!    a conflict; a write that comes after waits for the batch, then the
//!    trigger replaces what the batch wrote. The conflict target is the
//!    shadow's primary key, which is why a primary key is required.
//! 3. Validations: the row counts are equal (in one snapshot, which the
//!    trigger keeps consistent), and a sample of rows is identical.
//!
//! `swap` (one short transaction under `lock_timeout`): both tables locked,
//! the forward trigger dropped, the table renamed `<table>_old` and the
//! shadow `<table>`, indexes renamed so the new table has the old names,
//! sequences of `nextval` defaults re-owned by the new table, and a reverse
//! trigger installed that applies writes to the new table back onto
//! `<table>_old`. So the swap's reverse (the same renames backwards, and the
//! forward trigger again) loses no write made in between.
//!
//! `contract` (after a deploy gate): the reverse trigger and `<table>_old`
//! are dropped; only a backup brings the old table back.
//!
//! Refused at compile time, with the fix: a table without a primary key, a
//! primary key or unique constraint or index without the partition key (a
//! partitioned table can only enforce uniqueness within a partition),
//! identity columns, views or other tables' foreign keys that depend on the
//! table (they would follow the old table), and triggers of the app's own
//! (they would not move to the new table).

use strata_source::plan::Interval;

use super::super::{Action, CompileError, Compiled, Context, TableFacts};
use super::table_names::{base, column_list, facts, helper, index_shape, sibling, unknown_step};
use crate::sql::names;

/// What `partition_table` says.
pub(super) struct PartitionTable<'a> {
    pub table: &'a str,
    pub key: &'a str,
    pub interval: Interval,
    pub from: &'a str,
    pub to: &'a str,
}

const STEPS: &[&str] = &["expand", "swap", "contract"];
const OLD: &str = "strata_old";
/// The most partitions one operation creates: more is a typo in `from`,
/// `to` or `interval`.
const MAX_PARTITIONS: usize = 1000;

/// The names every step uses.
struct Names {
    /// `<table>_strata_new`, in the table's schema (bare, and as SQL).
    shadow_base: String,
    shadow: String,
    /// `<table>_old` (bare, and as SQL).
    old_base: String,
    old: String,
    forward_trigger: String,
    forward_function: String,
    reverse_trigger: String,
    reverse_function: String,
}

fn names_of(op: &PartitionTable<'_>, ctx: &Context<'_>) -> Names {
    let b = base(op.table);
    let shadow_base = clip_with(&b, "_strata_new");
    let old_base = clip_with(&b, "_old");
    let fwd = helper(ctx.version, &["partition", &b]);
    let rev = helper(ctx.version, &["unpartition", &b]);
    Names {
        shadow: sibling(op.table, &shadow_base),
        shadow_base,
        old: sibling(op.table, &old_base),
        old_base,
        forward_function: sibling(op.table, &fwd),
        forward_trigger: fwd,
        reverse_function: sibling(op.table, &rev),
        reverse_trigger: rev,
    }
}

pub(super) fn compile(
    op: &PartitionTable<'_>,
    ctx: &Context<'_>,
) -> Result<Compiled, CompileError> {
    let n = names_of(op, ctx);
    match ctx.step.unwrap_or("expand") {
        "expand" => {
            let facts = facts(ctx, "partition_table")?;
            let t = TableShape::of(op, facts)?;
            let partitions = partitions(op)?;
            let mut create = t.create_shadow(op, &n, &partitions);
            create.extend(t.shadow_indexes(ctx, &n));
            create.extend(t.sync(&n.forward_function, &n.forward_trigger, op.table, &n.shadow));
            let down = vec![Action::Transaction(vec![
                format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    names::quote_ident(&n.forward_trigger),
                    op.table
                ),
                format!("DROP FUNCTION IF EXISTS {}()", n.forward_function),
                format!("DROP TABLE IF EXISTS {}", n.shadow),
            ])];
            Ok(Compiled {
                up: vec![
                    Action::Transaction(create),
                    Action::Backfill(t.copy(op, &n)),
                    Action::Validate {
                        sql: format!(
                            "SELECT (SELECT count(*) FROM {}) = (SELECT count(*) FROM {})",
                            op.table, n.shadow
                        ),
                        message: format!(
                            "{} and its partitioned copy {} have different row counts",
                            op.table, n.shadow
                        ),
                    },
                    t.sample_check(op, &n, facts.estimated_rows),
                ],
                down: Ok(down),
                drops_data: false,
            })
        }
        "swap" => {
            let facts = facts(ctx, "partition_table")?;
            let t = TableShape::of(op, facts)?;
            Ok(Compiled {
                up: vec![Action::Transaction(t.swap(op, ctx, &n))],
                down: Ok(vec![Action::Transaction(vec![t.swap_back(op, ctx, &n)])]),
                drops_data: false,
            })
        }
        "contract" => Ok(Compiled {
            up: vec![Action::Transaction(vec![
                format!(
                    "DROP TRIGGER IF EXISTS {} ON {}",
                    names::quote_ident(&n.reverse_trigger),
                    op.table
                ),
                format!("DROP FUNCTION IF EXISTS {}()", n.reverse_function),
                format!("DROP TABLE IF EXISTS {}", n.old),
            ])],
            down: Err(format!(
                "{} (the table before partitioning) was dropped; restore the backup taken before \
                 this step",
                n.old
            )),
            drops_data: true,
        }),
        other => Err(unknown_step("partition_table", other, STEPS)),
    }
}

/// What the steps need of the table, checked.
struct TableShape<'f> {
    facts: &'f TableFacts,
    /// Columns written by the copy and the triggers (not generated ones).
    written: Vec<String>,
    /// Indexes to recreate on the shadow: (name, definition, index-backed
    /// constraint kind if any).
    indexes: Vec<(String, String, Option<String>)>,
    /// Sequences of `nextval` defaults, with their column.
    sequences: Vec<(String, String)>,
}

impl<'f> TableShape<'f> {
    fn of(op: &PartitionTable<'_>, facts: &'f TableFacts) -> Result<TableShape<'f>, CompileError> {
        let refuse = |message: String, help: &str| CompileError {
            message: format!("partition_table: {message}"),
            help: Some(help.to_owned()),
        };
        if !facts.columns.iter().any(|c| c.name == op.key) {
            return Err(refuse(
                format!("{} has no column `{}` to partition by", op.table, op.key),
                "name an existing date or timestamp column in `key`",
            ));
        }
        if facts.primary_key.is_empty() {
            return Err(refuse(
                format!("{} has no primary key", op.table),
                "the copy skips rows the sync trigger already wrote by primary key: add one \
                 (including the partition key) first",
            ));
        }
        if let Some(c) = facts.columns.iter().find(|c| c.identity.is_some()) {
            return Err(refuse(
                format!(
                    "{}.{} is an identity column",
                    op.table,
                    names::quote_ident(&c.name)
                ),
                "identity columns are not moved yet: use a serial/sequence default instead, or \
                 write the steps with `sql` operations",
            ));
        }
        if !facts.dependent_views.is_empty() {
            return Err(refuse(
                format!(
                    "views depend on {}: {} (they would keep reading the old table after the swap)",
                    op.table,
                    facts.dependent_views.join(", ")
                ),
                "drop the views before the swap and create them again after it, with `sql` \
                 operations in the same phases",
            ));
        }
        if !facts.triggers.is_empty() {
            return Err(refuse(
                format!(
                    "{} has triggers of its own: {} (they would stay on the old table)",
                    op.table,
                    facts.triggers.join(", ")
                ),
                "recreate them on the new table with a `sql` operation after the swap, and drop \
                 them from the old one",
            ));
        }
        let own = |c: &super::super::ConstraintFacts| {
            names::parts(&c.on_table) == names::parts(&facts.name)
        };
        if let Some(c) = facts.constraints.iter().find(|c| c.kind == "f" && !own(c)) {
            return Err(refuse(
                format!(
                    "the foreign key {} of {} references {} (it would keep referencing the old \
                     table after the swap)",
                    names::quote_ident(&c.name),
                    c.on_table,
                    op.table
                ),
                "drop that foreign key before the swap and add it again after it",
            ));
        }
        if !facts.primary_key.iter().any(|k| k == op.key) {
            return Err(refuse(
                format!(
                    "the primary key ({}) of {} does not include the partition key `{}`",
                    facts.primary_key.join(", "),
                    op.table,
                    op.key
                ),
                &format!(
                    "a partitioned table enforces uniqueness only within a partition: make the \
                     primary key ({}, {}) first",
                    facts.primary_key.join(", "),
                    op.key
                ),
            ));
        }
        let mut indexes = Vec::new();
        for index in &facts.indexes {
            let shape = index_shape(&index.definition).map_err(|e| {
                refuse(
                    format!(
                        "cannot read the index {}: {e}",
                        names::quote_ident(&index.name)
                    ),
                    "report this as a bug",
                )
            })?;
            let unique = index.definition.starts_with("CREATE UNIQUE");
            let kind = index.constraint.as_ref().and_then(|name| {
                facts
                    .constraints
                    .iter()
                    .find(|c| &c.name == name && own(c))
                    .map(|c| c.kind.clone())
            });
            if (unique || kind.is_some())
                && !shape.keys.iter().any(|k| k.as_deref() == Some(op.key))
            {
                return Err(refuse(
                    format!(
                        "the unique {} {} of {} does not include the partition key `{}`",
                        if kind.is_some() {
                            "constraint"
                        } else {
                            "index"
                        },
                        names::quote_ident(index.constraint.as_ref().unwrap_or(&index.name)),
                        op.table,
                        op.key
                    ),
                    "a partitioned table enforces uniqueness only within a partition: add the \
                     partition key to it first (a new unique index, then drop the old one)",
                ));
            }
            indexes.push((index.name.clone(), index.definition.clone(), kind));
        }
        let sequences = facts
            .columns
            .iter()
            .filter_map(|c| {
                let d = c.default.as_deref()?;
                let rest = d.strip_prefix("nextval('")?;
                let end = rest.find("'::regclass)")?;
                Some((rest[..end].replace("''", "'"), c.name.clone()))
            })
            .collect();
        Ok(TableShape {
            facts,
            written: facts
                .columns
                .iter()
                .filter(|c| c.generated.is_none())
                .map(|c| c.name.clone())
                .collect(),
            indexes,
            sequences,
        })
    }

    /// `CREATE TABLE shadow (…) PARTITION BY RANGE (key)` and its partitions.
    fn create_shadow(
        &self,
        op: &PartitionTable<'_>,
        n: &Names,
        parts: &[Partition],
    ) -> Vec<String> {
        let own = |c: &&super::super::ConstraintFacts| {
            names::parts(&c.on_table) == names::parts(&self.facts.name)
        };
        // PostgreSQL 18 keeps NOT NULL as named constraints (`kind = n`):
        // those columns get theirs by name below, so the names carry over.
        let named_not_null: Vec<&String> = self
            .facts
            .constraints
            .iter()
            .filter(|c| own(c) && c.kind == "n")
            .flat_map(|c| c.columns.iter())
            .collect();
        let mut defs = Vec::new();
        for c in &self.facts.columns {
            let mut d = format!("{} {}", names::quote_ident(&c.name), c.type_sql);
            if c.not_null && !named_not_null.contains(&&c.name) {
                d.push_str(" NOT NULL");
            }
            if let Some(g) = &c.generated {
                d.push_str(&format!(" GENERATED ALWAYS AS ({g}) STORED"));
            } else if let Some(default) = &c.default {
                d.push_str(&format!(" DEFAULT {default}"));
            }
            defs.push(d);
        }
        for c in self.facts.constraints.iter().filter(own) {
            match c.kind.as_str() {
                // Index-backed: created with the indexes, under temporary names.
                "p" | "u" | "x" => {}
                _ => {
                    let def = c.definition.trim_end_matches(" NOT VALID");
                    defs.push(format!("CONSTRAINT {} {def}", names::quote_ident(&c.name)));
                }
            }
        }
        let mut out = vec![format!(
            "CREATE TABLE {} ({}) PARTITION BY RANGE ({})",
            n.shadow,
            defs.join(", "),
            names::quote_ident(op.key)
        )];
        let b = base(op.table);
        for p in parts {
            out.push(format!(
                "CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ('{}') TO ('{}')",
                sibling(op.table, &clip_with(&b, &p.suffix)),
                n.shadow,
                p.from,
                p.to
            ));
        }
        out.push(format!(
            "CREATE TABLE {} PARTITION OF {} DEFAULT",
            sibling(op.table, &clip_with(&b, "_default")),
            n.shadow
        ));
        out
    }

    /// The temporary name of an index of the shadow.
    fn temp_index(ctx: &Context<'_>, name: &str) -> String {
        helper(ctx.version, &["new", name])
    }

    /// The name an index of the old table gets at the swap.
    fn old_index(ctx: &Context<'_>, name: &str) -> String {
        helper(ctx.version, &["old", name])
    }

    /// The table's indexes and index-backed constraints, on the shadow.
    fn shadow_indexes(&self, ctx: &Context<'_>, n: &Names) -> Vec<String> {
        let mut out = Vec::new();
        for (name, definition, kind) in &self.indexes {
            let temp = names::quote_ident(&Self::temp_index(ctx, name));
            match kind {
                Some(_) => {
                    let c = self.facts.constraints.iter().find(|c| {
                        Some(&c.name)
                            == self
                                .facts
                                .indexes
                                .iter()
                                .find(|i| &i.name == name)
                                .and_then(|i| i.constraint.as_ref())
                    });
                    if let Some(c) = c {
                        out.push(format!(
                            "ALTER TABLE {} ADD CONSTRAINT {temp} {}",
                            n.shadow, c.definition
                        ));
                    }
                }
                None => {
                    let (prefix, rest) = match definition.split_once(" USING ") {
                        Some((head, rest)) => (
                            if head.starts_with("CREATE UNIQUE") {
                                "CREATE UNIQUE INDEX"
                            } else {
                                "CREATE INDEX"
                            },
                            rest,
                        ),
                        None => continue,
                    };
                    out.push(format!("{prefix} {temp} ON {} USING {rest}", n.shadow));
                }
            }
        }
        out
    }

    /// A row-level trigger on `from` that applies every write to `to`.
    fn sync(&self, function: &str, trigger: &str, from: &str, to: &str) -> Vec<String> {
        let cols = column_list(&self.written);
        let new_values = self
            .written
            .iter()
            .map(|c| format!("NEW.{}", names::quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        let match_old = self
            .facts
            .primary_key
            .iter()
            .map(|k| format!("{} = OLD.{}", names::quote_ident(k), names::quote_ident(k)))
            .collect::<Vec<_>>()
            .join(" AND ");
        vec![
            format!(
                "CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $strata_sync$\n\
                 BEGIN\n\
                 IF TG_OP IN ('UPDATE', 'DELETE') THEN\n\
                 DELETE FROM {to} WHERE {match_old};\n\
                 END IF;\n\
                 IF TG_OP IN ('INSERT', 'UPDATE') THEN\n\
                 INSERT INTO {to} ({cols}) VALUES ({new_values});\n\
                 END IF;\n\
                 RETURN NULL;\n\
                 END\n\
                 $strata_sync$"
            ),
            format!(
                "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {from} FOR EACH ROW EXECUTE FUNCTION {function}()",
                names::quote_ident(trigger)
            ),
        ]
    }

    /// The batched copy into the shadow.
    fn copy(&self, op: &PartitionTable<'_>, n: &Names) -> String {
        let cols = column_list(&self.written);
        let select = self
            .written
            .iter()
            .map(|c| format!("{OLD}.{}", names::quote_ident(c)))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "INSERT INTO {} ({cols}) SELECT {select} FROM {} AS {OLD} FOR SHARE OF {OLD} \
             ON CONFLICT ({}) DO NOTHING",
            n.shadow,
            op.table,
            column_list(&self.facts.primary_key)
        )
    }

    /// Rows of a sample of the table that are missing or different in the
    /// shadow (about 10,000 rows, by the planner's estimate).
    fn sample_check(&self, op: &PartitionTable<'_>, n: &Names, estimated: i64) -> Action {
        let percent = if estimated <= 10_000 {
            100.0
        } else {
            (1_000_000.0 / estimated as f64).clamp(0.01, 100.0)
        };
        let key_match = self
            .facts
            .primary_key
            .iter()
            .map(|k| {
                format!(
                    "strata_new.{} = {OLD}.{}",
                    names::quote_ident(k),
                    names::quote_ident(k)
                )
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        let shown = self
            .facts
            .primary_key
            .iter()
            .map(|k| format!("{OLD}.{}", names::quote_ident(k)))
            .collect::<Vec<_>>()
            .join(", ");
        Action::Validate {
            sql: format!(
                "SELECT {shown} FROM {} AS {OLD} TABLESAMPLE BERNOULLI ({percent}) WHERE NOT EXISTS \
                 (SELECT 1 FROM {} AS strata_new WHERE {key_match} AND to_jsonb(strata_new) = to_jsonb({OLD})) LIMIT 20",
                op.table, n.shadow
            ),
            message: format!(
                "these rows of {} are missing or different in {}",
                op.table, n.shadow
            ),
        }
    }

    /// The renames of the swap (`forward`) or of its reverse.
    fn renames(
        &self,
        op: &PartitionTable<'_>,
        ctx: &Context<'_>,
        n: &Names,
        forward: bool,
    ) -> Vec<String> {
        let b = base(op.table);
        let q = names::quote_ident;
        let mut out = Vec::new();
        // (from, to) pairs, in the order the swap renames them.
        let tables = [
            (op.table.to_owned(), n.old_base.clone()),
            (n.shadow.clone(), b.clone()),
        ];
        let mut indexes = Vec::new();
        for (name, _, _) in &self.indexes {
            indexes.push((name.clone(), Self::old_index(ctx, name)));
        }
        for (name, _, _) in &self.indexes {
            indexes.push((Self::temp_index(ctx, name), name.clone()));
        }
        if forward {
            for (from, to) in &tables {
                out.push(format!("ALTER TABLE {from} RENAME TO {}", q(to)));
            }
            for (from, to) in &indexes {
                out.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    sibling(op.table, from),
                    q(to)
                ));
            }
        } else {
            for (from, to) in indexes.iter().rev() {
                out.push(format!(
                    "ALTER INDEX {} RENAME TO {}",
                    sibling(op.table, to),
                    q(from)
                ));
            }
            // Back: the new table to the shadow's name, the old one to its own.
            out.push(format!(
                "ALTER TABLE {} RENAME TO {}",
                op.table,
                q(&n.shadow_base)
            ));
            out.push(format!("ALTER TABLE {} RENAME TO {}", n.old, q(&b)));
        }
        for (seq, col) in &self.sequences {
            out.push(format!(
                "ALTER SEQUENCE {seq} OWNED BY {}.{}",
                op.table,
                q(col)
            ));
        }
        out
    }

    fn swap(&self, op: &PartitionTable<'_>, ctx: &Context<'_>, n: &Names) -> Vec<String> {
        let mut out = vec![
            format!(
                "LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE",
                op.table, n.shadow
            ),
            format!(
                "DROP TRIGGER {} ON {}",
                names::quote_ident(&n.forward_trigger),
                op.table
            ),
            format!("DROP FUNCTION {}()", n.forward_function),
        ];
        out.extend(self.renames(op, ctx, n, true));
        out.extend(self.sync(&n.reverse_function, &n.reverse_trigger, op.table, &n.old));
        out
    }

    /// The swap's reverse, as one `DO` block that does nothing unless the
    /// swap happened (`<table>_old` exists), so `abort` may run it after a
    /// swap that never committed.
    fn swap_back(&self, op: &PartitionTable<'_>, ctx: &Context<'_>, n: &Names) -> String {
        let mut body = vec![
            format!(
                "LOCK TABLE {}, {} IN ACCESS EXCLUSIVE MODE",
                op.table, n.old
            ),
            format!(
                "DROP TRIGGER IF EXISTS {} ON {}",
                names::quote_ident(&n.reverse_trigger),
                op.table
            ),
            format!("DROP FUNCTION IF EXISTS {}()", n.reverse_function),
        ];
        body.extend(self.renames(op, ctx, n, false));
        body.extend(self.sync(&n.forward_function, &n.forward_trigger, op.table, &n.shadow));
        let mut sql = format!(
            "DO $strata_swap_back$\nBEGIN\nIF to_regclass({}) IS NULL THEN\nRETURN;\nEND IF;\n",
            literal(&n.old)
        );
        for s in body {
            sql.push_str(&format!("EXECUTE {};\n", literal(&s)));
        }
        sql.push_str("END\n$strata_swap_back$");
        sql
    }
}

/// A SQL string literal (`E''` never needed: standard strings).
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `base` + `suffix`, `base` cut so the whole fits 63 bytes.
fn clip_with(base: &str, suffix: &str) -> String {
    let mut cut = base.len().min(63usize.saturating_sub(suffix.len()));
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}", &base[..cut])
}

/// One range partition: its name suffix and bounds (`YYYY-MM-DD`).
#[derive(Debug, PartialEq, Eq)]
struct Partition {
    suffix: String,
    from: String,
    to: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Date {
    y: i32,
    m: u32,
    d: u32,
}

impl Date {
    fn parse(s: &str, what: &str) -> Result<Date, CompileError> {
        let bad = || CompileError {
            message: format!("partition_table: `{what}` = \"{s}\" is not a date"),
            help: Some("write a date as YYYY-MM-DD, e.g. \"2024-01-01\"".into()),
        };
        let mut it = s.trim().splitn(3, '-');
        let (Some(y), Some(m), Some(d)) = (it.next(), it.next(), it.next()) else {
            return Err(bad());
        };
        let date = Date {
            y: y.parse().map_err(|_| bad())?,
            m: m.parse().map_err(|_| bad())?,
            d: d.parse().map_err(|_| bad())?,
        };
        if y.len() != 4
            || !(1..=12).contains(&date.m)
            || date.d < 1
            || date.d > days_in(date.y, date.m)
        {
            return Err(bad());
        }
        Ok(date)
    }

    fn add(self, interval: Interval) -> Date {
        let months = match interval {
            Interval::Day => {
                return if self.d < days_in(self.y, self.m) {
                    Date {
                        d: self.d + 1,
                        ..self
                    }
                } else if self.m < 12 {
                    Date {
                        m: self.m + 1,
                        d: 1,
                        ..self
                    }
                } else {
                    Date {
                        y: self.y + 1,
                        m: 1,
                        d: 1,
                    }
                }
            }
            Interval::Month => 1,
            Interval::Quarter => 3,
            Interval::Year => 12,
        };
        let total = self.y * 12 + (self.m as i32 - 1) + months;
        let (y, m) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
        Date {
            y,
            m,
            d: self.d.min(days_in(y, m)),
        }
    }

    fn sql(self) -> String {
        format!("{:04}-{:02}-{:02}", self.y, self.m, self.d)
    }

    fn suffix(self, interval: Interval) -> String {
        match interval {
            Interval::Day => format!("_p{:04}_{:02}_{:02}", self.y, self.m, self.d),
            Interval::Quarter if self.d == 1 && (self.m - 1) % 3 == 0 => {
                format!("_p{:04}_q{}", self.y, (self.m - 1) / 3 + 1)
            }
            Interval::Year if self.d == 1 && self.m == 1 => format!("_p{:04}", self.y),
            _ if self.d == 1 => format!("_p{:04}_{:02}", self.y, self.m),
            _ => format!("_p{:04}_{:02}_{:02}", self.y, self.m, self.d),
        }
    }
}

fn days_in(y: i32, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn partitions(op: &PartitionTable<'_>) -> Result<Vec<Partition>, CompileError> {
    let from = Date::parse(op.from, "from")?;
    let to = Date::parse(op.to, "to")?;
    if from >= to {
        return Err(CompileError {
            message: format!(
                "partition_table: `from` ({}) is not before `to` ({})",
                op.from, op.to
            ),
            help: Some(
                "`from` is the first partition's lower bound, `to` the last one's upper bound"
                    .into(),
            ),
        });
    }
    let mut out = Vec::new();
    let mut at = from;
    while at < to {
        if out.len() == MAX_PARTITIONS {
            return Err(CompileError {
                message: format!(
                    "partition_table: more than {MAX_PARTITIONS} partitions from {} to {}",
                    op.from, op.to
                ),
                help: Some("use a wider interval or a shorter range; rows outside it go to the default partition".into()),
            });
        }
        let next = at.add(op.interval).min(to);
        out.push(Partition {
            suffix: at.suffix(op.interval),
            from: at.sql(),
            to: next.sql(),
        });
        at = next;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::super::{ColumnFacts, ConstraintFacts, IndexFacts};
    use super::*;

    fn col(name: &str, ty: &str, default: Option<&str>) -> ColumnFacts {
        ColumnFacts {
            name: name.into(),
            type_sql: ty.into(),
            not_null: name != "note",
            default: default.map(Into::into),
            identity: None,
            generated: None,
        }
    }

    fn events(pk: &[&str]) -> TableFacts {
        let pk: Vec<String> = pk.iter().map(|s| s.to_string()).collect();
        TableFacts {
            name: "public.events".into(),
            columns: vec![
                col("id", "bigint", Some("nextval('events_id_seq'::regclass)")),
                col("created_at", "timestamp with time zone", None),
                col("note", "text", None),
            ],
            primary_key: pk.clone(),
            indexes: vec![
                IndexFacts {
                    name: "events_pkey".into(),
                    definition: format!(
                        "CREATE UNIQUE INDEX events_pkey ON public.events USING btree ({})",
                        pk.join(", ")
                    ),
                    columns: pk.clone(),
                    constraint: Some("events_pkey".into()),
                },
                IndexFacts {
                    name: "events_note_idx".into(),
                    definition: "CREATE INDEX events_note_idx ON public.events USING btree (note)"
                        .into(),
                    columns: vec!["note".into()],
                    constraint: None,
                },
            ],
            constraints: vec![ConstraintFacts {
                name: "events_pkey".into(),
                on_table: "public.events".into(),
                kind: "p".into(),
                definition: format!("PRIMARY KEY ({})", pk.join(", ")),
                columns: pk,
                validated: true,
            }],
            ..TableFacts::default()
        }
    }

    fn op(interval: Interval) -> PartitionTable<'static> {
        PartitionTable {
            table: "events",
            key: "created_at",
            interval,
            from: "2024-01-01",
            to: "2024-07-01",
        }
    }

    fn ctx<'a>(f: Option<&'a TableFacts>, step: Option<&'a str>) -> Context<'a> {
        Context {
            version: "20260301120000",
            step,
            table: f,
        }
    }

    #[test]
    fn partitions_follow_the_interval() {
        let p = partitions(&op(Interval::Quarter)).unwrap();
        assert_eq!(
            p,
            vec![
                Partition {
                    suffix: "_p2024_q1".into(),
                    from: "2024-01-01".into(),
                    to: "2024-04-01".into()
                },
                Partition {
                    suffix: "_p2024_q2".into(),
                    from: "2024-04-01".into(),
                    to: "2024-07-01".into()
                },
            ]
        );
        assert_eq!(partitions(&op(Interval::Month)).unwrap().len(), 6);
        assert_eq!(partitions(&op(Interval::Day)).unwrap().len(), 182);
        let y = partitions(&PartitionTable {
            to: "2026-01-01",
            ..op(Interval::Year)
        })
        .unwrap();
        assert_eq!(y[1].suffix, "_p2025");
        assert!(partitions(&PartitionTable {
            from: "2024-13-01",
            ..op(Interval::Month)
        })
        .is_err());
        assert!(partitions(&PartitionTable {
            to: "2023-01-01",
            ..op(Interval::Month)
        })
        .is_err());
        assert!(partitions(&PartitionTable {
            to: "2999-01-01",
            ..op(Interval::Day)
        })
        .is_err());
    }

    #[test]
    fn expand_builds_shadow_trigger_copy_and_checks() {
        let f = events(&["id", "created_at"]);
        let c = compile(&op(Interval::Quarter), &ctx(Some(&f), None)).unwrap();
        let Action::Transaction(tx) = &c.up[0] else {
            panic!()
        };
        assert_eq!(
            tx[0],
            "CREATE TABLE events_strata_new (id bigint NOT NULL DEFAULT nextval('events_id_seq'::regclass), created_at timestamp with time zone NOT NULL, note text) PARTITION BY RANGE (created_at)"
        );
        assert_eq!(
            tx[1],
            "CREATE TABLE events_p2024_q1 PARTITION OF events_strata_new FOR VALUES FROM ('2024-01-01') TO ('2024-04-01')"
        );
        assert_eq!(
            tx[3],
            "CREATE TABLE events_default PARTITION OF events_strata_new DEFAULT"
        );
        let tx = &tx[3..];
        assert_eq!(
            tx[1],
            "ALTER TABLE events_strata_new ADD CONSTRAINT strata_20260301120000_new_events_pkey PRIMARY KEY (id, created_at)"
        );
        assert_eq!(
            tx[2],
            "CREATE INDEX strata_20260301120000_new_events_note_idx ON events_strata_new USING btree (note)"
        );
        assert!(tx[3].contains(
            "DELETE FROM events_strata_new WHERE id = OLD.id AND created_at = OLD.created_at;"
        ));
        assert!(tx[4].contains("AFTER INSERT OR UPDATE OR DELETE ON events FOR EACH ROW"));
        for s in tx {
            pg_query::parse(s, 0).unwrap();
        }
        let Action::Backfill(copy) = &c.up[1] else {
            panic!()
        };
        assert_eq!(
            copy,
            "INSERT INTO events_strata_new (id, created_at, note) SELECT strata_old.id, strata_old.created_at, strata_old.note FROM events AS strata_old FOR SHARE OF strata_old ON CONFLICT (id, created_at) DO NOTHING"
        );
        crate::engine::backfill::BackfillSpec::from_sql(copy).unwrap();
        for a in &c.up[2..] {
            let Action::Validate { sql, .. } = a else {
                panic!()
            };
            pg_query::parse(sql, 0).unwrap();
        }
        assert!(c.down.unwrap()[0]
            .to_string()
            .contains("DROP TABLE IF EXISTS events_strata_new"));
    }

    #[test]
    fn swap_renames_and_reverses() {
        let f = events(&["id", "created_at"]);
        let c = compile(&op(Interval::Month), &ctx(Some(&f), Some("swap"))).unwrap();
        let Action::Transaction(tx) = &c.up[0] else {
            panic!()
        };
        assert_eq!(
            tx[0],
            "LOCK TABLE events, events_strata_new IN ACCESS EXCLUSIVE MODE"
        );
        assert!(tx.contains(&"ALTER TABLE events RENAME TO events_old".to_owned()));
        assert!(tx.contains(&"ALTER TABLE events_strata_new RENAME TO events".to_owned()));
        assert!(tx.contains(
            &"ALTER INDEX events_pkey RENAME TO strata_20260301120000_old_events_pkey".to_owned()
        ));
        assert!(tx.contains(
            &"ALTER INDEX strata_20260301120000_new_events_pkey RENAME TO events_pkey".to_owned()
        ));
        assert!(tx.contains(&"ALTER SEQUENCE events_id_seq OWNED BY events.id".to_owned()));
        assert!(tx.last().unwrap().contains(
            "ON events FOR EACH ROW EXECUTE FUNCTION strata_20260301120000_unpartition_events()"
        ));
        for s in tx {
            pg_query::parse(s, 0).unwrap();
        }
        let Action::Transaction(down) = &c.down.as_ref().unwrap()[0] else {
            panic!()
        };
        assert!(down[0].starts_with("DO $strata_swap_back$"));
        pg_query::parse(&down[0], 0).unwrap();
        let contract = compile(&op(Interval::Month), &ctx(None, Some("contract"))).unwrap();
        assert!(contract.drops_data);
        assert!(contract.down.is_err());
        assert!(contract.up[0]
            .to_string()
            .contains("DROP TABLE IF EXISTS events_old"));
    }

    #[test]
    fn keys_without_the_partition_key_are_refused_with_the_fix() {
        let f = events(&["id"]);
        let e = compile(&op(Interval::Month), &ctx(Some(&f), None)).unwrap_err();
        assert!(
            e.message.contains("does not include the partition key"),
            "{}",
            e.message
        );
        assert!(e.help.unwrap().contains("(id, created_at)"));
        let mut f = events(&["id", "created_at"]);
        f.indexes.push(IndexFacts {
            name: "events_note_key".into(),
            definition: "CREATE UNIQUE INDEX events_note_key ON public.events USING btree (note)"
                .into(),
            columns: vec!["note".into()],
            constraint: None,
        });
        assert!(compile(&op(Interval::Month), &ctx(Some(&f), None)).is_err());
        let mut f = events(&["id", "created_at"]);
        f.dependent_views.push("public.recent".into());
        assert!(compile(&op(Interval::Month), &ctx(Some(&f), None)).is_err());
        assert!(compile(&op(Interval::Month), &ctx(None, None)).is_err());
        assert!(compile(&op(Interval::Month), &ctx(Some(&f), Some("shrink"))).is_err());
    }

    #[test]
    fn named_not_null_constraints_keep_their_names() {
        let mut f = events(&["id", "created_at"]);
        f.constraints.push(ConstraintFacts {
            name: "events_id_not_null".into(),
            on_table: "public.events".into(),
            kind: "n".into(),
            definition: "NOT NULL id".into(),
            columns: vec!["id".into()],
            validated: true,
        });
        let c = compile(&op(Interval::Month), &ctx(Some(&f), None)).unwrap();
        let Action::Transaction(tx) = &c.up[0] else {
            panic!()
        };
        assert!(
            tx[0].starts_with("CREATE TABLE events_strata_new (id bigint DEFAULT"),
            "{}",
            tx[0]
        );
        assert!(tx[0].contains("created_at timestamp with time zone NOT NULL"));
        assert!(tx[0].contains("CONSTRAINT events_id_not_null NOT NULL id"));
    }

    #[test]
    fn odd_and_long_names() {
        let mut f = events(&["id", "created_at"]);
        f.name = "app.\"Event Log\"".into();
        f.constraints[0].on_table = "app.\"Event Log\"".into();
        let o = PartitionTable {
            table: "app.\"Event Log\"",
            ..op(Interval::Year)
        };
        let c = compile(&o, &ctx(Some(&f), None)).unwrap();
        let Action::Transaction(tx) = &c.up[0] else {
            panic!()
        };
        assert!(
            tx[0].starts_with("CREATE TABLE app.\"Event Log_strata_new\""),
            "{}",
            tx[0]
        );
        assert!(tx[1].contains(
            "CREATE TABLE app.\"Event Log_p2024\" PARTITION OF app.\"Event Log_strata_new\""
        ));
        assert_eq!(clip_with(&"x".repeat(70), "_strata_new").len(), 63);
    }
}
