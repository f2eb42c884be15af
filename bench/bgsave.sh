#!/usr/bin/env bash
# bgsave.sh: what a background save costs the clients of the server that takes it, and its
# memory (issue #21: serving throughput during BGSAVE >= 80 % of without; RSS growth during
# BGSAVE <= 10 % of the dataset).
#
# For each round, for ferrocache and redis-server: start it fresh (`-t 2` / redis's thread,
# snapshots in a temporary directory), write ITEMS values of SIZE bytes (32-byte keys) with
# `ferrobench --warm-only`, note the RSS, then run the same RESP load twice for DURATION
# seconds (ferrobench `-r 9:1 -c 50 -p 16` over the written keys): once alone, once while
# BGSAVE is asked again each time the previous one ends. During both runs the server's RSS
# is sampled every 20 ms (summed over redis's forked child). Reports ops/s without and during
# saves, their ratio, the saves completed, and the peak RSS growth of each run over the RSS
# just before it. The load's own writes grow a server too (ferrocache appends an overwrite
# to a segment and reclaims the old copy only under memory pressure), so the saves' own
# growth is estimated as the saving run's growth minus the alone run's, scaled by the ops
# the saving run did: "save RSS", as a share of the item data (keys + values). A markdown
# table of the medians at the end.
#
# Needs redis-server, redis-cli, jq, and release builds of ferrocache and ferrobench.
#
# Usage: bench/bgsave.sh [--items N] [--size BYTES] [--duration S] [--rounds R]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERROCACHE:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
ITEMS=1000000
SIZE=100
DURATION=5
ROUNDS=3
KEY_SIZE=32
while [ $# -gt 0 ]; do
    case "$1" in
        --items) ITEMS=$2; shift 2 ;;
        --size) SIZE=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        *) echo "bgsave.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
for tool in redis-server redis-cli jq; do
    command -v "$tool" >/dev/null || { echo "bgsave.sh: $tool not found" >&2; exit 1; }
done

SCRIPT=bgsave.sh
# free_port, rss_kb and median (its EXIT trap is replaced below).
. "$ROOT/bench/common.sh"

PID=""
SAVER=""
WORK=$(mktemp -d)
cleanup() {
    [ -n "$SAVER" ] && kill "$SAVER" 2>/dev/null
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

start() {
    local server=$1 dir=$2
    PORT=$(free_port)
    case "$server" in
        ferrocache)
            "$FERRO" -l 127.0.0.1 -p "$(free_port)" --resp-port "$PORT" -t 2 -m 8192 \
                --dir "$dir" >"$dir/log" 2>&1 & ;;
        redis)
            redis-server --port "$PORT" --bind 127.0.0.1 --dir "$dir" --dbfilename dump.rdb \
                --save '' --appendonly no --maxmemory 0 --logfile "$dir/log" >/dev/null 2>&1 & ;;
    esac
    PID=$!
    wait_port "$PORT" || { echo "bgsave.sh: $server did not start" >&2; exit 1; }
}

# Asks for BGSAVE again whenever none runs, until killed.
save_forever() {
    while true; do
        if [ "$(redis-cli -p "$PORT" INFO persistence | tr -d '\r' | awk -F: '/^rdb_bgsave_in_progress/ {print $2}')" = 0 ]; then
            redis-cli -p "$PORT" BGSAVE >/dev/null 2>&1 || true
        fi
        sleep 0.02
    done
}

# Samples the RSS of the server's process tree every 20 ms into $1 until killed.
sample_rss() {
    while kill -0 "$PID" 2>/dev/null; do
        # The forked child of redis counts too: the sum of the server's process tree.
        total=0
        for p in $PID $(pgrep -P "$PID" || true); do
            r=$(rss_kb "$p" 2>/dev/null || echo 0); total=$((total + r))
        done
        echo "$total"; sleep 0.02
    done >"$1"
}

