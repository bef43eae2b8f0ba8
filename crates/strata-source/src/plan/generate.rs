//! Plan generators: `strata new NAME --pattern PATTERN` writes a complete,
//! commented plan file for one of the design documents' patterns.
//!
//! A pattern is a generator of plan text, never a hidden behaviour: what
//! runs later is exactly what the written file says, and the reviewer reads
//! (and may edit) every phase, gate and validation before it runs.
//!
//! **Architecture Invariant:** generating is pure: flags in, TOML text out,
//! no database and no file system. Every value the user typed is written as
//! a TOML value by the `toml` crate (never pasted between quotes), and the
//! generated text is read back with [`super::parse`] before it is returned,
//! so a flag whose SQL does not parse is refused here, with its problem,
//! instead of becoming a file that `validate` refuses later.

use std::fmt::{self, Write as _};

use super::PlanProblem;

/// The patterns `strata new --pattern` knows, one per plan operation the
/// design documents describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// A nullable (or constant-default) column.
    AddColumn,
    /// A NOT NULL column on a table with rows.
    AddRequiredColumn,
    /// A column rename the running app never notices.
    RenameColumn,
    /// A type change through a shadow column.
    ChangeColumnType,
    /// One column into several computed ones.
    SplitColumn,
    /// An index built concurrently.
    AddIndex,
    /// NOT NULL through a validated check.
    SetNotNull,
    /// A `deleted_at` column, a partial index and a view of active rows.
    SoftDelete,
    /// A JSONB column with indexes.
    AddJsonbColumn,
    /// A foreign key on data that may hold orphans.
    AddForeignKey,
    /// A range-partitioned copy swapped in by rename.
    PartitionTable,
    /// A JSON array column into a child table.
    NormalizeJson,
    /// A column dropped after the app stopped using it.
    DropColumn,
    /// A table dropped after the app stopped using it.
    DropTable,
    /// A batched, resumable data change.
    Backfill,
}

impl Pattern {
    /// Every pattern, in the order the README lists them.
    pub const ALL: [Pattern; 15] = [
        Pattern::AddColumn,
        Pattern::AddRequiredColumn,
        Pattern::RenameColumn,
        Pattern::ChangeColumnType,
        Pattern::SplitColumn,
        Pattern::AddIndex,
        Pattern::SetNotNull,
        Pattern::SoftDelete,
        Pattern::AddJsonbColumn,
        Pattern::AddForeignKey,
        Pattern::PartitionTable,
        Pattern::NormalizeJson,
        Pattern::DropColumn,
        Pattern::DropTable,
        Pattern::Backfill,
    ];

    /// The name given to `--pattern` (`add-required-column`).
    pub fn name(self) -> &'static str {
        match self {
            Pattern::AddColumn => "add-column",
            Pattern::AddRequiredColumn => "add-required-column",
            Pattern::RenameColumn => "rename-column",
            Pattern::ChangeColumnType => "change-column-type",
            Pattern::SplitColumn => "split-column",
            Pattern::AddIndex => "add-index",
            Pattern::SetNotNull => "set-not-null",
            Pattern::SoftDelete => "soft-delete",
            Pattern::AddJsonbColumn => "add-jsonb-column",
            Pattern::AddForeignKey => "add-foreign-key",
            Pattern::PartitionTable => "partition-table",
            Pattern::NormalizeJson => "normalize-json",
            Pattern::DropColumn => "drop-column",
            Pattern::DropTable => "drop-table",
            Pattern::Backfill => "backfill",
        }
    }

    /// The pattern named `name` (also accepts the operation's `snake_case`).
    pub fn from_name(name: &str) -> Option<Pattern> {
        let name = name.replace('_', "-");
        Pattern::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The flags the pattern takes: the required ones, then the optional
    /// ones. A flag that is given but not listed here is an error, so a
    /// mistyped pattern never silently ignores what the user asked for.
    pub fn flags(self) -> (&'static [Flag], &'static [Flag]) {
        use Flag as F;
        match self {
            Pattern::AddColumn => (&[F::Table, F::Column, F::Type], &[F::Default]),
            Pattern::AddRequiredColumn => {
                (&[F::Table, F::Column, F::Type, F::Default], &[F::Backfill])
            }
            Pattern::RenameColumn => (&[F::Table, F::From, F::To], &[]),
            Pattern::ChangeColumnType => (&[F::Table, F::Column, F::Type], &[F::Using]),
            Pattern::SplitColumn => (&[F::Table, F::Column, F::Into], &[]),
            Pattern::AddIndex => (&[F::Table, F::Column], &[F::Unique, F::Where, F::Name]),
            Pattern::SetNotNull => (&[F::Table, F::Column], &[F::Default]),
            Pattern::SoftDelete => (&[F::Table], &[F::Column, F::View]),
            Pattern::AddJsonbColumn => (
                &[F::Table, F::Column],
                &[F::Default, F::Backfill, F::PathIndex],
            ),
            Pattern::AddForeignKey => (
                &[F::Table, F::Column, F::References, F::Orphans],
                &[F::OnDelete, F::ConstraintName],
            ),
            Pattern::PartitionTable => (
                &[F::Table, F::Key, F::Interval, F::RangeFrom, F::RangeTo],
                &[],
            ),
            Pattern::NormalizeJson => (&[F::Table, F::Column, F::Into, F::Field], &[]),
            Pattern::DropColumn => (&[F::Table, F::Column], &[]),
            Pattern::DropTable => (&[F::Table], &[]),
            Pattern::Backfill => (&[F::Table, F::Set], &[F::Where]),
        }
    }

    /// A complete example command line, for help texts and errors.
    pub fn example(self) -> &'static str {
        match self {
            Pattern::AddColumn => {
                "strata new users_nickname --pattern add-column --table users --column nickname --type text"
            }
            Pattern::AddRequiredColumn => {
                "strata new users_email_verified --pattern add-required-column --table users --column email_verified --type boolean --default false"
            }
            Pattern::RenameColumn => {
                "strata new users_full_name --pattern rename-column --table users --from name --to full_name"
            }
            Pattern::ChangeColumnType => {
                "strata new users_age_int --pattern change-column-type --table users --column age --type integer --using \"nullif(trim(age), '')::integer\""
            }
            Pattern::SplitColumn => {
                "strata new users_split_name --pattern split-column --table users --column full_name --into \"first_name:varchar(100):split_part(trim(full_name), ' ', 1)\" --into \"last_name:varchar(100):nullif(substr(trim(full_name), length(split_part(trim(full_name), ' ', 1)) + 2), '')\""
            }
            Pattern::AddIndex => {
                "strata new users_email_idx --pattern add-index --table users --column \"(lower(email))\" --unique"
            }
            Pattern::SetNotNull => {
                "strata new users_email_required --pattern set-not-null --table users --column email"
            }
            Pattern::SoftDelete => {
                "strata new users_soft_delete --pattern soft-delete --table users"
            }
            Pattern::AddJsonbColumn => {
                "strata new users_prefs --pattern add-jsonb-column --table users --column prefs --path-index \"prefs->>'theme'\""
            }
            Pattern::AddForeignKey => {
                "strata new orders_user_fk --pattern add-foreign-key --table orders --column user_id --references \"users(id)\" --orphans move_to:orphaned_orders"
            }
            Pattern::PartitionTable => {
                "strata new events_partitioned --pattern partition-table --table events --key created_at --interval month --range-from 2024-01-01 --range-to 2025-01-01"
            }
            Pattern::NormalizeJson => {
                "strata new order_items --pattern normalize-json --table orders --column items --into order_items --field \"sku:text:elem->>'sku'\" --field \"qty:integer:(elem->>'qty')::integer\""
            }
            Pattern::DropColumn => {
                "strata new users_drop_legacy --pattern drop-column --table users --column legacy"
            }
            Pattern::DropTable => {
                "strata new drop_old_sessions --pattern drop-table --table old_sessions"
            }
            Pattern::Backfill => {
                "strata new users_email_lower --pattern backfill --table users --set \"email_lower = lower(email)\" --where \"email_lower IS NULL\""
            }
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A flag of `strata new --pattern`, for messages and for checking which
/// flags a pattern takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Flag {
    Table,
    Column,
    Type,
    Default,
    From,
    To,
    Using,
    Into,
    Field,
    References,
    Orphans,
    OnDelete,
    Key,
    Interval,
    RangeFrom,
    RangeTo,
    Set,
    Where,
    Backfill,
    Unique,
    Name,
    ConstraintName,
    View,
    PathIndex,
}

impl Flag {
    /// The flag as typed (`--range-from`).
    pub fn name(self) -> &'static str {
        match self {
            Flag::Table => "--table",
            Flag::Column => "--column",
            Flag::Type => "--type",
            Flag::Default => "--default",
            Flag::From => "--from",
            Flag::To => "--to",
            Flag::Using => "--using",
            Flag::Into => "--into",
            Flag::Field => "--field",
            Flag::References => "--references",
            Flag::Orphans => "--orphans",
            Flag::OnDelete => "--on-delete",
            Flag::Key => "--key",
            Flag::Interval => "--interval",
            Flag::RangeFrom => "--range-from",
            Flag::RangeTo => "--range-to",
            Flag::Set => "--set",
            Flag::Where => "--where",
            Flag::Backfill => "--backfill",
            Flag::Unique => "--unique",
            Flag::Name => "--index-name",
            Flag::ConstraintName => "--constraint-name",
            Flag::View => "--view",
            Flag::PathIndex => "--path-index",
        }
    }
}

