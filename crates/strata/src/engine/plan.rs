//! Pure planning: from migration files and history rows to each migration's
//! state, and from states to what `up` and `down` must run. No I/O here, so
//! every rule is unit-tested.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::error::{ChangedFile, EngineError};
use super::history::AppliedRow;
use crate::source::{Format, Migration, MigrationKind, Version, CHECKSUM_ALGORITHM};

/// The state of one migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MigrationState {
    /// Applied, and the file is unchanged.
    Applied,
    /// Not applied yet (or, for a repeatable migration, changed since).
    Pending,
    /// Applied, but the file changed since.
    Modified,
    /// Applied, but the file is gone.
    Missing,
    /// A non-transactional migration that stopped part way.
    Failed,
    /// Applied, and a `down` outside a transaction stopped part way: the
    /// next `down` resumes it (see `history::DownProgress`).
    Reverting,
}

impl MigrationState {
    /// The lower-case name used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Pending => "pending",
            Self::Modified => "modified",
            Self::Missing => "missing",
            Self::Failed => "failed",
            Self::Reverting => "reverting",
        }
    }
}

/// One line of `strata status`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrationStatus {
    /// The version as written in the file name (or as recorded, if missing).
    pub version: String,
    /// The migration's name.
    pub name: String,
    /// versioned / repeatable.
    pub kind: MigrationKind,
    /// The state.
    pub state: MigrationState,
    /// When it was applied.
    pub applied_at: Option<DateTime<Utc>>,
    /// How long applying it took.
    pub duration_ms: Option<i64>,
    /// Who applied it.
    pub applied_by: Option<String>,
    /// The up file, if there is one.
    pub file: Option<PathBuf>,
    /// Details: where a failed migration stopped, what changed.
    pub detail: Option<String>,
    /// A plan's progress, while it is between its first and last phase
    /// (see `engine::phases`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Box<super::phases::PlanProgress>>,
    /// Index into the migration list, when there is a file.
    #[serde(skip)]
    pub index: Option<usize>,
    /// The history row, when there is one. Boxed, like `plan`: `up` holds
    /// a status per migration, most of them pending (no row, no plan),
    /// and memory must stay flat in their number.
    #[serde(skip)]
    pub row: Option<Box<AppliedRow>>,
}

/// A migration in a directory that another environment of the config
/// includes and the current one does not (`migrations/development` when
/// running without `--env dev`). An applied row of one is "applied (from
/// <dir>, env <name>)", not "missing": switching environments on one
/// database must not look like lost files, nor make `up` refuse.
#[derive(Debug, Clone)]
pub struct Foreign {
    /// Versioned or repeatable.
    pub kind: MigrationKind,
    /// The version as stored in the history.
    pub version: String,
    /// Its up file.
    pub file: PathBuf,
    /// Its directory, as shown to the user.
    pub dir: String,
    /// The environment that includes the directory; `None` for the top
    /// level of the config.
    pub env: Option<String>,
}

/// Computes the state of every migration, files and history rows merged, in
/// run order (versioned by version, then repeatables); tests' shorthand for
/// [`statuses_with`] without other environments.
#[cfg(test)]
pub fn statuses(
    format: Format,
    migrations: &[Migration],
    rows: &[AppliedRow],
) -> Vec<MigrationStatus> {
    statuses_with(format, migrations, &[], rows)
}

/// The history row of each migration of the project, by its index in the
/// migration list: steps are planned per migration, and looking each up by
/// scanning every status would make a run quadratic in the history's size.
pub struct RowIndex<'a>(HashMap<usize, &'a AppliedRow>);

impl<'a> RowIndex<'a> {
    /// Indexes `statuses` (one pass).
    pub fn new(statuses: &'a [MigrationStatus]) -> RowIndex<'a> {
        RowIndex(
            statuses
                .iter()
                .filter_map(|s| Some((s.index?, s.row.as_deref()?)))
                .collect(),
        )
    }

    /// The history row of migration `index`, if it has one.
    pub fn get(&self, index: usize) -> Option<&'a AppliedRow> {
        self.0.get(&index).copied()
    }
}

