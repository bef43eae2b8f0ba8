//! Migration sources: finding migration files in each supported layout.
//!
//! This module owns everything about files on disk: which layout a directory
//! uses ([`Format`]), how each layout names versions and orders them
//! ([`Version`]), how up and down scripts pair up, the per-file directives
//! (`-- strata:no-transaction`, goose annotations, sqlx's `-- no-transaction`,
//! diesel's `metadata.toml`) and checksums.
//!
//! **Architecture Invariant:** this module never runs SQL and never talks to a
//! database. Loading a directory reports *every* bad file (as
//! [`SourceProblem`]s) instead of stopping at the first one.

mod checksum;
pub mod create;
mod directives;
pub mod embedded;
pub mod formats;
pub mod placeholders;
pub mod plans;
mod text;
mod version;

use std::fmt;
use std::path::{Path, PathBuf};

pub use checksum::{checksum, normalize, CHECKSUM_ALGORITHM};
pub use directives::{mark_backfills, parse_strata_directive, Directive};
pub use text::{Sql, Text, HOLD_ALL, TEXT_BUDGET};
pub use version::{Version, VersionKey};

/// A migration directory layout. Each one follows the conventions of the tool
/// it is named after, including that tool's ordering rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// golang-migrate and Strata's own layout: `<version>_<name>.up.sql` and
    /// an optional `<version>_<name>.down.sql`. sqlx's reversible layout has
    /// the same shape and is read by this format too.
    Native,
    /// goose: `<version>_<name>.sql` with `-- +goose Up` / `-- +goose Down`.
    Goose,
    /// diesel: `<version>_<name>/up.sql`, `down.sql`, optional `metadata.toml`.
    Diesel,
    /// sqlx: `<version>_<desc>.sql` (simple) or `.up.sql`/`.down.sql`.
    Sqlx,
    /// Flyway: `V<ver>__<desc>.sql`, `U<ver>__<desc>.sql`, `R__<desc>.sql`.
    Flyway,
    /// dbmate: `<version>_<name>.sql` with `-- migrate:up` / `-- migrate:down`.
    Dbmate,
}

impl Format {
    /// Every format, in the order detection prefers them.
    pub const ALL: [Format; 6] = [
        Format::Dbmate,
        Format::Diesel,
        Format::Flyway,
        Format::Goose,
        Format::Native,
        Format::Sqlx,
    ];

    /// The name used in `strata.toml` (`format = "goose"`).
    pub fn name(self) -> &'static str {
        match self {
            Format::Native => "native",
            Format::Goose => "goose",
            Format::Diesel => "diesel",
            Format::Sqlx => "sqlx",
            Format::Flyway => "flyway",
            Format::Dbmate => "dbmate",
        }
    }

    /// Parses a format name as written in `strata.toml`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "native" | "golang-migrate" | "migrate" => Some(Format::Native),
            "goose" => Some(Format::Goose),
            "diesel" => Some(Format::Diesel),
            "sqlx" => Some(Format::Sqlx),
            "flyway" => Some(Format::Flyway),
            "dbmate" => Some(Format::Dbmate),
            _ => None,
        }
    }

    /// Parses a version as a user typed it (`--to 3`, `goto 2024-01-01-000000`)
    /// with this layout's rules.
    pub fn parse_version(self, text: &str) -> Option<Version> {
        match self {
            Format::Diesel | Format::Dbmate => Version::diesel(text),
            Format::Flyway => Version::dotted(text),
            Format::Native | Format::Goose | Format::Sqlx => Version::integer(text),
        }
    }
}

impl Format {
    /// Whether the layout's own tool runs each migration inside a
    /// transaction unless the migration says otherwise in the tool's own
    /// way ([`Format::no_transaction_how`]); a `-- strata:` directive is a
    /// comment to it. golang-migrate (native) and Flyway decide otherwise.
    pub fn tool_wraps_in_transaction(self) -> bool {
        matches!(
            self,
            Format::Diesel | Format::Goose | Format::Sqlx | Format::Dbmate
        )
    }

