#!/usr/bin/env bash
# Runs every test: unit tests, and integration tests against throwaway
# PostgreSQL clusters that the tests start and remove themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets "$@"
