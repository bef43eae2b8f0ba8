//! `strata verify` and `strata baseline --verify`: the live database
//! against its migrations, replayed on a throwaway cluster.
//!
//! The migrations are replayed with the engine's own `up` (the code
//! `strata up` runs, with the project's settings) into a database of a
//! throwaway cluster (`localpg::Throwaway`: one per command, removed when
//! the command ends), and both catalogs are compared with
//! [`Snapshot::diff`]: expected (replayed) → live, so "added" is an object
//! made by hand, "removed" one dropped by hand. Only what risk analysis,
//! backups and the watchdog would do differently on a production server is
//! turned off for the replay: an empty throwaway database needs none of
//! them, and a blocking finding must not stop a replay of migrations that
//! already ran.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::catalog::{Difference, OwnTables, Snapshot};
use super::VerifyError;
use crate::config::{BackupPolicy, DatabaseSource};
use crate::db::{catalog, quote_ident, Connection, Target};
use crate::engine::{self, MigrationState, Progress, Project};
use crate::localpg::{ClientTools, Throwaway};
use crate::source::{Migration, MigrationKind};

/// What `strata verify` checks besides checksums and drift.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// A schema file to check against the migrations (`--schema-file`, or
    /// `schema_file` in strata.toml).
    pub schema_file: Option<PathBuf>,
}

/// An applied migration whose file no longer matches its history row.
#[derive(Debug, Clone, Serialize)]
pub struct FileProblem {
    /// `version_name`.
    pub migration: String,
    /// `modified`, `missing` or `failed`.
    pub state: String,
    /// What the status says about it.
    pub detail: Option<String>,
}

/// The schema file compared with the migrations.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaFileCheck {
    /// The file.
    pub path: PathBuf,
    /// It does not exist or did not load with psql: why.
    pub load_error: Option<String>,
    /// Migrations (replayed) → schema file.
    pub differences: Vec<Difference>,
}

/// What `strata verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Applied migrations whose checksums were compared.
    pub checked: usize,
    /// Applied migrations whose files changed, are gone or stopped part way.
    pub files: Vec<FileProblem>,
    /// Migrations replayed on the throwaway cluster.
    pub replayed: usize,
    /// Major version of the live server.
    pub live_major: i32,
    /// Major version of the throwaway server the migrations replayed on.
    pub replay_major: i32,
    /// Drift: migrations (replayed) → live database, one per object.
    pub drift: Vec<Difference>,
    /// The schema file check, when there is a schema file.
    pub schema_file: Option<SchemaFileCheck>,
}

impl VerifyReport {
    /// How many problems were found (0: the database verifies).
    pub fn problems(&self) -> usize {
        self.files.len()
            + self.drift.len()
            + self.schema_file.as_ref().map_or(0, |s| {
                s.differences.len() + usize::from(s.load_error.is_some())
            })
    }
}

/// What `strata baseline V --verify` found before marking anything.
#[derive(Debug, Clone, Serialize)]
pub struct BaselineCheck {
    /// The migrations up to V, replayed.
    pub replayed: usize,
    /// Migrations up to V (replayed) → live database.
    pub differences: Vec<Difference>,
}

