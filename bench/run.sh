#!/usr/bin/env bash
# carpipe's benchmark: the standard data set (200 files of 5,000 records,
# half of each car type, 1% duplicates) loaded into PostgreSQL by
# `carpipe run` and, as the ceiling, by two `psql \copy` sessions of the
# same records pre-flattened to CSV, interleaved A B A B; then validate
# speed, small files and the peak memory of one 1 GB file.
#
#   bench/run.sh [ROUNDS]          (default 3; needs psql and a local server)
#
# CARPIPE_BENCH_PG is the admin URL (default postgres://postgres@127.0.0.1:5432).
# BENCH_SKIP_BIG=1 skips the 1 GB file.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
ROUNDS=${1:-3}
PG=${CARPIPE_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
W=$(mktemp -d /tmp/carpipe-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
say() { printf '%s\n' "$*" >&2; }

go build -o "$W/carpipe" ./cmd/carpipe
go build -o "$W/gen" ./cmd/carpipe-gen
say "generating the data set in $W"
"$W/gen" --out "$W/files" --files 200 --records 5000 --dup 0.01 --csv "$W/records.csv" >&2
split -n l/2 "$W/records.csv" "$W/part."
TOTAL=1000000                          # records carpipe reads
UNIQUE=$(wc -l <"$W/records.csv")       # rows both end up storing

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

run_carpipe() {
	db carpipe_bench
	config pg "$W/files" "{name: db, type: postgres, dsn: \"$PG/carpipe_bench?sslmode=disable\"}"
	local s e
	s=$(now)
	"$W/carpipe" run -c "$W/pg.yaml" --log-level warn >"$W/run.out"
	e=$(now)
	grep -q "200 processed, 0 failed" "$W/run.out" || { cat "$W/run.out" >&2; exit 1; }
	echo "$e - $s" | bc
}

run_ceiling() {
	db carpipe_ceiling
	config ceil "$W/files" "{name: db, type: postgres, dsn: \"$PG/carpipe_ceiling?sslmode=disable\"}"
	"$W/carpipe" migrate -c "$W/ceil.yaml" --log-level warn >/dev/null
	# The same tables and indexes; one ledger row for the records to point at.
	psql -q -X "$PG/carpipe_ceiling" -c "INSERT INTO runs (pipeline, started_at, status) VALUES ('ceiling', now(), 'ok');
		INSERT INTO files (run_id, input, path, path_key, file_type, size, sha256, status, processed_at) VALUES (1, 'x', 'x', 'x', 'x', 0, 'x', 'processed', now());
		ALTER TABLE records ALTER COLUMN file_id SET DEFAULT 1;" >/dev/null
	local s e
	s=$(now)
	psql -q -X "$PG/carpipe_ceiling" -c "\copy records (file_type, record_key, event_time, payload) FROM '$W/part.aa' CSV" &
	psql -q -X "$PG/carpipe_ceiling" -c "\copy records (file_type, record_key, event_time, payload) FROM '$W/part.ab' CSV" &
	wait
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
cat <<TXT
| measure | value |
|---|---|
| machine | $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, PostgreSQL $(psql -X -A -t "$PG/postgres" -c 'SHOW server_version' | cut -d' ' -f1), $(go version | cut -d' ' -f3) |
| carpipe run, 1,000,000 records (median of $ROUNDS) | $(rate "$A") records/s (${A}s) |
| psql \\copy ceiling, the $UNIQUE unique records pre-flattened, 2 sessions (median of $ROUNDS) | $(rate "$B" "$UNIQUE") records/s (${B}s) |
| carpipe ÷ ceiling, same stored rows: median of the rounds' ratios (of the medians) | $R ($(echo "scale=2; $B / $A" | bc)) |
| carpipe validate | $(rate "$V") records/s, $(echo "$MB / $V" | bc) MB/s |
| 10,000 files of 10 records into SQLite (median of $ROUNDS) | $(echo "10000 / $SQ" | bc) files/s |
| 10,000 files of 10 records into PostgreSQL (median of $ROUNDS) | $(echo "10000 / $SP" | bc) files/s |
| one 1 GB file into PostgreSQL: peak RSS | $RSS, $BIGRATE records/s |
TXT