    /// How a migration of this layout says "run me outside a transaction"
    /// so that both the layout's own tool and Strata obey it, for messages.
    pub fn no_transaction_how(self) -> &'static str {
        match self {
            Format::Diesel => {
                "put `run_in_transaction = false` in the migration's metadata.toml (next to up.sql)"
            }
            Format::Goose => "add `-- +goose NO TRANSACTION` at the top of the file",
            Format::Sqlx => "make `-- no-transaction` the file's first line",
            Format::Dbmate => "write the marker as `-- migrate:up transaction:false`",
            Format::Native => "add `-- strata:no-transaction` at the top of the file",
            // Flyway (6.1 and later) reads a script config file next to
            // the script; Strata reads its own directive.
            Format::Flyway => {
                "add `-- strata:no-transaction` at the top of the file, and for Flyway itself `executeInTransaction=false` in a config file named after it plus `.conf` (V2__x.sql.conf)"
            }
        }
    }
}

impl NoTransaction {
    /// True when it is one of Strata's own directives
    /// (`-- strata:no-transaction`, `-- strata:backfill`), which other
    /// tools read as a comment.
    pub fn is_strata_directive(&self) -> bool {
        self.source == "-- strata:no-transaction" || self.source == directives::BACKFILL
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a migration runs once at its version or again whenever it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationKind {
    /// Runs once, in version order.
    Versioned,
    /// Flyway's `R__` migrations: run after all versioned ones, and again
    /// whenever their checksum changes.
    Repeatable,
    /// A multi-phase plan (`<version>_<name>.plan.toml`): ordered by version
    /// with the versioned migrations, run phase by phase between gates, and
    /// recorded in the history once its last phase is done.
    Plan,
}

impl MigrationKind {
    /// The value stored in the history table's `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationKind::Versioned => "versioned",
            MigrationKind::Repeatable => "repeatable",
            MigrationKind::Plan => "plan",
        }
    }
}

/// One SQL script (an up or a down) and where it sits in its file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Script {
    /// The file the script was read from.
    pub path: PathBuf,
    /// The script text, with a BOM removed, line endings normalised and
    /// placeholders substituted; in memory or released (read it with
    /// [`Script::load`]).
    pub text: Text,
    /// The 1-based line of `path` on which `text` starts (goose keeps up and
    /// down in one file, so the down script starts part way down).
    pub first_line: usize,
    /// Byte ranges of `text` that must be sent as one statement
    /// (goose `StatementBegin` / `StatementEnd` blocks).
    pub blocks: Vec<std::ops::Range<usize>>,
    /// Why the script must run outside a transaction, if a directive says so.
    pub no_transaction: Option<NoTransaction>,
    /// Strata directives found in the script (`-- strata:…`).
    pub directives: Vec<(usize, Directive)>,
}

/// Where a "run outside a transaction" instruction came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NoTransaction {
    /// The 1-based line of the directive, when it is a comment in the file.
    pub line: Option<usize>,
    /// The directive as written (`-- strata:no-transaction`,
    /// `-- +goose NO TRANSACTION`, `run_in_transaction = false`).
    pub source: String,
}

/// A migration: plain data, read from disk and never changed afterwards.
/// Serializable so that `embed_migrations!` can carry it into a binary
/// (see [`embedded`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Migration {
    /// The version; for repeatable migrations, a version built from the
    /// description so that they sort after every versioned migration.
    pub version: Version,
    /// Versioned or repeatable.
    pub kind: MigrationKind,
    /// The descriptive part of the file name.
    pub name: String,
    /// The forward script.
    pub up: Script,
    /// The reverse script, when the layout has one for this migration.
    pub down: Option<Box<Script>>,
    /// Hex SHA-256 of the normalised forward source (see [`checksum`]).
    pub checksum: String,
}

impl Migration {
    /// A short label for messages: `20240101120000_add_users`.
    pub fn label(&self) -> String {
        match self.kind {
            MigrationKind::Versioned | MigrationKind::Plan => {
                format!("{}_{}", self.version, self.name)
            }
            MigrationKind::Repeatable => format!("R__{}", self.name),
        }
    }
}

/// A problem with one file of a migration directory. Loading collects all of
/// them so the user can fix everything in one pass.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SourceProblem {
    /// The file (or directory) at fault.
    pub path: PathBuf,
    /// The 1-based line, when the problem is on a line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl SourceProblem {
    /// A problem with a file, at a line if known.
    pub fn new(path: &Path, line: Option<usize>, message: impl Into<String>) -> Self {
        SourceProblem {
            path: path.to_path_buf(),
            line,
            message: message.into(),
            help: None,
        }
    }

    pub(crate) fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for SourceProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message)?,
            None => write!(f, "{}: {}", self.path.display(), self.message)?,
        }
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

