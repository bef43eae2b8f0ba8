//! One file per migration layout, plus what they share: the directory
//! listing, layout detection and the construction of [`Script`]s.

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
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // Follow symlinks: a linked migration file is still a migration.
            if path.is_dir() {
                listing.dirs.push((name, path));
            } else if path.is_file() {
                listing.files.push((name, path));
            }
        }
        listing.files.sort();
        listing.dirs.sort();
        Ok(listing)
    }

    /// Files whose name ends with `.sql`.
    pub fn sql_files(&self) -> impl Iterator<Item = &(String, PathBuf)> {
        self.files.iter().filter(|(name, _)| name.ends_with(".sql"))
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
        if path.join("up.sql").is_file() {
            note(Format::Diesel, name);
        }
    }
    for (name, path) in listing.sql_files() {
        if flyway::matches(name) {
            note(Format::Flyway, name);
        } else if name.ends_with(".up.sql") || name.ends_with(".down.sql") {
            note(Format::Native, name);
        } else if leading_version(name).is_some() {
            let goose = std::fs::read_to_string(path)
                .map(|text| goose::has_annotation(&text))
                .unwrap_or(false);
            note(if goose { Format::Goose } else { Format::Sqlx }, name);
        }
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

/// Loads every migration of `listing` with the given layout.
pub fn load(format: Format, listing: &Listing) -> (Vec<Migration>, Vec<SourceProblem>) {
    match format {
        Format::Native => native::load(listing),
        Format::Goose => goose::load(listing),
        Format::Diesel => diesel::load(listing),
        Format::Sqlx => sqlx::load(listing),
        Format::Flyway => flyway::load(listing),
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
        text,
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
    if up.is_blank() {
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