/// Checks the live database `target` against the migrations of `project`:
/// checksums of the applied files, drift of the live schema from the
/// applied migrations replayed on a throwaway cluster, and the schema file
/// (if any) against the same replay.
pub async fn verify(
    project: &Project,
    target: &Target,
    options: &VerifyOptions,
    observer: &mut dyn FnMut(Progress),
) -> Result<VerifyReport, VerifyError> {
    let status = engine::status(project, target).await?;
    let mut files = Vec::new();
    let mut applied: Vec<Migration> = Vec::new();
    let mut checked = 0;
    for s in &status.migrations {
        match s.state {
            MigrationState::Applied | MigrationState::Modified | MigrationState::Reverting => {
                checked += 1;
                if let Some(i) = s.index {
                    if let Some(m) = project.migrations.get(i) {
                        applied.push(m.clone());
                    }
                }
            }
            MigrationState::Missing | MigrationState::Failed => checked += 1,
            MigrationState::Pending => {}
        }
        if matches!(
            s.state,
            MigrationState::Modified | MigrationState::Missing | MigrationState::Failed
        ) {
            files.push(FileProblem {
                migration: format!("{}_{}", s.version, s.name),
                state: s.state.as_str().to_owned(),
                detail: s.detail.clone(),
            });
        }
    }
    let own = own_tables(project);
    let live_conn = target.connect().await?;
    let live = Snapshot::take_with(&live_conn, &own).await?;
    let live_major = catalog::server_version_num(&live_conn).await? / 10_000;
    let replay = Replay::start(live_major)?;
    let replayed = applied.len();
    let expected_target = replay.database("strata_replay").await?;
    replay
        .apply(project, applied, &live_conn, &expected_target, observer)
        .await?;
    let expected_conn = expected_target.connect().await?;
    let expected = Snapshot::take_with(&expected_conn, &own).await?;
    let replay_major = catalog::server_version_num(&expected_conn).await? / 10_000;
    let drift = expected.diff(&live);

    let schema_file = match &options.schema_file {
        None => None,
        Some(path) => {
            Some(check_schema_file(project, &replay, &live_conn, &expected, &own, path).await?)
        }
    };
    Ok(VerifyReport {
        checked,
        files,
        replayed,
        live_major,
        replay_major,
        drift,
        schema_file,
    })
}

/// Checks the live schema against the versioned migrations up to
/// `version`, replayed on a throwaway cluster; marks nothing.
pub async fn check_baseline(
    project: &Project,
    target: &Target,
    version: &str,
    observer: &mut dyn FnMut(Progress),
) -> Result<BaselineCheck, VerifyError> {
    let v = project
        .format
        .parse_version(version)
        .filter(|v| project.migrations.iter().any(|m| &m.version == v))
        .ok_or_else(|| engine::EngineError::UnknownVersion(version.to_owned()))?;
    let upto: Vec<Migration> = project
        .migrations
        .iter()
        .filter(|m| m.kind != MigrationKind::Repeatable && m.version <= v)
        .cloned()
        .collect();
    let own = own_tables(project);
    let live_conn = target.connect().await?;
    let live = Snapshot::take_with(&live_conn, &own).await?;
    let live_major = catalog::server_version_num(&live_conn).await? / 10_000;
    let replay = Replay::start(live_major)?;
    let replayed = upto.len();
    let expected_target = replay.database("strata_replay").await?;
    replay
        .apply(project, upto, &live_conn, &expected_target, observer)
        .await?;
    let expected = Snapshot::take_with(&expected_target.connect().await?, &own).await?;
    Ok(BaselineCheck {
        replayed,
        differences: expected.diff(&live),
    })
}

fn own_tables(project: &Project) -> OwnTables {
    OwnTables::new(
        &project.config.history_schema,
        &project.config.history_table,
    )
}

/// Loads the schema file into a fresh database of the replay's cluster and
/// compares it with the replayed migrations.
async fn check_schema_file(
    project: &Project,
    replay: &Replay,
    live_conn: &Connection,
    expected: &Snapshot,
    own: &OwnTables,
    path: &Path,
) -> Result<SchemaFileCheck, VerifyError> {
    if !path.is_file() {
        return Ok(SchemaFileCheck {
            path: path.to_path_buf(),
            load_error: Some(
                "does not exist (write it with `strata dump --out FILE`, or fix schema_file in strata.toml)"
                    .to_owned(),
            ),
            differences: Vec::new(),
        });
    }
    let target = replay.database("strata_schema_file").await?;
    replay.copy_roles(live_conn, &target).await?;
    let tools = ClientTools::find(project.config.pg_bindir.as_deref())?;
    let env = target.libpq_env();
    let file = path.to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || tools.run_script(&env, &file))
        .await
        .map_err(|e| VerifyError::Usage {
            message: format!("psql did not finish: {e}"),
            help: "run the command again".to_owned(),
        })?;
    if let Err(e) = loaded {
        return Ok(SchemaFileCheck {
            path: path.to_path_buf(),
            load_error: Some(format!("does not load with psql:\n{e}")),
            differences: Vec::new(),
        });
    }
    let snapshot = Snapshot::take_with(&target.connect().await?, own).await?;
    Ok(SchemaFileCheck {
        path: path.to_path_buf(),
        load_error: None,
        differences: expected.diff(&snapshot),
    })
}

