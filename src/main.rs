//! The `strata` binary: a thin shell over the library (see `cli`).

#![allow(clippy::result_large_err)] // see src/lib.rs

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
