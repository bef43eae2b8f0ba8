//! `${name}` placeholders, replaced with values from `strata.toml`
//! (`[placeholders]`, and `[env.NAME.placeholders]` over it) in the files
//! that opt in with `-- strata:placeholders`.
//!
//! Design, and why:
//! - **Opt-in per file.** `${…}` has meanings of its own in SQL written for
//!   other tools (goose's ENVSUB, shell templates kept in a table), so only a
//!   file that says `-- strata:placeholders` is touched. In a goose file the
//!   directive may also sit above `-- +goose Up` (the preamble is not part
//!   of any script, so it is looked for there separately); it covers the
//!   whole file.
//! - **Where.** Replaced in SQL code, in quoted identifiers (`"${schema}"`)
//!   and in ordinary string literals (`'…'`, `E'…'`): role names, schemas and
//!   seed values are what placeholders are for, and a value inside a
//!   literal is the common case (`COMMENT … IS 'built for ${env}'`). Never
//!   inside dollar-quoted bodies (`$$ … $$`, `$fn$ … $fn$`): that is function
//!   code, where `${` belongs to the body's language (PL/pgSQL `format`,
//!   PL/v8 template strings) and must reach the server as written. Never in
//!   comments, so a commented-out line or a note about a placeholder is not
//!   an error. Values are inserted as written, not quoted: the file decides
//!   the quoting.
//! - **Before parsing.** Substitution happens when the files are loaded, so
//!   splitting, lint, backups and the runner all see the final SQL.
//! - **Checksums** are computed on the text as written (before
//!   substitution), so the same file applied with another environment's
//!   values is not "modified".
//! - **Undefined** names are errors naming `file:line` (in `validate` too):
//!   running `${name}` as SQL would fail later, on the server, mid-run.
//!
//! The scanner below is small and hand-written on purpose: it must see the
//! raw `${…}` text that no SQL lexer (pg_query's included) accepts, and it
//! only needs to tell code, literals, identifiers, comments and dollar
//! quotes apart.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use super::{Directive, Migration, Script, SourceProblem};

/// One `${name}` found where substitution applies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    /// Byte range of `${name}` in the text.
    range: Range<usize>,
    /// The name between the braces.
    name: String,
}

/// Substitutes placeholders in every script of a file that opted in.
/// Returns one problem per undefined placeholder (`file:line`).
/// (Loading does it per migration as it reads the files; this is for
/// migrations built elsewhere, such as embedded ones.)
pub fn apply(
    migrations: &mut [Migration],
    values: &BTreeMap<String, String>,
) -> Vec<SourceProblem> {
    let mut problems = Vec::new();
    for m in migrations.iter_mut() {
        let opted = opted_paths(m);
        for script in std::iter::once(&mut m.up).chain(m.down.as_deref_mut()) {
            if opted.contains(&script.path) {
                problems.extend(substitute_script(script, values));
            }
        }
    }
    problems
}

/// The files of a migration that opted in: a directive in one script of a
/// file (a goose or dbmate file holds both) covers the whole file.
pub(crate) fn opted_paths(m: &Migration) -> Vec<PathBuf> {
    let mut opted: Vec<PathBuf> = Vec::new();
    for script in std::iter::once(&m.up).chain(m.down.as_deref()) {
        if !opted.contains(&script.path) && opted_in(script) {
            opted.push(script.path.clone());
        }
    }
    opted
}

/// True when the script's file opted in to placeholders: the directive in
/// the script, or (goose) in the lines above `-- +goose Up`.
pub fn opted_in(script: &Script) -> bool {
    script
        .directives
        .iter()
        .any(|(_, d)| *d == Directive::Placeholders)
        || in_preamble(script)
}

/// True when the lines of the file above the script (a goose file's
/// preamble, before `-- +goose Up`) hold `-- strata:placeholders`.
fn in_preamble(script: &Script) -> bool {
    if script.first_line <= 1 {
        return false;
    }
    let Ok(text) = super::read_text(&script.path) else {
        return false;
    };
    text.lines()
        .take(script.first_line - 1)
        .any(|line| super::parse_strata_directive(line) == Some(Ok(Directive::Placeholders)))
}