/// A throwaway cluster to replay migrations on, removed when dropped (and
/// by its reaper if the process dies).
struct Replay {
    cluster: Throwaway,
}

impl Replay {
    /// A cluster of the live server's major version when one is
    /// installed, else of the newest (the report then says so).
    fn start(live_major: i32) -> Result<Replay, VerifyError> {
        Ok(Replay {
            cluster: Throwaway::start_major(u32::try_from(live_major).unwrap_or(0))?,
        })
    }

    /// A new empty database on the cluster.
    async fn database(&self, name: &str) -> Result<Target, VerifyError> {
        let admin = Target::parse(&self.cluster.conninfo("postgres"))?
            .connect()
            .await?;
        admin
            .batch(&format!(
                "CREATE DATABASE {} TEMPLATE template0",
                quote_ident(name)
            ))
            .await?;
        Ok(Target::parse(&self.cluster.conninfo(name))?)
    }

    /// Creates the roles of the live server that the throwaway lacks
    /// (`NOLOGIN`, no attributes), so that migrations that grant to them
    /// or create policies for them replay.
    async fn copy_roles(&self, live: &Connection, target: &Target) -> Result<(), VerifyError> {
        let rows = live
            .query(
                "SELECT rolname::text FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY 1",
                &[],
            )
            .await?;
        let conn = target.connect().await?;
        let have: Vec<String> = conn
            .query("SELECT rolname::text FROM pg_roles", &[])
            .await?
            .iter()
            .filter_map(|r| r.try_get(0).ok())
            .collect();
        for row in &rows {
            let Ok(name) = row.try_get::<_, String>(0) else {
                continue;
            };
            if !have.contains(&name) {
                conn.batch(&format!("CREATE ROLE {} NOLOGIN", quote_ident(&name)))
                    .await?;
            }
        }
        Ok(())
    }

    /// Runs `migrations` on `target` with the engine's `up`, under the
    /// project's settings but for the ones that only matter on a
    /// production server.
    async fn apply(
        &self,
        project: &Project,
        migrations: Vec<Migration>,
        live: &Connection,
        target: &Target,
        observer: &mut dyn FnMut(Progress),
    ) -> Result<(), VerifyError> {
        self.copy_roles(live, target).await?;
        if migrations.is_empty() {
            return Ok(());
        }
        let mut config = project.config.clone();
        config.database = Some((self.cluster.conninfo("strata_replay"), DatabaseSource::Flag));
        config.backup = BackupPolicy::Never;
        config.lint.block_on = None;
        config.watchdog = None;
        config.max_lock_hold = None;
        config.max_replication_lag = None;
        config.max_blocked_queries = None;
        config.allow_out_of_order = true;
        config.ignore_missing = true;
        let replay = Project {
            config,
            format: project.format,
            migrations,
            warnings: Vec::new(),
            foreign: project.foreign.clone(),
        };
        let options = engine::ApplyOptions {
            target: None,
            dry_run: false,
            gates: engine::Gates {
                through: true,
                pass: Vec::new(),
            },
        };
        engine::up(&replay, target, &options, observer)
            .await
            .map_err(|source| VerifyError::Replay { source })?;
        Ok(())
    }
}