/// The result of reading a migration directory.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The layout that was used.
    pub format: Format,
    /// Migrations in the order the layout's own tool would run them.
    pub migrations: Vec<Migration>,
    /// Every problem found. Any problem means nothing may run.
    pub problems: Vec<SourceProblem>,
    /// Entries the layout's own tool ignores (a README, a loose script
    /// beside diesel's folders), and notes such as an up and a down file
    /// paired by version although their names differ. Shown by `validate`
    /// and `status -v`; they never stop a run.
    pub warnings: Vec<SourceProblem>,
}

/// Reads a migration directory. With `format = None` the layout is detected.
/// Every text stays in memory and no placeholders are substituted (see
/// [`load_all`] for both).
///
/// A missing directory is a problem, not a panic; an empty directory is fine.
pub fn load(dir: &Path, format: Option<Format>) -> Loaded {
    load_with(dir, format, &mut Finish::new(None, HOLD_ALL))
}

/// What loading does with each migration as soon as its layout has built
/// it, before the next file is read: substitutes placeholders in the
/// scripts that opt in, then holds its texts or releases them within the
/// text budget (see [`Text`]). Done per migration so that a load never
/// holds more text than the budget and one file.
#[derive(Debug)]
pub(crate) struct Finish<'v> {
    /// The placeholder values; `None`: scripts are left as written.
    values: Option<&'v std::collections::BTreeMap<String, String>>,
    /// `values`, shared by every released script that was substituted.
    shared: Option<std::sync::Arc<std::collections::BTreeMap<String, String>>>,
    budget: text::TextBudget,
    /// Undefined placeholders.
    problems: Vec<SourceProblem>,
}

impl<'v> Finish<'v> {
    fn new(
        values: Option<&'v std::collections::BTreeMap<String, String>>,
        budget: usize,
    ) -> Finish<'v> {
        Finish {
            values,
            shared: None,
            budget: text::TextBudget::new(budget),
            problems: Vec::new(),
        }
    }

    /// Finishes `m` and adds it to `migrations`.
    pub(crate) fn push(&mut self, migrations: &mut Vec<Migration>, mut m: Migration) {
        let opted = match self.values {
            Some(_) => placeholders::opted_paths(&m),
            None => Vec::new(),
        };
        let releasable = m.kind != MigrationKind::Plan;
        for script in std::iter::once(&mut m.up).chain(m.down.as_deref_mut()) {
            // Loading built the text, so it is held.
            let raw_len = script.text.held().map_or(0, str::len);
            let values = match self.values {
                Some(values) if opted.contains(&script.path) => {
                    let undefined = placeholders::substitute_script(script, values);
                    // With an undefined name the script is left as written
                    // (and the load has a problem): read back as written.
                    let substituted = undefined.is_empty();
                    self.problems.extend(undefined);
                    substituted.then(|| {
                        self.shared
                            .get_or_insert_with(|| std::sync::Arc::new(values.clone()))
                            .clone()
                    })
                }
                _ => None,
            };
            if releasable {
                self.budget.hold_or_release(script, raw_len, values);
            }
        }
        migrations.push(m);
    }
}

/// [`load`] with the given finish (placeholders and text budget).
fn load_with(dir: &Path, format: Option<Format>, finish: &mut Finish) -> Loaded {
    let mut listing = match formats::Listing::read(dir) {
        Ok(listing) => listing,
        Err(problem) => {
            return Loaded {
                format: format.unwrap_or(Format::Native),
                migrations: Vec::new(),
                problems: vec![problem],
                warnings: Vec::new(),
            }
        }
    };
    let (format, mut problems) = match format {
        Some(format) => (format, Vec::new()),
        None => match formats::detect(&listing) {
            Ok(format) => (format, Vec::new()),
            Err(problem) => (Format::Native, vec![problem]),
        },
    };
    problems.extend(listing.problems.iter().cloned());
    let mut warnings = Vec::new();
    // Plan files are Strata's own, the same in every layout: the layouts
    // never see them.
    let (plans, more) = plans::load(format, &mut listing);
    let (mut migrations, more_sql) = formats::load(format, &listing, &mut warnings, finish);
    problems.extend(more_sql);
    migrations.extend(plans);
    problems.extend(more);
    sort_run_order(&mut migrations);
    problems.extend(duplicate_versions(&migrations));
    Loaded {
        format,
        migrations,
        problems,
        warnings,
    }
}

