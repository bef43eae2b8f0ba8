//! One file per migration layout, plus what they share: the directory
//! listing, layout detection and the construction of [`Script`]s.

mod dbmate;
mod diesel;
mod flyway;
mod goose;
mod native;
mod sqlx;

use std::path::{Path, PathBuf};

use super::{
    parse_strata_directive, Directive, Format, Migration, NoTransaction, Script, SourceProblem,
};

/// The entries of a migration directory, read once and sorted by name.
#[derive(Debug)]
pub struct Listing {
    /// The directory itself.
    pub dir: PathBuf,
    /// Regular files: (file name, path).
    pub files: Vec<(String, PathBuf)>,
    /// Sub-directories, hidden ones excluded: (name, path).
    pub dirs: Vec<(String, PathBuf)>,
    /// Entries that cannot be migrations but look like they should be:
    /// broken or looping symlinks, FIFOs, sockets, devices, directories
    /// named like SQL files. Silently skipping them would run less than
    /// the user wrote.
    pub problems: Vec<SourceProblem>,
}

impl Listing {
    /// Lists `dir`. A missing or unreadable directory is a [`SourceProblem`].
    pub fn read(dir: &Path) -> Result<Listing, SourceProblem> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            let problem =
                SourceProblem::new(dir, None, format!("cannot read migration directory: {e}"));
            if e.kind() == std::io::ErrorKind::NotFound {
                problem.help("create it with `strata init`, or point `--dir` at your migrations")
            } else {
                problem
            }
        })?;
        let mut listing = Listing {
            dir: dir.to_path_buf(),
            files: Vec::new(),
            dirs: Vec::new(),
            problems: Vec::new(),
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    listing.problems.push(SourceProblem::new(
                        dir,
                        None,
                        format!("cannot list the migration directory: {e}"),
                    ));
                    continue;
                }
            };
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follow symlinks: a linked migration file is still a migration.
            match kind_of(&path) {
                Ok(EntryKind::Dir) if name.ends_with(".sql") => listing.problems.push(
                    SourceProblem::new(&path, None, "is a directory, but named like a migration file")
                        .help("migration files must be regular files; move its contents out and remove the directory"),
                ),
                Ok(EntryKind::Dir) => listing.dirs.push((name, path)),
                Ok(EntryKind::File) => listing.files.push((name, path)),
                Ok(EntryKind::Missing) => {}
                Err(problem) => listing.problems.push(problem),
            }
        }
        // Names in a directory are unique: the unstable sort needs no
        // scratch copy, and the list gives back its spare room (it lives
        // through the whole load).
        listing.files.sort_unstable();
        listing.dirs.sort_unstable();
        listing.files.shrink_to_fit();
        Ok(listing)
    }

    /// Files whose name ends with `.sql`.
    pub fn sql_files(&self) -> impl Iterator<Item = &(String, PathBuf)> {
        self.files.iter().filter(|(name, _)| name.ends_with(".sql"))
    }
}

/// What a directory entry is, symlinks followed.
pub(crate) enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// Nothing at all by that name.
    Missing,
}

/// What `path` is, following symlinks. Anything but a regular file or a
/// directory (a dangling or looping symlink, a FIFO, a socket, a device) is
/// a problem naming the path: such an entry is never opened (reading a
/// FIFO would hang) and never silently skipped.
pub(crate) fn kind_of(path: &Path) -> Result<EntryKind, SourceProblem> {
    use std::os::unix::fs::FileTypeExt;
    let link = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(EntryKind::Missing),
        Err(e) => return Err(SourceProblem::new(path, None, format!("cannot read: {e}"))),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => {
            let what = if link.file_type().is_symlink() {
                match std::fs::read_link(path) {
                    Ok(to) if e.raw_os_error() == Some(40) => {
                        format!("symlink loop (points to {})", to.display())
                    }
                    Ok(to) => format!("broken symlink: {} ({e})", to.display()),
                    Err(_) => format!("broken symlink ({e})"),
                }
            } else {
                format!("cannot read: {e}")
            };
            return Err(SourceProblem::new(path, None, what)
                .help("point the symlink at an existing migration file, or remove it"));
        }
    };
    let t = meta.file_type();
    if t.is_file() {
        Ok(EntryKind::File)
    } else if t.is_dir() {
        Ok(EntryKind::Dir)
    } else {
        let what = if t.is_fifo() {
            "a FIFO (named pipe)"
        } else if t.is_socket() {
            "a socket"
        } else if t.is_block_device() || t.is_char_device() {
            "a device"
        } else {
            "not a regular file"
        };
        Err(
            SourceProblem::new(path, None, format!("is {what}, not a regular file"))
                .help("migrations must be regular files; remove it from the migration directory"),
        )
    }
}