/// Computes the state of every migration, files and history rows merged, in
/// run order (versioned by version, then repeatables), with the migrations
/// of other environments' directories: an applied row found among them is
/// applied from there, not missing.
pub fn statuses_with(
    format: Format,
    migrations: &[Migration],
    foreign: &[Foreign],
    rows: &[AppliedRow],
) -> Vec<MigrationStatus> {
    // Room for exactly one status per migration and per row left over.
    let mut out = Vec::with_capacity(migrations.len() + rows.len());
    each_status(format, migrations, foreign, rows, &mut |s| out.push(s));
    out.shrink_to_fit();
    out
}

/// [`statuses_with`] a status at a time, in the same order, without a list
/// of them: `up` plans from them and keeps only the few it needs
/// ([`UpPlanner`]), so planning a directory of any size holds no status
/// per migration. The migrations come in run order from the loaders; the
/// rows without a file (usually none) are sorted and merged in, after the
/// files of the same version.
pub fn each_status(
    format: Format,
    migrations: &[Migration],
    foreign: &[Foreign],
    rows: &[AppliedRow],
    emit: &mut dyn FnMut(MigrationStatus),
) {
    fn key(m: &Migration) -> (bool, &Version) {
        (m.kind == MigrationKind::Repeatable, &m.version)
    }
    let mut left = leftover_statuses(format, migrations, foreign, rows);
    left.sort_unstable_by(|a, b| (a.0, &a.1, &a.2.version).cmp(&(b.0, &b.1, &b.2.version)));
    if migrations.windows(2).all(|w| key(&w[0]) <= key(&w[1])) {
        let mut left = left.into_iter().peekable();
        file_statuses(migrations, rows, &mut |m, s| {
            while let Some(l) = left.next_if(|l| (l.0, &l.1) < key(m)) {
                emit(l.2);
            }
            emit(s);
        });
        left.for_each(|l| emit(l.2));
        return;
    }
    // Not in run order (a caller's own list): sort a full list, in place
    // (a stable sort would borrow scratch room for half of it or more);
    // files come before rows of the same version, each in its own order.
    let mut all: Vec<(bool, Cow<'_, Version>, usize, MigrationStatus)> =
        Vec::with_capacity(migrations.len() + left.len());
    file_statuses(migrations, rows, &mut |m, s| {
        let (repeatable, version) = key(m);
        all.push((repeatable, Cow::Borrowed(version), all.len(), s));
    });
    for (repeatable, version, s) in left {
        all.push((repeatable, Cow::Owned(version), all.len(), s));
    }
    all.sort_unstable_by(|a, b| (a.0, &a.1, a.2).cmp(&(b.0, &b.1, b.2)));
    all.into_iter().for_each(|(_, _, _, s)| emit(s));
}

/// The status of each migration of the directory, in its order, with its
/// history row if it has one.
fn file_statuses<'m>(
    migrations: &'m [Migration],
    rows: &[AppliedRow],
    emit: &mut dyn FnMut(&'m Migration, MigrationStatus),
) {
    let by_key: HashMap<(&str, &str), &AppliedRow> = rows
        .iter()
        .map(|r| ((r.kind.as_str(), r.version.as_str()), r))
        .collect();
    for (index, m) in migrations.iter().enumerate() {
        let row = by_key
            .get(&(m.kind.as_str(), m.version.canonical().as_str()))
            .copied();
        let (state, detail) = match row {
            None => (MigrationState::Pending, None),
            Some(r) if r.state != "applied" => (
                MigrationState::Failed,
                Some(format!(
                    "{}{}",
                    if r.statements_done >= r.statements_total && r.statements_total > 0 {
                        // Killed between its last statement and its record.
                        "interrupted after its last statement, before it was recorded as applied"
                            .to_owned()
                    } else {
                        format!(
                            "{} at statement {} of {}",
                            if r.state == "running" {
                                "interrupted"
                            } else {
                                "stopped"
                            },
                            r.statements_done + 1,
                            r.statements_total
                        )
                    },
                    r.error
                        .as_ref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                )),
            ),
            Some(r) if r.down.is_some() => {
                (MigrationState::Reverting, r.down.as_ref().map(down_detail))
            }
            Some(r) if r.checksum_algorithm == CHECKSUM_ALGORITHM && r.checksum != m.checksum => {
                if m.kind == MigrationKind::Repeatable {
                    (
                        MigrationState::Pending,
                        Some("changed since it last ran; runs again".to_owned()),
                    )
                } else {
                    (
                        MigrationState::Modified,
                        Some(format!(
                            "checksum was {}, file is {}",
                            short(&r.checksum),
                            short(&m.checksum)
                        )),
                    )
                }
            }
            Some(_) => (MigrationState::Applied, None),
        };
        emit(
            m,
            MigrationStatus {
                version: m.version.to_string(),
                name: m.name.clone(),
                kind: m.kind,
                state,
                applied_at: row.filter(|r| r.state == "applied").map(|r| r.applied_at),
                duration_ms: row.filter(|r| r.state == "applied").map(|r| r.duration_ms),
                applied_by: row.map(|r| r.applied_by.clone()),
                file: Some(m.up.path.clone()),
                detail: detail.or_else(|| crate::source::pairing_note(m)),
                plan: None,
                index: Some(index),
                row: row.cloned().map(Box::new),
            },
        );
    }
}

/// The status of each history row without a file in the directory, with
/// its sort key: applied from another environment's directory when one
/// has it (looked up by key, not by scanning them per row), else missing.
fn leftover_statuses(
    format: Format,
    migrations: &[Migration],
    foreign: &[Foreign],
    rows: &[AppliedRow],
) -> Vec<(bool, Version, MigrationStatus)> {
    let mut by_key: HashMap<(&str, String), &AppliedRow> = rows
        .iter()
        .map(|r| ((r.kind.as_str(), r.version.clone()), r))
        .collect();
    for m in migrations {
        by_key.remove(&(m.kind.as_str(), m.version.canonical()));
    }
    let mut first: HashMap<(&str, &str), &Foreign> = HashMap::new();
    for f in foreign {
        first
            .entry((f.kind.as_str(), f.version.as_str()))
            .or_insert(f);
    }
    let mut left = Vec::with_capacity(by_key.len());
    for ((kind, version), row) in by_key {
        let repeatable = kind == "repeatable";
        let parsed = if repeatable {
            Version::repeatable(&row.name)
        } else {
            format
                .parse_version(&version)
                .unwrap_or_else(|| Version::repeatable(&version))
        };
        let elsewhere = first
            .get(&(kind, version.as_str()))
            .copied()
            .filter(|_| row.state == "applied");
        left.push((
            repeatable,
            parsed,
            MigrationStatus {
                name: row.name.clone(),
                kind: super::history::kind_of(row),
                state: match elsewhere {
                    Some(_) => MigrationState::Applied,
                    None => MigrationState::Missing,
                },
                applied_at: Some(row.applied_at),
                duration_ms: Some(row.duration_ms),
                applied_by: Some(row.applied_by.clone()),
                file: elsewhere.map(|f| f.file.clone()),
                detail: elsewhere.map(|f| match &f.env {
                    Some(env) => format!("applied (from {}, env {env})", f.dir),
                    None => format!("applied (from {}, without --env)", f.dir),
                }),
                plan: None,
                index: None,
                row: Some(Box::new(row.clone())),
                version,
            },
        ));
    }
    left
}

/// Where a `down` outside a transaction stopped, for `status` and errors.
fn down_detail(d: &super::history::DownProgress) -> String {
    let how = if d.state == "running" {
        "interrupted"
    } else {
        "stopped"
    };
    let at = if d.done >= d.total {
        format!("down {how} after its last statement, before it was recorded as reverted")
    } else {
        format!("down {how} at statement {} of {}", d.done + 1, d.total)
    };
    format!(
        "applied; {at}{}; `strata down` resumes it",
        d.error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )
}

/// Refuses to build on, or skip past, a migration whose `down` stopped
/// part way: it is neither applied nor pending, and only finishing the
/// `down` settles it.
fn refuse_reverting(
    statuses: &[MigrationStatus],
    unless: Option<usize>,
) -> Result<(), EngineError> {
    match statuses
        .iter()
        .find(|s| s.state == MigrationState::Reverting && (unless.is_none() || s.index != unless))
    {
        Some(s) => Err(EngineError::PartlyReverted {
            label: format!("{}_{}", s.version, s.name),
            detail: s.detail.clone().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

fn short(sum: &str) -> &str {
    &sum[..12.min(sum.len())]
}

/// Options that shape an `up` plan.
#[derive(Debug, Clone, Default)]
pub struct UpRules {
    /// Apply only up to this version.
    pub target: Option<Version>,
    /// Allow pending versions older than the newest applied.
    pub allow_out_of_order: bool,
    /// Ignore applied migrations without files.
    pub ignore_missing: bool,
}

/// The migrations `up` must run, in order (indexes into the migration list),
/// after checking the rules. Failed migrations come first: they resume.
#[cfg(test)]
pub fn plan_up(
    migrations: &[Migration],
    statuses: &[MigrationStatus],
    rules: &UpRules,
) -> Result<Vec<usize>, EngineError> {
    let mut planner = UpPlanner::new(migrations, rules);
    statuses.iter().cloned().for_each(|s| planner.see(s));
    Ok(planner.finish()?.plan)
}

/// What `up` runs: the plan, and the statuses it still needs.
#[derive(Debug)]
pub struct UpPlan {
    /// Indexes into the migration list, in run order; failed migrations
    /// first (they resume).
    pub plan: Vec<usize>,
    /// The statuses of planned migrations that have a history row (a
    /// failed or interrupted run to resume; none on a fresh database), for
    /// [`RowIndex`]. The others are not kept, so memory stays flat in the
    /// number of migrations.
    pub rows: Vec<MigrationStatus>,
}

/// Plans `up` from the statuses seen one at a time, in run order
/// ([`each_status`]): the checks (partly reverted, modified, missing, out
/// of order) and the plan, keeping only what the run needs.
pub struct UpPlanner<'a> {
    migrations: &'a [Migration],
    rules: &'a UpRules,
    reverting: Option<EngineError>,
    modified: Vec<ChangedFile>,
    missing: Vec<String>,
    newest_applied: Option<&'a Version>,
    /// Failed migrations, in the order seen (they run first, newest first).
    failed: Vec<usize>,
    pending: Vec<usize>,
    /// Statuses with a history row of failed or pending migrations: those
    /// the plan keeps are [`UpPlan::rows`].
    with_rows: Vec<MigrationStatus>,
}

impl<'a> UpPlanner<'a> {
    pub fn new(migrations: &'a [Migration], rules: &'a UpRules) -> UpPlanner<'a> {
        UpPlanner {
            migrations,
            rules,
            reverting: None,
            modified: Vec::new(),
            missing: Vec::new(),
            newest_applied: None,
            failed: Vec::new(),
            pending: Vec::new(),
            with_rows: Vec::new(),
        }
    }

    /// Takes the next status in run order.
    pub fn see(&mut self, s: MigrationStatus) {
        let migrations = self.migrations;
        match s.state {
            MigrationState::Reverting => {
                if self.reverting.is_none() {
                    self.reverting = Some(EngineError::PartlyReverted {
                        label: format!("{}_{}", s.version, s.name),
                        detail: s.detail.clone().unwrap_or_default(),
                    });
                }
            }
            MigrationState::Modified => {
                if let (Some(i), Some(row)) = (s.index, s.row.as_deref()) {
                    let m = &migrations[i];
                    self.modified.push(ChangedFile {
                        label: m.label(),
                        path: m.up.path.clone(),
                        recorded: row.checksum.clone(),
                        current: m.checksum.clone(),
                    });
                }
            }
            MigrationState::Missing => self.missing.push(format!("{}_{}", s.version, s.name)),
            MigrationState::Applied => {
                if s.kind == MigrationKind::Versioned {
                    if let Some(i) = s.index {
                        let v = &migrations[i].version;
                        match self.newest_applied {
                            Some(n) if n >= v => {}
                            _ => self.newest_applied = Some(v),
                        }
                    }
                }
            }
            MigrationState::Failed | MigrationState::Pending => {
                let Some(i) = s.index else { return };
                if s.state == MigrationState::Failed {
                    self.failed.push(i);
                } else {
                    let m = &migrations[i];
                    let beyond = self.rules.target.as_ref().is_some_and(|t| &m.version > t);
                    if beyond && matches!(m.kind, MigrationKind::Plan | MigrationKind::Versioned) {
                        return;
                    }
                    self.pending.push(i);
                }
                if s.row.is_some() {
                    self.with_rows.push(s);
                }
            }
        }
    }

    /// The plan, or why `up` refuses to run.
    pub fn finish(self) -> Result<UpPlan, EngineError> {
        if let Some(e) = self.reverting {
            return Err(e);
        }
        if !self.modified.is_empty() {
            return Err(EngineError::Modified(self.modified));
        }
        if !self.missing.is_empty() && !self.rules.ignore_missing {
            return Err(EngineError::Missing(self.missing));
        }
        let migrations = self.migrations;
        let older: Vec<PathBuf> = self
            .pending
            .iter()
            .map(|&i| &migrations[i])
            .filter(|m| m.kind == MigrationKind::Versioned)
            .filter(|m| self.newest_applied.is_some_and(|n| &m.version < n))
            .map(|m| m.up.path.clone())
            .collect();
        if !older.is_empty() && !self.rules.allow_out_of_order {
            return Err(EngineError::OutOfOrder {
                newest: self
                    .newest_applied
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                pending: older,
            });
        }
        let mut plan = self.failed;
        plan.reverse();
        plan.extend(self.pending);
        let planned: std::collections::HashSet<usize> = plan.iter().copied().collect();
        let mut rows = self.with_rows;
        rows.retain(|s| s.index.is_some_and(|i| planned.contains(&i)));
        rows.shrink_to_fit();
        Ok(UpPlan { plan, rows })
    }
}

/// How far `down` goes.
#[derive(Debug, Clone)]
pub enum DownTarget {
    /// Revert this many of the newest applied migrations.
    Steps(usize),
    /// Revert every applied migration newer than this version.
    To(Version),
    /// Revert everything.
    All,
}

/// The applied versioned migrations to revert, newest first (indexes into
/// the migration list). Checks up front that each can be reverted.
pub fn plan_down(
    migrations: &[Migration],
    statuses: &[MigrationStatus],
    target: &DownTarget,
) -> Result<Vec<usize>, EngineError> {
    if let Some(failed) = statuses.iter().find(|s| s.state == MigrationState::Failed) {
        return Err(EngineError::Failed {
            label: format!("{}_{}", failed.version, failed.name),
            detail: failed.detail.clone().unwrap_or_default(),
        });
    }
    let applied: Vec<&MigrationStatus> = statuses
        .iter()
        .rev()
        .filter(|s| matches!(s.kind, MigrationKind::Versioned | MigrationKind::Plan))
        .filter(|s| {
            matches!(
                s.state,
                MigrationState::Applied
                    | MigrationState::Modified
                    | MigrationState::Missing
                    | MigrationState::Reverting
            )
        })
        .collect();
    let chosen: Vec<&MigrationStatus> = match target {
        DownTarget::Steps(n) => applied.into_iter().take(*n).collect(),
        DownTarget::All => applied,
        DownTarget::To(v) => applied
            .into_iter()
            .filter(|s| match s.index {
                Some(i) => &migrations[i].version > v,
                None => true,
            })
            .collect(),
    };
    // A partly reverted migration is the newest applied one (down goes
    // newest first); it must be the first to finish reverting.
    refuse_reverting(statuses, chosen.first().and_then(|s| s.index))?;
    let mut plan = Vec::new();
    for s in chosen {
        let label = format!("{}_{}", s.version, s.name);
        let Some(i) = s.index else {
            if let (MigrationState::Applied, Some(detail)) = (s.state, &s.detail) {
                return Err(EngineError::Irreversible {
                    label,
                    reason: format!("it was {detail}, a directory this environment does not include"),
                    help: "revert it with that environment selected (`--env NAME`, or without --env for the top level)".into(),
                });
            }
            return Err(EngineError::Irreversible {
                label,
                reason: "its file is missing".into(),
                help: "restore the migration file so its down script can run".into(),
            });
        };
        let m = &migrations[i];
        if m.kind == MigrationKind::Plan {
            // Reversed phase by phase by its operations, not by a script.
            return Err(EngineError::Irreversible {
                label: m.label(),
                reason: "it is a plan: it has no down script".into(),
                help: format!("reverse it with `strata rollback {}`", m.version),
            });
        }
        if m.down.is_none() {
            return Err(EngineError::Irreversible {
                label: m.label(),
                reason: "it has no down script".into(),
                help: "add a down script (e.g. the .down.sql file) that undoes it".into(),
            });
        }
        if s.state == MigrationState::Modified {
            return Err(EngineError::Irreversible {
                label: m.label(),
                reason: "its file changed since it was applied, so the down script may not match"
                    .into(),
                help: "restore the original file, or run `strata repair` to accept the change"
                    .into(),
            });
        }
        plan.push(i);
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Script, SourceProblem};

    fn migration(version: &str, sql: &str, down: bool) -> Migration {
        let script = |text: &str| Script {
            path: PathBuf::from(format!("{version}_m.up.sql")),
            text: text.to_owned().into(),
            first_line: 1,
            blocks: vec![],
            no_transaction: None,
            directives: vec![],
        };
        Migration {
            version: Version::integer(version).unwrap(),
            kind: MigrationKind::Versioned,
            name: "m".into(),
            up: script(sql),
            down: down.then(|| Box::new(script("SELECT 1"))),
            checksum: crate::source::checksum(sql),
        }
    }

    fn row(version: &str, sql: &str, state: &str) -> AppliedRow {
        AppliedRow {
            version: version.into(),
            kind: "versioned".into(),
            name: "m".into(),
            checksum: crate::source::checksum(sql),
            checksum_algorithm: 1,
            state: state.into(),
            statements_done: 1,
            statements_total: 3,
            done_checksum: None,
            applied_at: Utc::now(),
            applied_by: "me".into(),
            duration_ms: 5,
            error: None,
            backend_pid: None,
            down: None,
        }
    }

    #[test]
    fn row_index_finds_every_migrations_row_among_many() {
        // 20,000 migrations, half of them failed part way: every planned
        // one is looked up (up's steps, same_rows, down's steps).
        let n: i32 = 20_000;
        let ms: Vec<Migration> = (1..=n)
            .map(|v| migration(&v.to_string(), "SELECT 1", false))
            .collect();
        let rows: Vec<AppliedRow> = (1..=n)
            .filter(|v| v % 2 == 0)
            .map(|v| {
                let mut r = row(&v.to_string(), "SELECT 1", "failed");
                r.statements_done = v;
                r
            })
            .collect();
        let st = statuses(Format::Native, &ms, &rows);
        let index = RowIndex::new(&st);
        for (i, m) in ms.iter().enumerate() {
            let v: i32 = m.version.to_string().parse().unwrap();
            match index.get(i) {
                Some(r) => assert_eq!(
                    (r.version.as_str(), r.statements_done),
                    (m.version.to_string().as_str(), v)
                ),
                None => assert_eq!(v % 2, 1, "migration {v} lost its row"),
            }
        }
    }

    #[test]
    fn up_plans_from_statuses_seen_one_at_a_time_and_keeps_only_planned_rows() {
        // 20,000 migrations: the first 10,000 applied except one that
        // failed part way, the rest pending. The run keeps the failed
        // one's row (to resume it), not a status per migration.
        let n = 20_000;
        let ms: Vec<Migration> = (1..=n)
            .map(|v| migration(&v.to_string(), "SELECT 1", false))
            .collect();
        let rows: Vec<AppliedRow> = (1..=n / 2)
            .map(|v| {
                let state = if v == 7 { "failed" } else { "applied" };
                row(&v.to_string(), "SELECT 1", state)
            })
            .collect();
        let rules = UpRules::default();
        let mut planner = UpPlanner::new(&ms, &rules);
        each_status(Format::Native, &ms, &[], &rows, &mut |s| planner.see(s));
        let up = planner.finish().unwrap();
        let expected: Vec<usize> = std::iter::once(6)
            .chain(n as usize / 2..n as usize)
            .collect();
        assert_eq!(up.plan, expected);
        assert_eq!(
            up.rows.iter().map(|s| s.index).collect::<Vec<_>>(),
            [Some(6)]
        );
        // The same plan as from the whole list of statuses.
        let st = statuses(Format::Native, &ms, &rows);
        assert_eq!(plan_up(&ms, &st, &rules).unwrap(), expected);
        assert_eq!(
            RowIndex::new(&up.rows).get(6).map(|r| r.state.as_str()),
            Some("failed")
        );
    }

    #[test]
    fn statuses_come_in_run_order_whatever_the_order_of_the_list() {
        let rows = vec![
            row("0", "z", "applied"),
            row("2", "b", "applied"),
            row("9", "y", "applied"),
        ];
        let sorted = vec![
            migration("1", "a", true),
            migration("2", "b", true),
            migration("3", "c", true),
        ];
        let mut shuffled = sorted.clone();
        shuffled.swap(0, 2);
        for ms in [sorted, shuffled] {
            let versions: Vec<(String, &str)> = states(&ms, &rows);
            assert_eq!(
                versions,
                [
                    ("0".into(), "missing"),
                    ("1".into(), "pending"),
                    ("2".into(), "applied"),
                    ("3".into(), "pending"),
                    ("9".into(), "missing"),
                ]
            );
        }
    }

    #[test]
    fn a_partly_reverted_migration_is_shown_refused_by_up_and_resumed_first_by_down() {
        let ms = vec![
            migration("1", "A", true),
            migration("2", "B", true),
            migration("3", "C", false),
        ];
        let mut reverting = row("2", "B", "applied");
        reverting.down = Some(crate::engine::history::DownProgress {
            state: "failed".into(),
            done: 2,
            total: 4,
            done_checksum: "x".into(),
            backend_pid: None,
            error: Some("boom".into()),
        });
        let rows = vec![row("1", "A", "applied"), reverting];
        let st = statuses(Format::Native, &ms, &rows);
        assert_eq!(st[1].state, MigrationState::Reverting);
        assert_eq!(
            st[1].detail.as_deref(),
            Some("applied; down stopped at statement 3 of 4: boom; `strata down` resumes it")
        );
        assert!(matches!(
            plan_up(&ms, &st, &UpRules::default()),
            Err(EngineError::PartlyReverted { .. })
        ));
        assert_eq!(plan_down(&ms, &st, &DownTarget::Steps(1)).unwrap(), [1]);
        assert_eq!(plan_down(&ms, &st, &DownTarget::All).unwrap(), [1, 0]);
        assert!(matches!(
            plan_down(&ms, &st, &DownTarget::To(Version::integer("2").unwrap())),
            Err(EngineError::PartlyReverted { .. })
        ));
    }

    fn states(ms: &[Migration], rows: &[AppliedRow]) -> Vec<(String, &'static str)> {
        statuses(Format::Native, ms, rows)
            .into_iter()
            .map(|s| (s.version, s.state.as_str()))
            .collect()
    }

    #[test]
    fn every_state() {
        let ms = vec![
            migration("1", "a", true),
            migration("2", "b", true),
            migration("4", "d", true),
            migration("5", "e", true),
        ];
        let rows = vec![
            row("1", "a", "applied"),
            row("2", "CHANGED", "applied"),
            row("3", "c", "applied"),
            row("4", "d", "failed"),
        ];
        assert_eq!(
            states(&ms, &rows),
            [
                ("1".into(), "applied"),
                ("2".into(), "modified"),
                ("3".into(), "missing"),
                ("4".into(), "failed"),
                ("5".into(), "pending")
            ]
        );
    }

    #[test]
    fn up_refuses_modified_missing_and_out_of_order() {
        let ms = vec![
            migration("1", "a", true),
            migration("2", "b", true),
            migration("3", "c", true),
        ];
        let plan = |rows: &[AppliedRow], rules: UpRules| {
            plan_up(&ms, &statuses(Format::Native, &ms, rows), &rules)
        };
        assert!(matches!(
            plan(&[row("1", "x", "applied")], UpRules::default()),
            Err(EngineError::Modified(_))
        ));
        assert!(matches!(
            plan(&[row("9", "x", "applied")], UpRules::default()),
            Err(EngineError::Missing(_))
        ));
        assert!(matches!(
            plan(&[row("2", "b", "applied")], UpRules::default()),
            Err(EngineError::OutOfOrder { .. })
        ));
        let ok = plan(
            &[row("2", "b", "applied")],
            UpRules {
                allow_out_of_order: true,
                ..UpRules::default()
            },
        )
        .unwrap();
        assert_eq!(ok, [0, 2]);
        let to = plan(
            &[],
            UpRules {
                target: Version::integer("2"),
                ..UpRules::default()
            },
        )
        .unwrap();
        assert_eq!(to, [0, 1]);
        let resume = plan(
            &[row("1", "a", "applied"), row("2", "b", "failed")],
            UpRules::default(),
        )
        .unwrap();
        assert_eq!(resume, [1, 2]);
    }

    #[test]
    fn down_checks_every_step_before_running_any() {
        let ms = vec![
            migration("1", "a", true),
            migration("2", "b", false),
            migration("3", "c", true),
        ];
        let rows = vec![
            row("1", "a", "applied"),
            row("2", "b", "applied"),
            row("3", "c", "applied"),
        ];
        let st = statuses(Format::Native, &ms, &rows);
        assert_eq!(plan_down(&ms, &st, &DownTarget::Steps(1)).unwrap(), [2]);
        assert!(matches!(
            plan_down(&ms, &st, &DownTarget::Steps(2)),
            Err(EngineError::Irreversible { .. })
        ));
        assert!(matches!(
            plan_down(&ms, &st, &DownTarget::All),
            Err(EngineError::Irreversible { .. })
        ));
        assert_eq!(
            plan_down(&ms, &st, &DownTarget::To(Version::integer("2").unwrap())).unwrap(),
            [2]
        );
        let _unused: Option<SourceProblem> = None;
    }
}
