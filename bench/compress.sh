#!/usr/bin/env bash
# compress.sh: memory for compressible values, ferrocache against memcached on this machine.
#
# Loads ITEMS JSON-like values of about 100 KB (`ferrobench --value-kind json`: records with the
# same field names and varied values, deterministic from --seed; they compress 3-5x) under
# 32-byte keys, once, into a fresh memcached and a fresh ferrocache started with the same flags
# (-m MEMORY -I MAX_ITEM -t THREADS -U 0, 127.0.0.1 on free ports; ferrocache with --resp-port 0),
# one server at a time. After each load: RSS (VmRSS of /proc/PID/status) and the server's own
# `stats` (bytes, curr_items, evictions). RUNS rounds, servers alternating; the table shows
# medians and the ratio ferrocache / memcached. A stored value of key 0 is read back once and
# compressed with gzip (and zstd if present) to show what compression could win. Every server
# started here is stopped on exit; the load is bounded by --timeout seconds per server.
# Memory: each load holds ITEMS x SIZE bytes (10 GB at the defaults), one server at a time.
# Needs memcached and release builds of ferrocache and ferrobench (FERROCACHE, FERROBENCH).
#
# ferrocache stores values raw and packs them once they turn cold (issue 28): with --settle S it
# is started with --ferro-config FILE (e.g. a short [store] compression_cold_secs) and RSS is
# read once its stats say every item is compressed, or after S seconds.
#
# Usage: bench/compress.sh [--items N] [--value-size B|MIN-MAX] [--memory MB] [--max-item SIZE]
#                          [--threads T] [--runs R] [--seed S] [--timeout S]
#                          [--settle S] [--ferro-config FILE]
set -euo pipefail

SCRIPT=compress.sh
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERROCACHE:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
ITEMS=100000
SIZE=100000
MEMORY=12000
MAX_ITEM=2m
THREADS=1
RUNS=1
SEED=1
TIMEOUT=900
KEY_SIZE=32
SETTLE=0
FERRO_CONFIG=""

while [ $# -gt 0 ]; do
    case "$1" in
        --items) ITEMS=$2; shift 2 ;;
        --value-size) SIZE=$2; shift 2 ;;
        --memory) MEMORY=$2; shift 2 ;;
        --max-item) MAX_ITEM=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --seed) SEED=$2; shift 2 ;;
        --timeout) TIMEOUT=$2; shift 2 ;;
        --settle) SETTLE=$2; shift 2 ;;
        --ferro-config) FERRO_CONFIG=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "$SCRIPT: unknown argument $1" >&2; exit 64 ;;
    esac
done

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
check_tools

# Mean value size: fixed, or the middle of a MIN-MAX range.
MEAN_SIZE=$(awk -v s="$SIZE" 'BEGIN { n = split(s, p, "-"); print (n == 2) ? (p[1] + p[2]) / 2 : p[1] }')
TMP=$(mktemp -d /tmp/compress-sh.XXXXXX)
trap 'stop_server; rm -rf "$TMP"' EXIT

