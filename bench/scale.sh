#!/usr/bin/env bash
# Scale benchmark: one migration file of many INSERT statements (a data
# file), at 0.9, 1.8, 3.5 and 50 MB (5,000 / 10,000 / 20,000 / 240,000
# statements), measuring in the same run:
#   1. `strata lint FILE`: wall time and peak RSS (/usr/bin/time -v),
#      for each size: the cost must grow linearly with the size;
#   2. on the largest file: `strata up` against `psql -1 -f` (the floor:
#      one session, one transaction), each into a fresh database of the
#      same cluster, ROUNDS times alternating; medians and the ratio, and
#      strata's peak RSS against the file size.
#
# Usage: bench/scale.sh [LARGEST_STATEMENTS] [ROUNDS]   (defaults 240000 and 1)
# Needs: a release build (it builds one), PostgreSQL binaries, psql,
#        python3, GNU time (/usr/bin/time).
set -euo pipefail
cd "$(dirname "$0")/.."
LARGEST=${1:-240000}
ROUNDS=${2:-1}
cargo build --release --quiet
STRATA=$PWD/target/release/strata
work=$(mktemp -d)
chmod 755 "$work"  # the server may run as the postgres user
trap '"$STRATA" --config "$work/strata.toml" local destroy -q >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
touch "$work/strata.toml"

# INSERTs of about 210 bytes each, one per line, as a data dump has them.
gen() {
    python3 - "$1" "$2" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(1, n + 1):
        f.write(f"INSERT INTO items (id, name, payload, amount, created) VALUES "
                f"({i}, 'name {i}', '{'x' * 90}', {i}.25, '2024-01-{1 + i % 28:02d}');\n")
PY
}
create='CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, payload text, amount numeric, created date);'

# wall seconds, peak RSS in KB and CPU seconds (user + system) of a
# command: "SECONDS KB CPU". On a shared machine CPU time is the steadier
# figure for strata's own work; psql's CPU time leaves out the server's.
measure() {
    local rc=0
    /usr/bin/time -v "$@" >/dev/null 2>"$work/time.txt" || rc=$?
    # 3: lint found something at --fail-on; the run itself was fine.
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
        cat "$work/time.txt" >&2
        return 1
    fi
    awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]}
                /User time|System time/ {cpu += $2}
                /Maximum resident set size/ {kb = $2}
                END {printf "%.2f %d %.2f\n", s, kb, cpu}' "$work/time.txt"
}

echo "strata lint, one file of INSERTs:"
printf '  %-12s %-8s %-10s %-10s %-12s %s\n' statements MB seconds "CPU s" "peak RSS MB" "RSS/size"
for n in 5000 10000 20000 "$LARGEST"; do
    f="$work/data_$n.sql"
    gen "$f" "$n"
    bytes=$(stat -c %s "$f")
    read -r secs kb cpu < <(measure "$STRATA" lint "$f" --format json)
    printf '  %-12s %-8s %-10s %-10s %-12s %s\n' "$n" "$(awk "BEGIN {printf \"%.1f\", $bytes/1e6}")" "$secs" "$cpu" \
        "$(awk "BEGIN {printf \"%.0f\", $kb/1024}")" "$(awk "BEGIN {printf \"%.1f\", $kb*1024/$bytes}")"
done

# up against psql -1 -f on the largest file.
"$STRATA" --config "$work/strata.toml" local start -q
URL=$("$STRATA" --config "$work/strata.toml" local url)
admin() { psql -X -q -v ON_ERROR_STOP=1 "$URL" -c "$1" >/dev/null; }
db_url() { echo "$URL" | sed "s#@/strata?#@/$1?#"; }
data="$work/data_$LARGEST.sql"
mig="$work/migrations"
mkdir -p "$mig"
echo "$create" > "$mig/1_items.up.sql"
cp "$data" "$mig/2_data.up.sql"
echo "$create" > "$work/create.sql"
bytes=$(stat -c %s "$data")
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
psql_t=(); strata_t=(); strata_kb=(); strata_cpu=()
for r in $(seq 1 "$ROUNDS"); do
    for tool in psql strata; do
        db="s_${tool}_$r"
        admin "DROP DATABASE IF EXISTS $db"
        admin "CREATE DATABASE $db"
        u=$(db_url "$db")
        case $tool in
            psql) read -r secs kb cpu < <(measure psql -X -q -1 -v ON_ERROR_STOP=1 "$u" -f "$work/create.sql" -f "$data")
                  psql_t+=("$secs") ;;
            strata) read -r secs kb cpu < <(measure "$STRATA" -q --database-url "$u" --dir "$mig" up)
                    strata_t+=("$secs"); strata_kb+=("$kb"); strata_cpu+=("$cpu") ;;
        esac
        rows=$(psql -X -qtA "$u" -c "SELECT count(*) FROM items")
        [ "$rows" = "$LARGEST" ] || { echo "$tool loaded $rows rows, expected $LARGEST" >&2; exit 1; }
        echo "round $r: $tool ${secs} s (CPU of the client ${cpu} s)" >&2
    done
done
p=$(printf '%s\n' "${psql_t[@]}" | median)
s=$(printf '%s\n' "${strata_t[@]}" | median)
k=$(printf '%s\n' "${strata_kb[@]}" | median)
c=$(printf '%s\n' "${strata_cpu[@]}" | median)
echo "apply $LARGEST INSERTs ($(awk "BEGIN {printf \"%.1f\", $bytes/1e6}") MB), median of $ROUNDS round(s):"
echo "  psql -1 -f:  $p s"
echo "  strata up:   $s s  (ratio strata/psql = $(awk "BEGIN {printf \"%.2f\", $s/$p}")), peak RSS $(awk "BEGIN {printf \"%.0f\", $k/1024}") MB = $(awk "BEGIN {printf \"%.1f\", $k*1024/$bytes}")x the file, strata CPU $c s"