/// Detects the layout of a directory from its file names (and, to tell goose
/// from sqlx, the content of one file). An empty directory is `native`.
pub fn detect(listing: &Listing) -> Result<Format, SourceProblem> {
    let mut found: Vec<(Format, String)> = Vec::new();
    let mut note = |format: Format, example: &str| {
        if !found.iter().any(|(f, _)| *f == format) {
            found.push((format, example.to_owned()));
        }
    };
    for (name, path) in &listing.dirs {
        // A folder with only down.sql or metadata.toml is a diesel
        // migration that lost its up.sql: loading it as diesel reports it.
        if ["up.sql", "down.sql", "metadata.toml"]
            .iter()
            .any(|f| std::fs::symlink_metadata(path.join(f)).is_ok())
        {
            note(Format::Diesel, name);
        }
    }
    for (name, path) in listing.sql_files() {
        if flyway::matches(name) {
            note(Format::Flyway, name);
        } else if name.ends_with(".up.sql") || name.ends_with(".down.sql") {
            note(Format::Native, name);
        } else if leading_version(name).is_some() {
            // goose and dbmate files are named like sqlx's simple files;
            // only their markers tell them apart.
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let format = if goose::has_annotation(&text) {
                Format::Goose
            } else if dbmate::has_marker(&text) {
                Format::Dbmate
            } else {
                Format::Sqlx
            };
            note(format, name);
        }
    }
    // diesel reads only its folders and ignores every file beside them,
    // even one named like a migration of another layout.
    if found.iter().any(|(f, _)| *f == Format::Diesel) {
        found.retain(|(f, _)| *f == Format::Diesel);
    }
    // sqlx reads both its simple and its reversible (`.up.sql`) files.
    if found.iter().any(|(f, _)| *f == Format::Sqlx) {
        found.retain(|(f, _)| *f != Format::Native);
    }
    match found.as_slice() {
        [] => Ok(Format::Native),
        [(format, _)] => Ok(*format),
        many => {
            let list: Vec<String> = many
                .iter()
                .map(|(f, example)| format!("{f} (e.g. {example})"))
                .collect();
            Err(SourceProblem::new(
                &listing.dir,
                None,
                format!(
                    "cannot tell the migration layout: found files of {}",
                    list.join(" and ")
                ),
            )
            .help("keep one layout per directory, or set `format = \"…\"` in strata.toml"))
        }
    }
}

/// Loads every migration of `listing` with the given layout. Entries the
/// layout's own tool ignores go to `warnings`, never to the problems.
pub(crate) fn load(
    format: Format,
    listing: &Listing,
    warnings: &mut Vec<SourceProblem>,
    finish: &mut super::Finish,
) -> (Vec<Migration>, Vec<SourceProblem>) {
    match format {
        Format::Native => native::load(listing, warnings, finish),
        Format::Goose => goose::load(listing, warnings, finish),
        Format::Diesel => diesel::load(listing, warnings, finish),
        Format::Sqlx => sqlx::load(listing, warnings, finish),
        Format::Flyway => flyway::load(listing, warnings, finish),
        Format::Dbmate => dbmate::load(listing, warnings, finish),
    }
}

/// A warning for an entry that the layout's tool does not read, so Strata
/// does not either (a README, a seed file, a loose script).
pub(crate) fn ignored(path: &Path, why: &str) -> SourceProblem {
    SourceProblem::new(path, None, format!("ignored: {why}"))
}

