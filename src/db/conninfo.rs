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
            return Err(format!(
                "missing `=` after `{key}` in the connection string"
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
        if bytes[i] == b'%' && i + 2 < bytes.len() {
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

/// Replaces every password in a connection string (URL user-info, a
/// `password=` key or query parameter) with `***`. Safe on any text: the
/// rest is returned unchanged.
pub fn redact(text: &str) -> String {
    let mut out = redact_userinfo(text);
    for key in ["password=", "PGPASSWORD="] {
        out = redact_key(&out, key);
    }
    out
}

fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let authority_end = tail
            .find(['/', '?', ' ', '\n', '"', '\''])
            .unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

fn redact_key(text: &str, key: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(key) {
        let boundary = i == 0 || !rest[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..i + key.len()]);
        rest = &rest[i + key.len()..];
        if !boundary {
            continue;
        }
        let end = if rest.starts_with('\'') {
            let mut j = 1;
            let bytes = rest.as_bytes();
            while j < bytes.len() && bytes[j] != b'\'' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            (j + 1).min(rest.len())
        } else {
            rest.find(|c: char| c.is_whitespace() || c == '&' || c == '"')
                .unwrap_or(rest.len())
        };
        out.push_str("***");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_in_all_forms() {
        assert_eq!(
            redact("postgres://bob:s3cret@db:5432/app"),
            "postgres://bob:***@db:5432/app"
        );
        assert_eq!(
            redact("postgres://bob@db/app?password=s3cret&x=1"),
            "postgres://bob@db/app?password=***&x=1"
        );
        assert_eq!(
            redact("host=db password='a b\\'c' user=bob"),
            "host=db password=*** user=bob"
        );
        assert_eq!(redact("host=db password=s3cret"), "host=db password=***");
        assert_eq!(redact("no secrets here"), "no secrets here");
        assert_eq!(
            redact("error connecting to postgresql://u:p@h/d: refused"),
            "error connecting to postgresql://u:***@h/d: refused"
        );
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