# sample_value PORT: reads key 0's value back and prints "bytes gzip_bytes zstd_bytes json_ok".
sample_value() {
    local key hdr n
    key=$(printf 'k%0*d' $((KEY_SIZE - 1)) 0)
    (exec 3<>"/dev/tcp/127.0.0.1/$1"; printf 'get %s\r\nquit\r\n' "$key" >&3; timeout 10 cat <&3 >"$TMP/reply" || true)
    hdr=$(head -1 "$TMP/reply")
    n=$(printf '%s' "$hdr" | awk '$1 == "VALUE" {print $4 + 0}')
    [ -n "$n" ] || { echo "0 0 0 -"; return; }
    tail -c +$((${#hdr} + 2)) "$TMP/reply" | head -c "$n" >"$TMP/value"
    local gz zs=- ok=-
    gz=$(gzip -6 -c "$TMP/value" | wc -c)
    command -v zstd >/dev/null && zs=$(zstd -3 -q -c "$TMP/value" | wc -c)
    command -v jq >/dev/null && { jq -e '.records | length > 0' "$TMP/value" >/dev/null 2>&1 && ok=yes || ok=no; }
    echo "$n $gz $zs $ok"
}

SAMPLE=""
: >"$TMP/results"
for run in $(seq 1 "$RUNS"); do
    for server in memcached ferrocache; do
        extra=()
        [ "$server" = ferrocache ] && [ -n "$FERRO_CONFIG" ] && extra=(--config "$FERRO_CONFIG")
        start_server "$server" -m "$MEMORY" -I "$MAX_ITEM" -t "$THREADS" "${extra[@]}"
        rss0=$(rss_kb "$SERVER_PID")
        start=$(date +%s.%N)
        "$BENCH" -s "127.0.0.1:$SERVER_PORT" -P text -n "$ITEMS" --key-size "$KEY_SIZE" -d "$SIZE" \
            --value-kind json --seed "$SEED" -c 4 -p 4 --warm-only --warm-timeout "$TIMEOUT" --json \
            >"$TMP/load.json" 2>&1 || die "loading $server failed: $(cat "$TMP/load.json")"
        secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN {printf "%.1f", e - s}')
        sleep 1
        if [ "$server" = ferrocache ] && [ "$SETTLE" -gt 0 ]; then
            for _ in $(seq 1 "$SETTLE"); do
                packed=$(stat_of "$(mc_stats "$SERVER_PORT")" compressed_items)
                [ "${packed:-0}" -ge "$ITEMS" ] && break
                sleep 1
            done
            secs="$secs+$(awk -v s="$start" -v e="$(date +%s.%N)" -v l="$secs" 'BEGIN {printf "%.0f", e - s - l}')"
        fi
        rss1=$(rss_kb "$SERVER_PID")
        stats=$(mc_stats "$SERVER_PORT")
        items=$(stat_of "$stats" curr_items)
        bytes=$(stat_of "$stats" bytes)
        evictions=$(stat_of "$stats" evictions)
        [ -n "$SAMPLE" ] || SAMPLE=$(sample_value "$SERVER_PORT")
        stop_server
        [ "$items" = "$ITEMS" ] && [ "$evictions" = 0 ] ||
            echo "$SCRIPT: warning: $server holds $items of $ITEMS items after $evictions evictions (raise --memory)" >&2
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$run" "$rss0" "$rss1" "$items" "$bytes" "$evictions" "$secs" >>"$TMP/results"
        awk -v r="$run" -v s="$server" -v t="$secs" -v r0="$rss0" -v r1="$rss1" -v b="$bytes" -v n="$items" \
            -v e="$evictions" -v me="$SCRIPT" 'BEGIN {
            printf "%s: run %s %-10s load %6ss  RSS %8.1f -> %8.1f MiB  stats bytes %10.1f MiB  items %s  evictions %s\n",
                me, r, s, t, r0 / 1024, r1 / 1024, b / 1048576, n, e }' >&2
    done
done

# Medians per server: RSS after, RSS growth, stats bytes, items, evictions.
med() { awk -F'\t' -v s="$1" -v c="$2" '$1 == s {print $c}' "$TMP/results" | median; }
growth() { awk -F'\t' -v s="$1" '$1 == s {print $4 - $3}' "$TMP/results" | median; }
declare -A RSS GROWTH BYTES NITEMS EVICT
for s in memcached ferrocache; do
    RSS[$s]=$(med "$s" 4); GROWTH[$s]=$(growth "$s"); BYTES[$s]=$(med "$s" 6)
    NITEMS[$s]=$(med "$s" 5); EVICT[$s]=$(med "$s" 7)
done

echo
echo "$ITEMS JSON values of $SIZE B (mean $MEAN_SIZE B), $KEY_SIZE-byte keys; -m $MEMORY -I $MAX_ITEM -t $THREADS; median of $RUNS run(s)"
echo "data written: $(awk -v n="$ITEMS" -v k="$KEY_SIZE" -v v="$MEAN_SIZE" 'BEGIN {printf "%.1f MiB", n * (k + v) / 1048576}') (keys + values)"
read -r sn sgz szs sok <<<"$SAMPLE"
if [ "${sn:-0}" -gt 0 ]; then
    echo "value of key 0 read back: $sn B, valid JSON: $sok; gzip -6 $sgz B ($(awk -v a="$sn" -v b="$sgz" 'BEGIN {printf "%.2fx", a / b}'))$( [ "$szs" != - ] && awk -v a="$sn" -v b="$szs" 'BEGIN {printf ", zstd -3 %d B (%.2fx)", b, a / b}')"
fi
echo
echo "| server | items | RSS after load MiB | RSS growth MiB | RSS growth B/item | stats bytes MiB | stats bytes B/item | evictions |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for s in memcached ferrocache; do
    awk -v s="$s" -v r="${RSS[$s]}" -v g="${GROWTH[$s]}" -v b="${BYTES[$s]}" -v n="${NITEMS[$s]}" -v e="${EVICT[$s]}" 'BEGIN {
        printf "| %s | %d | %.1f | %.1f | %.0f | %.1f | %.0f | %d |\n", s, n, r / 1024, g / 1024, g * 1024 / n, b / 1048576, b / n, e }'
done
awk -v rm="${RSS[memcached]}" -v rf="${RSS[ferrocache]}" -v gm="${GROWTH[memcached]}" -v gf="${GROWTH[ferrocache]}" \
    -v bm="${BYTES[memcached]}" -v bf="${BYTES[ferrocache]}" 'BEGIN {
    printf "| ferrocache / memcached | | %.3f | %.3f | %.3f | %.3f | %.3f | |\n", rf / rm, gf / gm, gf / gm, bf / bm, bf / bm }'
