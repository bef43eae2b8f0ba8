//! Architecture checks on the source tree, so that CI enforces the layering
//! in ARCHITECTURE.md instead of a reviewer.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Where the code lives: the CLI at the root, the library and the source
/// crate under `crates/`. Paths are reported relative to each `src/`, so the
/// rules below name modules (`db/`, `cli/`, `source/`) whatever their crate.
const SOURCE_ROOTS: [&str; 3] = ["src", "crates/strata/src", "crates/strata-source/src"];

/// (file relative to its crate's src/, text without `#[cfg(test)]` modules)
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in SOURCE_ROOTS {
        let src = root.join(dir);
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for p in files {
            let text = std::fs::read_to_string(&p).unwrap();
            let code = without_tests(&text).to_owned();
            out.push((
                p.strip_prefix(&src).unwrap().to_string_lossy().into_owned(),
                code,
            ));
        }
    }
    out
}

/// The text before the unit tests at the end of a file. Only the
/// `#[cfg(test)] mod tests` block counts: a `#[cfg(test)]` item near the
/// top (a test-only helper module) must not hide the rest of the file.
fn without_tests(text: &str) -> &str {
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    }
}

/// Comments are not code: documentation examples may print or read the
/// environment (they show an application doing so).
fn without_comments(code: &str) -> String {
    code.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn offenders(pattern: &str, allowed: &[&str]) -> Vec<String> {
    sources()
        .into_iter()
        .filter(|(file, code)| {
            without_comments(code).contains(pattern) && !allowed.iter().any(|a| file.starts_with(a))
        })
        .map(|(file, _)| file)
        .collect()
}

#[test]
fn only_db_talks_to_tokio_postgres() {
    assert_eq!(offenders("tokio_postgres", &["db/"]), Vec::<String>::new());
}

#[test]
fn only_cli_uses_clap() {
    assert_eq!(offenders("clap::", &["cli/"]), Vec::<String>::new());
}

#[test]
fn only_config_reads_the_environment() {
    // localpg reads PATH to find the server binaries; cli reads NO_COLOR.
    for pattern in ["std::env::var(", "env::var_os(", "std::env::vars"] {
        assert_eq!(
            offenders(pattern, &["config.rs", "localpg/binaries.rs", "cli/"]),
            Vec::<String>::new(),
            "{pattern}"
        );
    }
}

#[test]
fn only_report_and_main_print() {
    for pattern in ["println!", "eprintln!", "print!(", "eprint!("] {
        assert_eq!(
            offenders(pattern, &["report/", "main.rs"]),
            Vec::<String>::new(),
            "{pattern}"
        );
    }
}

#[test]
fn only_localpg_spawns_postgres_binaries() {
    assert_eq!(
        offenders("Command::new", &["localpg/"]),
        Vec::<String>::new()
    );
}

#[test]
fn every_module_says_what_it_owns() {
    for (file, code) in sources() {
        let is_module_root = file.ends_with("mod.rs") || file == "lib.rs" || file == "config.rs";
        if is_module_root {
            assert!(
                code.trim_start().starts_with("//!"),
                "{file} has no //! module doc"
            );
        }
    }
}

#[test]
fn lint_never_touches_the_database_or_files() {
    for pattern in ["crate::db", "std::fs::", "Connection"] {
        let offenders: Vec<String> = sources()
            .into_iter()
            .filter(|(file, code)| file.starts_with("lint/") && code.contains(pattern))
            .map(|(file, _)| file)
            .collect();
        assert_eq!(offenders, Vec::<String>::new(), "{pattern}");
    }
}

/// Embedding the library must not compile the CLI's dependencies.
#[test]
fn the_library_has_no_cli_dependencies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for manifest in [
        "crates/strata/Cargo.toml",
        "crates/strata-source/Cargo.toml",
    ] {
        let text = std::fs::read_to_string(root.join(manifest)).unwrap();
        let deps = text.split("[dependencies]").nth(1).unwrap_or("");
        let deps = deps.split("\n[").next().unwrap_or("");
        for name in ["clap", "indicatif", "anyhow"] {
            assert!(
                !deps.lines().any(|l| l.trim_start().starts_with(name)),
                "{manifest} depends on {name}"
            );
        }
    }
}

/// What an application that embeds the library links: no CLI crate and no
/// `anyhow` (the library's errors are `thiserror` types with exit codes).
/// Proc-macros run in the compiler and link nothing into the application:
/// `prost-derive`, which `pg_query`'s protobuf types derive from, is one,
/// and every release of it uses `anyhow` internally, so `anyhow` is built
/// (for the compiler) but never linked; that is the one way it may appear.
#[test]
fn an_embedding_application_links_no_cli_crate_and_no_anyhow() {
    let tree = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO"))
            .args(["tree", "-p", "strata", "--prefix", "none"])
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("cargo tree runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let linked: Vec<String> = tree(&["-e", "normal,no-proc-macro"])
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    assert!(linked.iter().any(|n| n == "pg_query"), "{linked:?}");
    for name in ["clap", "indicatif", "anyhow"] {
        assert!(
            !linked.iter().any(|n| n == name),
            "the library links {name}"
        );
    }
    // With proc-macros: anyhow only as a proc-macro's dependency.
    let dependents = tree(&["-e", "normal", "-i", "anyhow", "--depth", "1"]);
    for line in dependents.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        assert!(
            line.contains("(proc-macro)"),
            "anyhow is linked through {line}"
        );
    }
}

