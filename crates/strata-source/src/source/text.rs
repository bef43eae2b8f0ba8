//! A script's SQL text: held in memory, or released and read again from
//! its file when it is used.
//!
//! Why: a run loads every migration of the directory (status needs each
//! checksum, lint replays the history), but uses each script's text only
//! for a moment: to parse it, to lint it, to run it. Holding every text for
//! the whole run made memory grow with the directory: 20,000 migrations of
//! 10 KB held 200 MB. Loading therefore holds texts only within a budget
//! ([`TEXT_BUDGET`], in load order) and releases the rest: a released text
//! keeps what it needs to be read again — its length in the file (it starts
//! at the script's `first_line`), the placeholder values it was substituted
//! with, and a digest of the final text — and [`Script::load`] reads it
//! again where it is used. The digest makes a file edited during the run an
//! error at that point, never a different script run under the checksum
//! recorded at the start.
//!
//! The text is reachable only through [`Script::load`] (or
//! [`Text::held`], which may say "not in memory"), so no caller can read a
//! released text as empty by mistake.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::{read_text, Script, SourceProblem};

/// How many bytes of script text a directory load holds in memory before
/// it releases texts (see the module doc). Typical projects (hundreds of
/// migrations of a few KB) stay under it and never read a file twice.
pub const TEXT_BUDGET: usize = 2 << 20;

/// No budget: every text stays in memory (single-directory tools, tests,
/// the embed macro, whose texts go into the binary).
pub const HOLD_ALL: usize = usize::MAX;

/// The text of a [`Script`]. Build one from a `String`; read it with
/// [`Script::load`].
#[derive(Debug, Clone)]
pub struct Text(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Held(String),
    Released(Released),
}

/// What a released text keeps to be read again and checked.
#[derive(Debug, Clone)]
struct Released {
    /// Bytes of the file, from the start of the script's first line, as
    /// written (before placeholders).
    raw_len: usize,
    /// The values substituted when the script was loaded, when it opted in.
    placeholders: Option<Arc<BTreeMap<String, String>>>,
    /// Digest of the final text ([`digest`]).
    digest: u64,
}

impl From<String> for Text {
    fn from(text: String) -> Text {
        Text(Repr::Held(text))
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Text {
        Text(Repr::Held(text.to_owned()))
    }
}

impl Text {
    /// The text when it is in memory; `None` when it was released (use
    /// [`Script::load`]).
    pub fn held(&self) -> Option<&str> {
        match &self.0 {
            Repr::Held(text) => Some(text),
            Repr::Released(_) => None,
        }
    }

    /// Heap bytes the text holds.
    pub fn heap_size(&self) -> usize {
        match &self.0 {
            Repr::Held(text) => text.capacity(),
            Repr::Released(_) => 0,
        }
    }
}

/// Serialized as the string (the embed macro writes held texts into a
/// binary); a released text cannot be serialized, because its file is not
/// part of the data.
impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Held(text) => serializer.serialize_str(text),
            Repr::Released(_) => Err(serde::ser::Error::custom(
                "a released script text is read from its file, not serialized",
            )),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        String::deserialize(deserializer).map(Text::from)
    }
}

/// A script with its text in memory: what parsing, lint and the runner
/// read. Dereferences to the [`Script`] for its path, lines and directives.
#[derive(Debug)]
pub struct Sql<'a> {
    script: &'a Script,
    text: Cow<'a, str>,
}

impl Sql<'_> {
    /// The script's SQL (placeholders substituted).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when the script holds no SQL at all, only comments and blanks.
    pub fn is_blank(&self) -> bool {
        crate::sql::is_blank(&self.text)
    }
}

impl std::ops::Deref for Sql<'_> {
    type Target = Script;
    fn deref(&self) -> &Script {
        self.script
    }
}

