#!/usr/bin/env bash
# hitratio.sh: cache-aside hit ratio on a Zipf key stream under a memory limit of 10 % of the data,
# ferrocache against memcached on this machine, same stream for both.
#
# KEYS keys of 32 bytes with 100-byte values make KEYS x 132 B of data (132 MB at the default 1M
# keys); each server gets -m MEMORY (default: 10 % of that, rounded up to whole MB: 14) and the
# same -t THREADS -U 0, fresh, on a free 127.0.0.1 port (ferrocache with --resp-port 0). Load:
# `ferrobench --cache-aside` (each request a get; a miss is followed by a set of that key on the
# same connection), keys drawn from Zipf(ZIPF) by per-connection generators seeded from --seed,
# CONNS connections with PIPELINE gets in flight. Warm-up: one pass of WARM gets (default KEYS)
# under seed S; measured: the next REQUESTS gets (default KEYS) under seed S+1. The hit ratio is
# get_hits / (get_hits + get_misses) from the server's own `stats`, deltas over the measured
# phase (ferrobench's own count is shown beside it). RUNS rounds, servers alternating, median.
# Every server started here is stopped on exit; each phase is bounded by --bound seconds.
# Needs memcached and release builds of ferrocache and ferrobench (FERROCACHE, FERROBENCH).
#
# Usage: bench/hitratio.sh [--keys N] [--memory MB] [--zipf S] [--warm N] [--requests N]
#                          [--connections C] [--pipeline P] [--threads T] [--runs R] [--seed S]
#                          [--bound S]
set -euo pipefail

SCRIPT=hitratio.sh
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERROCACHE:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
KEYS=1000000
MEMORY=""
ZIPF=0.99
WARM=""
REQUESTS=""
CONNS=4
PIPELINE=8
THREADS=1
RUNS=3
SEED=1
BOUND=600
KEY_SIZE=32
VALUE_SIZE=100

while [ $# -gt 0 ]; do
    case "$1" in
        --keys) KEYS=$2; shift 2 ;;
        --memory) MEMORY=$2; shift 2 ;;
        --zipf) ZIPF=$2; shift 2 ;;
        --warm) WARM=$2; shift 2 ;;
        --requests) REQUESTS=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --pipeline) PIPELINE=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --bound) BOUND=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "$SCRIPT: unknown argument $1" >&2; exit 64 ;;
    esac
done
DATA=$((KEYS * (KEY_SIZE + VALUE_SIZE)))
MEMORY=${MEMORY:-$(((DATA / 10 + 999999) / 1000000))}
WARM=${WARM:-$KEYS}
REQUESTS=${REQUESTS:-$KEYS}

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
check_tools
TMP=$(mktemp -d /tmp/hitratio-sh.XXXXXX)
trap 'stop_server; rm -rf "$TMP"' EXIT

# phase N SEED: N cache-aside gets against the running server; prints ferrobench's JSON report.
phase() {
    "$BENCH" -s "127.0.0.1:$SERVER_PORT" -P text --cache-aside -n "$KEYS" --zipf "$ZIPF" \
        --key-size "$KEY_SIZE" -d "$VALUE_SIZE" -c "$CONNS" -p "$PIPELINE" --requests "$1" \
        --seed "$2" -D "$BOUND" --json >"$TMP/phase.json" 2>"$TMP/phase.err" ||
        die "ferrobench failed against $server: $(cat "$TMP/phase.err")"
    local reads
    reads=$(jq -r '.measured.reads' "$TMP/phase.json")
    [ "$reads" = "$1" ] || die "$server: only $reads of $1 gets within --bound $BOUND s"
}

command -v jq >/dev/null || die "jq not found; install it with: apt-get install jq"
: >"$TMP/results"
for run in $(seq 1 "$RUNS"); do
    for server in memcached ferrocache; do
        start_server "$server" -m "$MEMORY" -t "$THREADS"
        phase "$WARM" "$SEED"
        s0=$(mc_stats "$SERVER_PORT")
        phase "$REQUESTS" $((SEED + 1))
        s1=$(mc_stats "$SERVER_PORT")
        rss=$(rss_kb "$SERVER_PID")
        stop_server
        hits=$(($(stat_of "$s1" get_hits) - $(stat_of "$s0" get_hits)))
        misses=$(($(stat_of "$s1" get_misses) - $(stat_of "$s0" get_misses)))
        evictions=$(($(stat_of "$s1" evictions) - $(stat_of "$s0" evictions)))
        items=$(stat_of "$s1" curr_items)
        bytes=$(stat_of "$s1" bytes)
        client=$(jq -r '.measured.hit_ratio' "$TMP/phase.json")
        ops=$(jq -r '.measured.ops_per_sec' "$TMP/phase.json")
        ratio=$(awk -v h="$hits" -v m="$misses" 'BEGIN {printf "%.4f", h / (h + m)}')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$run" "$ratio" "$client" "$hits" \
            "$misses" "$evictions" "$items" "$bytes" "$rss" "$ops" >>"$TMP/results"
        awk -v me="$SCRIPT" -v r="$run" -v s="$server" -v x="$ratio" -v c="$client" -v i="$items" -v e="$evictions" \
            -v o="$ops" 'BEGIN { printf "%s: run %s %-10s hit ratio %.4f (ferrobench %.4f)  items %d  evictions %d  %.0f ops/s\n",
            me, r, s, x, c, i, e, o }' >&2
    done
done

med() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s {print $c}' "$TMP/results" | median; }
runs() { awk -F'\t' -v s="$1" '$1 == s {printf "%s%s", sep, $3; sep = " / "}' "$TMP/results"; }
echo
echo "$KEYS keys of $KEY_SIZE B, values of $VALUE_SIZE B ($((DATA / 1000000)) MB of data), -m $MEMORY (MB) -t $THREADS;" \
    "Zipf($ZIPF) cache-aside, $CONNS connections x $PIPELINE in flight; warm-up $WARM gets (seed $SEED)," \
    "measured $REQUESTS gets (seed $((SEED + 1))); median of $RUNS run(s)"
echo
echo "| server | hit ratio (server stats) | runs | ferrobench's count | items held | stats bytes MiB | RSS MiB | evictions in measured phase |"
echo "|---|---:|---|---:|---:|---:|---:|---:|"
for s in memcached ferrocache; do
    awk -v s="$s" -v x="$(med "$s" 3)" -v runs="$(runs "$s")" -v c="$(med "$s" 4)" -v i="$(med "$s" 8)" \
        -v b="$(med "$s" 9)" -v r="$(med "$s" 10)" -v e="$(med "$s" 7)" 'BEGIN {
        printf "| %s | %.4f | %s | %.4f | %d | %.1f | %.1f | %d |\n", s, x, runs, c, i, b / 1048576, r / 1024, e }'
done
awk -v m="$(med memcached 3)" -v f="$(med ferrocache 3)" -v im="$(med memcached 8)" -v if_="$(med ferrocache 8)" 'BEGIN {
    printf "| ferrocache / memcached | %.3f | | | %.3f | | | |\n", f / m, if_ / im }'
