//! Migrations carried inside a binary: the reading half of
//! `strata::embed_migrations!`.
//!
//! The macro runs at compile time and calls [`scan`], which reads the
//! directory with the same loader as the CLI ([`super::load`]: every layout,
//! the same directives, the same checksums) and checks that every script
//! splits with the PostgreSQL parser. The result, [`Embedded`], is plain data
//! that the macro writes into the binary as JSON; at run time the library
//! turns it back into the same [`Migration`] values with
//! [`Embedded::from_json`], without touching the filesystem. A migration
//! applied from the embedded copy therefore records exactly the checksum that
//! `strata up` records for the files.
//!
//! Paths in the data (and in messages) are the directory as the macro call
//! wrote it joined with the file's path inside it (`migrations/1_users.up.sql`),
//! not the absolute path of the machine that built the binary.

use std::path::{Path, PathBuf};

use super::{load, placeholders, Directive, Format, Migration, SourceProblem};

/// A migration directory read at compile time, ready to be written into a
/// binary and rebuilt there.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Embedded {
    /// The detected layout (it decides how `--to`/`goto` versions parse).
    pub format: Format,
    /// The directory as the macro call wrote it (`migrations`).
    pub dir: PathBuf,
    /// The migrations in run order, paths relative as described above.
    pub migrations: Vec<Migration>,
}

/// What [`scan`] found: the data, and every file it read, so that the macro
/// can make cargo rebuild the binary when one of them changes.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// The migrations.
    pub embedded: Embedded,
    /// Absolute paths of the files read (scripts, diesel's `metadata.toml`).
    pub files: Vec<PathBuf>,
}

/// Reads `base/dir` (`base` is the calling crate's `CARGO_MANIFEST_DIR`) in
/// whatever layout it uses. Every problem is returned (bad files, SQL that
/// does not parse), each naming its file and line, so that the build fails
/// with all of them at once.
///
/// Scripts that opt in to placeholders (`-- strata:placeholders`) are not
/// parsed here: their values are only known at run time, where the library
/// substitutes and parses them like the CLI does.
pub fn scan(base: &Path, dir: &Path) -> Result<Scanned, Vec<SourceProblem>> {
    let abs = base.join(dir);
    let loaded = load(&abs, None);
    let mut problems = loaded.problems;
    let mut migrations = loaded.migrations;
    let mut files = Vec::new();
    for m in &mut migrations {
        for script in std::iter::once(&mut m.up).chain(m.down.as_deref_mut()) {
            if !files.contains(&script.path) {
                files.push(script.path.clone());
            }
            if m.kind == super::MigrationKind::Plan {
                // Checked by the loader (`source::plans`); not SQL.
                continue;
            }
            if placeholders::opted_in(script) {
                // The run-time copy has no file to look at for a goose
                // preamble: record the opt-in on the script itself.
                if !script
                    .directives
                    .iter()
                    .any(|(_, d)| *d == Directive::Placeholders)
                {
                    script.directives.push((1, Directive::Placeholders));
                }
                continue;
            }
            let sql = match script.load() {
                Ok(sql) => sql,
                Err(problem) => {
                    problems.push(problem);
                    continue;
                }
            };
            if let Err(error) = crate::sql::split(sql.text(), &script.blocks) {
                problems.push(SourceProblem {
                    path: script.path.clone(),
                    line: Some(script.first_line + error.line() - 1),
                    message: error.to_string(),
                    help: Some(error.help().to_owned()),
                });
            }
        }
        if loaded.format == Format::Diesel {
            if let Some(metadata) = m.up.path.parent().map(|p| p.join("metadata.toml")) {
                if metadata.is_file() {
                    files.push(metadata);
                }
            }
        }
    }
    let relative = |path: &Path| match path.strip_prefix(&abs) {
        Ok(inside) => dir.join(inside),
        Err(_) => path.to_path_buf(),
    };
    if !problems.is_empty() {
        for p in &mut problems {
            p.path = relative(&p.path);
        }
        return Err(problems);
    }
    for m in &mut migrations {
        for script in std::iter::once(&mut m.up).chain(m.down.as_deref_mut()) {
            script.path = relative(&script.path);
        }
    }
    Ok(Scanned {
        embedded: Embedded {
            format: loaded.format,
            dir: dir.to_path_buf(),
            migrations,
        },
        files,
    })
}

