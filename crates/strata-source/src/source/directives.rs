//! Strata's own comment directives (`-- strata:…`).
//!
//! Directives are written as line comments so that every other tool, and the
//! server itself, ignores them. An unknown `strata:` directive is an error, so
//! that a typo such as `-- strata:no-transacton` never silently runs a file in
//! the wrong mode.

/// A recognised `-- strata:` directive.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Directive {
    /// `-- strata:no-transaction`: run the file outside a transaction.
    NoTransaction,
    /// `-- strata:allow RULE[, RULE] reason: …`: acknowledge lint findings.
    Allow {
        /// The acknowledged rule ids.
        rules: Vec<String>,
        /// Why the finding is acceptable here.
        reason: String,
    },
    /// `-- strata:placeholders`: replace `${name}` in this file with the
    /// configured values (see [`super::placeholders`]). Opt-in per file, so
    /// that `${…}` in a file written for another tool never changes meaning.
    Placeholders,
}

/// Parses one line. Returns `None` when the line is not a strata directive,
/// `Some(Err(message))` when it is one but malformed or unknown.
pub fn parse_strata_directive(line: &str) -> Option<Result<Directive, String>> {
    let rest = line.trim_start().strip_prefix("--")?.trim_start();
    let body = rest.strip_prefix("strata:")?;
    let (name, args) = match body.find(char::is_whitespace) {
        Some(i) => (&body[..i], body[i..].trim()),
        None => (body.trim(), ""),
    };
    Some(match name {
        "no-transaction" if args.is_empty() => Ok(Directive::NoTransaction),
        "no-transaction" => Err(format!(
            "`strata:no-transaction` takes no arguments, found `{args}`"
        )),
        "allow" => parse_allow(args),
        // The up/down markers are read by the layout loaders, which split
        // the file there; a marker with words after it is a typo.
        "up" | "down" if args.is_empty() => return None,
        "up" | "down" => Err(format!(
            "`strata:{name}` takes no arguments, found `{args}`"
        )),
        "placeholders" if args.is_empty() => Ok(Directive::Placeholders),
        "placeholders" => Err(format!(
            "`strata:placeholders` takes no arguments, found `{args}` (values go in [placeholders] of strata.toml)"
        )),
        other => Err(format!(
            "unknown directive `strata:{other}` (known: strata:no-transaction, strata:allow, strata:placeholders, strata:up, strata:down)"
        )),
    })
}

fn parse_allow(args: &str) -> Result<Directive, String> {
    let (rules, reason) = match args.find("reason:") {
        Some(i) => (&args[..i], args[i + "reason:".len()..].trim()),
        None => (args, ""),
    };
    let rules: Vec<String> = rules
        .split(',')
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if rules.is_empty() {
        return Err("`strata:allow` needs at least one rule id".to_owned());
    }
    if reason.is_empty() {
        return Err(format!(
            "`strata:allow {}` needs a reason: write `reason: <why this is safe>`",
            rules.join(", ")
        ));
    }
    Ok(Directive::Allow {
        rules,
        reason: reason.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_directives() {
        assert_eq!(
            parse_strata_directive("-- strata:no-transaction"),
            Some(Ok(Directive::NoTransaction))
        );
        assert_eq!(
            parse_strata_directive("--strata:allow a-rule, b-rule reason: table is empty"),
            Some(Ok(Directive::Allow {
                rules: vec!["a-rule".into(), "b-rule".into()],
                reason: "table is empty".into()
            }))
        );
        assert_eq!(
            parse_strata_directive("-- strata:placeholders"),
            Some(Ok(Directive::Placeholders))
        );
        assert_eq!(parse_strata_directive("-- just a comment"), None);
        assert_eq!(parse_strata_directive("SELECT 1"), None);
    }

    #[test]
    fn rejects_unknown_and_malformed_directives() {
        assert!(matches!(
            parse_strata_directive("-- strata:no-transacton"),
            Some(Err(m)) if m.contains("unknown directive")
        ));
        assert!(matches!(
            parse_strata_directive("-- strata:allow some-rule"),
            Some(Err(m)) if m.contains("needs a reason")
        ));
    }
}
