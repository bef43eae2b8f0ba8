#!/usr/bin/env bash
# Lint throughput benchmark: strata lint vs squawk on the same files.
#
# Generates COUNT migration files of realistic size and variety (new tables
# with foreign keys and indexes, added columns, concurrent indexes, PL/pgSQL
# functions, views, batched backfills, renames, type changes, drops), then
# lints the directory ROUNDS times with each tool and reports statements per
# second and the ratio, measured in the same run.
#
# Usage: bench/lint.sh [COUNT] [ROUNDS]     (defaults 400 and 5)
# squawk: installed into a temporary npm prefix (`npm install squawk-cli`)
# unless SQUAWK points at a binary.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${1:-400}
ROUNDS=${2:-5}
cargo build --release --quiet
STRATA=$PWD/target/release/strata
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "${SQUAWK:-}" ]; then
    (cd "$work" && npm install --silent --no-audit --no-fund squawk-cli >/dev/null 2>&1) || true
    SQUAWK="$work/node_modules/.bin/squawk"
fi
mig="$work/migrations"
mkdir -p "$mig"
python3 - "$mig" "$COUNT" <<'PY'
import os, random, sys
out, count = sys.argv[1], int(sys.argv[2])
random.seed(42)
cols = ["name text NOT NULL", "email text", "status text NOT NULL DEFAULT 'new'", "amount numeric(12,2)",
        "created_at timestamptz NOT NULL DEFAULT now()", "updated_at timestamptz", "payload jsonb",
        "note varchar(255)", "quantity integer NOT NULL DEFAULT 0", "active boolean NOT NULL DEFAULT true"]
tables = []
def create(i):
    t = f"t{i}"
    body = [f"id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"] + random.sample(cols, random.randint(4, 9))
    sql = []
    if tables:
        ref = random.choice(tables)
        body.append(f"{ref}_id bigint NOT NULL REFERENCES {ref} (id)")
        sql_idx = f"CREATE INDEX {t}_{ref}_id_idx ON {t} ({ref}_id);"
    else:
        sql_idx = None
    sql.append(f"CREATE TABLE {t} (\n    " + ",\n    ".join(body) + "\n);")
    if sql_idx: sql.append(sql_idx)
    sql.append(f"CREATE INDEX {t}_created_idx ON {t} (created_at);" if "created_at" in " ".join(body) else f"COMMENT ON TABLE {t} IS 'table {i}';")
    tables.append(t)
    return sql
def alter(i):
    t = random.choice(tables)
    k = random.randint(0, 7)
    return [
        [f"ALTER TABLE {t} ADD COLUMN c{i} text;", f"ALTER TABLE {t} ADD COLUMN d{i} integer NOT NULL DEFAULT 0;"],
        [f"CREATE INDEX CONCURRENTLY {t}_c{i}_idx ON {t} (id, name);"],
        [f"CREATE OR REPLACE FUNCTION f{i}(p bigint) RETURNS bigint LANGUAGE plpgsql AS $$\nDECLARE r bigint;\nBEGIN\n    SELECT count(*) INTO r FROM {t} WHERE id > p;\n    IF r > 10 THEN\n        RAISE NOTICE 'many: %', r;\n    END IF;\n    RETURN r;\nEND;\n$$;"],
        [f"CREATE OR REPLACE VIEW v{i} AS\n    SELECT id, created_at FROM {t} WHERE id % 2 = 0;"],
        [f"UPDATE {t} SET updated_at = now() WHERE id IN (SELECT id FROM {t} WHERE updated_at IS NULL LIMIT 1000);"],
        [f"ALTER TABLE {t} RENAME COLUMN id TO id_{i};", f"ALTER TABLE {t} RENAME COLUMN id_{i} TO id;"],
        [f"ALTER TABLE {t} ADD CONSTRAINT {t}_chk{i} CHECK (id > 0) NOT VALID;", f"ALTER TABLE {t} VALIDATE CONSTRAINT {t}_chk{i};"],
        [f"ALTER TABLE {t} ALTER COLUMN id SET STATISTICS 500;", f"ANALYZE {t};"],
    ][k]
for i in range(1, count + 1):
    stmts = create(i) if (i < 20 or random.random() < 0.45) else alter(i) + (alter(i + 100000) if random.random() < 0.3 else [])
    with open(os.path.join(out, f"{i:06d}_m{i}.up.sql"), "w") as f:
        f.write(f"-- migration {i}\n" + "\n\n".join(stmts) + "\n")
PY
files=("$mig"/*.up.sql)
statements=$("$STRATA" lint "$mig" --format json --fail-on high | python3 -c 'import json,sys; print(json.load(sys.stdin)["summary"]["statements"])')
now_ns() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
s_t=(); q_t=()
for r in $(seq 1 "$ROUNDS"); do
    start=$(now_ns); "$STRATA" lint "$mig" --format json >/dev/null || true; s_t+=($(( ($(now_ns) - start) / 1000 )))
    if [ -x "$SQUAWK" ]; then
        start=$(now_ns); "$SQUAWK" --reporter json "${files[@]}" >/dev/null 2>&1 || true; q_t+=($(( ($(now_ns) - start) / 1000 )))
    fi
done
s=$(printf '%s\n' "${s_t[@]}" | median)
# Peak memory of one run of each (GNU time, when installed).
rss() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -1; }
echo "lint ${#files[@]} files, $statements statements, median of $ROUNDS rounds:"
if [ -x /usr/bin/time ]; then
    echo "  peak RSS: strata $(( $(rss "$STRATA" lint "$mig" --format json) / 1024 )) MiB$([ -x "$SQUAWK" ] && echo ", squawk $(( $(rss "$SQUAWK" --reporter json "${files[@]}") / 1024 )) MiB")"
fi
echo "  strata lint: $((s / 1000)) ms  ($(awk "BEGIN {printf \"%.0f\", $statements / ($s / 1e6)}") statements/s)"
if [ ${#q_t[@]} -gt 0 ]; then
    q=$(printf '%s\n' "${q_t[@]}" | median)
    echo "  squawk:      $((q / 1000)) ms  ($(awk "BEGIN {printf \"%.0f\", $statements / ($q / 1e6)}") statements/s)  [$("$SQUAWK" --version)]"
    echo "  ratio strata/squawk time: $(awk "BEGIN {printf \"%.2f\", $s / $q}")  (below 1 = strata faster)"
else
    echo "  squawk: not available (npm install squawk-cli)"
fi
