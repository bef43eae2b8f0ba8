#!/usr/bin/env bash
# Apply benchmark: 1,000 small migrations (CREATE TABLE + CREATE INDEX each)
# applied to a fresh database by
#   1. psql, one session, one transaction per file  (the floor),
#   2. strata up,
#   3. sqlx migrate run (if sqlx-cli is installed:
#        cargo install sqlx-cli --no-default-features --features postgres),
# alternating, ROUNDS times each, plus `strata status` with 1,000 applied.
# Prints medians and the ratios strata/psql and strata/sqlx of the same run.
#
# Usage: bench/apply.sh [COUNT] [ROUNDS]      (defaults 1000 and 3)
# Env: SYNC=off runs the cluster with synchronous_commit = off, so commits do
#      not wait for the disk: what is left is each tool's own work per
#      migration (the harsher comparison for Strata; the disk on a small
#      machine is noisy enough to swamp it otherwise).
# Needs: a release build (it builds one), PostgreSQL binaries, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000}
ROUNDS=${2:-3}
cargo build --release --quiet
STRATA=$PWD/target/release/strata
work=$(mktemp -d)
chmod 755 "$work"  # the server may run as the postgres user
trap '"$STRATA" --config "$work/strata.toml" local destroy -q >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
touch "$work/strata.toml"
# A cluster of its own, managed by strata (durable settings, as shipped).
"$STRATA" --config "$work/strata.toml" local start -q
URL=$("$STRATA" --config "$work/strata.toml" local url)
if [ "${SYNC:-on}" = off ]; then
    psql -X -q "$URL" -c "ALTER SYSTEM SET synchronous_commit = off" -c "SELECT pg_reload_conf()" >/dev/null
fi
SOCK=$(echo "$URL" | sed 's#.*host=\([^&]*\).*#\1#')
PORT=$(echo "$URL" | sed 's#.*port=\([0-9]*\).*#\1#')
admin() { psql -X -q -v ON_ERROR_STOP=1 "$URL" -c "$1" >/dev/null; }
db_url() { echo "$URL" | sed "s#@/strata?#@/$1?#"; }

mig="$work/migrations"
mkdir -p "$mig"
all="$work/psql_all.sql"
: > "$all"
for i in $(seq 1 "$COUNT"); do
    v=$(printf '%06d' "$i")
    f="$mig/${v}_t${i}.up.sql"
    printf 'CREATE TABLE t%d (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\nCREATE INDEX t%d_name_idx ON t%d (name);\n' "$i" "$i" "$i" > "$f"
    printf 'DROP TABLE t%d;\n' "$i" > "$mig/${v}_t${i}.down.sql"
    printf 'BEGIN;\n\\i %s\nCOMMIT;\n' "$f" >> "$all"
done

now_ms() { date +%s%3N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
have_sqlx=0
command -v sqlx >/dev/null 2>&1 && have_sqlx=1

psql_t=(); strata_t=(); sqlx_t=()
for r in $(seq 1 "$ROUNDS"); do
    for tool in psql strata sqlx; do
        [ "$tool" = sqlx ] && [ $have_sqlx = 0 ] && continue
        db="b_${tool}_$r"
        admin "DROP DATABASE IF EXISTS $db"
        admin "CREATE DATABASE $db"
        u=$(db_url "$db")
        start=$(now_ms)
        case $tool in
            psql) psql -X -q -v ON_ERROR_STOP=1 "$u" -f "$all" >/dev/null ;;
            strata) "$STRATA" -q --database-url "$u" --dir "$mig" up ;;
            # sqlx wants a host in the URL; ?host= still points it at the same socket.
            sqlx) DATABASE_URL="postgresql://postgres@localhost:$PORT/$db?host=$SOCK" sqlx migrate run --source "$mig" >/dev/null ;;
        esac
        ms=$(( $(now_ms) - start ))
        case $tool in psql) psql_t+=("$ms") ;; strata) strata_t+=("$ms") ;; sqlx) sqlx_t+=("$ms") ;; esac
        echo "round $r: $tool $ms ms" >&2
    done
done

status_u=$(db_url "b_strata_1")
status_t=()
for i in $(seq 1 21); do
    start=$(date +%s%N)
    "$STRATA" --database-url "$status_u" --dir "$mig" status >/dev/null
    status_t+=($(( ($(date +%s%N) - start) / 1000000 )))
done

p=$(printf '%s\n' "${psql_t[@]}" | median)
s=$(printf '%s\n' "${strata_t[@]}" | median)
st=$(printf '%s\n' "${status_t[@]}" | median)
echo "apply $COUNT migrations, median of $ROUNDS rounds:"
echo "  psql (one session, one transaction per file): $p ms"
echo "  strata up:                                    $s ms  (ratio strata/psql = $(awk "BEGIN {printf \"%.2f\", $s/$p}"))"
if [ $have_sqlx = 1 ]; then
    q=$(printf '%s\n' "${sqlx_t[@]}" | median)
    echo "  sqlx migrate run:                             $q ms  (ratio strata/sqlx = $(awk "BEGIN {printf \"%.2f\", $s/$q}"))"
else
    echo "  sqlx migrate run: not installed (cargo install sqlx-cli --no-default-features --features postgres)"
fi
echo "strata status with $COUNT applied, median of 21 runs: $st ms"
