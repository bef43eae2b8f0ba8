#!/usr/bin/env bash
# Runs every test: unit tests, and integration tests against throwaway
# PostgreSQL clusters that the tests start and remove themselves.
#
#   scripts/test.sh                      # the installed PostgreSQL
#   STRATA_TEST_PG=17 scripts/test.sh    # PostgreSQL 17, fetched once into a cache
#   scripts/test.sh --test cli up::      # arguments go to `cargo test`
#
# With STRATA_TEST_PG, scripts/pg.sh fetches that major version's server and
# a PostgreSQL 18 pg_dump/psql (which handle every older server) and puts
# them first on PATH, where the tests and Strata look for them.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ -n "${STRATA_TEST_PG:-}" ]; then
    PATH="$(scripts/pg.sh "$STRATA_TEST_PG"):$PATH"
    export PATH
fi
cargo test --workspace --all-targets "$@"
# The library's documentation examples, compiled against the public API only
# (`-p strata` alone: without the CLI's `internal` feature).
if [ $# -eq 0 ]; then
    cargo test -p strata --doc
fi
