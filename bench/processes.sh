#!/usr/bin/env bash
# Scale-out benchmark: 1, 2 and 4 `carpipe run` processes started at once
# over the same files and the same PostgreSQL database (claims give each
# file to one process), then what a claim costs a file next to loading it.
#
#   bench/processes.sh [ROUNDS]    (default 3; needs psql and a local server)
#
# FILES and RECORDS size the data set (default 200 files of 5,000 records,
# the standard set of bench/run.sh); CARPIPE_BENCH_PG is the admin URL
# (default postgres://postgres@127.0.0.1:5432).
set -euo pipefail
export PGOPTIONS="--client-min-messages=warning"
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
ROUNDS=${1:-3}
FILES=${FILES:-200}
RECORDS=${RECORDS:-5000}
PG=${CARPIPE_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
W=$(mktemp -d /tmp/carpipe-procs.XXXXXX)
trap 'rm -rf "$W"; psql -q -X "$PG/postgres" -c "DROP DATABASE IF EXISTS carpipe_procs WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
say() { printf '%s\n' "$*" >&2; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

go build -o "$W/carpipe" ./cmd/carpipe
go build -o "$W/gen" ./cmd/carpipe-gen
"$W/gen" --out "$W/files" --files "$FILES" --records "$RECORDS" --dup 0.01 >&2
TOTAL=$((FILES * RECORDS))
# keep: every process lists every file, so all of them contend for all.
cat >"$W/c.yaml" <<YAML
version: 1
name: procs
schemas: $PWD/schemas
inputs:
  - {name: in, type: dir, path: "$W/files", on_success: keep, on_failure: keep}
outputs:
  - {name: db, type: postgres, dsn: "$PG/carpipe_procs?sslmode=disable"}
YAML

# run N: N processes at once on a fresh database; prints the wall time.
run() {
	psql -q -X "$PG/postgres" -c "DROP DATABASE IF EXISTS carpipe_procs WITH (FORCE)" -c "CREATE DATABASE carpipe_procs" >/dev/null
	"$W/carpipe" migrate -c "$W/c.yaml" --log-level warn >/dev/null # not timed
	local s e pids=()
	s=$(now)
	for i in $(seq 1 "$1"); do
		"$W/carpipe" run -c "$W/c.yaml" --log-level warn >"$W/out.$i" 2>"$W/err.$i" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || { cat "$W"/err.* >&2; exit 1; }; done
	e=$(now)
	local processed
	processed=$(cat "$W"/out.* | sed -n 's/.*files: *\([0-9]*\) processed.*/\1/p' | paste -sd+ | bc)
	[ "$processed" = "$FILES" ] || { say "processed $processed of $FILES files"; cat "$W"/out.* >&2; exit 1; }
	[ "$(psql -X -A -t "$PG/carpipe_procs" -c "SELECT count(*) FROM files WHERE status = 'processed'")" = "$FILES" ] || exit 1
	echo "$e - $s" | bc
}

declare -A T
for n in 1 2 4; do
	: >"$W/t$n"
	for r in $(seq 1 "$ROUNDS"); do
		t=$(run "$n"); echo "$t" >>"$W/t$n"
		say "round $r: $n process(es) ${t}s"
	done
	T[$n]=$(median <"$W/t$n")
done

# A claim and its release for a file alone, and per file of a group of 200.
BENCH=$(go test ./plugins/store -run '^$' -bench 'ClaimRelease' -benchtime 2000x 2>/dev/null)
CLAIM=$(awk '/ClaimRelease\/postgres/ && !/Group/ {print $3}' <<<"$BENCH")
GROUP=$(awk '/ClaimReleaseGroup\/postgres/ {for (i=1;i<=NF;i++) if ($(i+1)=="ns/file") print $i}' <<<"$BENCH")
# What loading costs one file: a worker's time per file in the 1-process run.
WORKERS=$(nproc)
LOAD=$(echo "${T[1]} * $WORKERS / $FILES * 1000000000" | bc -l)

rate() { echo "$TOTAL / $1" | bc; }
cat <<TXT
| measure | value |
|---|---|
| machine | $(nproc) cores, $(psql -X -A -t "$PG/postgres" -c 'SHOW server_version' | cut -d' ' -f1) PostgreSQL on the same machine, $(go version | cut -d' ' -f3) |
| data | $FILES files of $RECORDS records ($(du -sm "$W/files" | cut -f1) MB), every process lists all of them |
| 1 process (median of $ROUNDS) | $(rate "${T[1]}") records/s (${T[1]}s) |
| 2 processes at once | $(rate "${T[2]}") records/s (${T[2]}s) |
| 4 processes at once | $(rate "${T[4]}") records/s (${T[4]}s) |
| loading one file (a worker's time per file, 1 process, $WORKERS workers) | $(printf '%.1f' "$(echo "$LOAD / 1000000" | bc -l)") ms |
| claim + release of a file alone | $(printf '%.2f' "$(echo "$CLAIM / 1000000" | bc -l)") ms ($(printf '%.1f' "$(echo "100 * $CLAIM / $LOAD" | bc -l)")% of loading it) |
| claim + release per file, in a group of 200 small files | $(printf '%.3f' "$(echo "$GROUP / 1000000" | bc -l)") ms |
TXT
