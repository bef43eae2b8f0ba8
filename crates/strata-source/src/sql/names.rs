//! Names as PostgreSQL sees them: quoting an identifier only where SQL
//! needs it (`quote_ident`, exactly as the server's `quote_ident()`), a
//! schema-qualified name as one SQL string and back, and the default
//! names PostgreSQL gives constraints and indexes.
//!
//! Every name Strata generates or looks up goes through here, so that
//! `"Orders"`, `"my.table"` and `"Sch".t` stay what they are: a name is
//! carried as SQL text (`"Sch".t`), never as `Sch.t`, which would be a
//! different table (or two names).

/// PostgreSQL's NAMEDATALEN - 1: the longest name, in bytes.
pub const MAX_NAME_BYTES: usize = 63;

/// Quotes an identifier where SQL needs it, with the server's rule
/// (`quote_identifier`): plain when it is lower-case letters, digits and
/// underscores, does not start with a digit, and is not a keyword other
/// than an unreserved one; otherwise in double quotes, `"` doubled.
pub fn quote_ident(name: &str) -> String {
    let safe_chars = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if safe_chars && !needs_quotes_as_keyword(name) {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// True when `name` is a keyword that cannot be used bare as a column or
/// table name: the scanner of PostgreSQL's own grammar says which kind.
fn needs_quotes_as_keyword(name: &str) -> bool {
    use pg_query::protobuf::KeywordKind;
    match pg_query::scan_tokens(name) {
        Ok(tokens) => match tokens.as_slice() {
            [one] => {
                one.keyword_kind != KeywordKind::NoKeyword as i32
                    && one.keyword_kind != KeywordKind::UnreservedKeyword as i32
            }
            _ => true,
        },
        Err(_) => true,
    }
}

/// A possibly qualified name from its parts: `["Sch", "t"]` → `"Sch".t`.
pub fn qualified(parts: &[String]) -> String {
    parts
        .iter()
        .map(|p| quote_ident(p))
        .collect::<Vec<_>>()
        .join(".")
}

/// The parts of a name written in SQL: `"Sch".t` → `["Sch", "t"]`,
/// `"my.table"` → `["my.table"]`. Unquoted parts are folded to lower case
/// as the server folds them.
pub fn parts(sql_name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = sql_name.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            c => current.push(c.to_ascii_lowercase()),
        }
    }
    out.push(current);
    out
}

/// The last part of a name written in SQL, unquoted: the relation's own name.
pub fn base_name(sql_name: &str) -> String {
    parts(sql_name).pop().unwrap_or_default()
}

/// The name PostgreSQL makes from a table name, an optional addition and a
/// label (`makeObjectName`): `orders_user_id_fkey`. When the result would
/// exceed 63 bytes, the longer of the two names is shortened first, one
/// byte at a time, and each is cut back to a whole character.
pub fn object_name(name1: &str, name2: Option<&str>, label: &str) -> String {
    let mut overhead = label.len() + 1;
    let mut chars1 = name1.len();
    let mut chars2 = 0;
    if let Some(n2) = name2 {
        chars2 = n2.len();
        overhead += 1;
    }
    let available = MAX_NAME_BYTES.saturating_sub(overhead);
    while chars1 + chars2 > available {
        if chars1 > chars2 {
            chars1 -= 1;
        } else {
            chars2 -= 1;
        }
    }
    let mut out = clip(name1, chars1).to_owned();
    if let Some(n2) = name2 {
        out.push('_');
        out.push_str(clip(n2, chars2));
    }
    out.push('_');
    out.push_str(label);
    out
}

/// The column part of a default constraint or index name
/// (`ChooseForeignKeyConstraintNameAddition`, `ChooseIndexNameAddition`):
/// the names joined by `_`, stopping once 64 bytes are reached.
pub fn name_addition(columns: &[String]) -> String {
    let mut out = String::new();
    for c in columns {
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(clip(c, MAX_NAME_BYTES));
        if out.len() > MAX_NAME_BYTES {
            break;
        }
    }
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary (`pg_mbcliplen`).
fn clip(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_the_server() {
        for (name, quoted) in [
            ("users", "users"),
            ("Orders", "\"Orders\""),
            ("my.table", "\"my.table\""),
            ("a\"b", "\"a\"\"b\""),
            ("1abc", "\"1abc\""),
            ("user", "\"user\""),
            ("select", "\"select\""),
            ("between", "\"between\""), // column-name keyword
            ("left", "\"left\""),       // type/function-name keyword
            ("window", "\"window\""),
            ("name", "name"), // unreserved keyword
            ("update", "update"),
            ("_x9", "_x9"),
            ("é", "\"é\""),
            ("", "\"\""),
        ] {
            assert_eq!(quote_ident(name), quoted, "{name}");
        }
    }

    #[test]
    fn parts_round_trip() {
        for p in [
            vec!["Sch".to_owned(), "t".to_owned()],
            vec!["my.table".to_owned()],
            vec!["public".to_owned(), "a\"b.c".to_owned()],
        ] {
            assert_eq!(parts(&qualified(&p)), p);
        }
        assert_eq!(parts("Public.Users"), ["public", "users"]);
        assert_eq!(base_name("\"Sch\".\"T.x\""), "T.x");
    }

    #[test]
    fn object_names_match_postgres() {
        assert_eq!(
            object_name("orders", Some("user_id"), "fkey"),
            "orders_user_id_fkey"
        );
        assert_eq!(object_name("Orders", None, "pkey"), "Orders_pkey");
        // The longer name loses bytes first, until both fit (the CLI test
        // safe_rewrites::rewrites_keep_names_as_postgres_sees_them checks a
        // truncated multi-byte name against a real server).
        let a = "a".repeat(60);
        let b = "b".repeat(60);
        let name = object_name(&a, Some(&b), "key");
        assert_eq!(name, format!("{}_{}_key", "a".repeat(29), "b".repeat(29)));
        assert_eq!(name.len(), 63);
        assert_eq!(
            object_name(&a, None, "pkey"),
            format!("{}_pkey", "a".repeat(58))
        );
        // Multi-byte characters are never cut in half.
        let name = object_name(&"é".repeat(40), None, "pkey");
        assert!(name.len() <= 63 && name.ends_with("_pkey"), "{name}");
        assert_eq!(name_addition(&["a".into(), "b".into()]), "a_b");
    }
}
