#!/usr/bin/env bash
# Memory benchmark: peak RSS of `strata up --dry-run` and `strata up` with
# SMALL and LARGE (defaults 2,000 and 20,000) generated tiny pending
# migrations, measured with GNU time (%M) in the same run, each into a
# fresh database of one local cluster. The ratio LARGE / SMALL of the
# peaks shows what each pending migration costs.
#
# Two shapes (SHAPE=tables, SHAPE=rows, or SHAPE="tables rows"):
# - tables: each migration creates a table. The schema grows with the
#   migrations, and the risk analysis keeps a model of every table it has
#   seen (columns, keys, indexes), so memory grows with the schema.
# - rows: the first migration creates a table, each other one inserts a
#   row into it (data migrations). The schema stays one table, so what
#   grows is only what the run keeps per migration. Target: LARGE / SMALL
#   at most 1.5.
# PAD=10000 adds a comment of that many bytes to each migration (the
# issue's "10 KB each"): what a run keeps of each migration's text shows.
# Also prints wall and CPU time: a dry run that waits on the database
# (wall far above CPU) makes round trips per migration.
#
# Usage: bench/memory.sh [SMALL] [LARGE]     (defaults 2000 and 20000)
# Env:   STRATA=path/to/strata   the binary to measure (default: this
#        checkout's debug build, built here; the issue's figures are debug).
#        MODES="dry-run up"      which commands to measure.
#        SHAPE="tables rows"     which shapes of migrations (see above).
#        PAD=0                   bytes of comment added to each migration.
# Needs: PostgreSQL binaries, psql, GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
SMALL=${1:-2000}
LARGE=${2:-20000}
MODES=${MODES:-"dry-run up"}
SHAPES=${SHAPE:-"tables rows"}
PAD=${PAD:-0}
pad=""
[ "$PAD" -gt 0 ] && pad="-- $(head -c "$PAD" /dev/zero | tr '\0' x)"$'\n'
if [ -z "${STRATA:-}" ]; then
    cargo build --quiet --bin strata
    STRATA=$PWD/target/debug/strata
fi
work=$(mktemp -d)
chmod 755 "$work"  # the server may run as the postgres user
trap '"$STRATA" --config "$work/strata.toml" local destroy -q >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
touch "$work/strata.toml"
"$STRATA" --config "$work/strata.toml" local start -q
URL=$("$STRATA" --config "$work/strata.toml" local url)
admin() { PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 "$URL" -c "$1" >/dev/null; }
# The URL with another database, in either form (`local url` prints a
# postgresql:// URL; a key=value string has dbname=).
db_url() {
    echo "$URL" | sed -e "s#dbname=[^ ]*#dbname=$1#" \
        -e "s#^\(postgres[a-z]*://[^/?]*\)/[^?]*#\1/$1#"
}

gen() { # DIR COUNT SHAPE
    mkdir -p "$1"
    for i in $(seq 1 "$2"); do
        {
            printf '%s' "$pad"
            if [ "$3" = tables ]; then
                printf 'CREATE TABLE t%d (id bigint PRIMARY KEY, name text);\n' "$i"
            elif [ "$i" = 1 ]; then
                printf 'CREATE TABLE seen (id bigint PRIMARY KEY, name text);\n'
            else
                printf "INSERT INTO seen (id, name) VALUES (%d, 'row %d');\n" "$i" "$i"
            fi
        } > "$1/$(printf '%06d' "$i")_m$i.up.sql"
    done
}

# "PEAK_KB WALL_S CPU_S" of a command.
measure() {
    local out
    out=$(mktemp)
    /usr/bin/time -f '%M %e %U %S' -o "$out" "$@" >/dev/null
    awk '{printf "%d %.1f %.1f", $1, $2, $3 + $4}' "$out"
    rm -f "$out"
}

declare -A peak
for shape in $SHAPES; do
    for n in "$SMALL" "$LARGE"; do
        gen "$work/$shape$n" "$n" "$shape"
        for mode in $MODES; do
            db="mem_${shape}_${mode//-/_}_$n"
            admin "DROP DATABASE IF EXISTS $db"
            admin "CREATE DATABASE $db"
            args=(up)
            [ "$mode" = dry-run ] && args=(up --dry-run)
            read -r kb wall cpu <<<"$(measure "$STRATA" -q --database-url "$(db_url "$db")" --dir "$work/$shape$n" "${args[@]}")"
            peak[$shape,$mode,$n]=$kb
            printf '%-6s %-8s %6d migrations: peak RSS %7.1f MB, wall %6.1f s, CPU %6.1f s\n' \
                "$shape" "$mode" "$n" "$(awk "BEGIN {print $kb/1024}")" "$wall" "$cpu"
        done
        rm -rf "${work:?}/$shape$n"
    done
done
for shape in $SHAPES; do
    for mode in $MODES; do
        printf '%-6s %-8s peak RSS %d / %d migrations = %.2f\n' "$shape" "$mode" "$LARGE" "$SMALL" \
            "$(awk "BEGIN {print ${peak[$shape,$mode,$LARGE]}/${peak[$shape,$mode,$SMALL]}}")"
    done
done