load() {
    "$BENCH" -s "127.0.0.1:$PORT" -P resp -n "$ITEMS" --key-size "$KEY_SIZE" -d "$SIZE" \
        -r 9:1 -c 50 -p 16 -t 1 -D "$DURATION" --json | jq -r '.measured.ops_per_sec'
}

ROWS=$WORK/rows
printf '%-11s %12s %12s %7s %6s %10s %10s %9s\n' server "ops/s alone" "ops/s saving" ratio saves "alone +MiB" "saving +MiB" "save RSS"
for round in $(seq 1 "$ROUNDS"); do
    for server in redis ferrocache; do
        dir=$WORK/$server-$round; mkdir -p "$dir"
        start "$server" "$dir"
        "$BENCH" -s "127.0.0.1:$PORT" -P resp -n "$ITEMS" --key-size "$KEY_SIZE" -d "$SIZE" \
            -c 16 -p 32 --warm-only --warm-timeout 600 --json >/dev/null
        before_alone=$(rss_kb "$PID")
        sample_rss "$dir/rss-alone" & SAMPLER=$!
        alone=$(load)
        kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
        saves_before=$(redis-cli -p "$PORT" INFO persistence | tr -d '\r' | awk -F: '/^rdb_saves/ {print $2}')
        # redis-server 7.0 has no rdb_saves: count its BGSAVE log lines instead.
        [ -n "$saves_before" ] || saves_before=$(grep -c 'Background saving terminated with success' "$dir/log" || true)
        before_saving=$(rss_kb "$PID")
        save_forever & SAVER=$!
        sample_rss "$dir/rss-saving" & SAMPLER=$!
        saving=$(load)
        kill "$SAVER" 2>/dev/null; wait "$SAVER" 2>/dev/null || true; SAVER=""
        kill "$SAMPLER" 2>/dev/null; wait "$SAMPLER" 2>/dev/null || true
        peak_alone=$(sort -n "$dir/rss-alone" | tail -1)
        peak_saving=$(sort -n "$dir/rss-saving" | tail -1)
        saves_after=$(redis-cli -p "$PORT" INFO persistence | tr -d '\r' | awk -F: '/^rdb_saves/ {print $2}')
        [ -n "$saves_after" ] || saves_after=$(grep -c 'Background saving terminated with success' "$dir/log" || true)
        kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=""
        awk -v s="$server" -v a="$alone" -v b="$saving" -v n="$((saves_after - saves_before))" \
            -v ba="$before_alone" -v pa="$peak_alone" -v bs="$before_saving" -v ps="$peak_saving" \
            -v items="$ITEMS" -v size="$SIZE" -v k="$KEY_SIZE" 'BEGIN {
            ga = (pa - ba) / 1024; gs = (ps - bs) / 1024; data = items * (size + k) / 1048576;
            own = gs - ga * b / a;
            printf "%-11s %12.0f %12.0f %7.2f %6d %10.1f %10.1f %8.1f%%\n", s, a, b, b / a, n, ga, gs, 100 * own / data }' | tee -a "$ROWS"
        rm -rf "$dir"
    done
done

echo
echo "Medians of $ROUNDS rounds ($ITEMS × $SIZE B, 32-byte keys; load: ferrobench -P resp -r 9:1 -c 50 -p 16 -D $DURATION):"
echo
echo "| server | ops/s alone | ops/s during BGSAVE | ratio | saves | RSS growth alone MiB | RSS growth saving MiB | saves' own RSS, of item data |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for server in redis ferrocache; do
    med() { awk -v s="$server" -v c="$1" '$1 == s {print $c}' "$ROWS" | tr -d '%' | median; }
    printf '| %s | %s | %s | %s | %s | %s | %s | %s %% |\n' "$server" "$(med 2)" "$(med 3)" "$(med 4)" "$(med 5)" "$(med 6)" "$(med 7)" "$(med 8)"
done
