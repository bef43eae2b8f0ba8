//! What the trigger-family operations (`rename_column`,
//! `change_column_type`, `split_column`, `add_required_column`,
//! `set_not_null`) share: names of the helper objects a plan creates, the
//! steps of a multi-phase operation, the table facts they read, and
//! carrying an index or constraint from one column to another.
//!
//! Helper objects (sync triggers and their functions, shadow columns,
//! temporary constraint and index names) are named
//! `strata_<version>_<tag>_<hash>`: the plan's version says which plan made
//! them (so two plans never share one, and `strata abort` knows what is
//! whose), and the hash of the operation's table and columns keeps two
//! operations of one plan apart. Every such name fits PostgreSQL's 63 bytes,
//! with room for a short suffix (`_fn`, `_i0`).

use pg_query::protobuf::{KeywordKind, Token};
use strata_source::sql::names::{self, quote_ident, MAX_NAME_BYTES};

use super::super::{Action, ColumnFacts, CompileError, Context, TableFacts};

/// The longest suffix [`Helpers::name`] adds to the base name.
const MAX_SUFFIX_BYTES: usize = 8;

/// The names of one operation's helper objects.
#[derive(Debug, Clone)]
pub(super) struct Helpers {
    base: String,
    /// The schema of the operation's table, quoted (functions go there, so
    /// that they are found and dropped with the table's schema, whatever
    /// the `search_path` of a later session).
    schema: Option<String>,
}

impl Helpers {
    /// Helper names for the operation tagged `tag` (`ren`, `typ`, …) of
    /// plan `version` on `table` and `columns`.
    pub(super) fn new(version: &str, tag: &str, table: &str, columns: &[&str]) -> Helpers {
        let mut key = format!("{tag}\0{table}");
        for c in columns {
            key.push('\0');
            key.push_str(c);
        }
        let hash = fnv1a(&key);
        let tail = format!("_{tag}_{:08x}", hash as u32);
        let room = MAX_NAME_BYTES - MAX_SUFFIX_BYTES - "strata_".len() - tail.len();
        let mut version = version;
        if version.len() > room {
            let mut end = room;
            while !version.is_char_boundary(end) {
                end -= 1;
            }
            version = &version[..end];
        }
        let parts = names::parts(table);
        let schema = (parts.len() > 1).then(|| quote_ident(&parts[parts.len() - 2]));
        Helpers {
            base: format!("strata_{version}{tail}"),
            schema,
        }
    }

    /// Helper names for an operation on a table the facts describe (its
    /// name is schema-qualified there, so functions go in its schema).
    pub(super) fn for_table(
        ctx: &Context<'_>,
        facts: &TableFacts,
        tag: &str,
        cols: &[&str],
    ) -> Self {
        Helpers::new(ctx.version, tag, &facts.name, cols)
    }

    /// A helper object's name (unquoted): the base plus `_<suffix>`.
    pub(super) fn name(&self, suffix: &str) -> String {
        debug_assert!(suffix.len() < MAX_SUFFIX_BYTES, "suffix {suffix} too long");
        format!("{}_{suffix}", self.base)
    }

    /// A helper object's name, quoted as SQL.
    pub(super) fn ident(&self, suffix: &str) -> String {
        quote_ident(&self.name(suffix))
    }

    /// A helper function's name, schema-qualified when the table is.
    pub(super) fn function(&self, suffix: &str) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", self.ident(suffix)),
            None => self.ident(suffix),
        }
    }

    /// An index of the table, schema-qualified like the table (indexes
    /// live in their table's schema).
    pub(super) fn index(&self, name: &str) -> String {
        match &self.schema {
            Some(s) => format!("{s}.{}", quote_ident(name)),
            None => quote_ident(name),
        }
    }
}

/// FNV-1a, 64 bits: a stable hash (std's hasher may change between Rust
/// releases, and a helper's name must not).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A column name as a plan file writes it (SQL: `name`, `"User Data"`),
/// unquoted as the catalog has it.
pub(super) fn column_name(sql: &str) -> String {
    names::base_name(sql)
}

