//! An application that migrates its database at startup, from migrations
//! compiled into its binary: no migration files, no `strata` command on the
//! host. Run it with the database URL as its argument or in `DATABASE_URL`:
//!
//! ```sh
//! cargo run -p strata-example-embedded -- postgres://app@localhost/app
//! ```
//!
//! Several instances starting at once are safe: Strata's advisory lock lets
//! one migrate while the others wait, then find nothing to do.

use std::process::ExitCode;

/// Read, checked and checksummed when this binary was built.
static MIGRATIONS: strata::EmbeddedMigrations = strata::embed_migrations!("migrations");

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let Some(url) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("DATABASE_URL").ok())
    else {
        eprintln!("usage: strata-example-embedded DATABASE_URL (or set DATABASE_URL)");
        return ExitCode::from(2);
    };
    let migrator = strata::Migrator::embedded(MIGRATIONS)
        .database_url(url)
        .on_progress(|event| match event {
            strata::Event::Started { migration, .. } => eprintln!("migrating {migration}"),
            strata::Event::Notice(text) => eprintln!("note: {text}"),
            _ => {}
        });
    match migrator.up().await {
        Ok(report) => {
            println!("applied {} migration(s)", report.applied.len());
            for step in &report.applied {
                println!("  {} ({} ms)", step.migration, step.duration.as_millis());
            }
            // The application would start serving here.
            ExitCode::SUCCESS
        }
        Err(e) => {
            // The message names the migration, file and statement, and
            // ends with a `help:` line; the exit code is the CLI's.
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