/// What the user gave on the command line; every field is optional here,
/// and [`generate`] says which pattern needs which.
#[derive(Debug, Clone, Default)]
pub struct PatternArgs {
    /// `--table`: the table, as SQL.
    pub table: Option<String>,
    /// `--column` (repeatable: the columns of an index or a foreign key).
    pub columns: Vec<String>,
    /// `--type`: a column type, as SQL.
    pub column_type: Option<String>,
    /// `--default`: a default expression, as SQL.
    pub default: Option<String>,
    /// `--from`: the current column name (rename).
    pub from: Option<String>,
    /// `--to`: the new column name (rename).
    pub to: Option<String>,
    /// `--using`: how an old value becomes a new one (type change).
    pub using: Option<String>,
    /// `--into`: `NAME:TYPE:EXPRESSION` per new column (split), or the
    /// child table (normalize-json).
    pub into: Vec<String>,
    /// `--field`: `NAME:TYPE:EXPRESSION` per child column (normalize-json).
    pub fields: Vec<String>,
    /// `--references`: `table(col, …)` (foreign key).
    pub references: Option<String>,
    /// `--orphans`: `fail`, `delete`, `set_null` or `move_to:TABLE`.
    pub orphans: Option<String>,
    /// `--on-delete`: the foreign key's `ON DELETE` action.
    pub on_delete: Option<String>,
    /// `--key`: the partition key column.
    pub key: Option<String>,
    /// `--interval`: `day`, `month`, `quarter` or `year`.
    pub interval: Option<String>,
    /// `--range-from`: the first partition's lower bound (`2024-01-01`).
    pub range_from: Option<String>,
    /// `--range-to`: the last partition's upper bound.
    pub range_to: Option<String>,
    /// `--set`: a backfill's assignments.
    pub set: Option<String>,
    /// `--where`: a backfill's rows, or a partial index's predicate.
    pub predicate: Option<String>,
    /// `--backfill`: an expression for existing rows.
    pub backfill: Option<String>,
    /// `--unique`: a unique index.
    pub unique: bool,
    /// `--index-name`: the index's name instead of PostgreSQL's default.
    pub name: Option<String>,
    /// `--constraint-name`: the foreign key's name instead of PostgreSQL's default.
    pub constraint_name: Option<String>,
    /// `--view`: the soft-delete view's name.
    pub view: Option<String>,
    /// `--path-index` (repeatable): expressions to index on a JSONB column.
    pub path_indexes: Vec<String>,
}

impl PatternArgs {
    /// The flags that were given.
    pub fn given(&self) -> Vec<Flag> {
        let mut out = Vec::new();
        let mut add = |flag, set: bool| {
            if set {
                out.push(flag);
            }
        };
        add(Flag::Table, self.table.is_some());
        add(Flag::Column, !self.columns.is_empty());
        add(Flag::Type, self.column_type.is_some());
        add(Flag::Default, self.default.is_some());
        add(Flag::From, self.from.is_some());
        add(Flag::To, self.to.is_some());
        add(Flag::Using, self.using.is_some());
        add(Flag::Into, !self.into.is_empty());
        add(Flag::Field, !self.fields.is_empty());
        add(Flag::References, self.references.is_some());
        add(Flag::Orphans, self.orphans.is_some());
        add(Flag::OnDelete, self.on_delete.is_some());
        add(Flag::Key, self.key.is_some());
        add(Flag::Interval, self.interval.is_some());
        add(Flag::RangeFrom, self.range_from.is_some());
        add(Flag::RangeTo, self.range_to.is_some());
        add(Flag::Set, self.set.is_some());
        add(Flag::Where, self.predicate.is_some());
        add(Flag::Backfill, self.backfill.is_some());
        add(Flag::Unique, self.unique);
        add(Flag::Name, self.name.is_some());
        add(Flag::ConstraintName, self.constraint_name.is_some());
        add(Flag::View, self.view.is_some());
        add(Flag::PathIndex, !self.path_indexes.is_empty());
        out
    }
}