/// Which step of `steps` the context asks for (`None` is the first).
pub(super) fn step_index(
    op: &str,
    ctx: &Context<'_>,
    steps: &[&str],
) -> Result<usize, CompileError> {
    let Some(step) = ctx.step else { return Ok(0) };
    steps
        .iter()
        .position(|s| *s == step)
        .ok_or_else(|| CompileError {
            message: format!("`{op}` has no step `{step}`"),
            help: Some(format!(
                "its steps are {}, in that order",
                steps
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
}

/// The operation's table facts (see `table_names::facts`).
pub(super) fn facts<'a>(op: &str, ctx: &Context<'a>) -> Result<&'a TableFacts, CompileError> {
    super::table_names::facts(ctx, op)
}

/// The NOT NULL constraint names of columns `from` and `to` (PostgreSQL 18
/// gives NOT NULL constraints names; older servers have none, and this is
/// `None`). `RENAME COLUMN` and `ALTER COLUMN … TYPE` keep a column's
/// constraint name, so an operation that ends with another column in its
/// place renames that column's constraint to the name the naive form keeps.
pub(super) fn not_null_names(facts: &TableFacts, from: &str, to: &str) -> Option<(String, String)> {
    let name_of = |col: &str| {
        facts
            .constraints
            .iter()
            .find(|c| c.kind == "n" && c.on_table == facts.name && c.columns == [col])
            .map(|c| c.name.clone())
    };
    Some((name_of(from)?, name_of(to)?))
}

/// The facts' column `name`.
pub(super) fn column<'a>(
    op: &str,
    facts: &'a TableFacts,
    name: &str,
) -> Result<&'a ColumnFacts, CompileError> {
    facts
        .columns
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| CompileError {
            message: format!("`{op}`: {} has no column {}", facts.name, quote_ident(name)),
            help: Some(format!(
                "its columns are {}",
                facts
                    .columns
                    .iter()
                    .map(|c| quote_ident(&c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        })
}

/// What identifies a row in a validation's report: the primary key, or the
/// row's physical position when there is none.
pub(super) fn row_keys(facts: &TableFacts) -> String {
    if facts.primary_key.is_empty() {
        "ctid::text AS ctid".to_owned()
    } else {
        facts
            .primary_key
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A SQL string literal (`'…'`, quotes doubled).
pub(super) fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Refuses what a column's move to another column cannot carry safely: the
/// primary key, foreign keys (either way), exclusion constraints, views
/// over the table (they name the column, and would block its drop), and
/// identity, generated or sequence-fed columns.
pub(super) fn refuse_uncarried(
    op: &str,
    facts: &TableFacts,
    col: &ColumnFacts,
) -> Result<(), CompileError> {
    let name = quote_ident(&col.name);
    let refuse = |what: String, help: &str| {
        Err(CompileError {
            message: format!("`{op}` on {}.{name}: {what}", facts.name),
            help: Some(help.to_owned()),
        })
    };
    if col.identity.is_some() || col.generated.is_some() {
        return refuse(
            "it is an identity or generated column, which a trigger cannot keep in sync".into(),
            "change it in a `sql` operation (identity and generated columns are metadata)",
        );
    }
    if col
        .default
        .as_deref()
        .is_some_and(|d| d.contains("nextval("))
    {
        return refuse(
            "its default takes values from a sequence, whose ownership the column would lose"
                .into(),
            "move the sequence's ownership in a `sql` operation, or use a plain rename",
        );
    }
    if facts.primary_key.iter().any(|c| c == &col.name) {
        return refuse(
            "it is part of the primary key".into(),
            "primary key columns are referenced by other tables; change them in a maintenance window",
        );
    }
    for c in &facts.constraints {
        if !c.columns.iter().any(|x| x == &col.name) {
            continue;
        }
        match c.kind.as_str() {
            "f" => {
                return refuse(
                    format!("foreign key {} uses it", quote_ident(&c.name)),
                    "drop the foreign key before the plan and add it back after it with `add_foreign_key`",
                )
            }
            "x" => {
                return refuse(
                    format!("exclusion constraint {} uses it", quote_ident(&c.name)),
                    "drop the constraint before the plan and add it back after it",
                )
            }
            _ => {}
        }
    }
    if !facts.dependent_views.is_empty() {
        return refuse(
            format!(
                "views depend on the table ({}) and would keep reading the old column",
                facts.dependent_views.join(", ")
            ),
            "drop the views in a `sql` operation before this one and create them again after the contract step",
        );
    }
    Ok(())
}

/// `sql` with every reference to the column `from` made a reference to
/// `to` (already quoted). Only plain column references change: a
/// function's name, a qualified name's part or a type name that happens to
/// be spelled like the column stays as it is. With `after_using`, only the
/// part after the first `USING` changes (an index definition: its name and
/// table come before).
pub(super) fn rename_column_in(
    sql: &str,
    from: &str,
    to: &str,
    after_using: bool,
) -> Result<String, CompileError> {
    let tokens = pg_query::scan_tokens(sql).map_err(|e| CompileError {
        message: format!("cannot read the catalog's definition `{sql}`: {e}"),
        help: None,
    })?;
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut active = !after_using;
    for (i, t) in tokens.iter().enumerate() {
        if t.token == Token::Using as i32 {
            active = true;
            continue;
        }
        let is_name = t.token == Token::Ident as i32
            || (t.keyword_kind != KeywordKind::NoKeyword as i32
                && t.keyword_kind != KeywordKind::ReservedKeyword as i32);
        if !active || !is_name {
            continue;
        }
        let (start, end) = (t.start as usize, t.end as usize);
        let text = &sql[start..end];
        if column_name(text) != from {
            continue;
        }
        let prev = i.checked_sub(1).map(|j| tokens[j].token);
        let next = tokens.get(i + 1).map(|n| n.token);
        if next == Some(Token::Ascii40 as i32)
            || next == Some(Token::Ascii46 as i32)
            || prev == Some(Token::Ascii46 as i32)
            || prev == Some(Token::Typecast as i32)
        {
            continue;
        }
        out.push_str(&sql[copied..start]);
        out.push_str(to);
        copied = end;
    }
    out.push_str(&sql[copied..]);
    Ok(out)
}

/// An index definition (`pg_get_indexdef`) made a `CREATE INDEX
/// CONCURRENTLY` of another name on another column.
pub(super) fn index_on(
    definition: &str,
    old_name: &str,
    new_name: &str,
    from: &str,
    to: &str,
) -> Result<String, CompileError> {
    let quoted = quote_ident(old_name);
    let rest = ["CREATE UNIQUE INDEX ", "CREATE INDEX "]
        .iter()
        .find_map(|p| {
            definition
                .strip_prefix(p)
                .and_then(|r| r.strip_prefix(quoted.as_str()))
                .map(|r| (p.trim_end(), r))
        });
    let Some((create, rest)) = rest else {
        return Err(CompileError {
            message: format!("cannot read the definition of index {quoted}: `{definition}`"),
            help: Some("drop the index before the plan and create it again after it".to_owned()),
        });
    };
    let rest = rename_column_in(rest, from, to, true)?;
    Ok(format!(
        "{create} CONCURRENTLY {}{rest}",
        quote_ident(new_name)
    ))
}

/// An index definition made idempotent (`IF NOT EXISTS`) and concurrent,
/// for a reverse that builds it again under its own name.
pub(super) fn index_again(definition: &str) -> String {
    for p in ["CREATE UNIQUE INDEX ", "CREATE INDEX "] {
        if let Some(rest) = definition.strip_prefix(p) {
            return format!("{}CONCURRENTLY IF NOT EXISTS {rest}", p);
        }
    }
    definition.to_owned()
}

/// `expr` (SQL over the table's columns, unqualified) with each column
/// of the table read from the record `row` (`NEW`, a parameter), for a
/// trigger or a function; and the columns it reads, in table order (a
/// trigger fires on updates of those).
pub(super) fn row_expression(
    expr: &str,
    facts: &TableFacts,
    row: &str,
) -> Result<(String, Vec<String>), CompileError> {
    let mut out = expr.to_owned();
    let mut used = Vec::new();
    for c in &facts.columns {
        let next = rename_column_in(
            &out,
            &c.name,
            &format!("{row}.{}", quote_ident(&c.name)),
            false,
        )?;
        if next != out {
            used.push(c.name.clone());
            out = next;
        }
    }
    Ok((out, used))
}

/// The statements that install a row trigger `BEFORE INSERT OR UPDATE
/// [OF columns]` running a PL/pgSQL `body` (statements between `BEGIN`
/// and `RETURN NEW`). Re-running them replaces what is there, so they
/// serve a retry and a reverse alike.
pub(super) fn install_trigger(
    helpers: &Helpers,
    table: &str,
    update_of: &[String],
    body: &str,
) -> Vec<String> {
    let function = helpers.function("fn");
    let trigger = helpers.ident("trg");
    let of = if update_of.is_empty() {
        String::new()
    } else {
        format!(
            " OF {}",
            update_of
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    vec![
        format!(
            "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $strata$\nBEGIN\n{body}  RETURN NEW;\nEND\n$strata$"
        ),
        format!("DROP TRIGGER IF EXISTS {trigger} ON {table}"),
        format!(
            "CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE{of} ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
        ),
    ]
}

/// The statements that remove what [`install_trigger`] installed.
pub(super) fn remove_trigger(helpers: &Helpers, table: &str) -> Vec<String> {
    vec![
        format!("DROP TRIGGER IF EXISTS {} ON {table}", helpers.ident("trg")),
        format!("DROP FUNCTION IF EXISTS {}()", helpers.function("fn")),
    ]
}

/// A condition true while `table` has the column `name`, for a reverse
/// that must not redo what is already undone.
pub(super) fn has_column(table: &str, name: &str) -> String {
    format!(
        "EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass({}) AND attname = {} AND NOT attisdropped)",
        literal(table),
        literal(name)
    )
}

/// A condition true while `table` has the constraint `name`.
pub(super) fn has_constraint(table: &str, name: &str) -> String {
    format!(
        "EXISTS (SELECT FROM pg_constraint WHERE conrelid = to_regclass({}) AND conname = {})",
        literal(table),
        literal(name)
    )
}

/// Statements run only when `condition` holds, as one `DO` block.
pub(super) fn when(condition: &str, statements: &[String]) -> String {
    let mut body = String::new();
    for s in statements {
        body.push_str("  ");
        body.push_str(s);
        body.push_str(";\n");
    }
    format!("DO $strata$ BEGIN IF {condition} THEN\n{body}END IF; END $strata$")
}

/// An index on the moving column, carried to the new one under a
/// temporary name until the old column is gone.
#[derive(Debug, Clone)]
pub(super) struct CarriedIndex {
    /// Its name (unquoted).
    pub name: String,
    /// The temporary name of its copy (unquoted).
    pub tmp: String,
    /// `pg_get_indexdef` of the original.
    pub definition: String,
    /// The copy's `CREATE INDEX CONCURRENTLY`.
    pub create_copy: String,
    /// The unique constraint it backs: its name, and its `DEFERRABLE …`
    /// clause (empty when immediate).
    pub unique: Option<(String, String)>,
}

/// A check constraint on the moving column, carried likewise.
#[derive(Debug, Clone)]
pub(super) struct CarriedCheck {
    /// Its name (unquoted).
    pub name: String,
    /// The temporary name of its copy (unquoted).
    pub tmp: String,
    /// Its definition as it is, and on the new column, without `NOT VALID`.
    pub on_old: String,
    /// Its definition on the new column.
    pub on_new: String,
    /// Validated: the copy is validated too (a `NOT VALID` one stays so).
    pub validated: bool,
}

/// What moves with a column: its indexes (unique constraints included) and
/// its check constraints.
#[derive(Debug, Clone, Default)]
pub(super) struct Carried {
    pub indexes: Vec<CarriedIndex>,
    pub checks: Vec<CarriedCheck>,
}

/// The indexes and check constraints of `from` (unquoted), carried to the
/// column `to` (quoted). Temporary names come from the originals' names, so
/// the contract step finds the copies its expand step made.
pub(super) fn carried(
    op: &str,
    facts: &TableFacts,
    helpers: &Helpers,
    from: &str,
    to: &str,
) -> Result<Carried, CompileError> {
    let mut out = Carried::default();
    for index in facts
        .indexes
        .iter()
        .filter(|i| i.columns.iter().any(|c| c == from))
    {
        let tmp = helpers.name(&format!("i{:06x}", fnv1a(&index.name) as u32 & 0xff_ffff));
        let unique = match &index.constraint {
            None => None,
            Some(name) => {
                let c = facts
                    .constraints
                    .iter()
                    .find(|c| &c.name == name && c.on_table == facts.name);
                match c {
                    Some(c) if c.kind == "u" => {
                        let deferrable = c
                            .definition
                            .find("DEFERRABLE")
                            .map(|at| {
                                let d = &c.definition[at..];
                                if d.starts_with("DEFERRABLE") && c.definition[..at].ends_with("NOT ") {
                                    String::new()
                                } else {
                                    format!(" {d}")
                                }
                            })
                            .unwrap_or_default();
                        Some((name.clone(), deferrable))
                    }
                    _ => {
                        return Err(CompileError {
                            message: format!(
                                "`{op}` on {}: index {} backs constraint {}, which cannot be carried to another column",
                                facts.name,
                                quote_ident(&index.name),
                                quote_ident(name)
                            ),
                            help: Some("drop the constraint before the plan and add it back after it".to_owned()),
                        })
                    }
                }
            }
        };
        let create_copy = index_on(&index.definition, &index.name, &tmp, from, to)?;
        out.indexes.push(CarriedIndex {
            name: index.name.clone(),
            tmp,
            definition: index.definition.clone(),
            create_copy,
            unique,
        });
    }
    for c in facts.constraints.iter().filter(|c| {
        c.kind == "c" && c.on_table == facts.name && c.columns.iter().any(|x| x == from)
    }) {
        let on_old = c
            .definition
            .strip_suffix(" NOT VALID")
            .unwrap_or(&c.definition)
            .to_owned();
        out.checks.push(CarriedCheck {
            name: c.name.clone(),
            tmp: helpers.name(&format!("c{:06x}", fnv1a(&c.name) as u32 & 0xff_ffff)),
            on_new: rename_column_in(&on_old, from, to, false)?,
            on_old,
            validated: c.validated,
        });
    }
    Ok(out)
}

impl Carried {
    /// The copies on the new column: checks added `NOT VALID` and then
    /// validated (a scan that lets writes go on), indexes built
    /// concurrently, unique ones then made constraints.
    pub(super) fn build_copies(&self, table: &str) -> Vec<Action> {
        let mut out = Vec::new();
        for c in &self.checks {
            let tmp = quote_ident(&c.tmp);
            out.push(Action::Transaction(vec![
                format!("ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {tmp}"),
                format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {tmp} {} NOT VALID",
                    c.on_new
                ),
            ]));
            if c.validated {
                out.push(Action::Alone(format!(
                    "ALTER TABLE {table} VALIDATE CONSTRAINT {tmp}"
                )));
            }
        }
        for i in &self.indexes {
            out.push(Action::Alone(i.create_copy.clone()));
            if let Some((_, deferrable)) = &i.unique {
                let tmp = quote_ident(&i.tmp);
                out.push(Action::Transaction(vec![format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {tmp} UNIQUE USING INDEX {tmp}{deferrable}"
                )]));
            }
        }
        out
    }

    /// Renames the copies to the originals' names (the originals are gone
    /// with their column).
    pub(super) fn take_names(&self, table: &str, helpers: &Helpers) -> Vec<String> {
        let mut out = Vec::new();
        for i in &self.indexes {
            out.push(match &i.unique {
                Some((name, _)) => format!(
                    "ALTER TABLE {table} RENAME CONSTRAINT {} TO {}",
                    quote_ident(&i.tmp),
                    quote_ident(name)
                ),
                None => format!(
                    "ALTER INDEX {} RENAME TO {}",
                    helpers.index(&i.tmp),
                    quote_ident(&i.name)
                ),
            });
        }
        for c in &self.checks {
            out.push(format!(
                "ALTER TABLE {table} RENAME CONSTRAINT {} TO {}",
                quote_ident(&c.tmp),
                quote_ident(&c.name)
            ));
        }
        out
    }

    /// The reverse of [`Carried::take_names`].
    pub(super) fn give_names_back(&self, table: &str, helpers: &Helpers) -> Vec<String> {
        let mut out = Vec::new();
        for i in &self.indexes {
            out.push(match &i.unique {
                Some((name, _)) => format!(
                    "ALTER TABLE {table} RENAME CONSTRAINT {} TO {}",
                    quote_ident(name),
                    quote_ident(&i.tmp)
                ),
                None => format!(
                    "ALTER INDEX {} RENAME TO {}",
                    helpers.index(&i.name),
                    quote_ident(&i.tmp)
                ),
            });
        }
        for c in &self.checks {
            out.push(format!(
                "ALTER TABLE {table} RENAME CONSTRAINT {} TO {}",
                quote_ident(&c.name),
                quote_ident(&c.tmp)
            ));
        }
        out
    }

    /// The originals built again on the old column, each step safe to run
    /// twice (a reverse).
    pub(super) fn build_originals(&self, table: &str) -> Vec<Action> {
        let mut out = Vec::new();
        for c in &self.checks {
            let name = quote_ident(&c.name);
            out.push(Action::Transaction(vec![when(
                &format!("NOT {}", has_constraint(table, &c.name)),
                &[format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {name} {} NOT VALID",
                    c.on_old
                )],
            )]));
            if c.validated {
                out.push(Action::Alone(format!(
                    "ALTER TABLE {table} VALIDATE CONSTRAINT {name}"
                )));
            }
        }
        for i in &self.indexes {
            out.push(Action::Alone(index_again(&i.definition)));
            if let Some((name, deferrable)) = &i.unique {
                out.push(Action::Transaction(vec![when(
                    &format!("NOT {}", has_constraint(table, name)),
                    &[format!(
                        "ALTER TABLE {table} ADD CONSTRAINT {} UNIQUE USING INDEX {}{deferrable}",
                        quote_ident(name),
                        quote_ident(&i.name)
                    )],
                )]));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_are_stable_short_and_distinct() {
        let a = Helpers::new(
            "20260301120000",
            "ren",
            "public.users",
            &["name", "full_name"],
        );
        let b = Helpers::new("20260301120000", "ren", "public.users", &["name", "nick"]);
        assert_eq!(
            a.name("fn"),
            Helpers::new(
                "20260301120000",
                "ren",
                "public.users",
                &["name", "full_name"]
            )
            .name("fn")
        );
        assert_ne!(a.name("fn"), b.name("fn"));
        assert!(a.name("fn").starts_with("strata_20260301120000_ren_"));
        assert_eq!(a.function("fn"), format!("public.{}", a.name("fn")));
        let long = Helpers::new(&"9".repeat(80), "typ", "\"Sch\".\"User Data\"", &["x"]);
        assert!(
            long.name("trg").len() <= MAX_NAME_BYTES,
            "{}",
            long.name("trg")
        );
        assert!(long.function("fn").starts_with("\"Sch\"."));
    }

    #[test]
    fn steps_are_checked() {
        let ctx = Context {
            version: "1",
            step: Some("contract"),
            table: None,
        };
        assert_eq!(step_index("x", &ctx, &["expand", "contract"]), Ok(1));
        let ctx = Context {
            version: "1",
            step: Some("swap"),
            table: None,
        };
        let e = step_index("x", &ctx, &["expand", "contract"]).unwrap_err();
        assert_eq!(e.message, "`x` has no step `swap`");
        assert_eq!(
            e.help.as_deref(),
            Some("its steps are `expand`, `contract`, in that order")
        );
    }

    #[test]
    fn column_references_are_renamed_and_nothing_else() {
        let r = |sql: &str| rename_column_in(sql, "name", "full_name", false).unwrap();
        assert_eq!(
            r("CHECK ((length(name) > 0))"),
            "CHECK ((length(full_name) > 0))"
        );
        assert_eq!(
            r("CHECK ((name(x) = users.name))"),
            "CHECK ((name(x) = users.name))"
        );
        assert_eq!(
            r("CHECK (((x)::name = 'name'::text))"),
            "CHECK (((x)::name = 'name'::text))"
        );
        assert_eq!(
            rename_column_in("UNIQUE (\"User Data\")", "User Data", "\"u2\"", false).unwrap(),
            "UNIQUE (\"u2\")"
        );
        let def = "CREATE UNIQUE INDEX users_name_key ON public.name USING btree (lower(name)) WHERE (name IS NOT NULL)";
        assert_eq!(
            index_on(def, "users_name_key", "tmp_i0", "name", "full_name").unwrap(),
            "CREATE UNIQUE INDEX CONCURRENTLY tmp_i0 ON public.name USING btree (lower(full_name)) WHERE (full_name IS NOT NULL)"
        );
        assert!(index_on(def, "other", "tmp", "name", "x").is_err());
        assert_eq!(
            index_again("CREATE INDEX users_name_idx ON public.users USING btree (name)"),
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS users_name_idx ON public.users USING btree (name)"
        );
    }
}
