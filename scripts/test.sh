#!/usr/bin/env bash
# Runs every test: unit tests, and integration tests against throwaway
# PostgreSQL clusters that the tests start and remove themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets "$@"
# The library's documentation examples, compiled against the public API only
# (`-p strata` alone: without the CLI's `internal` feature).
if [ $# -eq 0 ]; then
    cargo test -p strata --doc
fi
