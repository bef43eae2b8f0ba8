#!/usr/bin/env bash
# Runs the smoke subset of the integration tests (up, down, status, lint,
# safe rewrites, backups, plan operations that copy columns and a plan rolled
# back from its backup, where PostgreSQL 18's named NOT NULL constraints
# differ) against every supported PostgreSQL major version,
# each fetched once into a cache by scripts/pg.sh.
#
#   scripts/test-matrix.sh            # 14 15 16 17 18
#   scripts/test-matrix.sh 16 17      # some of them
#
# The full suite runs against one version (scripts/test.sh, or
# STRATA_TEST_PG=N scripts/test.sh); this is the check that nothing differs
# between versions in what users do most.
set -euo pipefail
cd "$(dirname "$0")/.."
versions=("$@")
if [ ${#versions[@]} -eq 0 ]; then
    versions=(14 15 16 17 18)
fi
smoke=(up:: down:: status:: lint:: safe_rewrites:: backup:: plan_ops_triggers:: plan_ops_tables::partition plan_examples::example_10)
for v in "${versions[@]}"; do
    echo "== PostgreSQL $v: ${smoke[*]}" >&2
    STRATA_TEST_PG="$v" scripts/test.sh --test cli -- "${smoke[@]}"
done