/// A note for `status` when a migration's down file is paired with its up
/// file by version although the names differ (golang-migrate allows it).
pub fn pairing_note(m: &Migration) -> Option<String> {
    let down = m.down.as_ref()?;
    if down.path == m.up.path {
        return None;
    }
    let file = down.path.file_name()?.to_string_lossy();
    let stem = file
        .strip_suffix(".down.sql")
        .or_else(|| file.strip_suffix("_down.sql"))?;
    let (_, name) = formats::leading_version(stem)?;
    (name != m.name).then(|| format!("down script {file} (paired by version; the names differ)"))
}

/// Reads several migration directories as one (`dirs = ["migrations",
/// "migrations/development"]`): each directory is loaded on its own with
/// [`load`], the migrations are merged into one version order, a version
/// used in two directories is an error naming both files, and placeholders
/// are substituted (see [`placeholders`]) in the files that opt in.
///
/// Script texts are held in memory up to `text_budget` bytes (in load
/// order) and released past it: pass [`TEXT_BUDGET`] for a run, whose
/// steps read each text when they use it ([`Script::load`]), or
/// [`HOLD_ALL`].
///
/// Every directory must use the same layout (versions of different layouts
/// do not compare). `nested` are directories of other environments: when
/// one sits inside a directory loaded here (`migrations/development` in
/// `migrations`), it is not reported as a stray entry of the outer one.
pub fn load_all(
    dirs: &[PathBuf],
    format: Option<Format>,
    placeholders: &std::collections::BTreeMap<String, String>,
    nested: &[PathBuf],
    text_budget: usize,
) -> Loaded {
    let mut finish = Finish::new(Some(placeholders), text_budget);
    let mut layout: Option<(Format, &Path)> = None;
    let mut migrations = Vec::new();
    let mut problems: Vec<SourceProblem> = Vec::new();
    let mut warnings: Vec<SourceProblem> = Vec::new();
    let mut fallback = format;
    for dir in dirs {
        let mut loaded = load_with(dir, format, &mut finish);
        fallback.get_or_insert(loaded.format);
        loaded.problems.retain(|p| {
            !dirs
                .iter()
                .chain(nested)
                .any(|inner| inner != dir && inner.starts_with(dir) && p.path.starts_with(inner))
        });
        if !loaded.migrations.is_empty() {
            match layout {
                None => layout = Some((loaded.format, dir)),
                Some((first, first_dir)) if first != loaded.format => problems.push(
                    SourceProblem::new(
                        dir,
                        None,
                        format!(
                            "uses the {} layout, but {} uses {first}",
                            loaded.format,
                            first_dir.display()
                        ),
                    )
                    .help("use one layout in every directory of `dirs`, or set `format` in strata.toml"),
                ),
                Some(_) => {}
            }
        }
        problems.extend(loaded.problems);
        warnings.extend(loaded.warnings);
        if migrations.is_empty() {
            // One directory (the usual case): its list as it is, not a copy.
            migrations = loaded.migrations;
        } else {
            migrations.extend(loaded.migrations);
        }
    }
    if dirs.len() > 1 {
        sort_run_order(&mut migrations);
        for problem in duplicate_versions(&migrations) {
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
    }
    problems.extend(finish.problems);
    Loaded {
        format: layout
            .map(|(f, _)| f)
            .or(fallback)
            .unwrap_or(Format::Native),
        migrations,
        problems,
        warnings,
    }
}

/// Sorts migrations into run order (versioned by version, then
/// repeatables), stably: migrations of one version (a duplicate, reported
/// below) keep the order they were listed in. The order is sorted as
/// indexes and applied by swapping along its cycles, so each migration
/// moves at most once and no second list is made: a stable sort of the
/// migrations themselves borrows scratch room as large as the list
/// (5 MB at 20,000 migrations).
fn sort_run_order(migrations: &mut [Migration]) {
    fn key(m: &Migration) -> (bool, &Version) {
        (m.kind == MigrationKind::Repeatable, &m.version)
    }
    if migrations.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        return;
    }
    // order[k]: where the migration that belongs at k is now.
    let mut order: Vec<usize> = (0..migrations.len()).collect();
    order.sort_by(|&a, &b| key(&migrations[a]).cmp(&key(&migrations[b])));
    for start in 0..order.len() {
        let mut k = start;
        loop {
            let from = order[k];
            // Placed: a position already visited has order[k] == k.
            order[k] = k;
            if from == start || from == k {
                break;
            }
            migrations.swap(k, from);
            k = from;
        }
    }
}