/// Why a plan could not be generated. Nothing is written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatternError {
    /// No pattern of that name.
    #[error("unknown pattern `{name}`\n  help: the patterns are {}", Pattern::ALL.map(Pattern::name).join(", "))]
    Unknown {
        /// What was given.
        name: String,
    },
    /// A flag the pattern needs is missing.
    #[error("--pattern {pattern} needs {flag}\n  help: for example: {}", .pattern.example())]
    Missing {
        /// The pattern.
        pattern: Pattern,
        /// The missing flag (`--table`).
        flag: &'static str,
    },
    /// A flag the pattern does not use was given.
    #[error("--pattern {pattern} does not use {flag}\n  help: it takes {}; for example: {}", takes(*.pattern), .pattern.example())]
    Unused {
        /// The pattern.
        pattern: Pattern,
        /// The flag given.
        flag: &'static str,
    },
    /// A flag's value is malformed.
    #[error("{flag} {value:?}: {why}\n  help: for example: {}", .pattern.example())]
    Invalid {
        /// The pattern.
        pattern: Pattern,
        /// The flag.
        flag: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A value does not parse as the SQL its flag holds (checked by reading
    /// the generated plan back).
    #[error("the values given do not make a valid plan:\n{}\n  help: write each flag's value as in SQL; for example: {}", .problems.iter().map(|p| format!("  {}", p.message)).collect::<Vec<_>>().join("\n"), .pattern.example())]
    Plan {
        /// The pattern.
        pattern: Pattern,
        /// What the plan reader found.
        problems: Vec<PlanProblem>,
    },
}

/// "--table, --column and --type (optional: --default)".
fn takes(pattern: Pattern) -> String {
    let (required, optional) = pattern.flags();
    let mut out = required
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ");
    if !optional.is_empty() {
        let optional = optional
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(out, " (optional: {optional})");
    }
    out
}

/// The text of a plan file for `pattern`, checked by reading it back.
pub fn generate(pattern: Pattern, args: &PatternArgs) -> Result<String, PatternError> {
    let (required, optional) = pattern.flags();
    for flag in args.given() {
        if !required.contains(&flag) && !optional.contains(&flag) {
            return Err(PatternError::Unused {
                pattern,
                flag: flag.name(),
            });
        }
    }
    for &flag in required {
        if !args.given().contains(&flag) {
            return Err(PatternError::Missing {
                pattern,
                flag: flag.name(),
            });
        }
    }
    let g = Gen { pattern, args };
    if !matches!(pattern, Pattern::AddIndex | Pattern::AddForeignKey) {
        g.one_column()?;
    }
    let text = match pattern {
        Pattern::AddColumn => g.add_column(),
        Pattern::AddRequiredColumn => g.add_required_column(),
        Pattern::RenameColumn => g.rename_column(),
        Pattern::ChangeColumnType => g.change_column_type(),
        Pattern::SplitColumn => g.split_column()?,
        Pattern::AddIndex => g.add_index(),
        Pattern::SetNotNull => g.set_not_null(),
        Pattern::SoftDelete => g.soft_delete(),
        Pattern::AddJsonbColumn => g.add_jsonb_column(),
        Pattern::AddForeignKey => g.add_foreign_key()?,
        Pattern::PartitionTable => g.partition_table()?,
        Pattern::NormalizeJson => g.normalize_json()?,
        Pattern::DropColumn => g.drop_column(),
        Pattern::DropTable => g.drop_table(),
        Pattern::Backfill => g.backfill(),
    };
    super::parse(&text).map_err(|problems| PatternError::Plan { pattern, problems })?;
    Ok(text)
}

/// A TOML value as the plan file writes it.
#[derive(Clone)]
enum V {
    /// A string, written by the `toml` crate (quoted and escaped).
    S(String),
    /// `true` / `false`.
    B(bool),
    /// An array of values, on one line.
    List(Vec<V>),
    /// An inline table, on one line.
    Table(Vec<(&'static str, V)>),
    /// An array of inline tables, one per line (split and child columns).
    Rows(Vec<V>),
}

fn s(text: &str) -> V {
    V::S(text.to_owned())
}

impl V {
    fn write(&self, out: &mut String, indent: &str) {
        match self {
            V::S(text) => out.push_str(&toml::Value::String(text.clone()).to_string()),
            V::B(b) => out.push_str(if *b { "true" } else { "false" }),
            V::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write(out, indent);
                }
                out.push(']');
            }
            V::Table(pairs) => {
                out.push_str("{ ");
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(key);
                    out.push_str(" = ");
                    value.write(out, indent);
                }
                out.push_str(" }");
            }
            V::Rows(rows) => {
                out.push_str("[\n");
                for row in rows {
                    out.push_str(indent);
                    out.push_str("    ");
                    row.write(out, indent);
                    out.push_str(",\n");
                }
                out.push_str(indent);
                out.push_str("  ]");
            }
        }
    }
}

/// One operation: `op` and its keys, in the order the README lists them.
struct Op {
    comment: Vec<String>,
    pairs: Vec<(&'static str, V)>,
}

fn op(name: &str, pairs: Vec<(&'static str, V)>) -> Op {
    let mut all = vec![("op", s(name))];
    all.extend(pairs);
    Op {
        comment: Vec::new(),
        pairs: all,
    }
}

impl Op {
    /// A comment line above the operation.
    fn note(mut self, text: impl Into<String>) -> Op {
        self.comment.push(text.into());
        self
    }
}

/// What must happen before the next phase.
enum GateText {
    None,
    Deploy(String),
}

/// One `[[phase]]`.
struct PhaseText {
    name: &'static str,
    comment: Vec<String>,
    operations: Vec<Op>,
    gate: Option<GateText>,
}

fn phase(name: &'static str, comment: &[&str], operations: Vec<Op>) -> PhaseText {
    PhaseText {
        name,
        comment: comment.iter().map(|c| (*c).to_owned()).collect(),
        operations,
        gate: None,
    }
}

impl PhaseText {
    fn deploy(mut self, text: impl Into<String>) -> PhaseText {
        self.gate = Some(GateText::Deploy(text.into()));
        self
    }

    fn no_gate(mut self) -> PhaseText {
        self.gate = Some(GateText::None);
        self
    }
}

/// Writes `# text` lines, wrapped near 78 columns.
fn comment(out: &mut String, indent: &str, text: &str) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent.len() + 2 + line.len() + 1 + word.len() > 78 {
            let _ = writeln!(out, "{indent}# {line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    let _ = writeln!(out, "{indent}# {line}");
}

/// The whole file: header comments, description, phases.
fn render(
    pattern: Pattern,
    description: &str,
    header: &[String],
    phases: Vec<PhaseText>,
) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        "",
        &format!(
            "Generated by `strata new --pattern {pattern}`. Review every phase and gate: \
             what runs is exactly what this file says (`strata up --dry-run` prints the SQL \
             of each phase; `strata lint` checks it)."
        ),
    );
    for paragraph in header {
        out.push_str("#\n");
        comment(&mut out, "", paragraph);
    }
    out.push('\n');
    out.push_str("description = ");
    s(description).write(&mut out, "");
    out.push('\n');
    out.push_str(
        "independent = false   # later migrations wait until this plan has run its last phase\n",
    );
    for phase in phases {
        out.push_str("\n[[phase]]\n");
        for c in &phase.comment {
            comment(&mut out, "", c);
        }
        out.push_str("name = ");
        s(phase.name).write(&mut out, "");
        out.push('\n');
        if phase.operations.is_empty() {
            out.push_str("operations = []\n");
        } else {
            out.push_str("operations = [\n");
            for op in &phase.operations {
                for c in &op.comment {
                    comment(&mut out, "  ", c);
                }
                out.push_str("  ");
                V::Table(op.pairs.iter().map(|(k, v)| (*k, v.clone())).collect())
                    .write(&mut out, "  ");
                out.push_str(",\n");
            }
            out.push_str("]\n");
        }
        match phase.gate {
            None => {}
            Some(GateText::None) => out.push_str("gate = \"none\"\n"),
            Some(GateText::Deploy(text)) => {
                out.push_str("gate = ");
                V::Table(vec![("deploy", V::S(text))]).write(&mut out, "");
                out.push('\n');
            }
        }
    }
    out
}

/// `NAME:TYPE:EXPRESSION` → (name, type, expression). The expression is
/// everything after the second colon, so casts (`::integer`) stay in it.
fn new_column(text: &str) -> Option<(String, String, String)> {
    let (name, rest) = text.split_once(':')?;
    let (column_type, expression) = rest.split_once(':')?;
    let (name, column_type, expression) = (name.trim(), column_type.trim(), expression.trim());
    if name.is_empty() || column_type.is_empty() || expression.is_empty() {
        return None;
    }
    Some((
        name.to_owned(),
        column_type.to_owned(),
        expression.to_owned(),
    ))
}

/// The generator of one pattern's text from its flags (all required flags
/// are present when its methods run).
struct Gen<'a> {
    pattern: Pattern,
    args: &'a PatternArgs,
}