impl Script {
    /// The script with its text: borrowed when held, read again from the
    /// file when released. A file that changed since it was loaded (or can
    /// no longer be read) is a problem at the script's first line.
    pub fn load(&self) -> Result<Sql<'_>, SourceProblem> {
        let text = match &self.text.0 {
            Repr::Held(text) => Cow::Borrowed(text.as_str()),
            Repr::Released(released) => Cow::Owned(self.reload(released)?),
        };
        Ok(Sql { script: self, text })
    }

    /// Releases the text (see the module doc). `raw_len` is the length of
    /// the script as written in its file, `placeholders` the values it was
    /// substituted with, if any. Scripts whose text does not start at the
    /// beginning of `first_line` in their file must not be released.
    pub(crate) fn release(
        &mut self,
        raw_len: usize,
        placeholders: Option<Arc<BTreeMap<String, String>>>,
    ) {
        let Repr::Held(text) = &self.text.0 else {
            return;
        };
        let digest = digest(text);
        self.text = Text(Repr::Released(Released {
            raw_len,
            placeholders,
            digest,
        }));
    }

    fn reload(&self, released: &Released) -> Result<String, SourceProblem> {
        let changed = || {
            SourceProblem::new(
                &self.path,
                Some(self.first_line),
                "changed since this run read it at its start",
            )
            .help("do not edit migration files while a command runs; run it again")
        };
        let file = read_text(&self.path)?;
        let start = line_start(&file, self.first_line).ok_or_else(changed)?;
        let raw = file
            .get(start..start.saturating_add(released.raw_len))
            .ok_or_else(changed)?;
        let text = match &released.placeholders {
            Some(values) => super::placeholders::substitute_text(raw, values),
            None => raw.to_owned(),
        };
        if digest(&text) != released.digest {
            return Err(changed());
        }
        Ok(text)
    }
}

/// Byte offset of the start of 1-based `line` in `text`.
fn line_start(text: &str, line: usize) -> Option<usize> {
    if line <= 1 {
        return Some(0);
    }
    text.match_indices('\n').nth(line - 2).map(|(i, _)| i + 1)
}

/// A digest of a text, to tell that the text read again is the text
/// loaded. Within one process only (never stored), and a check against
/// edits, not forgery: the standard hasher is fast and fixed-keyed.
fn digest(text: &str) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Holds texts while the budget lasts and releases the rest, migration by
/// migration as loading builds them, so a load never holds more text than
/// the budget plus one file.
#[derive(Debug)]
pub(crate) struct TextBudget {
    left: usize,
}

impl TextBudget {
    pub(crate) fn new(bytes: usize) -> TextBudget {
        TextBudget { left: bytes }
    }

    /// Takes the script's bytes from the budget, or, once they do not fit,
    /// releases the script. `raw_len` and `placeholders` as for
    /// [`Script::release`].
    pub(crate) fn hold_or_release(
        &mut self,
        script: &mut Script,
        raw_len: usize,
        placeholders: Option<Arc<BTreeMap<String, String>>>,
    ) {
        let size = script.text.heap_size();
        if size <= self.left {
            self.left -= size;
        } else {
            self.left = 0;
            script.release(raw_len, placeholders);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script_in(path: &std::path::Path, first_line: usize, text: &str) -> Script {
        Script {
            path: path.to_path_buf(),
            text: Text::from(text),
            first_line,
            blocks: Vec::new(),
            no_transaction: None,
            directives: Vec::new(),
        }
    }

    #[test]
    fn a_released_text_is_read_again_from_its_lines_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1_a.sql");
        std::fs::write(
            &path,
            "-- +goose Up\nCREATE TABLE a ();\n-- +goose Down\nDROP TABLE a;\n",
        )
        .unwrap();
        let mut up = script_in(&path, 2, "CREATE TABLE a ();\n");
        up.release("CREATE TABLE a ();\n".len(), None);
        assert_eq!(up.text.held(), None);
        assert_eq!(up.load().unwrap().text(), "CREATE TABLE a ();\n");
        let mut down = script_in(&path, 4, "DROP TABLE a;\n");
        down.release("DROP TABLE a;\n".len(), None);
        assert_eq!(down.load().unwrap().text(), "DROP TABLE a;\n");
    }

    #[test]
    fn a_file_edited_after_loading_is_a_problem_at_its_line_not_other_sql() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1_a.up.sql");
        std::fs::write(&path, "CREATE TABLE a ();\n").unwrap();
        let mut up = script_in(&path, 1, "CREATE TABLE a ();\n");
        up.release("CREATE TABLE a ();\n".len(), None);
        // Same length, other SQL.
        std::fs::write(&path, "CREATE TABLE b ();\n").unwrap();
        let problem = up.load().unwrap_err();
        assert_eq!(problem.line, Some(1));
        assert!(problem.message.contains("changed since"), "{problem}");
        // Shorter than the script.
        std::fs::write(&path, "SELECT 1;\n").unwrap();
        assert!(up.load().is_err());
        // Gone.
        std::fs::remove_file(&path).unwrap();
        assert!(up.load().is_err());
    }