fn duplicate_versions(migrations: &[Migration]) -> Vec<SourceProblem> {
    migrations
        .windows(2)
        .filter(|pair| pair[0].kind == pair[1].kind && pair[0].version == pair[1].version)
        .map(|pair| {
            SourceProblem::new(
                &pair[1].up.path,
                None,
                format!(
                    "duplicate version {}: also used by {}",
                    pair[1].version,
                    pair[0].up.path.display()
                ),
            )
            .help("give one of the two migrations a new, unused version")
        })
        .collect()
}

/// Reads a file as UTF-8 text with the BOM removed and line endings
/// normalised, or says precisely why it cannot.
pub fn read_text(path: &Path) -> Result<String, SourceProblem> {
    // Never open a FIFO or device: reading one can block forever.
    match formats::kind_of(path)? {
        formats::EntryKind::File => {}
        formats::EntryKind::Dir => {
            return Err(SourceProblem::new(
                path,
                None,
                "is a directory, not a migration file",
            ))
        }
        formats::EntryKind::Missing => return Err(SourceProblem::new(path, None, "no such file")),
    }
    let bytes = std::fs::read(path)
        .map_err(|e| SourceProblem::new(path, None, format!("cannot read file: {e}")))?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(normalize(&text)),
        Err(e) => {
            let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            Err(SourceProblem::new(
                path,
                Some(line),
                format!(
                    "file is not valid UTF-8 (invalid byte at offset {})",
                    e.utf8_error().valid_up_to()
                ),
            )
            .help("re-encode the file as UTF-8, for example with `iconv -f latin1 -t utf-8`"))
        }
    }
}

/// Reads one migration file on its own (for `strata lint FILE`): a goose or
/// dbmate file is split at its markers, as is a file with `-- strata:up` /
/// `-- strata:down`; anything else is an up script.
pub fn load_file(path: &Path) -> Result<Migration, Vec<SourceProblem>> {
    let text = read_text(path).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let version = Version::repeatable(&stem);
    let migration = if formats::has_goose_annotation(&text) {
        formats::goose_file(path, &text, version, &stem, &mut problems)
    } else if formats::has_dbmate_marker(&text) {
        formats::dbmate_file(path, &text, version, &stem, &mut problems)
    } else {
        formats::plain_file(path, version, &stem, &mut problems)
    };
    match migration {
        Some(m) if problems.is_empty() => Ok(m),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_order_is_the_stable_sort_of_the_migrations() {
        let dir = tempfile::tempdir().unwrap();
        for v in 1..=300 {
            std::fs::write(dir.path().join(format!("{v}_m{v}.up.sql")), "SELECT 1;\n").unwrap();
        }
        let loaded = load_all(
            &[dir.path().to_path_buf()],
            None,
            &Default::default(),
            &[],
            HOLD_ALL,
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        // Listed by name ("1", "10", "100", …), run by number.
        let versions: Vec<String> = loaded
            .migrations
            .iter()
            .map(|m| m.version.canonical())
            .collect();
        let numbers: Vec<String> = (1..=300).map(|v: i32| v.to_string()).collect();
        assert_eq!(versions, numbers);
        // Shuffled, with runs of equal versions (duplicates keep the order
        // they were listed in), against a plain stable sort.
        let mut shuffled = loaded.migrations;
        for (i, m) in shuffled.iter_mut().enumerate() {
            m.version = Version::integer(&((i * 7919) % 101).to_string()).unwrap();
        }
        shuffled.reverse();
        let mut expected = shuffled.clone();
        expected.sort_by(|a, b| a.version.cmp(&b.version));
        sort_run_order(&mut shuffled);
        let paths = |ms: &[Migration]| ms.iter().map(|m| m.up.path.clone()).collect::<Vec<_>>();
        assert_eq!(paths(&shuffled), paths(&expected));
    }
}
