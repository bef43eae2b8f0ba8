//! Small lexical helpers that do not need a full parse: positions, comments
//! and psql meta-commands.

use pg_query::protobuf::Token;

use super::SqlError;

/// Converts a byte offset into a 1-based (line, column); the column counts
/// characters, as editors do.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    count_work(offset);
    let before = &text[..offset];
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[line_start..].chars().count() + 1)
}

thread_local! {
    /// Bytes examined by the position helpers on this thread (see [`work`]).
    static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count_work(bytes: usize) {
    WORK.with(|w| w.set(w.get().saturating_add(bytes)));
}

/// Bytes examined so far on this thread to turn offsets into lines and
/// columns: a work counter, so a test can check that positioning stays
/// linear in the size of the text without timing anything.
pub fn work() -> usize {
    WORK.with(|w| w.get())
}

/// Line and column of many offsets of one text, in linear total time when
/// the offsets come in increasing order (statements of a script): each
/// query continues counting from the previous one instead of from the start
/// of the text, which made positioning quadratic in the file size. An
/// offset before the previous one starts over (still correct, just slower).
#[derive(Debug, Clone)]
pub struct Positions<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
    /// Characters between the start of the line and `offset`.
    column: usize,
}

impl<'a> Positions<'a> {
    /// Positions in `text`, starting at its first byte.
    pub fn new(text: &'a str) -> Positions<'a> {
        Positions {
            text,
            offset: 0,
            line: 1,
            column: 0,
        }
    }

    /// The 1-based (line, column) of `offset`, as [`line_col`] computes it.
    pub fn line_col(&mut self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        if offset < self.offset {
            *self = Positions::new(self.text);
        }
        let between = &self.text.as_bytes()[self.offset..offset];
        count_work(between.len());
        for b in between {
            if *b == b'\n' {
                self.line += 1;
                self.column = 0;
            } else if b & 0xC0 != 0x80 {
                // Not a UTF-8 continuation byte: a new character.
                self.column += 1;
            }
        }
        self.offset = offset;
        (self.line, self.column + 1)
    }
}

/// Returns the offset of the first byte at or after `from` that is not
/// whitespace or part of a comment.
pub fn skip_trivia(text: &str, from: usize) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            match text[i..].find('\n') {
                Some(n) => i += n + 1,
                None => return text.len(),
            }
        } else if bytes[i..].starts_with(b"/*") {
            i = skip_block_comment(bytes, i);
        } else {
            return i.min(text.len());
        }
    }
}

/// The offset just past the block comment that starts at `from` (at its
/// `/*`), or the end of the text when it is not closed. Block comments nest
/// in PostgreSQL, so `/* a /* b */ c */` is one comment.
pub fn skip_block_comment(bytes: &[u8], from: usize) -> usize {
    let mut depth = 0usize;
    let mut i = from;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth = depth.saturating_sub(1);
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    i.min(bytes.len())
}

/// True when the text holds only whitespace and comments.
pub fn is_blank(text: &str) -> bool {
    skip_trivia(text, 0) >= text.len()
}

/// Finds a line that starts with a backslash outside any string or comment:
/// a psql meta-command (`\i`, `\set`, `\c`, ...).
pub(super) fn find_meta_command(text: &str) -> Option<SqlError> {
    let protected: Vec<(usize, usize)> = pg_query::scan(text)
        .map(|scan| {
            scan.tokens
                .iter()
                .filter(|t| {
                    [
                        Token::Sconst,
                        Token::Usconst,
                        Token::Bconst,
                        Token::Xconst,
                        Token::SqlComment,
                        Token::CComment,
                    ]
                    .iter()
                    .any(|k| *k as i32 == t.token)
                })
                .map(|t| (t.start as usize, t.end as usize))
                .collect()
        })
        .unwrap_or_default();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let indent = line.len() - line.trim_start().len();
        let at = offset + indent;
        offset += line.len();
        if !line.trim_start().starts_with('\\')
            || protected.iter().any(|(s, e)| (*s..*e).contains(&at))
        {
            continue;
        }
        let command = line.split_whitespace().next().unwrap_or("\\").to_owned();
        return Some(SqlError::MetaCommand {
            command,
            line: i + 1,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_comments_nest_and_may_be_unclosed() {
        let text = b"/* a /* b */ c */ SELECT";
        assert_eq!(skip_block_comment(text, 0), 17);
        assert_eq!(skip_block_comment(b"/* open /* inner */", 0), 19);
        assert_eq!(skip_block_comment(b"x /**/", 2), 6);
    }

    #[test]
    fn blank_means_only_comments_and_whitespace() {
        assert!(is_blank(""));
        assert!(is_blank("  -- hi\n/* a /* nested */ b */\n"));
        assert!(!is_blank("-- hi\nSELECT 1"));
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_col("é SELECT", 3), (1, 3));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
    }

    #[test]
    fn positions_agree_with_line_col_in_any_order() {
        let text = "é a\n\nbc 'ü'\r\n  x\n";
        let mut p = Positions::new(text);
        let offsets: Vec<usize> = (0..=text.len())
            .filter(|o| text.is_char_boundary(*o))
            .collect();
        for o in offsets.iter().chain(offsets.iter().rev()) {
            assert_eq!(p.line_col(*o), line_col(text, *o), "offset {o}");
        }
    }
}