/// Substitutes the placeholders of a held script (loading's), or returns
/// one problem per undefined name and leaves it as written.
pub(crate) fn substitute_script(
    script: &mut Script,
    values: &BTreeMap<String, String>,
) -> Vec<SourceProblem> {
    let Some(raw) = script.text.held() else {
        // Released texts were substituted before they were released.
        return Vec::new();
    };
    let found = scan(raw);
    let mut problems = Vec::new();
    for f in &found {
        if !values.contains_key(&f.name) {
            let line = script.first_line + crate::sql::line_col(raw, f.range.start).0 - 1;
            let defined: Vec<&str> = values.keys().map(String::as_str).collect();
            problems.push(
                SourceProblem::new(
                    &script.path,
                    Some(line),
                    format!("undefined placeholder `${{{}}}`", f.name),
                )
                .help(if defined.is_empty() {
                    format!(
                        "define it in strata.toml: `[placeholders]` (or `[env.NAME.placeholders]`) with `{} = \"…\"`; none are defined",
                        f.name
                    )
                } else {
                    format!(
                        "define it in strata.toml under `[placeholders]` or `[env.NAME.placeholders]`; defined: {}",
                        defined.join(", ")
                    )
                }),
            );
        }
    }
    if !problems.is_empty() || found.is_empty() {
        return problems;
    }
    let (text, shifts) = replace(raw, &found, values);
    let moved = |offset: usize| -> usize {
        let s = shifts
            .iter()
            .rev()
            .find(|(at, _)| *at <= offset)
            .map(|(_, s)| *s)
            .unwrap_or(0);
        offset.saturating_add_signed(s)
    };
    script.blocks = script
        .blocks
        .iter()
        .map(|b| moved(b.start)..moved(b.end))
        .collect();
    script.text = text.into();
    problems
}

/// The text with every placeholder replaced by its value (a released
/// script read again: its names were checked when it was loaded; an
/// undefined one is left as written, and the digest check then fails).
pub(crate) fn substitute_text(raw: &str, values: &BTreeMap<String, String>) -> String {
    let found: Vec<Found> = scan(raw)
        .into_iter()
        .filter(|f| values.contains_key(&f.name))
        .collect();
    replace(raw, &found, values).0
}

/// Replaces each found placeholder (all defined) with its value. Returns
/// the text and, after each replacement, (old end offset, total shift).
fn replace(
    raw: &str,
    found: &[Found],
    values: &BTreeMap<String, String>,
) -> (String, Vec<(usize, isize)>) {
    let mut text = String::with_capacity(raw.len());
    let mut shifts: Vec<(usize, isize)> = Vec::new();
    let mut last = 0;
    let mut shift = 0isize;
    for f in found {
        let value = values.get(&f.name).map_or("", String::as_str);
        text.push_str(&raw[last..f.range.start]);
        text.push_str(value);
        last = f.range.end;
        shift += value.len() as isize - f.range.len() as isize;
        shifts.push((f.range.end, shift));
    }
    text.push_str(&raw[last..]);
    (text, shifts)
}