impl Gen<'_> {
    fn table(&self) -> &str {
        self.args.table.as_deref().unwrap_or_default()
    }

    /// The single `--column` (a pattern that takes several uses `columns`).
    fn column(&self) -> &str {
        self.args
            .columns
            .first()
            .map(String::as_str)
            .unwrap_or_default()
    }

    fn opt(&self, value: &Option<String>) -> Option<V> {
        value.as_deref().map(s)
    }

    fn invalid(&self, flag: Flag, value: &str, why: &str) -> PatternError {
        PatternError::Invalid {
            pattern: self.pattern,
            flag: flag.name(),
            value: value.to_owned(),
            why: why.to_owned(),
        }
    }

    /// Refuses a second `--column` for patterns about one column.
    fn one_column(&self) -> Result<(), PatternError> {
        match self.args.columns.as_slice() {
            [_, second, ..] => Err(self.invalid(
                Flag::Column,
                second,
                "this pattern changes one column; give --column once",
            )),
            _ => Ok(()),
        }
    }

    fn render(&self, description: &str, header: &[String], phases: Vec<PhaseText>) -> String {
        render(self.pattern, description, header, phases)
    }

    fn add_column(&self) -> String {
        let (t, c) = (self.table(), self.column());
        let mut pairs = vec![
            ("table", s(t)),
            ("column", s(c)),
            (
                "type",
                s(self.args.column_type.as_deref().unwrap_or_default()),
            ),
        ];
        pairs.extend(self.opt(&self.args.default).map(|d| ("default", d)));
        self.render(
            &format!("{t}.{c}: a new column"),
            &[format!(
                "A nullable column, or one with a constant default, is metadata only: no rewrite, \
                 and the app version running now ignores it. Deploy the app version that writes \
                 {c} after this plan has run."
            )],
            vec![phase(
                "expand",
                &["ADD COLUMN in a short transaction under lock_timeout."],
                vec![op("add_column", pairs)],
            )],
        )
    }

    fn add_required_column(&self) -> String {
        let (t, c) = (self.table(), self.column());
        let default = self.args.default.as_deref().unwrap_or_default();
        let mut pairs = vec![
            ("table", s(t)),
            ("column", s(c)),
            (
                "type",
                s(self.args.column_type.as_deref().unwrap_or_default()),
            ),
            ("default", s(default)),
        ];
        pairs.extend(self.opt(&self.args.backfill).map(|b| ("backfill", b)));
        let existing = match &self.args.backfill {
            Some(b) => format!("from `{b}`"),
            None => format!("with the default `{default}`"),
        };
        self.render(
            &format!("{t}.{c}: a required column, default {default}"),
            &[format!(
                "The column is added nullable with its default (the app version running now \
                 keeps inserting: its rows get the default), existing rows are filled {existing} \
                 in resumable batches, then NOT NULL comes through a CHECK … NOT VALID, \
                 VALIDATE and SET NOT NULL, so no long ACCESS EXCLUSIVE scan."
            ),
                format!("After this plan: deploy the app version that writes {c} on every insert.")],
            vec![phase(
                "expand",
                &["add_required_column: nullable with default → batched backfill → validated check → SET NOT NULL → the check dropped."],
                vec![op("add_required_column", pairs)],
            )],
        )
    }

    fn rename_column(&self) -> String {
        let t = self.table();
        let from = self.args.from.as_deref().unwrap_or_default();
        let to = self.args.to.as_deref().unwrap_or_default();
        let keys = || vec![("table", s(t)), ("from", s(from)), ("to", s(to))];
        let mut contract = vec![("step", s("contract"))];
        contract.extend(keys());
        let mut expand = vec![("step", s("expand"))];
        expand.extend(keys());
        self.render(
            &format!("{t}.{from} renamed to {to}, with no app downtime"),
            &[
                format!(
                    "Deploy steps: (1) `strata up` runs expand: {to} appears next to {from}, and a \
                     trigger keeps both equal whichever one the app writes. (2) Deploy the app \
                     version that reads and writes {to}; then `strata up --continue V`. (3) Once \
                     no running app version, job or report uses {from}, `strata up --continue V` \
                     runs contract: {from} and the trigger are dropped, and the catalog is what \
                     ALTER TABLE … RENAME COLUMN gives."
                ),
                "Refused with the fix when run: primary key, foreign key, identity or generated columns, and tables that views depend on.".to_owned(),
            ],
            vec![
                phase(
                    "expand",
                    &[&format!("{to} with {from}'s type, the two-way sync trigger, a batched backfill, NOT NULL, checks and indexes copied, and a validation that every row has both equal.")],
                    vec![op("rename_column", expand)],
                )
                .deploy(format!(
                    "deploy the app version that reads and writes {to} instead of {from} \
                     (the trigger keeps {from} in step for instances of the old version still running)"
                )),
                phase(
                    "switch",
                    &["Nothing changes here: the phase checks the columns are still in step, and its gate waits until the old column is unused."],
                    vec![op(
                        "validate",
                        vec![
                            (
                                "sql",
                                s(&format!(
                                    "SELECT {from}, {to} FROM {t} WHERE {from} IS DISTINCT FROM {to}"
                                )),
                            ),
                            (
                                "message",
                                s(&format!(
                                    "rows where {from} and {to} differ: the sync trigger is missing or was bypassed"
                                )),
                            ),
                        ],
                    )],
                )
                .deploy(format!(
                    "no running app version, job or report uses {t}.{from} any more \
                     (every instance of the version before {to} is gone)"
                )),
                phase(
                    "contract",
                    &[&format!("One short transaction: the trigger, its function and {from} are dropped, and {to} takes over {from}'s default and the copies the originals' names.")],
                    vec![op("rename_column", contract)],
                ),
            ],
        )
    }

    fn change_column_type(&self) -> String {
        let (t, c) = (self.table(), self.column());
        let ty = self.args.column_type.as_deref().unwrap_or_default();
        let keys = |step: &str| {
            let mut pairs = vec![
                ("step", s(step)),
                ("table", s(t)),
                ("column", s(c)),
                ("type", s(ty)),
            ];
            pairs.extend(self.opt(&self.args.using).map(|u| ("using", u)));
            pairs
        };
        let how = match &self.args.using {
            Some(u) => format!("`{u}`"),
            None => "a cast".to_owned(),
        };
        self.render(
            &format!("{t}.{c} becomes {ty}, with no app downtime"),
            &[format!(
                "Deploy steps: (1) `strata up` runs expand: a shadow column of type {ty}, kept \
                 in sync by a trigger and filled in batches with {how}; every row must convert \
                 first (on failure the first 20 keys are shown and nothing else has run). (2) \
                 Deploy the app version that works with {c} as {ty}; then `strata up --continue V` \
                 runs contract: the shadow takes {c}'s place in one short transaction under \
                 lock_timeout, giving the catalog of ALTER TABLE … ALTER COLUMN … TYPE."
            ),
            "The contract step has no reverse: the old values are gone (restore the backup taken before it).".to_owned()],
            vec![
                phase(
                    "expand",
                    &["Shadow column, sync trigger, conversion check, batched backfill, NOT NULL, checks and indexes copied concurrently, and a validation that every shadow value is in sync."],
                    vec![op("change_column_type", keys("expand"))],
                )
                .deploy(format!(
                    "deploy the app version that reads {t}.{c} as {ty} and writes only values that convert to it"
                )),
                phase(
                    "contract",
                    &["The swap: trigger and functions dropped, the old column dropped, the shadow renamed."],
                    vec![op("change_column_type", keys("contract"))],
                ),
            ],
        )
    }

    fn split_column(&self) -> Result<String, PatternError> {
        let (t, c) = (self.table(), self.column());
        let mut rows = Vec::new();
        let mut names = Vec::new();
        for into in &self.args.into {
            let (name, ty, expr) = new_column(into).ok_or_else(|| {
                self.invalid(Flag::Into, into, "write NAME:TYPE:EXPRESSION, e.g. first_name:varchar(100):split_part(full_name, ' ', 1)")
            })?;
            rows.push(V::Table(vec![
                ("column", s(&name)),
                ("type", s(&ty)),
                ("expression", s(&expr)),
            ]));
            names.push(name);
        }
        let names = names.join(", ");
        let keys = |step: &str| {
            vec![
                ("step", s(step)),
                ("table", s(t)),
                ("column", s(c)),
                ("into", V::Rows(rows.clone())),
            ]
        };
        Ok(self.render(
            &format!("{t}.{c} split into {names}"),
            &[format!(
                "Deploy steps: (1) `strata up` runs expand: {names} appear, a trigger computes \
                 them from {c} on every write ({c} stays the truth), rows are filled in batches \
                 and checked (the first 20 keys of rows that split badly are shown). (2) Deploy \
                 the app version that reads {names} and writes them as well as {c}; `strata up \
                 --continue V` drops the trigger. (3) Deploy the app version that no longer uses \
                 {c}; `strata up --continue V` drops it, after a backup."
            )],
            vec![
                phase(
                    "expand",
                    &["New columns, the trigger, a batched backfill, and a validation of the split."],
                    vec![op("split_column", keys("expand"))],
                )
                .deploy(format!(
                    "deploy the app version that reads {names} and writes them itself, together with {c}"
                )),
                phase(
                    "switch",
                    &["The trigger and its function are dropped: from now on the app writes the new columns."],
                    vec![op("split_column", keys("contract"))],
                )
                .deploy(format!(
                    "deploy the app version that no longer reads or writes {t}.{c}"
                )),
                phase(
                    "contract",
                    &["The old column goes, after a backup (its reverse is `strata rollback V --from-backup PATH`)."],
                    vec![op("drop_column", vec![("table", s(t)), ("column", s(c))])],
                ),
            ],
        ))
    }

    fn add_index(&self) -> String {
        let t = self.table();
        let mut pairs = vec![("table", s(t))];
        pairs.extend(self.opt(&self.args.name).map(|n| ("name", n)));
        pairs.push((
            "columns",
            V::List(self.args.columns.iter().map(|c| s(c)).collect()),
        ));
        if self.args.unique {
            pairs.push(("unique", V::B(true)));
        }
        pairs.extend(self.opt(&self.args.predicate).map(|p| ("where", p)));
        let what = if self.args.unique {
            "a unique index"
        } else {
            "an index"
        };
        self.render(
            &format!("{what} on {t} ({})", self.args.columns.join(", ")),
            &["CREATE INDEX CONCURRENTLY runs outside a transaction, so reads and writes go on while it builds; an INVALID index left by a failed build is dropped before the retry.".to_owned()],
            vec![phase("expand", &[], vec![op("add_index", pairs)])],
        )
    }

    fn set_not_null(&self) -> String {
        let (t, c) = (self.table(), self.column());
        let mut operations = Vec::new();
        if let Some(d) = &self.args.default {
            operations.push(
                op(
                    "backfill",
                    vec![
                        ("table", s(t)),
                        ("set", s(&format!("{c} = {d}"))),
                        ("where", s(&format!("{c} IS NULL"))),
                    ],
                )
                .note(format!("Rows still NULL get {d}, in resumable batches.")),
            );
        }
        operations.push(op("set_not_null", vec![("table", s(t)), ("column", s(c))]));
        self.render(
            &format!("{t}.{c} becomes NOT NULL"),
            &[format!(
                "Run this plan only once the deployed app writes {c} on every insert and update: \
                 otherwise its writes fail as soon as the check is in place."
            ),
            "CHECK (… IS NOT NULL) NOT VALID, a validation that lists the first 20 keys of rows still NULL, VALIDATE CONSTRAINT (reads and writes go on), then SET NOT NULL uses the validated check instead of scanning under ACCESS EXCLUSIVE, and the check is dropped.".to_owned()],
            vec![phase("contract", &[], operations)],
        )
    }

    fn soft_delete(&self) -> String {
        let t = self.table();
        let mut pairs = vec![("table", s(t))];
        pairs.extend(
            self.opt(&self.args.columns.first().cloned())
                .map(|c| ("column", c)),
        );
        pairs.extend(self.opt(&self.args.view).map(|v| ("view", v)));
        let column = self
            .args
            .columns
            .first()
            .map_or("deleted_at", String::as_str);
        self.render(
            &format!("soft delete for {t}"),
            &[format!(
                "A nullable {column} timestamptz column (metadata only), a partial index of the \
                 active rows built concurrently, and a view of the active rows. After this plan, \
                 deploy the app version that reads through the view (or filters {column} IS NULL) \
                 and deletes by setting {column} = now()."
            )],
            vec![phase("expand", &[], vec![op("soft_delete", pairs)])],
        )
    }

    fn add_jsonb_column(&self) -> String {
        let (t, c) = (self.table(), self.column());
        let mut pairs = vec![("table", s(t)), ("column", s(c))];
        pairs.extend(self.opt(&self.args.default).map(|d| ("default", d)));
        pairs.extend(self.opt(&self.args.backfill).map(|b| ("backfill", b)));
        if !self.args.path_indexes.is_empty() {
            pairs.push((
                "path_indexes",
                V::List(self.args.path_indexes.iter().map(|p| s(p)).collect()),
            ));
        }
        self.render(
            &format!("{t}.{c}: a jsonb column"),
            &[format!(
                "A jsonb column with a constant default (stored in the catalog, no rewrite), \
                 existing rows filled in batches when a backfill is given, a GIN index and one \
                 expression index per path, all built concurrently. After this plan, deploy the \
                 app version that reads and writes {c}."
            )],
            vec![phase("expand", &[], vec![op("add_jsonb_column", pairs)])],
        )
    }

    fn add_foreign_key(&self) -> Result<String, PatternError> {
        let t = self.table();
        let references = self.args.references.as_deref().unwrap_or_default();
        let (ref_table, ref_columns) = parse_references(references);
        if ref_columns.is_empty() && ref_table != t {
            return Err(self.invalid(
                Flag::References,
                references,
                "name the referenced columns: --references \"users(id)\" (only a self-reference may leave them out)",
            ));
        }
        if ref_table.is_empty() {
            return Err(self.invalid(Flag::References, references, "name the referenced table"));
        }
        let orphans_text = self.args.orphans.as_deref().unwrap_or_default();
        let (orphans, policy) = match orphans_text.replace('-', "_").as_str() {
            "fail" => (
                s("fail"),
                "the plan stops and lists the first 20 orphans before anything changes".to_owned(),
            ),
            "delete" => (
                s("delete"),
                "orphans are deleted in batches, after a backup".to_owned(),
            ),
            "set_null" => (
                s("set_null"),
                "the key columns of orphans are set to NULL in batches, after a backup".to_owned(),
            ),
            other => match other.strip_prefix("move_to:") {
                Some(side) if !side.trim().is_empty() => (
                    V::Table(vec![(
                        "move_to",
                        s(orphans_text["move_to:".len()..].trim()),
                    )]),
                    format!("orphans are moved to {} in one statement", side.trim()),
                ),
                _ => {
                    return Err(self.invalid(
                        Flag::Orphans,
                        orphans_text,
                        "write fail, delete, set_null or move_to:TABLE",
                    ))
                }
            },
        };
        let mut pairs = vec![
            ("table", s(t)),
            (
                "columns",
                V::List(self.args.columns.iter().map(|c| s(c)).collect()),
            ),
            ("references", s(&ref_table)),
        ];
        if !ref_columns.is_empty() {
            pairs.push((
                "references_columns",
                V::List(ref_columns.iter().map(|c| s(c)).collect()),
            ));
        }
        pairs.extend(self.opt(&self.args.constraint_name).map(|n| ("name", n)));
        pairs.push(("orphans", orphans));
        pairs.extend(self.opt(&self.args.on_delete).map(|d| ("on_delete", d)));
        let cols = self.args.columns.join(", ");
        Ok(self.render(
            &format!("{t} ({cols}) references {ref_table}"),
            &[format!(
                "Orphans are rows whose key is set and matches no {ref_table} row: {policy}. A \
                 covering index is built concurrently when none exists, the constraint is added \
                 NOT VALID in a short transaction (from then on no new orphan can be written), \
                 then VALIDATE CONSTRAINT scans while reads and writes go on."
            )],
            vec![phase("expand", &[], vec![op("add_foreign_key", pairs)])],
        ))
    }

    fn partition_table(&self) -> Result<String, PatternError> {
        let t = self.table();
        let interval = self.args.interval.as_deref().unwrap_or_default();
        if !matches!(interval, "day" | "month" | "quarter" | "year") {
            return Err(self.invalid(
                Flag::Interval,
                interval,
                "write day, month, quarter or year",
            ));
        }
        for (flag, value) in [
            (Flag::RangeFrom, &self.args.range_from),
            (Flag::RangeTo, &self.args.range_to),
        ] {
            let value = value.as_deref().unwrap_or_default();
            if chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d").is_err() {
                return Err(self.invalid(flag, value, "write a date, YYYY-MM-DD"));
            }
        }
        let key = self.args.key.as_deref().unwrap_or_default();
        let keys = |step: &str| {
            vec![
                ("step", s(step)),
                ("table", s(t)),
                ("key", s(key)),
                ("interval", s(interval)),
                (
                    "from",
                    s(self.args.range_from.as_deref().unwrap_or_default()),
                ),
                ("to", s(self.args.range_to.as_deref().unwrap_or_default())),
            ]
        };
        Ok(self.render(
            &format!("{t} partitioned by range of {key}, one partition per {interval}"),
            &[format!(
                "Deploy steps: (1) `strata up` runs expand (a partitioned copy of {t} with its \
                 columns, constraints and indexes, kept in sync by a trigger, filled in batches \
                 and validated) and, at once, swap: one short transaction under lock_timeout \
                 renames {t} to {t}_old and the copy to {t}; the app notices nothing. (2) Once \
                 the app is seen working on the partitioned {t}, `strata up --continue V` drops \
                 {t}_old after a backup. Until then `strata rollback V --phase 2` swaps back \
                 without losing a write."
            ),
            "Refused with the fix when run: no primary key, a primary key or unique constraint without the partition key, identity columns, and views, foreign keys of other tables or app triggers on the table.".to_owned(),
            "To choose the moment of the swap, make the first gate a deploy gate: `strata up --continue V` then passes it.".to_owned()],
            vec![
                phase(
                    "expand",
                    &["Partitioned copy, sync trigger, batched copy, row-count and sample validations."],
                    vec![op("partition_table", keys("expand"))],
                )
                .no_gate(),
                phase(
                    "swap",
                    &["Renames in one short transaction; writes to the new table are applied to the old one too, so the swap can be reversed."],
                    vec![op("partition_table", keys("swap"))],
                )
                .deploy(format!(
                    "the app is seen working on the partitioned {t} (nothing to change in it: {t}_old goes next, and only a backup brings it back)"
                )),
                phase(
                    "contract",
                    &[],
                    vec![op("partition_table", keys("contract"))],
                ),
            ],
        ))
    }

    fn normalize_json(&self) -> Result<String, PatternError> {
        let (t, c) = (self.table(), self.column());
        let into = match self.args.into.as_slice() {
            [one] if !one.contains(':') => one.as_str(),
            _ => {
                return Err(self.invalid(
                    Flag::Into,
                    &self.args.into.join(" "),
                    "give --into once, the child table's name (its columns go in --field NAME:TYPE:EXPRESSION)",
                ))
            }
        };
        let mut rows = Vec::new();
        for field in &self.args.fields {
            let (name, ty, expr) = new_column(field).ok_or_else(|| {
                self.invalid(Flag::Field, field, "write NAME:TYPE:EXPRESSION over `elem`, the array element, e.g. sku:text:elem->>'sku'")
            })?;
            rows.push(V::Table(vec![
                ("column", s(&name)),
                ("type", s(&ty)),
                ("expression", s(&expr)),
            ]));
        }
        let keys = |step: &str| {
            vec![
                ("step", s(step)),
                ("table", s(t)),
                ("column", s(c)),
                ("into", s(into)),
                ("columns", V::Rows(rows.clone())),
            ]
        };
        Ok(self.render(
            &format!("{t}.{c} normalized into {into}"),
            &[format!(
                "Deploy steps: (1) `strata up` runs expand: every {c} must be a JSON array or \
                 NULL; {into} is created (with the parent's key, a foreign key ON DELETE \
                 CASCADE, the element's place as ordinal, and the fields), a trigger on {t} \
                 keeps it in step while the app writes {c}, rows are copied in batches and each \
                 parent's child count is checked. (2) Deploy the app version that reads and \
                 writes {into} and no longer uses {t}.{c}; `strata up --continue V` drops the \
                 trigger and {c}, after a backup."
            )],
            vec![
                phase(
                    "expand",
                    &[],
                    vec![op("normalize_json", keys("expand"))],
                )
                .deploy(format!(
                    "deploy the app version that reads and writes {into} and no longer reads or writes {t}.{c}"
                )),
                phase(
                    "contract",
                    &[&format!("The trigger, its function and {c} are dropped (only the backup brings the arrays back).")],
                    vec![op("normalize_json", keys("contract"))],
                ),
            ],
        ))
    }

    fn drop_column(&self) -> String {
        let (t, c) = (self.table(), self.column());
        self.render(
            &format!("{t}.{c} dropped"),
            &[format!(
                "Deploy steps: (1) `strata up` runs prepare, which changes nothing and waits. (2) \
                 Deploy the app version that no longer reads or writes {c}; `strata up --continue \
                 V` drops it, after a backup of {t} (its reverse is `strata rollback V \
                 --from-backup PATH`)."
            )],
            vec![
                phase(
                    "prepare",
                    &[&format!("If {c} is NOT NULL without a default, the new app's inserts fail: add here {{ op = \"sql\", up = \"ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL\" }}.")],
                    vec![],
                )
                .deploy(format!(
                    "deploy the app version that no longer reads or writes {t}.{c}"
                )),
                phase(
                    "contract",
                    &[],
                    vec![op("drop_column", vec![("table", s(t)), ("column", s(c))])],
                ),
            ],
        )
    }

    fn drop_table(&self) -> String {
        let t = self.table();
        self.render(
            &format!("{t} dropped"),
            &[format!(
                "Deploy steps: (1) `strata up` runs prepare, which changes nothing and waits. (2) \
                 Deploy the app version that no longer uses {t}; `strata up --continue V` drops \
                 it, after a backup (its reverse is `strata rollback V --from-backup PATH`)."
            )],
            vec![
                phase("prepare", &[], vec![])
                    .deploy(format!("deploy the app version that no longer uses {t}")),
                phase(
                    "contract",
                    &[],
                    vec![op("drop_table", vec![("table", s(t))])],
                ),
            ],
        )
    }

    fn backfill(&self) -> String {
        let t = self.table();
        let set = self.args.set.as_deref().unwrap_or_default();
        let mut pairs = vec![("table", s(t)), ("set", s(set))];
        pairs.extend(self.opt(&self.args.predicate).map(|p| ("where", p)));
        self.render(
            &format!("{t}: {set}"),
            &["A batched UPDATE through the backfill engine: short transactions, a cursor that survives a crash or kill, and progress in `strata status`.".to_owned(),
              "Add a { op = \"validate\", sql = \"…\" } after it to check the result: a query that returns true, or no rows.".to_owned()],
            vec![phase("migrate", &[], vec![op("backfill", pairs)])],
        )
    }
}

