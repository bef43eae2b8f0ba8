//! Schema files: `pg_dump --schema-only` to text, and `psql` to load one,
//! for `strata dump`, `schema_file` and `strata verify`.

use std::path::Path;
use std::process::Stdio;

use super::{command, ClientTools, LocalPgError};

impl ClientTools {
    /// The plain-text schema of the database `env` points at (`pg_dump
    /// --schema-only --no-owner --no-privileges`), without the tables
    /// `exclude` names (exact `"schema"."table"` patterns). Returned as
    /// pg_dump wrote it; `verify::dump` removes its run-specific lines.
    pub fn schema_dump(
        &self,
        env: &[(&'static str, String)],
        exclude: &[String],
    ) -> Result<String, LocalPgError> {
        let mut cmd = command(&self.pg_dump);
        cmd.args([
            "--schema-only",
            "--no-owner",
            "--no-privileges",
            "--no-password",
        ]);
        for t in exclude {
            cmd.arg(format!("--exclude-table={t}"));
        }
        let out = cmd
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LocalPgError::io("cannot run pg_dump", e))?;
        if !out.status.success() {
            return Err(LocalPgError::Failed {
                step: "pg_dump --schema-only".to_owned(),
                output: crate::db::redact(String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        String::from_utf8(out.stdout).map_err(|e| LocalPgError::Failed {
            step: "pg_dump --schema-only".to_owned(),
            output: format!("the dump is not UTF-8: {e}"),
        })
    }

    /// Runs the SQL script `file` with `psql` in one transaction, stopping
    /// at the first error (`--single-transaction`, `ON_ERROR_STOP`): a
    /// schema file that does not load leaves nothing behind.
    pub fn run_script(
        &self,
        env: &[(&'static str, String)],
        file: &Path,
    ) -> Result<(), LocalPgError> {
        let Some(psql) = &self.psql else {
            return Err(LocalPgError::NoClientTool {
                tool: "psql".to_owned(),
                looked: "next to pg_dump".to_owned(),
            });
        };
        let out = command(psql)
            .args([
                "--no-psqlrc",
                "--quiet",
                "--no-password",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                "--output=/dev/null",
            ])
            .arg("--file")
            .arg(file)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LocalPgError::io("cannot run psql", e))?;
        if !out.status.success() {
            return Err(LocalPgError::Failed {
                step: format!("psql --file {}", file.display()),
                output: crate::db::redact(String::from_utf8_lossy(&out.stderr).trim()),
            });
        }
        Ok(())
    }
}