/// Data flows one way: source → sql → lint → plan → engine → report, with
/// `config`, `db` and `localpg` as infrastructure below the engine.
/// `source` and `sql` live in `strata-source`, which cannot import the
/// library at all (Cargo enforces that); this checks the library's own
/// top-level modules: each may use only the modules listed for it
/// (`crate::X` paths, `use crate::{X, …}` groups, non-test code).
///
/// Edges that point "up" and why they are allowed:
/// - `config` → `lint`: the `[lint]` section parses into lint's own types
///   (`Risk`, rule ids checked against `lint::rules`), so a bad rule name is
///   a config error before anything runs.
/// - `engine` ↔ `error`: `error` is the engine's error contract
///   (`strata::Error` is `EngineError`; the exit-code constants), one layer.
#[test]
fn library_modules_import_only_downstream() {
    const ALLOWED: &[(&str, &[&str])] = &[
        (
            "lib",
            &[
                "config", "db", "engine", "error", "lint", "localpg", "migrator", "plan", "report",
                "verify",
            ],
        ),
        // The public facade sits on top of the engine, beside the CLI.
        ("migrator", &["config", "db", "engine", "error", "lint"]),
        ("config", &["lint"]),
        ("db", &[]),
        ("localpg", &["db"]),
        ("lint", &[]),
        // Plans compile operations into SQL without a database; the engine
        // runs what they compile to.
        ("plan", &["lint"]),
        (
            "engine",
            &["config", "db", "error", "lint", "localpg", "plan"],
        ),
        ("error", &["config", "db", "engine", "localpg"]),
        ("report", &["db", "engine", "lint", "plan", "verify"]),
        // Verification reads catalogs and replays migrations with the
        // engine; it returns values, which `report` renders.
        (
            "verify",
            &["config", "db", "engine", "error", "lint", "localpg", "plan"],
        ),
    ];
    const MODULES: &[&str] = &[
        "config", "db", "engine", "error", "lint", "localpg", "migrator", "plan", "report",
        "verify",
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/strata/src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut violations = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_owned();
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            violations.push(format!(
                "{rel}: top-level module `{module}` has no entry in ALLOWED"
            ));
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let code = without_tests(&text);
        for used in crate_paths(code) {
            if used != module
                && MODULES.contains(&used.as_str())
                && !allowed.contains(&used.as_str())
            {
                violations.push(format!("{rel} uses crate::{used}"));
            }
        }
    }
    violations.sort();
    violations.dedup();
    assert_eq!(violations, Vec::<String>::new());
}

/// The first segment of every `crate::…` path in `code`, including each
/// name of a `use crate::{a, b::c}` group.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let prefix_ok = i == 0 || {
            let c = rest[..i].chars().next_back().unwrap();
            !(c.is_alphanumeric() || c == '_')
        };
        rest = &rest[i + "crate::".len()..];
        if !prefix_ok {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group: split at commas outside nested braces.
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident(rest));
        }
    }
    out.retain(|s| !s.is_empty());
    out
}

#[test]
fn crate_paths_reads_groups_and_plain_paths() {
    assert_eq!(
        crate_paths("use crate::{db::{Connection, Target}, lint};\nlet x = crate::engine::up;"),
        ["db", "lint", "engine"]
    );
    assert_eq!(crate_paths("strata_crate::db"), Vec::<String>::new());
}

/// The names an application sees at the library's root with default
/// features: `lib.rs` items that are `pub` and not behind the `internal`
/// feature (one per name of a `pub use` list).
fn public_root_names() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("crates/strata/src/lib.rs")).unwrap();
    let mut names = Vec::new();
    let mut internal = false;
    let mut item: Option<String> = None;
    for line in text.lines().map(str::trim) {
        if line.starts_with("//") || line.is_empty() {
            continue;
        }
        if let Some(open) = &mut item {
            open.push(' ');
            open.push_str(line);
        } else if line.starts_with("#[") {
            internal |= line.contains("feature = \"internal\"") && !line.contains("not(");
            continue;
        } else if line.starts_with("pub ") && !internal {
            item = Some(line.to_owned());
        } else {
            internal = false;
            continue;
        }
        let done = item
            .as_ref()
            .is_some_and(|i| i.ends_with(';') || (i.ends_with('}') && !i.starts_with("pub use")));
        if done {
            let i = item.take().unwrap();
            internal = false;
            if let Some(path) = i.strip_prefix("pub use ") {
                let path = path.trim_end_matches(';');
                let list = match (path.find('{'), path.rfind('}')) {
                    (Some(a), Some(b)) => &path[a + 1..b],
                    _ => path,
                };
                for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    let last = part.rsplit([' ', ':']).next().unwrap_or_default();
                    names.push(last.to_owned());
                }
            } else {
                let mut words = i
                    .split([' ', ':', '(', '<', '{', ';'])
                    .filter(|w| !w.is_empty());
                let keyword = words.nth(1).unwrap_or_default();
                let name = words.next().unwrap_or_default();
                let kind = if keyword == "mod" { "mod " } else { "" };
                names.push(format!("{kind}{name}"));
            }
        }
    }
    names
}

/// Applications depending on `strata` see a small, documented API (issue
/// 12); the engine, report, lint and other modules are public only with the
/// unstable `internal` feature, which only the CLI enables.
#[test]
fn the_library_api_is_small() {
    let names = public_root_names();
    assert!(
        !names.iter().any(|n| n.starts_with("mod ")),
        "modules public without the `internal` feature: {names:?}"
    );
    assert!(
        names.len() <= 25,
        "{} public names at the root of `strata` (at most 25): {names:?}",
        names.len()
    );
    for expected in ["Migrator", "embed_migrations", "Error", "Event"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    let cli =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    assert!(
        cli.contains("features = [\"internal\"]"),
        "the CLI needs the library's `internal` feature"
    );
}