    #[test]
    fn the_budget_holds_texts_until_it_is_spent_then_releases_every_later_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sql");
        std::fs::write(&path, "SELECT 1;\n").unwrap();
        let mut budget = TextBudget::new(25);
        let mut scripts: Vec<Script> = (0..4).map(|_| script_in(&path, 1, "SELECT 1;\n")).collect();
        for s in &mut scripts {
            budget.hold_or_release(s, "SELECT 1;\n".len(), None);
        }
        let held: Vec<bool> = scripts.iter().map(|s| s.text.held().is_some()).collect();
        assert_eq!(held, [true, true, false, false]);
        for s in &scripts {
            assert_eq!(s.load().unwrap().text(), "SELECT 1;\n");
        }
    }

    #[test]
    fn a_released_text_does_not_serialize() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sql");
        let mut s = script_in(&path, 1, "SELECT 1;\n");
        assert!(serde_json::to_string(&s).is_ok());
        s.release(10, None);
        assert!(serde_json::to_string(&s).is_err());
    }
}

#[cfg(test)]
mod every_layout {
    use std::path::{Path, PathBuf};

    use crate::source::{load_all, Migration, HOLD_ALL};

    fn texts(migrations: &[Migration]) -> Vec<(PathBuf, usize, String)> {
        migrations
            .iter()
            .flat_map(|m| std::iter::once(&m.up).chain(m.down.as_deref()))
            .map(|s| {
                let sql = s.load().unwrap_or_else(|p| panic!("{p}"));
                (s.path.clone(), s.first_line, sql.text().to_owned())
            })
            .collect()
    }

    /// Every script of every layout, released (budget 0) and read again,
    /// is the script loaded with its text held: the section of a goose or
    /// dbmate file, a part split at `-- strata:up`/`down`, a substituted
    /// placeholder, a file with CRLF line endings and a BOM.
    #[test]
    fn released_scripts_of_every_layout_read_back_as_loaded() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/formats");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&fixtures)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        let extra = tempfile::tempdir().unwrap();
        let goose = extra.path().join("goose");
        std::fs::create_dir(&goose).unwrap();
        std::fs::write(
            goose.join("1_a.sql"),
            "\u{feff}-- strata:placeholders\r\n-- +goose Up\r\nCREATE TABLE ${t} (id int);\r\n-- +goose StatementBegin\r\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1 $$ LANGUAGE sql;\r\n-- +goose StatementEnd\r\n-- +goose Down\r\nDROP TABLE ${t};\r\n",
        )
        .unwrap();
        std::fs::write(goose.join("2_b.sql"), "-- +goose Up\nSELECT 2;\n").unwrap();
        dirs.push(goose);
        let values = [("t".to_owned(), "a_much_longer_table_name".to_owned())].into();
        let (mut seen, mut substituted) = (0, false);
        for dir in dirs {
            let held = load_all(std::slice::from_ref(&dir), None, &values, &[], HOLD_ALL);
            let released = load_all(std::slice::from_ref(&dir), None, &values, &[], 0);
            assert_eq!(held.problems, released.problems, "{}", dir.display());
            assert!(released
                .migrations
                .iter()
                .filter(|m| m.kind != crate::source::MigrationKind::Plan)
                .all(|m| m.up.text.held().is_none()));
            let texts = texts(&released.migrations);
            assert_eq!(texts, self::texts(&held.migrations), "{}", dir.display());
            substituted |= texts
                .iter()
                .any(|(_, _, t)| t.contains("DROP TABLE a_much_longer_table_name;"));
            seen += released.migrations.len();
        }
        assert!(substituted);
        assert!(seen > 20, "{seen} migrations");
    }
}

#[cfg(test)]
mod undefined_placeholders {
    use crate::source::{load_all, HOLD_ALL};

    /// A script with an undefined placeholder is left as written (the load
    /// reports the name): released, it reads back as written, not with the
    /// defined names substituted.
    #[test]
    fn a_script_left_as_written_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("1_a.up.sql"),
            "-- strata:placeholders\nCREATE TABLE ${defined} (id int);\nCREATE TABLE ${undefined} (id int);\n",
        )
        .unwrap();
        let values = [("defined".to_owned(), "t".to_owned())].into();
        let dirs = [dir.path().to_path_buf()];
        let held = load_all(&dirs, None, &values, &[], HOLD_ALL);
        let released = load_all(&dirs, None, &values, &[], 0);
        assert_eq!(released.problems.len(), 1, "{:?}", released.problems);
        let script = &released.migrations[0].up;
        assert!(script.text.held().is_none());
        let text = script.load().unwrap_or_else(|p| panic!("{p}"));
        assert_eq!(Some(text.text()), held.migrations[0].up.text.held());
        assert!(text.text().contains("${defined}"));
    }
}
