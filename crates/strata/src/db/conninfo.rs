//! Connection strings: libpq URLs and `key=value` strings.
//!
//! tokio-postgres parses both forms but knows only the `sslmode` values
//! `disable`, `prefer` and `require`, and rejects `sslrootcert` and friends.
//! libpq users write `verify-ca` and `verify-full`, so this module takes the
//! TLS settings out of the string, hands the rest to tokio-postgres, and
//! keeps the TLS settings for [`super::tls`].

use std::path::PathBuf;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, no verification (libpq's `allow` too).
    Prefer,
    /// TLS required; the certificate is not verified (unless a root
    /// certificate is given, as in libpq).
    Require,
    /// TLS required; the chain is verified, the host name is not.
    VerifyCa,
    /// TLS required; chain and host name are verified.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<SslMode> {
        Some(match value {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// The name libpq uses (`allow` is read as `prefer`).
    pub fn libpq_name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The nearest mode tokio-postgres understands.
    fn for_tokio(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            _ => "require",
        }
    }
}

/// TLS settings taken out of a connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The requested mode; libpq's default is `prefer`.
    pub mode: SslMode,
    /// `sslrootcert`: CA certificates (PEM) to trust.
    pub root_cert: Option<PathBuf>,
    /// `sslcert`: client certificate (PEM).
    pub client_cert: Option<PathBuf>,
    /// `sslkey`: client key (PEM, PKCS#8).
    pub client_key: Option<PathBuf>,
}

const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// Splits a connection string into the part tokio-postgres parses and the
/// TLS settings. Errors name the bad value, never the whole string.
pub fn split_tls(conninfo: &str) -> Result<(String, TlsSettings), String> {
    let mut tls = TlsSettings {
        mode: SslMode::Prefer,
        root_cert: None,
        client_cert: None,
        client_key: None,
    };
    let mut apply = |key: &str, value: &str| -> Result<(), String> {
        match key {
            "sslmode" => {
                tls.mode = SslMode::parse(value).ok_or_else(|| {
                    format!("unknown sslmode `{value}` (use disable, allow, prefer, require, verify-ca or verify-full)")
                })?
            }
            "sslrootcert" => tls.root_cert = Some(PathBuf::from(value)),
            "sslcert" => tls.client_cert = Some(PathBuf::from(value)),
            "sslkey" => tls.client_key = Some(PathBuf::from(value)),
            _ => {}
        }
        Ok(())
    };
    let trimmed = conninfo.trim();
    let rest = if is_url(trimmed) {
        let (base, query) = match trimmed.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (trimmed, None),
        };
        let mut kept = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if TLS_KEYS.contains(&k) {
                apply(k, &percent_decode(v))?;
            } else {
                kept.push(pair.to_owned());
            }
        }
        kept.push(format!("sslmode={}", tls.mode.for_tokio()));
        format!("{base}?{}", kept.join("&"))
    } else {
        let mut kept = Vec::new();
        for (k, v, raw) in kv_pairs(trimmed)? {
            if TLS_KEYS.contains(&k.as_str()) {
                apply(&k, &v)?;
            } else {
                kept.push(raw);
            }
        }
        kept.push(format!("sslmode={}", tls.mode.for_tokio()));
        kept.join(" ")
    };
    Ok((rest, tls))
}

/// True for `postgres://` and `postgresql://` URLs.
pub fn is_url(conninfo: &str) -> bool {
    conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://")
}

