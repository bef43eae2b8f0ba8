//! Which files changed in a git repository, for `strata lint --changed`.
//!
//! git is run as a subprocess (the repository's own configuration, worktrees
//! and credentials then apply exactly as on the command line); it lives here
//! because this is the module that spawns programs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why the changed files could not be listed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// git is not installed, or could not be started.
    #[error("`strata lint --changed` runs git, which could not be started: {0}\n  help: install git, or name the files to lint (`strata lint FILE...`) or use --since VERSION")]
    NotRunnable(String),
    /// The directory is not inside a git work tree.
    #[error("`strata lint --changed` needs a git repository, and {} is not inside one ({message})\n  help: run it in a clone of the repository, or name the files to lint (`strata lint FILE...`) or use --since VERSION", .dir.display())]
    NotARepository {
        /// The migrations directory.
        dir: PathBuf,
        /// What git said.
        message: String,
    },
    /// No base was given and none of the usual default branches exists.
    #[error("`strata lint --changed` found no base to compare with in {}: none of {} exists\n  help: name one with --base REF (e.g. --base origin/main); in a shallow CI clone, fetch the base branch first (`git fetch origin main`)", .dir.display(), DEFAULT_BASES.join(", "))]
    NoBase {
        /// The migrations directory.
        dir: PathBuf,
    },
    /// The base given does not name a commit, or has no common ancestor.
    #[error("`strata lint --changed --base {base}`: {message}\n  help: name a branch, tag or commit that exists in this clone and shares history with HEAD (in a shallow CI clone, fetch it first: `git fetch origin {base}`)")]
    BadBase {
        /// The ref as given.
        base: String,
        /// What git said.
        message: String,
    },
    /// Another git failure.
    #[error("git {args} failed: {message}")]
    Failed {
        /// The arguments.
        args: String,
        /// What git said.
        message: String,
    },
}

/// Bases tried, in order, when `--base` is not given: the remote's default
/// branch, then the usual names of the default branch.
pub const DEFAULT_BASES: &[&str] = &[
    "origin/HEAD",
    "origin/main",
    "origin/master",
    "main",
    "master",
];

fn git(dir: &Path, args: &[&str]) -> Result<Result<String, String>, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .output()
        .map_err(|e| GitError::NotRunnable(e.to_string()))?;
    if out.status.success() {
        Ok(Ok(String::from_utf8_lossy(&out.stdout).into_owned()))
    } else {
        Ok(Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()))
    }
}

fn must(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    git(dir, args)?.map_err(|message| GitError::Failed {
        args: args.join(" "),
        message,
    })
}

/// The files that differ between the merge-base of HEAD and `base` (by
/// default the first of [`DEFAULT_BASES`] that exists) and the working
/// tree: committed on the branch, staged, modified, and untracked (not
/// ignored); deleted files are left out. Comparing with the merge-base, as
/// a pull request does, leaves out what landed on the base branch since.
/// Absolute paths.
pub fn changed_files(dir: &Path, base: Option<&str>) -> Result<Vec<PathBuf>, GitError> {
    let top = git(dir, &["rev-parse", "--show-toplevel"])?.map_err(|message| {
        GitError::NotARepository {
            dir: dir.to_owned(),
            message,
        }
    })?;
    let top = PathBuf::from(top.trim_end_matches(['\n', '\r']));
    let base = match base {
        Some(b) => b.to_owned(),
        None => DEFAULT_BASES
            .iter()
            .find(|b| {
                git(
                    dir,
                    &[
                        "rev-parse",
                        "--verify",
                        "--quiet",
                        &format!("{b}^{{commit}}"),
                    ],
                )
                .is_ok_and(|r| r.is_ok())
            })
            .map(|b| (*b).to_owned())
            .ok_or_else(|| GitError::NoBase {
                dir: dir.to_owned(),
            })?,
    };
    let merge_base =
        git(dir, &["merge-base", "HEAD", &base])?.map_err(|message| GitError::BadBase {
            base: base.clone(),
            message: if message.is_empty() {
                "no common ancestor with HEAD".to_owned()
            } else {
                message
            },
        })?;
    let merge_base = merge_base.trim();
    let mut files = Vec::new();
    let diff = must(
        &top,
        &[
            "diff",
            "--name-only",
            "-z",
            "--diff-filter=d",
            merge_base,
            "--",
        ],
    )?;
    let untracked = must(&top, &["ls-files", "--others", "--exclude-standard", "-z"])?;
    for name in diff.split('\0').chain(untracked.split('\0')) {
        if !name.is_empty() {
            files.push(top.join(name));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}