/// Finds every `${name}` in code, quoted identifiers and string literals;
/// skips comments and dollar-quoted strings.
fn scan(text: &str) -> Vec<Found> {
    let b = text.as_bytes();
    let n = b.len();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80;
    let mut found = Vec::new();
    let mut i = 0;
    let mut escapes = false;
    while i < n {
        let c = b[i];
        let next = b.get(i + 1).copied();
        match c {
            b'-' if next == Some(b'-') => {
                i = text[i..].find('\n').map_or(n, |k| i + k + 1);
            }
            b'/' if next == Some(b'*') => i = crate::sql::skip_block_comment(b, i),
            b'\'' | b'"' => {
                let backslash = c == b'\'' && escapes;
                i += 1;
                while i < n {
                    if b[i] == c {
                        if b.get(i + 1) == Some(&c) {
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    if backslash && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if let Some(f) = placeholder_at(text, i) {
                        i = f.range.end;
                        found.push(f);
                        continue;
                    }
                    i += 1;
                }
            }
            b'$' => {
                if let Some(f) = placeholder_at(text, i) {
                    i = f.range.end;
                    found.push(f);
                } else if let Some(end) = dollar_quote_end(text, i) {
                    i = end;
                } else {
                    i += 1;
                }
            }
            c if ident(c) && !c.is_ascii_digit() => {
                let start = i;
                while i < n && (ident(b[i]) || b[i] == b'$') {
                    i += 1;
                }
                // E'…' strings take backslash escapes.
                escapes = b.get(i) == Some(&b'\'') && text[start..i].eq_ignore_ascii_case("e");
                continue;
            }
            _ => i += 1,
        }
        escapes = false;
    }
    found
}

/// `${name}` at `at`, with `name` = `[A-Za-z_][A-Za-z0-9_]*`.
fn placeholder_at(text: &str, at: usize) -> Option<Found> {
    let rest = text.get(at..)?.strip_prefix("${")?;
    let len = rest
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    let name = &rest[..len];
    if name.is_empty() || name.as_bytes()[0].is_ascii_digit() || !rest[len..].starts_with('}') {
        return None;
    }
    Some(Found {
        range: at..at + 3 + len,
        name: name.to_owned(),
    })
}

/// When a dollar quote (`$$` or `$tag$`) opens at `at`, the offset just past
/// its closing delimiter (or the end of the text if it never closes).
fn dollar_quote_end(text: &str, at: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut j = at + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
    }
    // `$1` is a parameter, not a tag.
    if b.get(j) != Some(&b'$') || b.get(at + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let tag = &text[at..=j];
    Some(
        text[j + 1..]
            .find(tag)
            .map_or(text.len(), |k| j + 1 + k + tag.len()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        scan(text).into_iter().map(|f| f.name).collect()
    }

    #[test]
    fn finds_placeholders_in_code_identifiers_and_literals_only() {
        assert_eq!(
            names("CREATE TABLE ${s}.t (x text DEFAULT '${v}', \"${q}\" int);"),
            ["s", "v", "q"]
        );
        // Comments and dollar quotes are left alone.
        assert!(names("-- ${a}\n/* ${b} /* ${c} */ */ SELECT 1").is_empty());
        assert!(names("SELECT $$ ${a} $$, $fn$ '${b}' $fn$").is_empty());
        assert_eq!(names("SELECT $fn$ x $fn$, ${after}"), ["after"]);
        // Doubled and backslash-escaped quotes do not end the literal.
        assert_eq!(names("SELECT 'it''s ${a}', E'\\' ${b}'"), ["a", "b"]);
        // Identifiers with `$`, parameters and malformed forms are not placeholders.
        assert!(names("SELECT a$b$c, $1, ${1x}, ${ a }, ${").is_empty());
        assert_eq!(names("SELECT x$${y}"), Vec::<String>::new());
    }

    #[test]
    fn a_goose_file_opts_in_above_its_up_annotation() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("00001_x.sql"),
            "-- strata:placeholders\n-- +goose Up\nCREATE TABLE ${t} (id int);\n-- +goose Down\nDROP TABLE ${t};\n",
        )
        .unwrap();
        let values = BTreeMap::from([("t".to_owned(), "items".to_owned())]);
        let loaded = super::super::load_all(
            &[dir.path().to_path_buf()],
            None,
            &values,
            &[],
            super::super::HOLD_ALL,
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let m = &loaded.migrations[0];
        assert!(
            m.up.text.held().unwrap().contains("CREATE TABLE items"),
            "{}",
            m.up.text.held().unwrap()
        );
        assert!(m
            .down
            .as_ref()
            .unwrap()
            .text
            .held()
            .unwrap()
            .contains("DROP TABLE items"));
    }

    #[test]
    fn substitutes_and_moves_blocks() {
        let mut script = Script {
            path: PathBuf::from("1_x.sql"),
            text: "SELECT '${a}';\nCREATE FUNCTION f() AS $$ ${a} $$;\n".into(),
            first_line: 3,
            blocks: vec![0..15, 15..50],
            no_transaction: None,
            directives: vec![],
        };
        let values = BTreeMap::from([("a".to_owned(), "long value".to_owned())]);
        assert!(substitute_script(&mut script, &values).is_empty());
        assert_eq!(
            script.text.held().unwrap(),
            "SELECT 'long value';\nCREATE FUNCTION f() AS $$ ${a} $$;\n"
        );
        assert_eq!(script.blocks, [0..21, 21..56]);
        assert_eq!(
            &script.text.held().unwrap()[21..56],
            "CREATE FUNCTION f() AS $$ ${a} $$;\n"
        );

        let mut script = Script {
            text: "SELECT 1;\nSELECT ${nope};\n".into(),
            ..script
        };
        let problems = substitute_script(&mut script, &values);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(4));
        assert!(problems[0].to_string().contains("`${nope}`"));
        assert!(problems[0].to_string().contains("defined: a"));
    }
}
