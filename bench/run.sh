#!/usr/bin/env bash
# carpipe's benchmark: the standard data set (200 files of 5,000 records,
# half of each car type, 1% duplicates) loaded into PostgreSQL by
# `carpipe run` (A) and, as the ceiling (B), by two `psql \copy` sessions of
# the same records pre-flattened to CSV into the typed tables a person
# would write by hand, interleaved A B A B; then both databases' size and
# two queries on each; then validate speed, small files and the peak
# memory of one 1 GB file.
#
#   bench/run.sh [ROUNDS]          (default 3; needs psql and a local server)
#
# CARPIPE_BENCH_PG is the admin URL (default postgres://postgres@127.0.0.1:5432).
# BENCH_FILES and BENCH_RECORDS shrink the data set (default 200 and 5000).
# BENCH_SKIP_BIG=1 skips the 1 GB file.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
ROUNDS=${1:-3}
FILES=${BENCH_FILES:-200}
RECORDS=${BENCH_RECORDS:-5000}
PG=${CARPIPE_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
W=$(mktemp -d /tmp/carpipe-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
say() { printf '%s\n' "$*" >&2; }

go build -o "$W/carpipe" ./cmd/carpipe
go build -o "$W/gen" ./cmd/carpipe-gen
say "generating the data set in $W"
# The CSV files hold every valid record, duplicates included: the ceiling
# must drop duplicates itself, as carpipe does.
"$W/gen" --out "$W/files" --files "$FILES" --records "$RECORDS" --dup 0.01 --typed-csv "$W/csv" >&2
TOTAL=$((FILES * RECORDS))             # records both read

db() { psql -q -X "$PG/postgres" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null 2>&1; }
config() { # name dir output
	cat >"$W/$1.yaml" <<YAML
version: 1
name: bench
schemas: $PWD/schemas
inputs:
  - {name: in, type: dir, path: "$2"}
outputs:
  - $3
YAML
}
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
one() { psql -X -A -t -v ON_ERROR_STOP=1 "$PG/$1" -c "$2"; }

run_carpipe() {
	db carpipe_bench
	config pg "$W/files" "{name: db, type: postgres, dsn: \"$PG/carpipe_bench?sslmode=disable\"}"
	local s e
	s=$(now)
	"$W/carpipe" run -c "$W/pg.yaml" --log-level warn >"$W/run.out"
	e=$(now)
	grep -q "$FILES processed, 0 failed" "$W/run.out" || { cat "$W/run.out" >&2; exit 1; }
	echo "$e - $s" | bc
}

# The tables a person would write by hand for the two car types.
CEILING_DDL="CREATE TABLE objects_detection(vehicle_id text, detection_time timestamptz, object_type text, object_value int, detections jsonb, UNIQUE(vehicle_id, detection_time));
CREATE TABLE vehicle_status(vehicle_id text, report_time timestamptz, status text, UNIQUE(vehicle_id, report_time));"

# load TABLE: one session copies the type's CSV into a staging table and
# keeps the first copy of each key, like carpipe.
load() {
	psql -q -X -v ON_ERROR_STOP=1 "$PG/carpipe_ceiling" \
		-c "CREATE TEMP TABLE staging (LIKE $1)" \
		-c "\copy staging FROM '$W/csv/$1.csv' CSV" \
		-c "INSERT INTO $1 SELECT * FROM staging ON CONFLICT DO NOTHING"
}

run_ceiling() {
	db carpipe_ceiling
	one carpipe_ceiling "$CEILING_DDL" >/dev/null
	local s e p q
	s=$(now)
	# One session per table is what a person would do: each loads its own
	# file into its own table, and two sessions never wait on each other's
	# keys in one unique index.
	load objects_detection & p=$!
	load vehicle_status & q=$!
	wait $p; wait $q
	e=$(now)
	echo "$e - $s" | bc
}

: >"$W/a"; : >"$W/b"; : >"$W/ratio"
for r in $(seq 1 "$ROUNDS"); do
	a=$(run_carpipe); echo "$a" >>"$W/a"
	b=$(run_ceiling); echo "$b" >>"$W/b"
	echo "scale=3; $b / $a" | bc >>"$W/ratio" # each round's ratio: A and B ran back to back
	say "round $r: carpipe ${a}s, psql \\copy ${b}s"
done
A=$(median <"$W/a"); B=$(median <"$W/b"); R=$(median <"$W/ratio")

# Both hold the last round's load: the same rows, then their size and two
# queries. carpipe's side is read through its typed views, named after the
# file types; the ceiling's through its own tables.
ROWS=$(one carpipe_ceiling "SELECT (SELECT count(*) FROM objects_detection) + (SELECT count(*) FROM vehicle_status)")
CROWS=$(one carpipe_bench "SELECT (SELECT count(*) FROM objects_detection) + (SELECT count(*) FROM vehicles_status)")
[ "$ROWS" = "$CROWS" ] || { say "carpipe stores $CROWS rows, the ceiling $ROWS"; exit 1; }
mb() { echo "scale=0; $(one "$1" "SELECT pg_database_size(current_database())") / 1048576" | bc; }
SA=$(mb carpipe_bench); SB=$(mb carpipe_ceiling)
# Fresh statistics on both, as autovacuum would give them in time.
one carpipe_bench "ANALYZE" >/dev/null; one carpipe_ceiling "ANALYZE" >/dev/null
VEHICLE=$(one carpipe_ceiling "SELECT min(vehicle_id) FROM vehicle_status")
q1() { echo "SELECT status, date_trunc('day', report_time), count(*) FROM $1 GROUP BY 1, 2"; }
q2() { echo "SELECT count(*) FROM $1 WHERE vehicle_id = '$VEHICLE'"; }
qtime() { # database query: median ms of 3 runs, psql's \timing
	psql -X -q -v ON_ERROR_STOP=1 "$PG/$1" -c '\timing on' -c "$2" -c "$2" -c "$2" |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | median
}
Q1A=$(qtime carpipe_bench "$(q1 vehicles_status)"); Q1B=$(qtime carpipe_ceiling "$(q1 vehicle_status)")
Q2A=$(qtime carpipe_bench "$(q2 vehicles_status)"); Q2B=$(qtime carpipe_ceiling "$(q2 vehicle_status)")

# validate: records/s and MB/s over the same files.
: >"$W/v"
for r in $(seq 1 "$ROUNDS"); do
	s=$(now); "$W/carpipe" validate --schemas schemas "$W/files" >/dev/null; e=$(now)
	echo "$e - $s" | bc >>"$W/v"
done
V=$(median <"$W/v")
MB=$(du -sm "$W/files" | cut -f1)

# 10,000 files of 10 records, into SQLite and into Postgres.
"$W/gen" --out "$W/small" --files 10000 --records 10 --dup 0 >/dev/null
small() { # output-yaml
	config small "$W/small" "$1"
	local s e
	s=$(now); "$W/carpipe" run -c "$W/small.yaml" --log-level warn >"$W/small.out"; e=$(now)
	grep -q "10000 processed" "$W/small.out" || { cat "$W/small.out" >&2; exit 1; }
	echo "$e - $s" | bc
}
# Each round starts from the same 10,000 files and an empty database.
cp -r "$W/small" "$W/small.orig"
: >"$W/sq"; : >"$W/sp"
for r in $(seq 1 "$ROUNDS"); do
	rm -rf "$W/small" "$W/small.db"*; cp -r "$W/small.orig" "$W/small"
	small "{name: db, type: sqlite, path: \"$W/small.db\"}" >>"$W/sq"
	rm -rf "$W/small"; cp -r "$W/small.orig" "$W/small"; db carpipe_small
	small "{name: db, type: postgres, dsn: \"$PG/carpipe_small?sslmode=disable\"}" >>"$W/sp"
done
SQ=$(median <"$W/sq"); SP=$(median <"$W/sp")

# One 1 GB file: peak resident memory.
RSS="skipped"; BIGRATE="-"
if [ "${BENCH_SKIP_BIG:-}" != 1 ]; then
	"$W/gen" --out "$W/big" --files 1 --records 5600000 --dup 0 >/dev/null
	db carpipe_big
	config big "$W/big" "{name: db, type: postgres, dsn: \"$PG/carpipe_big?sslmode=disable\"}"
	s=$(now)
	/usr/bin/time -f "%M" -o "$W/rss" "$W/carpipe" run -c "$W/big.yaml" --log-level warn >"$W/big.out"
	e=$(now)
	RSS="$(( $(cat "$W/rss") / 1024 )) MB ($(du -m "$W"/big/*.json | cut -f1) MB file)"
	BIGRATE=$(echo "5600000 / ($e - $s)" | bc)
fi
psql -q -X "$PG/postgres" -c "DROP DATABASE IF EXISTS carpipe_bench WITH (FORCE)" -c "DROP DATABASE IF EXISTS carpipe_ceiling WITH (FORCE)" -c "DROP DATABASE IF EXISTS carpipe_small WITH (FORCE)" -c "DROP DATABASE IF EXISTS carpipe_big WITH (FORCE)" >/dev/null

rate() { echo "${2:-$TOTAL} / $1" | bc; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<TXT
$FILES files of $RECORDS records: $TOTAL records read, $ROWS rows stored by each. Machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, PostgreSQL $(psql -X -A -t "$PG/postgres" -c 'SHOW server_version' | cut -d' ' -f1), $(go version | cut -d' ' -f3).

| measure | carpipe (\`carpipe run\`) | ceiling: hand-made typed tables, 2 \`psql \\copy\` sessions | carpipe ÷ ceiling |
|---|---|---|---|
| load, end to end (median of $ROUNDS) | $(ratio "$A" 1) s, $(rate "$A") records/s | $(ratio "$B" 1) s, $(rate "$B") records/s | $(ratio "$R" 1) of the speed (median of the rounds' ratios; $(ratio "$B" "$A") of the medians) |
| database size after the load | $SA MB | $SB MB | $(ratio "$SA" "$SB") × |
| \`$(q1 '…')\` (median of 3) | $(ratio "$Q1A" 1) ms | $(ratio "$Q1B" 1) ms | $(ratio "$Q1A" "$Q1B") × the time |
| \`$(q2 '…')\` (median of 3) | $(ratio "$Q2A" 1) ms | $(ratio "$Q2B" 1) ms | $(ratio "$Q2A" "$Q2B") × the time |

| measure | value |
|---|---|
| carpipe validate | $(rate "$V") records/s, $(echo "$MB / $V" | bc) MB/s |
| 10,000 files of 10 records into SQLite (median of $ROUNDS) | $(echo "10000 / $SQ" | bc) files/s |
| 10,000 files of 10 records into PostgreSQL (median of $ROUNDS) | $(echo "10000 / $SP" | bc) files/s |
| one 1 GB file into PostgreSQL: peak RSS | $RSS, $BIGRATE records/s |
TXT
