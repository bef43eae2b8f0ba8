//! `strata backup`, `strata backups` and `strata restore`.

use super::{backup, os_actor, Backup, EngineError, History};
use crate::config::Config;
use crate::db::Target;

/// `strata backup`: dumps `tables` (every table when empty) now, into the
/// configured backup directory, and records it in the event log.
pub async fn backup_now(
    config: &Config,
    target: &Target,
    tables: &[String],
) -> Result<Option<Backup>, EngineError> {
    let actor = os_actor();
    let history = History::new(&config.history_schema, &config.history_table);
    backup::manual(config, target, tables, &history, &actor).await
}

/// `strata backups`: the backups in the configured directory, oldest first.
pub fn backups(config: &Config) -> Vec<Backup> {
    backup::list(config)
}

/// `strata restore`: restores a backup (only `tables`, when given) in one
/// transaction.
pub async fn restore(
    config: &Config,
    target: &Target,
    file: &std::path::Path,
    tables: &[String],
) -> Result<(), EngineError> {
    let history = History::new(&config.history_schema, &config.history_table);
    backup::restore(config, target, &history, file, tables).await
}
