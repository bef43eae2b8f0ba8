use crate::cli::{args::Ctx, Outcome};
use strata::engine::EngineError;
use strata::localpg::{Cluster, ClusterState};

/// Manage the local PostgreSQL cluster, used when no database URL is
/// configured: in .strata/pg, or, when the server's OS user cannot enter
/// the project, where .strata/pg-location says.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Create (on first use) and start the cluster.
    Start,
    /// Stop the cluster.
    Stop,
    /// Show whether it exists and runs.
    Status,
    /// Print its URL (for psql and other tools).
    Url,
    /// Stop it and delete all its data.
    Destroy,
}

pub fn exec(args: Args, ctx: &Ctx) -> anyhow::Result<Outcome> {
    let config = ctx.config(false, false).map_err(EngineError::from)?;
    let cluster = Cluster::for_project(&config.project_dir);
    let say = |text: String| {
        if !ctx.global.quiet {
            strata::report::err(&text)
        }
    };
    match args.action {
        Action::Start => {
            cluster.ensure_running().map_err(EngineError::from)?;
            say(format!(
                "local cluster running in {}",
                cluster.root().display()
            ));
        }
        Action::Stop => match cluster.stop().map_err(EngineError::from)? {
            true => say("local cluster stopped".into()),
            false => say("local cluster was not running".into()),
        },
        Action::Status => {
            let text = match cluster.state() {
                ClusterState::Missing => {
                    "missing (created by `strata local start` or on first use)".to_owned()
                }
                ClusterState::Stopped => "stopped".to_owned(),
                ClusterState::Running {
                    pid,
                    port,
                    socket_dir,
                } => {
                    format!(
                        "running (pid {pid}, port {port}, socket {})",
                        socket_dir.display()
                    )
                }
            };
            if ctx.global.json {
                strata::report::out(
                    &serde_json::json!({ "state": text, "dir": cluster.root() }).to_string(),
                );
            } else {
                strata::report::out(&format!("{}: {text}", cluster.root().display()));
            }
        }
        Action::Url => match cluster.url() {
            Some(url) => strata::report::out(&url),
            None => {
                return Err(EngineError::from(strata::localpg::LocalPgError::Missing(
                    cluster.root().to_path_buf(),
                ))
                .into())
            }
        },
        Action::Destroy => match cluster.destroy().map_err(EngineError::from)? {
            true => say(format!("deleted {}", cluster.root().display())),
            false => say("no local cluster to delete".into()),
        },
    }
    Ok(Outcome::Ok)
}
