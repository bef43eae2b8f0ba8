#!/usr/bin/env bash
# Apply benchmark: COUNT small migrations (CREATE TABLE + CREATE INDEX each)
# applied over TCP (127.0.0.1, password authentication, the default
# sslmode=prefer against a server without TLS) to a fresh database by
#   psql      one session, one transaction per file (BEGIN; \i file; COMMIT):
#             the floor, no bookkeeping at all,
#   strata    `strata up` (this checkout, release build),
#   before    `strata up` of another build, if STRATA_BEFORE=path/to/strata,
#   sqlx      `sqlx migrate run`            (sqlx-cli),
#   refinery  `refinery migrate`            (refinery_cli),
#   dbmate    `dbmate up`,
# in turn, ROUNDS times each, in the same run, plus `strata status` with
# COUNT applied. Prints min / median / max wall time of each and the ratio
# of strata's median to each other's, and strata's own CPU time (user +
# sys) and round trips on its main connection, which vary less than wall
# time on a loaded machine.
#
# Usage: bench/apply.sh [COUNT] [ROUNDS]      (defaults 1000 and 5)
# Env:
#   PEERS_DIR      where the peers are installed (default ~/.cache/strata-bench):
#                    cargo install --root "$PEERS_DIR" sqlx-cli --no-default-features --features postgres,rustls
#                    cargo install --root "$PEERS_DIR" refinery_cli --no-default-features --features postgresql
#                    npm install --prefix "$PEERS_DIR/npm" dbmate
#                  A peer found neither there nor on PATH is skipped (and said so).
#   STRATA_BEFORE  a second strata binary to compare with (e.g. a build of main).
#   SYNC=off       runs the cluster with synchronous_commit = off, so commits do
#                  not wait for the disk: what is left is each tool's own work per
#                  migration (the harsher comparison for Strata).
# Needs: a release build (it builds one), PostgreSQL binaries, psql.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-1000}
ROUNDS=${2:-5}
PEERS_DIR=${PEERS_DIR:-$HOME/.cache/strata-bench}
export PATH="$PEERS_DIR/bin:$PEERS_DIR/npm/node_modules/.bin:$PATH"
cargo build --release --quiet --bin strata
STRATA=$PWD/target/release/strata
work=$(mktemp -d)
chmod 755 "$work"  # the server may run as the postgres user
trap '"$STRATA" --config "$work/strata.toml" local destroy -q >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
touch "$work/strata.toml"
# A cluster of its own, managed by strata (durable settings, as shipped).
"$STRATA" --config "$work/strata.toml" local start -q
URL=$("$STRATA" --config "$work/strata.toml" local url)
admin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$URL" -c "$1" >/dev/null; }
# TCP needs a password (scram-sha-256), as a real server does.
admin "ALTER USER postgres PASSWORD 'bench'"
if [ "${SYNC:-on}" = off ]; then
    admin "ALTER SYSTEM SET synchronous_commit = off"
    admin "SELECT pg_reload_conf()"
fi
PORT=$(echo "$URL" | sed 's#.*port=\([0-9]*\).*#\1#')
tcp_url() { echo "postgresql://postgres:bench@127.0.0.1:$PORT/$1"; }

# The same migrations in each tool's layout.
mig="$work/migrations"      # strata and sqlx: VERSION_NAME.up.sql / .down.sql
ref="$work/refinery"        # refinery: V<n>__name.sql
dbm="$work/dbmate"          # dbmate: VERSION_name.sql with migrate:up/down
mkdir -p "$mig" "$ref" "$dbm"
all="$work/psql_all.sql"
: > "$all"
for i in $(seq 1 "$COUNT"); do
    v=$(printf '%06d' "$i")
    sql=$(printf 'CREATE TABLE t%d (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());\nCREATE INDEX t%d_name_idx ON t%d (name);' "$i" "$i" "$i")
    f="$mig/${v}_t${i}.up.sql"
    printf '%s\n' "$sql" > "$f"
    printf 'DROP TABLE t%d;\n' "$i" > "$mig/${v}_t${i}.down.sql"
    printf '%s\n' "$sql" > "$ref/V${i}__t${i}.sql"
    printf -- '-- migrate:up\n%s\n\n-- migrate:down\nDROP TABLE t%d;\n' "$sql" "$i" > "$dbm/${v}_t${i}.sql"
    printf 'BEGIN;\n\\i %s\nCOMMIT;\n' "$f" >> "$all"