/// `users(id, tenant)` → (`users`, [`id`, `tenant`]); `users` → (`users`, []).
fn parse_references(text: &str) -> (String, Vec<String>) {
    let text = text.trim();
    match (text.find('('), text.strip_suffix(')')) {
        (Some(open), Some(inner)) => (
            text[..open].trim().to_owned(),
            inner[open + 1..]
                .split(',')
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty())
                .collect(),
        ),
        _ => (text.to_owned(), Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ForeignKeyOrphans, Gate, OperationKind as K, Plan};

    fn args(table: &str) -> PatternArgs {
        PatternArgs {
            table: Some(table.to_owned()),
            ..PatternArgs::default()
        }
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    /// Generates, reads back, and returns the plan with its text.
    fn plan(pattern: Pattern, args: &PatternArgs) -> (Plan, String) {
        let text = generate(pattern, args).unwrap_or_else(|e| panic!("{pattern}: {e}"));
        let plan = crate::plan::parse(&text).unwrap_or_else(|p| panic!("{text}\n{p:?}"));
        (plan, text)
    }

    /// Each phase as (name, operations as `op` or `op:step`, gate kind).
    fn shape(plan: &Plan) -> Vec<(String, Vec<String>, String)> {
        plan.phases
            .iter()
            .map(|p| {
                let ops = p
                    .operations
                    .iter()
                    .map(|o| match &o.step {
                        Some(step) => format!("{}:{step}", o.kind.name()),
                        None => o.kind.name().to_owned(),
                    })
                    .collect();
                let gate = match &p.gate {
                    Gate::None => "none".to_owned(),
                    Gate::Deploy(_) => "deploy".to_owned(),
                    Gate::Wait(_) => "wait".to_owned(),
                };
                (p.name.clone(), ops, gate)
            })
            .collect()
    }

    fn phases(list: &[(&str, &[&str], &str)]) -> Vec<(String, Vec<String>, String)> {
        list.iter()
            .map(|(n, ops, g)| {
                (
                    (*n).to_owned(),
                    ops.iter().map(|o| (*o).to_owned()).collect(),
                    (*g).to_owned(),
                )
            })
            .collect()
    }

    fn deploy_text(plan: &Plan, phase: usize) -> &str {
        match &plan.phases[phase].gate {
            Gate::Deploy(text) => text,
            other => panic!("phase {phase} gate is {other}"),
        }
    }

    #[test]
    fn add_column_is_one_expand_phase() {
        let mut a = args("users");
        a.columns = vec!["nickname".into()];
        a.column_type = some("text");
        a.default = some("'none'");
        let (p, text) = plan(Pattern::AddColumn, &a);
        assert_eq!(shape(&p), phases(&[("expand", &["add_column"], "none")]));
        assert_eq!(
            p.phases[0].operations[0].kind,
            K::AddColumn {
                table: "users".into(),
                column: "nickname".into(),
                column_type: "text".into(),
                default: some("'none'"),
            }
        );
        assert!(
            text.starts_with("# Generated by `strata new --pattern add-column`"),
            "{text}"
        );
        assert_eq!(
            p.description.as_deref(),
            Some("users.nickname: a new column")
        );
    }

    #[test]
    fn add_required_column_carries_default_and_backfill() {
        let mut a = args("users");
        a.columns = vec!["email_verified".into()];
        a.column_type = some("boolean");
        a.default = some("false");
        a.backfill = some("email IS NOT NULL");
        let (p, _) = plan(Pattern::AddRequiredColumn, &a);
        assert_eq!(
            shape(&p),
            phases(&[("expand", &["add_required_column"], "none")])
        );
        assert!(matches!(
            &p.phases[0].operations[0].kind,
            K::AddRequiredColumn { default, backfill: Some(b), .. } if default == "false" && b == "email IS NOT NULL"
        ));
    }

    #[test]
    fn rename_column_waits_for_two_deploys_before_contract() {
        let mut a = args("users");
        a.from = some("name");
        a.to = some("full_name");
        let (p, _) = plan(Pattern::RenameColumn, &a);
        assert_eq!(
            shape(&p),
            phases(&[
                ("expand", &["rename_column:expand"], "deploy"),
                ("switch", &["validate"], "deploy"),
                ("contract", &["rename_column:contract"], "none"),
            ])
        );
        assert!(deploy_text(&p, 0).contains("reads and writes full_name"));
        assert!(deploy_text(&p, 1).contains("uses users.name"));
        assert!(matches!(
            &p.phases[1].operations[0].kind,
            K::Validate { sql, .. } if sql == "SELECT name, full_name FROM users WHERE name IS DISTINCT FROM full_name"
        ));
    }

    #[test]
    fn change_column_type_swaps_after_a_deploy() {
        let mut a = args("users");
        a.columns = vec!["age".into()];
        a.column_type = some("integer");
        a.using = some("nullif(trim(age), '')::integer");
        let (p, _) = plan(Pattern::ChangeColumnType, &a);
        assert_eq!(
            shape(&p),
            phases(&[
                ("expand", &["change_column_type:expand"], "deploy"),
                ("contract", &["change_column_type:contract"], "none"),
            ])
        );
        assert!(deploy_text(&p, 0).contains("users.age as integer"));
        for phase in &p.phases {
            assert!(matches!(
                &phase.operations[0].kind,
                K::ChangeColumnType { using: Some(u), .. } if u == "nullif(trim(age), '')::integer"
            ));
        }
    }

    #[test]
    fn split_column_keeps_casts_in_expressions_and_drops_the_source_last() {
        let mut a = args("users");
        a.columns = vec!["full_name".into()];
        a.into = vec![
            "first_name:varchar(100):split_part(trim(full_name), ' ', 1)".into(),
            "initial : char(1) : left(full_name, 1)::char(1)".into(),
        ];
        let (p, _) = plan(Pattern::SplitColumn, &a);
        assert_eq!(
            shape(&p),
            phases(&[
                ("expand", &["split_column:expand"], "deploy"),
                ("switch", &["split_column:contract"], "deploy"),
                ("contract", &["drop_column"], "none"),
            ])
        );
        let K::SplitColumn { into, .. } = &p.phases[0].operations[0].kind else {
            panic!("not a split")
        };
        assert_eq!(into.len(), 2);
        assert_eq!(into[1].column, "initial");
        assert_eq!(into[1].column_type, "char(1)");
        assert_eq!(into[1].expression, "left(full_name, 1)::char(1)");
    }

    #[test]
    fn add_index_takes_several_columns_unique_and_where() {
        let mut a = args("users");
        a.columns = vec!["(lower(email))".into(), "tenant_id".into()];
        a.unique = true;
        a.predicate = some("deleted_at IS NULL");
        let (p, _) = plan(Pattern::AddIndex, &a);
        assert_eq!(shape(&p), phases(&[("expand", &["add_index"], "none")]));
        assert_eq!(
            p.phases[0].operations[0].kind,
            K::AddIndex {
                table: "users".into(),
                name: None,
                columns: vec!["(lower(email))".into(), "tenant_id".into()],
                unique: true,
                using: None,
                predicate: some("deleted_at IS NULL"),
            }
        );
    }

    #[test]
    fn set_not_null_backfills_the_default_first() {
        let mut a = args("users");
        a.columns = vec!["email".into()];
        let (p, _) = plan(Pattern::SetNotNull, &a);
        assert_eq!(
            shape(&p),
            phases(&[("contract", &["set_not_null"], "none")])
        );
        a.default = some("''");
        let (p, _) = plan(Pattern::SetNotNull, &a);
        assert_eq!(
            shape(&p),
            phases(&[("contract", &["backfill", "set_not_null"], "none")])
        );
        assert!(matches!(
            &p.phases[0].operations[0].kind,
            K::Backfill { set, predicate: Some(w), .. } if set == "email = ''" && w == "email IS NULL"
        ));
    }

    #[test]
    fn soft_delete_and_jsonb_are_one_phase() {
        let (p, _) = plan(Pattern::SoftDelete, &args("users"));
        assert_eq!(shape(&p), phases(&[("expand", &["soft_delete"], "none")]));
        let mut a = args("users");
        a.columns = vec!["prefs".into()];
        a.path_indexes = vec!["prefs->>'theme'".into()];
        a.backfill = some("jsonb_build_object('v', 1)");
        let (p, _) = plan(Pattern::AddJsonbColumn, &a);
        assert_eq!(
            shape(&p),
            phases(&[("expand", &["add_jsonb_column"], "none")])
        );
    }

    #[test]
    fn add_foreign_key_reads_references_and_each_orphan_policy() {
        for (given, expected) in [
            ("fail", ForeignKeyOrphans::Fail),
            ("delete", ForeignKeyOrphans::Delete),
            ("set_null", ForeignKeyOrphans::SetNull),
            ("set-null", ForeignKeyOrphans::SetNull),
            (
                "move_to:orphaned_orders",
                ForeignKeyOrphans::MoveTo("orphaned_orders".into()),
            ),
        ] {
            let mut a = args("orders");
            a.columns = vec!["user_id".into()];
            a.references = some("users (id)");
            a.orphans = some(given);
            let (p, _) = plan(Pattern::AddForeignKey, &a);
            let K::AddForeignKey {
                references,
                references_columns,
                orphans,
                ..
            } = &p.phases[0].operations[0].kind
            else {
                panic!("not a foreign key")
            };
            assert_eq!(references, "users");
            assert_eq!(references_columns, &["id".to_owned()]);
            assert_eq!(orphans, &expected, "{given}");
        }
    }

    #[test]
    fn partition_table_swaps_at_once_and_contracts_after_a_deploy() {
        let mut a = args("events");
        a.key = some("created_at");
        a.interval = some("month");
        a.range_from = some("2024-01-01");
        a.range_to = some("2024-04-01");
        let (p, _) = plan(Pattern::PartitionTable, &a);
        assert_eq!(
            shape(&p),
            phases(&[
                ("expand", &["partition_table:expand"], "none"),
                ("swap", &["partition_table:swap"], "deploy"),
                ("contract", &["partition_table:contract"], "none"),
            ])
        );
    }

    #[test]
    fn normalize_json_needs_one_child_table_and_fields() {
        let mut a = args("orders");
        a.columns = vec!["items".into()];
        a.into = vec!["order_items".into()];
        a.fields = vec![
            "sku:text:elem->>'sku'".into(),
            "qty:integer:(elem->>'qty')::integer".into(),
        ];
        let (p, _) = plan(Pattern::NormalizeJson, &a);
        assert_eq!(
            shape(&p),
            phases(&[
                ("expand", &["normalize_json:expand"], "deploy"),
                ("contract", &["normalize_json:contract"], "none"),
            ])
        );
        assert!(deploy_text(&p, 0).contains("reads and writes order_items"));
        a.into.push("more".into());
        assert!(matches!(
            generate(Pattern::NormalizeJson, &a),
            Err(PatternError::Invalid { flag: "--into", .. })
        ));
    }

    #[test]
    fn drops_come_after_a_deploy_gate() {
        let mut a = args("users");
        a.columns = vec!["legacy".into()];
        let (p, _) = plan(Pattern::DropColumn, &a);
        assert_eq!(
            shape(&p),
            phases(&[
                ("prepare", &[], "deploy"),
                ("contract", &["drop_column"], "none")
            ])
        );
        assert!(deploy_text(&p, 0).contains("no longer reads or writes users.legacy"));
        let (p, _) = plan(Pattern::DropTable, &args("old_sessions"));
        assert_eq!(
            shape(&p),
            phases(&[
                ("prepare", &[], "deploy"),
                ("contract", &["drop_table"], "none")
            ])
        );
    }

    #[test]
    fn backfill_is_one_migrate_phase() {
        let mut a = args("users");
        a.set = some("email_lower = lower(email)");
        a.predicate = some("email_lower IS NULL");
        let (p, _) = plan(Pattern::Backfill, &a);
        assert_eq!(shape(&p), phases(&[("migrate", &["backfill"], "none")]));
    }

    #[test]
    fn values_are_escaped_as_toml_strings() {
        // Quotes, backslashes, a newline and TOML-looking text survive the
        // round trip unchanged.
        let mut a = args(r#"app."Odd ""Name"" \ x""#);
        a.columns = vec![r#""E Mail""#.into()];
        a.column_type = some("text");
        a.default = some("'a\"b\\c' || E'\\n' || '\"\"\" ] }'");
        let (p, _) = plan(Pattern::AddColumn, &a);
        assert_eq!(
            p.phases[0].operations[0].kind,
            K::AddColumn {
                table: a.table.clone().unwrap(),
                column: a.columns[0].clone(),
                column_type: "text".into(),
                default: a.default.clone(),
            }
        );
    }

    #[test]
    fn missing_unused_and_bad_flags_are_refused_with_an_example() {
        let e = generate(Pattern::RenameColumn, &args("users")).unwrap_err();
        assert!(
            matches!(e, PatternError::Missing { flag: "--from", .. }),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("strata new users_full_name --pattern rename-column"),
            "{e}"
        );

        let mut a = args("users");
        a.from = some("a");
        a.to = some("b");
        a.columns = vec!["c".into()];
        let e = generate(Pattern::RenameColumn, &a).unwrap_err();
        assert!(
            matches!(
                e,
                PatternError::Unused {
                    flag: "--column",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("it takes --table, --from, --to"),
            "{e}"
        );

        let mut a = args("users");
        a.columns = vec!["a".into(), "b".into()];
        a.column_type = some("text");
        let e = generate(Pattern::AddColumn, &a).unwrap_err();
        assert!(
            matches!(
                e,
                PatternError::Invalid {
                    flag: "--column",
                    ..
                }
            ),
            "{e}"
        );

        let mut a = args("users");
        a.columns = vec!["full_name".into()];
        a.into = vec!["first_name".into()];
        let e = generate(Pattern::SplitColumn, &a).unwrap_err();
        assert!(e.to_string().contains("NAME:TYPE:EXPRESSION"), "{e}");

        let mut a = args("orders");
        a.columns = vec!["user_id".into()];
        a.references = some("users");
        a.orphans = some("fail");
        let e = generate(Pattern::AddForeignKey, &a).unwrap_err();
        assert!(e.to_string().contains("users(id)"), "{e}");
        a.references = some("users(id)");
        a.orphans = some("ignore");
        let e = generate(Pattern::AddForeignKey, &a).unwrap_err();
        assert!(
            matches!(
                e,
                PatternError::Invalid {
                    flag: "--orphans",
                    ..
                }
            ),
            "{e}"
        );

        let mut a = args("events");
        a.key = some("created_at");
        a.interval = some("week");
        a.range_from = some("2024-01-01");
        a.range_to = some("2025-01-01");
        let e = generate(Pattern::PartitionTable, &a).unwrap_err();
        assert!(
            matches!(
                e,
                PatternError::Invalid {
                    flag: "--interval",
                    ..
                }
            ),
            "{e}"
        );

        // SQL that does not parse is caught by reading the plan back.
        let mut a = args("users");
        a.columns = vec!["n".into()];
        a.column_type = some("text); DROP TABLE users; --");
        let e = generate(Pattern::AddColumn, &a).unwrap_err();
        assert!(matches!(e, PatternError::Plan { .. }), "{e}");
        assert!(e.to_string().contains("`type` must be a type"), "{e}");
    }

    #[test]
    fn every_pattern_has_a_working_example() {
        for pattern in Pattern::ALL {
            assert_eq!(Pattern::from_name(pattern.name()), Some(pattern));
            assert!(pattern
                .example()
                .contains(&format!("--pattern {}", pattern.name())));
        }
        assert_eq!(
            Pattern::from_name("rename_column"),
            Some(Pattern::RenameColumn)
        );
        assert_eq!(Pattern::from_name("nope"), None);
    }
}
