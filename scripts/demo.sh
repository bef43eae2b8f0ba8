#!/usr/bin/env bash
# The main job on the embedded default: build Strata, apply the example
# e-commerce migrations to a Strata-managed local PostgreSQL cluster
# (created in .strata/pg on first use), then show the status.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --quiet
unset DATABASE_URL STRATA_DATABASE_URL PGHOST PGDATABASE
./target/release/strata up --dir examples/ecommerce/migrations
./target/release/strata status --dir examples/ecommerce/migrations
