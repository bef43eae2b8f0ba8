//! The `strata` binary: a thin shell over the library (see `cli`).

#![allow(clippy::result_large_err)] // see src/lib.rs

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    let code = cli::main();
    // SIGPIPE stays ignored (see `strata::report::out` for why): a reader
    // that left is no failure, but output lost to a full disk is.
    if code == ExitCode::SUCCESS {
        if let Some(e) = strata::report::stdout_error() {
            strata::report::err(&format!("error: cannot write to standard output: {e}"));
            return ExitCode::from(1);
        }
    }
    code
}
