//! The example application's own test: without a database it says how to
//! give one and exits 2, before touching anything. (Its run against a real
//! database is `tests/cli/embedded.rs` at the workspace root; this test also
//! makes `cargo test` build the application's binary for that one.)

use std::process::Command;

#[test]
fn without_a_database_url_it_says_how_to_give_one() {
    let out = Command::new(env!("CARGO_BIN_EXE_strata-example-embedded"))
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("usage: strata-example-embedded DATABASE_URL"),
        "{stderr}"
    );
}