/// Splits a libpq `key=value` string into (key, unquoted value, raw text).
fn kv_pairs(s: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        if chars.next().map(|(_, c)| c) != Some('=') {
            // The word may be part of a password with an unquoted space:
            // say where it is, never what it is.
            return Err(format!(
                "missing `=` after word {} of the connection string (a value that contains spaces needs single quotes)",
                out.len() + 1
            ));
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek().is_some_and(|(_, c)| *c == '\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        if let Some((_, c)) = chars.next() {
                            value.push(c)
                        }
                    }
                    Some((_, '\'')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("unterminated quoted value for `{key}`")),
                }
            }
        } else {
            while let Some(&(_, c)) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    if let Some((_, c)) = chars.next() {
                        value.push(c);
                    }
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        let end = chars.peek().map(|(i, _)| *i).unwrap_or(s.len());
        out.push((key, value, s[start..end].to_owned()));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Two ASCII hex digits only: slicing `s` at a byte that is not a
        // char boundary (`%a€`) would panic.
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Replaces every password in a connection string with `***`, in every
/// form libpq accepts and the malformed ones people write: URL user-info
/// (`postgres://` or `postgresql://`, several hosts, a password with an
/// unencoded `@`, `/`, `?` or space), user-info without a scheme
/// (`user:pw@host/db`), `password` keys in any case with or without spaces
/// around `=` and quoted values with escaped quotes, `password` query
/// parameters (percent-encoded keys too), `PGPASSWORD=`, and any password
/// Strata has seen in a parsed target. Safe on any text: the rest is
/// returned unchanged. Over-redacting is preferred to a leak.
pub fn redact(text: &str) -> String {
    let out = redact_url_userinfo(text);
    let out = redact_bare_userinfo(&out);
    let out = redact_query_params(&out);
    let out = redact_keys(&out);
    redact_known(&out)
}

/// Redacts a whole connection string (the text is nothing but the
/// string, so malformed parts are known to belong to it): on top of
/// [`redact`], an unquoted `password` value runs up to the next `key=`
/// word, because libpq would have rejected the string at a space inside
/// it, and a scheme-less `user:pw with spaces@host` loses everything
/// between the first `:` and the last `@`.
pub fn redact_conninfo(conninfo: &str) -> String {
    let text = conninfo.trim();
    if !text.contains("://") && !text.contains('=') {
        if let (Some(colon), Some(at)) = (text.find(':'), text.rfind('@')) {
            if colon < at {
                return redact(&format!("{}:***{}", &text[..colon], &text[at..]));
            }
        }
    }
    if text.contains("://") {
        return redact(text);
    }
    let lower = text.to_ascii_lowercase();
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let start = from + found;
        from = start + "password".len();
        if text[..start].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = text[from..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            continue;
        };
        let value_start = text.len() - value.trim_start().len();
        let value_end = if text[value_start..].starts_with('\'') {
            let bytes = text.as_bytes();
            let mut k = value_start + 1;
            while k < bytes.len() && bytes[k] != b'\'' {
                k += if bytes[k] == b'\\' { 2 } else { 1 };
            }
            (k + 1).min(text.len())
        } else {
            // Up to the next word that holds a `=`.
            let mut end = text.len();
            let mut pos = value_start;
            for word in text[value_start..].split_inclusive(char::is_whitespace) {
                if pos > value_start && word.contains('=') {
                    end = pos;
                    break;
                }
                pos += word.len();
            }
            value_start + text[value_start..end].trim_end().len()
        };
        out.push_str(&text[copied..value_start]);
        out.push_str("***");
        copied = value_end;
        from = value_end.max(from);
    }
    out.push_str(&text[copied..]);
    redact(&out)
}

/// Passwords of targets parsed in this process: whatever text an error
/// echoes, they are never shown. Only passwords of 4 or more characters,
/// so that redaction does not garble every message.
static KNOWN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Remembers a password so that [`redact`] removes it wherever it appears.
pub fn remember_secret(secret: &str) {
    if secret.chars().count() < 4 || secret == "***" {
        return;
    }
    if let Ok(mut known) = KNOWN.lock() {
        if !known.iter().any(|k| k == secret) {
            known.push(secret.to_owned());
        }
    }
}