done

tools=(psql strata)
[ -n "${STRATA_BEFORE:-}" ] && tools+=(before)
missing=()
for peer in sqlx refinery dbmate; do
    if command -v "$peer" >/dev/null 2>&1; then tools+=("$peer"); else missing+=("$peer"); fi
done

now_ns() { date +%s%N; }
declare -A times
strata_cpu=""
TIMEFORMAT="%U %S"
# Each tool in its own fresh database, from the working directory of the
# run (no strata.toml there: strata must leave nothing behind in it).
cd "$work"
for r in $(seq 1 "$ROUNDS"); do
    for tool in "${tools[@]}"; do
        db="b_${tool}_$r"
        admin "DROP DATABASE IF EXISTS $db"
        admin "CREATE DATABASE $db"
        u=$(tcp_url "$db")
        start=$(now_ns)
        case $tool in
            psql) psql -X -q -v ON_ERROR_STOP=1 "$u" -f "$all" >/dev/null ;;
            strata)
                cpu=$( { time "$STRATA" -q --database-url "$u" --dir "$mig" up >/dev/null; } 2>&1 | tail -n 1)
                strata_cpu="$strata_cpu $(echo "$cpu" | awk '{printf "%d", ($1 + $2) * 1000}')" ;;
            before) "$STRATA_BEFORE" -q --database-url "$u" --dir "$mig" up ;;
            sqlx) DATABASE_URL="$u" sqlx migrate run --source "$mig" >/dev/null ;;
            refinery) DATABASE_URL="$u" refinery migrate -e DATABASE_URL -p "$ref" >/dev/null ;;
            dbmate) dbmate --url "$u?sslmode=disable" --migrations-dir "$dbm" --no-dump-schema up >/dev/null ;;
        esac
        ms=$(( ($(now_ns) - start) / 1000000 ))
        times[$tool]="${times[$tool]:-} $ms"
        echo "round $r: $tool $ms ms" >&2
    done
done

status_u=$(tcp_url "b_strata_1")
status_t=""
for i in $(seq 1 21); do
    start=$(now_ns)
    "$STRATA" --database-url "$status_u" --dir "$mig" status >/dev/null
    status_t="$status_t $(( ($(now_ns) - start) / 1000000 ))"
done

stats() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {m=(NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2); printf "%d %d %d", a[1], m, a[NR]}'; }
median() { stats | awk '{print $2}'; }
s=$(echo "${times[strata]}" | median)
echo "apply $COUNT migrations over TCP, $ROUNDS rounds (ms: min / median / max; ratio = strata median / this median):"
for tool in "${tools[@]}"; do
    read -r lo med hi <<<"$(echo "${times[$tool]}" | stats)"
    printf '  %-9s %7d / %7d / %7d   strata/%s = %.2f\n' "$tool" "$lo" "$med" "$hi" "$tool" "$(awk "BEGIN {print $s/$med}")"
done
for peer in "${missing[@]}"; do
    echo "  $peer: not installed (see the head of bench/apply.sh)"
done
echo "strata status with $COUNT applied, median of 21 runs: $(echo "$status_t" | median) ms"
echo "strata up CPU time (user + sys), median of $ROUNDS: $(echo "$strata_cpu" | median) ms"
admin "CREATE DATABASE b_strata_trips"
trips=$("$STRATA" -vv --database-url "$(tcp_url b_strata_trips)" --dir "$mig" up 2>&1 \
    | sed -n 's/.*connection strata (pid [0-9]*): \([0-9]*\) round trips.*/\1/p' | sort -n | tail -n 1)
echo "strata up round trips on its main connection: $trips for $COUNT migrations"
