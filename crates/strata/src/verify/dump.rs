//! `strata dump` and `schema_file`: the schema as a deterministic SQL file
//! that loads into an empty database with `psql`.
//!
//! pg_dump writes the schema (`--schema-only --no-owner --no-privileges`,
//! Strata's own tables excluded); [`clean`] then removes what changes from
//! run to run or from machine to machine: the version comments, the
//! `\restrict`/`\unrestrict` lines with their random key (pg_dump 17.6,
//! 18.0 and later), and `SET transaction_timeout`, which servers before 17
//! reject. Two dumps of the same schema are byte-identical, so the file can
//! be committed and reviewed as a diff.

use std::path::Path;

use super::catalog::OwnTables;
use super::VerifyError;
use crate::config::Config;
use crate::db::{catalog, Connection, Target};
use crate::localpg::ClientTools;

/// The schema of `target`, as `strata dump` prints it.
pub async fn dump(config: &Config, target: &Target) -> Result<String, VerifyError> {
    let conn = target.connect().await?;
    let server = catalog::server_version_num(&conn).await? / 10_000;
    let exclude = exclusions(config, &conn).await?;
    drop(conn);
    let tools = ClientTools::find(config.pg_bindir.as_deref())?;
    let dump_major = tools.pg_dump_major()?;
    if (dump_major as i32) < server {
        return Err(VerifyError::Usage {
            message: format!(
                "pg_dump {dump_major} is older than the server ({server}), and pg_dump cannot dump a newer server"
            ),
            help: format!(
                "install the client tools of PostgreSQL {server} or newer and point pg_bindir in strata.toml at them"
            ),
        });
    }
    let env = target.libpq_env();
    let raw = tokio::task::spawn_blocking(move || tools.schema_dump(&env, &exclude))
        .await
        .map_err(|e| VerifyError::Usage {
            message: format!("pg_dump did not finish: {e}"),
            help: "run the command again".to_owned(),
        })??;
    Ok(clean(&raw))
}

/// Dumps `target` into `path`: written beside it and renamed, so a reader
/// (or a failed dump) never sees half a file. Unchanged contents leave the
/// file untouched.
pub async fn write_schema_file(
    config: &Config,
    target: &Target,
    path: &Path,
) -> Result<(), VerifyError> {
    let text = dump(config, target).await?;
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    let io = |source| VerifyError::Io {
        what: "cannot write the schema file",
        path: path.to_path_buf(),
        source,
        help:
            "check that its directory exists and is writable (schema_file in strata.toml, or --out)",
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text.as_bytes()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io(e)
    })
}

/// Strata's own tables and the sequences they own (`bigserial` ids, which
/// pg_dump would keep without their table), as exact pg_dump patterns
/// (`"public"."strata_events"`).
async fn exclusions(config: &Config, conn: &Connection) -> Result<Vec<String>, VerifyError> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let own = OwnTables::new(&config.history_schema, &config.history_table).tables;
    let schemas: Vec<&str> = own.iter().map(|(s, _)| s.as_str()).collect();
    let names: Vec<&str> = own.iter().map(|(_, t)| t.as_str()).collect();
    let rows = conn
        .query(
            "SELECT n.nspname::text, s.relname::text
             FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace
             JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             JOIN pg_class t ON t.oid = d.refobjid
             JOIN pg_namespace tn ON tn.oid = t.relnamespace
             WHERE s.relkind = 'S'
               AND (tn.nspname::text, t.relname::text) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
            &[&schemas, &names],
        )
        .await?;
    let sequences = rows.iter().filter_map(|r| {
        let schema: String = r.try_get(0).ok()?;
        let name: String = r.try_get(1).ok()?;
        Some((schema, name))
    });
    Ok(own
        .iter()
        .cloned()
        .chain(sequences)
        .map(|(schema, table)| format!("{}.{}", quote(&schema), quote(&table)))
        .collect())
}

/// pg_dump's output without its run-specific lines. Only the preamble
/// (comments, `SET`s, `set_config`, `\restrict`, before the first object)
/// and the last line (`\unrestrict`) are looked at: the same text inside a
/// function body is the body's, and stays. The blank lines the removed
/// lines leave behind in the preamble are collapsed.
pub fn clean(raw: &str) -> String {
    let lines: Vec<&str> = raw.lines().collect();
    let mut end = lines.len();
    while end > 0 && lines[end - 1].trim().is_empty() {
        end -= 1;
    }
    if end > 0 && lines[end - 1].starts_with("\\unrestrict ") {
        end -= 1;
        while end > 0 && lines[end - 1].trim().is_empty() {
            end -= 1;
        }
    }
    let mut out = String::with_capacity(raw.len());
    let mut preamble = true;
    let mut blank = false;
    for line in &lines[..end] {
        let t = line.trim_end();
        if preamble {
            preamble = t.is_empty()
                || t.starts_with("--")
                || t.starts_with("SET ")
                || t.starts_with("SELECT pg_catalog.set_config(")
                || t.starts_with("\\restrict ");
        }
        if preamble {
            let run_specific = t.starts_with("-- Dumped from database version")
                || t.starts_with("-- Dumped by pg_dump version")
                || t.starts_with("\\restrict ")
                || t == "SET transaction_timeout = 0;";
            if run_specific || (t.is_empty() && blank) {
                continue;
            }
            blank = t.is_empty();
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn run_specific_lines_go_and_the_rest_stays() {
        let raw = "--\n-- PostgreSQL database dump\n--\n\n\\restrict AbC123\n\n-- Dumped from database version 15.18\n-- Dumped by pg_dump version 18.1\n\nSET statement_timeout = 0;\nSET transaction_timeout = 0;\n\nCREATE TABLE public.t (\n    id integer\n);\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict AbC123\n\n";
        assert_eq!(
            clean(raw),
            "--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n\nCREATE TABLE public.t (\n    id integer\n);\n\n\n--\n-- PostgreSQL database dump complete\n--\n"
        );
    }

    #[test]
    fn a_function_body_is_not_touched() {
        let raw = "SET x = 1;\n\nCREATE FUNCTION f() RETURNS text AS $$\n\n\n\\restrict k\nSET transaction_timeout = 0;\n-- Dumped by pg_dump version\n$$;\n";
        assert_eq!(clean(raw), raw);
    }
}