fn redact_known(text: &str) -> String {
    let Ok(known) = KNOWN.lock() else {
        return text.to_owned();
    };
    let mut out = text.to_owned();
    for secret in known.iter() {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

/// `scheme://user:password@host`: the user-info ends at the last `@` of
/// the URL. A password may hold `/`, `?`, `@` and even spaces (libpq
/// rejects those, and then prints the string), so the URL is taken to run
/// to the end of the line, but no further than the first whitespace after
/// an `@`, or the next `://`.
fn redact_url_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let limit = tail
            .find(['\n', '\r'])
            .unwrap_or(tail.len())
            .min(tail.find("://").unwrap_or(tail.len()));
        let mut last_at = None;
        for (j, c) in tail[..limit].char_indices() {
            if c == '@' {
                last_at = Some(j);
            } else if (c.is_whitespace() || c == '"' || c == '\'') && last_at.is_some() {
                break;
            }
        }
        match last_at {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// `user:password@host/db` without a scheme (libpq reads it as a broken
/// `key=value` string and prints it back): in a word holding `:` and `@`,
/// everything between the first `:` and the last `@` goes.
fn redact_bare_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(|c: char| c.is_whitespace()) {
        let w = word.trim_start_matches(['"', '\'', '`', '(', '<', '[']);
        let lead = &word[..word.len() - w.len()];
        match (w.find(':'), w.rfind('@')) {
            (Some(colon), Some(at))
                if colon < at
                    && !w.contains("://")
                    && !w[..colon].is_empty()
                    && !w[..colon].contains(['=', '/'])
                    && &w[colon + 1..at] != "***" =>
            {
                out.push_str(lead);
                out.push_str(&w[..colon]);
                out.push_str(":***");
                out.push_str(&w[at..]);
            }
            _ => out.push_str(word),
        }
    }
    out
}

/// `?password=...` and `&password=...`, with the key compared after
/// percent-decoding and in any case, as libpq decodes URL parameters.
fn redact_query_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(['?', '&']) {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let key_end = rest
            .find(|c: char| c == '=' || c == '&' || c == '?' || c.is_whitespace())
            .unwrap_or(rest.len());
        if rest[key_end..].starts_with('=') && is_password_key(&percent_decode(&rest[..key_end])) {
            out.push_str(&rest[..=key_end]);
            rest = &rest[key_end + 1..];
            let end = rest
                .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
                .unwrap_or(rest.len());
            out.push_str("***");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

fn is_password_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("pgpassword")
}

/// `password=value`, `PASSWORD = 'it''s \' quoted'`, `PGPASSWORD=...`:
/// libpq's `key=value` syntax (spaces around `=`, single-quoted values with
/// backslash escapes), keys in any case.
fn redact_keys(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find("password") {
        let start = from + found;
        let after_key = start + "password".len();
        from = after_key;
        let before = &text[..start];
        let before = before
            .strip_suffix("pg")
            .or_else(|| before.strip_suffix("PG"))
            .unwrap_or(before);
        // Query parameters (`?password=`, `&password=`) are done already.
        if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '?' || c == '&') {
            continue;
        }
        let bytes = text.as_bytes();
        let mut j = after_key;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        if j >= bytes.len() || bytes[j] != b'=' {
            continue;
        }
        j += 1;
        while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
            j += 1;
        }
        let value_end = if bytes.get(j) == Some(&b'\'') {
            let mut k = j + 1;
            while k < bytes.len() && bytes[k] != b'\'' {
                k += if bytes[k] == b'\\' { 2 } else { 1 };
            }
            (k + 1).min(bytes.len())
        } else {
            text[j..]
                .find(|c: char| c.is_whitespace())
                .map_or(text.len(), |e| j + e)
        };
        if value_end == j || text[j..value_end].starts_with("***") {
            continue;
        }
        out.push_str(&text[copied..j]);
        out.push_str("***");
        copied = value_end;
        from = value_end;
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every form libpq accepts, and the malformed ones people write:
    /// the password never survives, and the rest stays readable.
    #[test]
    fn redacts_passwords_in_all_forms() {
        let cases = [
            (
                "postgres://bob:s3cret@db:5432/app",
                "postgres://bob:***@db:5432/app",
            ),
            (
                "postgresql://bob:s3cret@db/app",
                "postgresql://bob:***@db/app",
            ),
            (
                "postgres://bob@db/app?password=s3cret&x=1",
                "postgres://bob@db/app?password=***&x=1",
            ),
            (
                "postgres://bob@db/app?x=1&PASSWORD=s3cret",
                "postgres://bob@db/app?x=1&PASSWORD=***",
            ),
            (
                "postgres://bob@db/app?pass%77ord=s3cret",
                "postgres://bob@db/app?pass%77ord=***",
            ),
            ("postgres://bob:pa ss@db/app", "postgres://bob:***@db/app"),
            ("postgres://bob:p@ss@db/app", "postgres://bob:***@db/app"),
            ("postgres://bob:pa/ss@db/app", "postgres://bob:***@db/app"),
            ("postgres://bob:pa?ss@db/app", "postgres://bob:***@db/app"),
            (
                "postgres://bob:s3cret@h1:5432,h2:5433/app",
                "postgres://bob:***@h1:5432,h2:5433/app",
            ),
            (
                "postgres://bob:s3cret@[::1]:5432/app",
                "postgres://bob:***@[::1]:5432/app",
            ),
            ("postgres://bob@db/app", "postgres://bob@db/app"),
            ("bob:s3cret@db/app", "bob:***@db/app"),
            ("bob:s3cret@db:5432", "bob:***@db:5432"),
            ("host=db password=s3cret", "host=db password=***"),
            (
                "host=db PASSWORD=s3cret user=bob",
                "host=db PASSWORD=*** user=bob",
            ),
            ("host=db Password = s3cret", "host=db Password = ***"),
            (
                "host=db password='a b\\'c' user=bob",
                "host=db password=*** user=bob",
            ),
            (
                "host=db password = 'x y' user=bob",
                "host=db password = *** user=bob",
            ),
            ("PGPASSWORD=s3cret psql", "PGPASSWORD=*** psql"),
            ("host=db password=a&b", "host=db password=***"),
            (
                "error connecting to postgresql://u:p4ss@h/d: refused",
                "error connecting to postgresql://u:***@h/d: refused",
            ),
            (
                "invalid connection string: missing \"=\" after \"bob:s3cret@db/app\"",
                "invalid connection string: missing \"=\" after \"bob:***@db/app\"",
            ),
            ("no secrets here", "no secrets here"),
            (
                "at 10:30 mail admin@example.com",
                "at 10:30 mail admin@example.com",
            ),
            ("the password is checked", "the password is checked"),
            ("passwords=1 mypassword=x", "passwords=1 mypassword=x"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact(input), expected, "{input}");
            assert!(!redact(input).contains("s3cret"), "{input}");
        }
        // Idempotent: redacting twice changes nothing more.
        for (input, expected) in cases {
            assert_eq!(redact(expected), expected, "{input}");
        }
    }

    #[test]
    fn whole_connection_strings_lose_malformed_passwords_too() {
        for (input, expected) in [
            ("host=db password=Xq7 Zr9", "host=db password=***"),
            (
                "host=db password=Xq7 Zr9 user=bob",
                "host=db password=*** user=bob",
            ),
            ("host=db PASSWORD = 'Xq7 Zr9", "host=db PASSWORD = ***"),
            ("bob:Xq7 Zr9@db/app", "bob:***@db/app"),
            ("postgres://bob:Xq7 Zr9@db/app", "postgres://bob:***@db/app"),
            ("host=db user=bob", "host=db user=bob"),
        ] {
            assert_eq!(redact_conninfo(input), expected, "{input}");
        }
    }

    #[test]
    fn remembered_secrets_are_removed_anywhere() {
        remember_secret("Tr0ub4dor");
        assert_eq!(
            redact("server said: Tr0ub4dor is wrong"),
            "server said: *** is wrong"
        );
        remember_secret("ab");
        assert_eq!(redact("ab"), "ab");
    }

    #[test]
    fn takes_tls_settings_out_of_urls_and_key_values() {
        let (rest, tls) = split_tls(
            "postgres://u@h/d?sslmode=verify-full&sslrootcert=%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(rest, "postgres://u@h/d?application_name=x&sslmode=require");
        assert_eq!(tls.mode, SslMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/ca.pem")));

        let (rest, tls) = split_tls("host=h dbname='my db' sslmode=verify-ca").unwrap();
        assert_eq!(rest, "host=h dbname='my db' sslmode=require");
        assert_eq!(tls.mode, SslMode::VerifyCa);

        let (rest, tls) = split_tls("host=h").unwrap();
        assert_eq!(rest, "host=h sslmode=prefer");
        assert_eq!(tls.mode, SslMode::Prefer);

        assert!(split_tls("host=h sslmode=bogus")
            .unwrap_err()
            .contains("unknown sslmode"));
        assert!(split_tls("host").is_err());
    }
}