/// Warns about every file that is not a `.sql` file (README, CHANGELOG,
/// notes): no layout's tool reads them (goose's Go files are handled by
/// the goose layout).
pub(crate) fn warn_non_sql(listing: &Listing, warnings: &mut Vec<SourceProblem>) {
    for (name, path) in &listing.files {
        if !name.ends_with(".sql") {
            warnings.push(ignored(path, "not a .sql file"));
        }
    }
}

/// Warns about sub-directories in a flat layout: golang-migrate, goose,
/// sqlx and dbmate read only the files directly in the directory.
pub(crate) fn warn_dirs(listing: &Listing, warnings: &mut Vec<SourceProblem>) {
    for (_, path) in &listing.dirs {
        warnings.push(ignored(
            path,
            "sub-directory (this layout reads only the files directly in the migration directory)",
        ));
    }
}

/// A file split at `-- strata:up` / `-- strata:down`: (text, first line)
/// of each part.
pub(crate) struct MarkedParts {
    pub up: (String, usize),
    pub down: Option<(String, usize)>,
}

/// True when a line is the marker `-- strata:<word>`.
fn is_marker(line: &str, word: &str) -> bool {
    line.trim()
        .strip_prefix("--")
        .map(str::trim_start)
        .and_then(|rest| rest.strip_prefix("strata:"))
        .is_some_and(|rest| rest.trim_end() == word)
}

/// The 1-based line of the first `-- strata:up` or `-- strata:down` marker.
pub(crate) fn first_strata_marker(text: &str) -> Option<usize> {
    text.lines()
        .position(|l| is_marker(l, "up") || is_marker(l, "down"))
        .map(|i| i + 1)
}

/// Splits a file that holds both directions, marked with `-- strata:up` and
/// `-- strata:down` lines, in any layout. `None` when the file has no
/// marker. The markers themselves belong to neither part.
pub(crate) fn split_markers(
    path: &Path,
    text: &str,
    problems: &mut Vec<SourceProblem>,
) -> Option<MarkedParts> {
    first_strata_marker(text)?;
    let mut up_at: Option<(usize, usize)> = None; // (byte offset after the line, line no)
    let mut down_at: Option<(usize, usize, usize)> = None; // (line start, after, line no)
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let line_no = i + 1;
        if is_marker(line, "up") {
            if up_at.is_some() || down_at.is_some() {
                problems.push(
                    SourceProblem::new(path, Some(line_no), "unexpected `-- strata:up`")
                        .help("a file has at most one `-- strata:up`, above its `-- strata:down`"),
                );
                return None;
            }
            if !crate::sql::is_blank(&text[..start]) {
                problems.push(
                    SourceProblem::new(path, Some(line_no), "SQL before `-- strata:up`")
                        .help("move the statements below `-- strata:up`"),
                );
                return None;
            }
            up_at = Some((offset, line_no));
        } else if is_marker(line, "down") {
            if down_at.is_some() {
                problems.push(
                    SourceProblem::new(path, Some(line_no), "a second `-- strata:down`")
                        .help("a file has one up part and one down part"),
                );
                return None;
            }
            down_at = Some((start, offset, line_no));
        }
    }
    let (up_start, up_line) = up_at.unwrap_or((0, 1));
    let up_end = down_at.map_or(text.len(), |(start, _, _)| start);
    Some(MarkedParts {
        up: (
            text[up_start..up_end].to_owned(),
            up_line + usize::from(up_at.is_some()),
        ),
        down: down_at.map(|(_, after, line)| (text[after..].to_owned(), line + 1)),
    })
}

/// Rejects `-- strata:up`/`-- strata:down` in a layout that has its own
/// markers (goose, dbmate): two sets of markers would disagree.
pub(crate) fn reject_strata_markers(
    path: &Path,
    text: &str,
    own: &str,
    problems: &mut Vec<SourceProblem>,
) {
    if let Some(line) = first_strata_marker(text) {
        problems.push(
            SourceProblem::new(
                path,
                Some(line),
                format!("`-- strata:up`/`-- strata:down` in a layout that uses `{own}`"),
            )
            .help(format!("use this layout's own markers (`{own}`) only")),
        );
    }
}

