#!/usr/bin/env bash
# Plan benchmark: application latency while a multi-phase plan runs on the
# reference harness's 2M-row users table (users: id, email, name, age
# varchar(10), created_at), under its open-loop app load (pgbench -R,
# 70 % point selects, 20 % `UPDATE users SET name = …`, 10 % inserts), in
# the same run:
#   type-naive    ALTER TABLE users ALTER COLUMN age TYPE integer USING age::integer
#   type-strata   a change_column_type plan (expand, deploy gate, contract)
#                 run whole by `strata up --through-gates`
#   rename-naive  ALTER TABLE users RENAME COLUMN name TO full_name (instant,
#                 but the running app, which writes `name`, fails from then on)
#   rename-strata a rename_column plan's expand phase (`strata up`, which
#                 stops at the first deploy gate): new column, sync trigger,
#                 batched backfill, validation. The contract step drops
#                 `name`, which this harness's app still writes, so it is
#                 not run under its load here; rename-whole does.
#   rename-whole  a whole rename_column plan (expand, both gates, contract)
#                 by `strata up --through-gates` on `created_at`, the column
#                 this harness's app never names (its inserts take the
#                 default): the sync trigger fires on every app write, the
#                 backfill copies 2M rows, and the contract drops the old
#                 column and the triggers while the app runs.
# Every strata run uses the DEFAULT config (an empty strata.toml).
# Reported by the harness per run: wall time, app p99/max latency and failed
# requests in the window that overlaps the change; the targets for strata:
# app max <= 50 ms and 0 failed requests.
#
# Usage: bench/plan.sh [ROWS] [RUN...]    (default 2000000, all five runs)
# Env:   ZDT: the reference harness (default ../shared/bench/zdt.sh next
#        to the checkout); STRATA_BIN (default: a release build made here).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-2000000}; shift || true
RUNS=("$@"); [ ${#RUNS[@]} -gt 0 ] || RUNS=(type-naive type-strata rename-naive rename-strata rename-whole)
ZDT=${ZDT:-$(realpath -m ../shared/bench/zdt.sh)}
[ -x "$ZDT" ] || { echo "plan.sh: the reference harness is not at $ZDT (set ZDT)" >&2; exit 2; }
if [ -z "${STRATA_BIN:-}" ]; then
    cargo build --release --quiet
    STRATA_BIN=$PWD/target/release/strata
fi
STRATA=$(realpath "$STRATA_BIN")
work=$(mktemp -d); chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
export ZDT_RESULTS="$work/results.jsonl"
: > "$work/strata.toml"

plan_dir() { # NAME PLAN_TEXT -> a migrations directory holding the plan
    mkdir -p "$work/$1"
    printf '%s\n' "$2" > "$work/$1/20260101000000_$1.plan.toml"
    chmod -R 755 "$work/$1"
}
plan_dir type '
description = "users.age: varchar(10) -> integer"
[[phase]]
name = "expand"
operations = [ { op = "change_column_type", table = "users", column = "age", type = "integer", using = "age::integer" } ]
gate = { deploy = "app that reads age as an integer" }
[[phase]]
name = "contract"
operations = [ { op = "change_column_type", step = "contract", table = "users", column = "age", type = "integer", using = "age::integer" } ]'
plan_dir rename '
description = "users.name -> full_name"
[[phase]]
name = "expand"
operations = [ { op = "rename_column", table = "users", from = "name", to = "full_name" } ]
gate = { deploy = "app that reads full_name" }
[[phase]]
name = "switch"
gate = { deploy = "app that no longer uses name" }
[[phase]]
name = "contract"
operations = [ { op = "rename_column", step = "contract", table = "users", from = "name", to = "full_name" } ]'

plan_dir whole '
description = "users.created_at -> signed_up_at"
[[phase]]
name = "expand"
operations = [ { op = "rename_column", table = "users", from = "created_at", to = "signed_up_at" } ]
gate = { deploy = "app that reads signed_up_at" }
[[phase]]
name = "switch"
gate = { deploy = "app that no longer uses created_at" }
[[phase]]
name = "contract"
operations = [ { op = "rename_column", step = "contract", table = "users", from = "created_at", to = "signed_up_at" } ]'

"$ZDT" up >/dev/null
"$ZDT" seed "$ROWS" >/dev/null
url='host=$PGHOST port=$PGPORT user=$PGUSER dbname=$PGDATABASE'
strata_up() { # DIR ARGS...
    echo "\"$STRATA\" -q --config \"$work/strata.toml\" --database-url \"$url\" --dir \"$work/$1\" up ${*:2}"
}
for run in "${RUNS[@]}"; do
    case $run in
        type-naive) cmd='psql -X -v ON_ERROR_STOP=1 -c "ALTER TABLE users ALTER COLUMN age TYPE integer USING age::integer"' ;;
        type-strata) cmd=$(strata_up type --through-gates) ;;
        rename-naive) cmd='psql -X -v ON_ERROR_STOP=1 -c "ALTER TABLE users RENAME COLUMN name TO full_name"' ;;
        rename-strata) cmd=$(strata_up rename) ;;
        rename-whole) cmd=$(strata_up whole --through-gates) ;;
        *) echo "plan.sh: unknown run $run" >&2; exit 2 ;;
    esac
    "$ZDT" measure -r -l "$run" "$cmd" | grep -E "^# \[|^dur " || true
done
"$ZDT" report "$ZDT_RESULTS"
