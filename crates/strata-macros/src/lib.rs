//! `embed_migrations!`: a migration directory compiled into the binary.
//!
//! Use it through the `strata` crate (`strata::embed_migrations!`), which
//! re-exports it; this crate exists only because a procedural macro must live
//! in a crate of its own. It cannot depend on `strata` (which depends on it),
//! so it reads the directory with `strata-source`, the crate that holds the
//! CLI's loader: the same layouts, directives and checksums as `strata up`.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};

use proc_macro::TokenStream;
use quote::quote;

/// Reads a migration directory at compile time and embeds it in the binary,
/// as a `strata::EmbeddedMigrations` value for `strata::Migrator::embedded`.
///
/// The path is relative to the calling crate's `Cargo.toml` directory. Any
/// layout Strata reads is accepted (native/golang-migrate, goose, diesel,
/// sqlx, Flyway, dbmate), detected as the CLI detects it, with the plan
/// files (`<version>_<name>.plan.toml`) among the migrations. A bad file (an
/// unknown directive, a broken pair, SQL the PostgreSQL parser rejects, a
/// plan file with an unknown key or operation) fails the build with
/// `file:line`, the problem and how to fix it.
///
/// Cargo rebuilds the binary when an embedded file changes. A file *added*
/// to the directory is only seen when something else triggers a rebuild:
/// add a `build.rs` with `println!("cargo:rerun-if-changed=migrations");`.
#[proc_macro]
pub fn embed_migrations(input: TokenStream) -> TokenStream {
    let lit = match syn::parse::<syn::LitStr>(input) {
        Ok(lit) => lit,
        Err(e) => {
            return syn::Error::new(
                e.span(),
                "embed_migrations! takes one string: the migration directory, relative to Cargo.toml (embed_migrations!(\"migrations\"))",
            )
            .to_compile_error()
            .into()
        }
    };
    match expand(&lit.value()) {
        Ok(tokens) => tokens.into(),
        Err(message) => syn::Error::new(lit.span(), message)
            .to_compile_error()
            .into(),
    }
}

fn expand(dir: &str) -> Result<proc_macro2::TokenStream, String> {
    // Cargo sets it for every crate it compiles; the macro is useless
    // without it (there would be no directory to be relative to).
    let base = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .ok_or("CARGO_MANIFEST_DIR is not set: build with cargo")?;
    let scanned =
        strata_source::source::embedded::scan(&base, Path::new(dir)).map_err(|problems| {
            let mut message = format!(
                "embed_migrations!(\"{dir}\"): {} problem(s) in {}:",
                problems.len(),
                base.join(dir).display()
            );
            for p in &problems {
                message.push_str(&format!("\n{p}"));
            }
            message
        })?;
    let json = scanned.embedded.to_json()?;
    // include_bytes! of every file read makes cargo track it: editing a
    // migration rebuilds the binary. The constants are never used, so the
    // bytes do not end up in it twice.
    let files: Vec<String> = scanned
        .files
        .iter()
        .filter_map(|f| f.to_str().map(str::to_owned))
        .collect();
    Ok(quote! {
        {
            #( const _: &[u8] = ::core::include_bytes!(#files); )*
            ::strata::EmbeddedMigrations::__from_macro(#json)
        }
    })
}