/// Splits `<digits>_<rest>` into its version digits and the rest.
pub(crate) fn leading_version(name: &str) -> Option<(&str, &str)> {
    let (version, rest) = name.split_once('_')?;
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((version, rest))
}

/// Builds a [`Script`] from (part of) a file and records the problems of its
/// strata directives. `text` must already be normalised.
pub fn script(
    path: &Path,
    text: String,
    first_line: usize,
    blocks: Vec<std::ops::Range<usize>>,
    mut no_transaction: Option<NoTransaction>,
    problems: &mut Vec<SourceProblem>,
) -> Script {
    let mut directives = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = first_line + i;
        match parse_strata_directive(line) {
            None => {}
            Some(Ok(directive)) => {
                if directive == Directive::NoTransaction && no_transaction.is_none() {
                    no_transaction = Some(NoTransaction {
                        line: Some(line_no),
                        source: "-- strata:no-transaction".to_owned(),
                    });
                }
                // A backfill commits batch by batch, so its file runs
                // outside a transaction, statement by statement.
                if directive == Directive::Backfill && no_transaction.is_none() {
                    no_transaction = Some(NoTransaction {
                        line: Some(line_no),
                        source: super::directives::BACKFILL.to_owned(),
                    });
                }
                directives.push((line_no, directive));
            }
            Some(Err(message)) => {
                problems.push(SourceProblem::new(path, Some(line_no), message).help(
                    "fix the directive, or write it as an ordinary comment without `strata:`",
                ))
            }
        }
    }
    Script {
        path: path.to_path_buf(),
        text: text.into(),
        first_line,
        blocks,
        no_transaction,
        directives,
    }
}

/// sqlx's rule: a file whose first line is `-- no-transaction` runs outside
/// a transaction.
pub fn sqlx_no_transaction(text: &str) -> Option<NoTransaction> {
    text.lines()
        .next()
        .filter(|line| line.trim_end() == "-- no-transaction")
        .map(|_| NoTransaction {
            line: Some(1),
            source: "-- no-transaction".to_owned(),
        })
}

/// An up script that holds no SQL is almost always a mistake (a file created
/// by `new` and never filled in), so it is an error rather than a no-op.
pub(crate) fn check_not_blank(up: &Script, problems: &mut Vec<SourceProblem>) {
    // Loading checks each script while its text is still held.
    if up.text.held().is_some_and(crate::sql::is_blank) {
        problems.push(
            SourceProblem::new(&up.path, None, "migration has no SQL statements")
                .help("write the migration, or delete the file if it is not needed"),
        );
    }
}

/// Rejects goose annotations in a layout that would run them as comments:
/// the `Down` section would then run as part of the up migration.
pub(crate) fn reject_goose(path: &Path, text: &str, problems: &mut Vec<SourceProblem>) {
    if let Some(line) = goose::first_annotation_line(text) {
        problems.push(
            SourceProblem::new(
                path,
                Some(line),
                "goose annotation in a non-goose migration directory",
            )
            .help("set `format = \"goose\"` in strata.toml if this directory uses goose"),
        );
    }
}

/// Parses one goose file (for linting a single file).
pub(crate) fn goose_file(
    path: &Path,
    text: &str,
    version: super::Version,
    name: &str,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    if !goose::has_annotation(text) {
        return None;
    }
    goose::parse_file(path, text, version, name, problems)
}

/// True when the text has goose annotations.
pub(crate) fn has_goose_annotation(text: &str) -> bool {
    goose::has_annotation(text)
}

/// Parses one dbmate file (for linting a single file).
pub(crate) fn dbmate_file(
    path: &Path,
    text: &str,
    version: super::Version,
    name: &str,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    dbmate::parse_file(path, text, version, name, problems)
}

/// True when the text has dbmate markers.
pub(crate) fn has_dbmate_marker(text: &str) -> bool {
    dbmate::has_marker(text)
}

/// Reads one plain SQL file (for linting a single file), split at
/// `-- strata:up`/`-- strata:down` when it has them.
pub(crate) fn plain_file(
    path: &Path,
    version: super::Version,
    name: &str,
    problems: &mut Vec<SourceProblem>,
) -> Option<Migration> {
    native::build(path, None, version, name.to_owned(), problems)
}
