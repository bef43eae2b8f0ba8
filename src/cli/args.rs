//! Flags shared by every command, and the per-run context built from them.

use std::path::PathBuf;

use strata::config::{Config, Flags};
use strata::report::Style;

/// Global options.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Database URL or libpq key=value string (default: STRATA_DATABASE_URL,
    /// DATABASE_URL, strata.toml, PG* variables, then the managed local cluster).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Migrations directory [default: migrations].
    #[arg(long, global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Config file [default: ./strata.toml if present].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Environment: apply the [env.NAME] table of strata.toml over its top
    /// level [default: STRATA_ENV].
    #[arg(long, global = true, value_name = "NAME")]
    pub env: Option<String>,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More detail (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Everything a command needs besides its own arguments.
pub struct Ctx {
    pub global: GlobalArgs,
    pub style: Style,
}

impl Ctx {
    pub fn new(global: GlobalArgs) -> Ctx {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let mut style = Style::detect(global.quiet, no_color);
        style.verbose = global.verbose > 0;
        Ctx { global, style }
    }

    /// Resolves the configuration; `extra` adds command-specific flags.
    pub fn config(
        &self,
        allow_out_of_order: bool,
        ignore_missing: bool,
    ) -> Result<Config, strata::ConfigError> {
        Config::resolve(&Flags {
            database_url: self.global.database_url.clone(),
            dir: self.global.dir.clone(),
            config: self.global.config.clone(),
            allow_out_of_order,
            ignore_missing,
            env: self.global.env.clone(),
        })
    }

    /// Prints engine progress to stderr, with a live status line on a
    /// terminal.
    pub fn observer(&self) -> impl FnMut(strata::engine::Progress) + '_ {
        let mut live = super::live::Live::new(&self.style);
        move |p| live.handle(&p)
    }
}