impl Embedded {
    /// The form written into the binary. Fails only on a path that is not
    /// UTF-8 (JSON cannot carry it), naming it.
    pub fn to_json(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| {
            format!(
                "cannot embed the migrations of {}: {e} (file names must be UTF-8)",
                self.dir.display()
            )
        })
    }

    /// Rebuilds the data written by [`Embedded::to_json`]. Fails only when
    /// the macro and the library come from different Strata versions.
    pub fn from_json(json: &str) -> Result<Embedded, String> {
        serde_json::from_str(json).map_err(|e| {
            format!(
                "embedded migrations written by another version of strata-macros: {e} (use the same version of strata and strata-macros)"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn round_trip_keeps_what_the_loader_read() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("db");
        write(&dir, "00001_users.sql", "-- +goose Up\nCREATE TABLE users (id int);\n-- +goose StatementBegin\nCREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n-- +goose StatementEnd\n\n-- +goose Down\nDROP TABLE users;\n");
        write(
            &dir,
            "00002_idx.sql",
            "-- +goose NO TRANSACTION\n-- +goose Up\nCREATE INDEX CONCURRENTLY i ON users (id);\n",
        );
        let scanned = scan(base.path(), Path::new("db")).unwrap();
        let loaded = load(&dir, None);
        let back = Embedded::from_json(&scanned.embedded.to_json().unwrap()).unwrap();
        assert_eq!(back.format, Format::Goose);
        assert_eq!(back.migrations.len(), 2);
        for (a, b) in back.migrations.iter().zip(&loaded.migrations) {
            assert_eq!(a.version, b.version);
            assert_eq!(a.version.as_str(), b.version.as_str());
            assert_eq!(a.name, b.name);
            assert_eq!(a.checksum, b.checksum);
            assert_eq!(a.up.text.held().unwrap(), b.up.text.held().unwrap());
            assert_eq!(a.up.first_line, b.up.first_line);
            assert_eq!(a.up.blocks, b.up.blocks);
            assert_eq!(a.up.no_transaction, b.up.no_transaction);
            assert_eq!(a.up.directives, b.up.directives);
            assert_eq!(
                a.down.as_ref().map(|d| d.text.held().unwrap()),
                b.down.as_ref().map(|d| d.text.held().unwrap())
            );
        }
        assert_eq!(
            back.migrations[0].up.path,
            Path::new("db").join("00001_users.sql")
        );
        assert_eq!(scanned.files.len(), 2);
        assert!(scanned.files.iter().all(|f| f.is_absolute()));
    }

    #[test]
    fn bad_files_name_file_and_line() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("migrations");
        write(&dir, "1_ok.up.sql", "CREATE TABLE a (id int);\n");
        write(
            &dir,
            "2_bad.up.sql",
            "CREATE TABLE b (id int);\n\nCREATE TABLE c (id int,);\n",
        );
        write(
            &dir,
            "3_typo.up.sql",
            "-- strata:no-transacton\nSELECT 1;\n",
        );
        let problems = scan(base.path(), Path::new("migrations")).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("migrations/2_bad.up.sql:3: syntax error")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("migrations/3_typo.up.sql:1:")),
            "{text:?}"
        );
    }

    #[test]
    fn plan_files_are_embedded_as_the_loader_reads_them() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("migrations");
        write(&dir, "1_a.up.sql", "CREATE TABLE a (id int);\n");
        let plan = "[[phase]]\nname = \"expand\"\noperations = [\n  { op = \"add_column\", table = \"a\", column = \"c\", type = \"int\" },\n]\n";
        write(&dir, "2_c.plan.toml", plan);
        let scanned = scan(base.path(), Path::new("migrations")).unwrap();
        let loaded = load(&dir, None);
        let back = Embedded::from_json(&scanned.embedded.to_json().unwrap()).unwrap();
        let m = &back.migrations[1];
        assert_eq!(m.kind, super::super::MigrationKind::Plan);
        assert_eq!(m.checksum, loaded.migrations[1].checksum);
        assert_eq!(m.up.text.held().unwrap(), plan);
        assert_eq!(m.up.path, Path::new("migrations").join("2_c.plan.toml"));
        assert!(crate::source::plans::plan_of(m).is_ok());
        // Cargo rebuilds the binary when the plan file changes.
        assert!(scanned.files.contains(&dir.join("2_c.plan.toml")));

        write(&dir, "2_c.plan.toml", &plan.replace("type = ", "typ = "));
        let problems = scan(base.path(), Path::new("migrations")).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("migrations/2_c.plan.toml:4: unknown field `typ`")),
            "{text:?}"
        );
    }

    #[test]
    fn placeholder_files_are_left_for_run_time() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("m");
        write(
            &dir,
            "00001_grant.sql",
            "-- strata:placeholders\n-- +goose Up\nGRANT SELECT ON t TO ${role};\n",
        );
        let scanned = scan(base.path(), Path::new("m")).unwrap();
        let mut migrations = scanned.embedded.migrations;
        // No file on disk at run time: the opt-in travels with the script.
        drop(base);
        let values = [("role".to_owned(), "app".to_owned())].into();
        assert!(placeholders::apply(&mut migrations, &values).is_empty());
        assert!(migrations[0].up.text.held().unwrap().contains("TO app"));
    }
}
