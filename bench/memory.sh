#!/usr/bin/env bash
# memory.sh: bytes per item in memcached, redis-server and ferrocache after loading ITEMS items.
#
# For each value size (default 100 and 10 bytes) and each server: start the server fresh on a
# free 127.0.0.1 port with the same memory limit and thread count, read its RSS (VmRSS in
# /proc/PID/status), write ITEMS keys of 32 bytes once with `ferrobench --warm-only` (memcached
# text for memcached and ferrocache, RESP SET for redis), read RSS and the server's own stats
# again, stop it. Reports per item: RSS growth, RSS growth minus key and value ("overhead"), and
# the server's own accounting (memcached/ferrocache `stats` bytes, redis INFO used_memory growth).
# RUNS rounds (each server fresh every time); one line per load, then a markdown table of the
# medians. Needs memcached, redis-server (+ redis-cli) and release builds of ferrocache and
# ferrobench (paths from FERROCACHE and FERROBENCH if set).
#
# Usage: bench/memory.sh [--items N] [--sizes "100 10"] [--memory MB] [--threads T] [--runs R]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERROCACHE:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
ITEMS=1000000
SIZES="100 10"
MEMORY=1024
THREADS=1
RUNS=3
KEY_SIZE=32

while [ $# -gt 0 ]; do
    case "$1" in
        --items) ITEMS=$2; shift 2 ;;
        --sizes) SIZES=$2; shift 2 ;;
        --memory) MEMORY=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "memory.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done

for tool in memcached redis-server redis-cli; do
    command -v "$tool" >/dev/null || {
        echo "memory.sh: $tool not found; install it with: apt-get install memcached redis-server" >&2
        exit 1
    }
done
for bin in "$FERRO" "$BENCH"; do
    [ -x "$bin" ] || {
        echo "memory.sh: $bin not found; build it with: cargo build --release -p ferrocache -p ferrocache-bench" >&2
        exit 1
    }
done

PID=""
RESULTS=$(mktemp /tmp/memory-sh-results.XXXXXX)
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'cleanup; rm -f "$RESULTS"' EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "memory.sh: no free port" >&2; exit 1
}

wait_port() {
    for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    return 1
}

# start SERVER: starts it on a free port (sets PID, port, proto); up to 3 attempts, since on a
# busy shared machine a start can be slow or lose its port to another process.
start() {
    local attempt
    for attempt in 1 2 3; do
        port=$(free_port)
        case "$1" in
            memcached)
                user=(); [ "$(id -u)" = 0 ] && user=(-u root)
                memcached "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 -t "$THREADS" -m "$MEMORY" >/dev/null 2>&1 &
                proto=text ;;
            redis)
                redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
                    --maxmemory "${MEMORY}mb" --maxmemory-policy allkeys-lru >/dev/null 2>&1 &
                proto=resp ;;
            ferrocache)
                "$FERRO" -p "$port" -l 127.0.0.1 -t "$THREADS" -m "$MEMORY" --resp-port 0 >/dev/null 2>&1 &
                proto=text ;;
        esac
        PID=$!
        if wait_port "$port" && sleep 0.2 && kill -0 "$PID" 2>/dev/null; then return 0; fi
        echo "memory.sh: $1 did not start on port $port (attempt $attempt)" >&2
        cleanup
    done
    exit 1
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# memcached-style `stats` value NAME from the server on PORT.
mc_stat() {
    local out
    out=$(exec 3<>"/dev/tcp/127.0.0.1/$1"; printf 'stats\r\nquit\r\n' >&3; timeout 3 cat <&3 || true)
    printf '%s\n' "$out" | tr -d '\r' | awk -v k="$2" '$1 == "STAT" && $2 == k {print $3}'
}

redis_info() { redis-cli -p "$1" info memory | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }

printf '%-11s %6s %9s %10s %10s %10s %10s %12s  %s\n' server value items "rss0 MiB" "rss MiB" "rss B/it" "overhd B" "stats B/it" "stats source"
for run in $(seq 1 "$RUNS"); do
for size in $SIZES; do
    for server in memcached redis ferrocache; do
        start "$server"
        rss0=$(rss_kb "$PID")
        used0=""
        [ "$server" = redis ] && used0=$(redis_info "$port" used_memory)
        "$BENCH" -s "127.0.0.1:$port" -P "$proto" -n "$ITEMS" --key-size "$KEY_SIZE" -d "$size" \
            -c 16 -p 32 --warm-only --warm-timeout 300 --json >/tmp/memory-sh-load.$$ 2>&1 || {
            echo "memory.sh: loading $server failed: $(cat /tmp/memory-sh-load.$$)" >&2
            rm -f /tmp/memory-sh-load.$$
            exit 1
        }
        rm -f /tmp/memory-sh-load.$$
        sleep 1
        rss1=$(rss_kb "$PID")
        case "$server" in
            redis)
                items=$(redis-cli -p "$port" dbsize | tr -d '\r')
                used1=$(redis_info "$port" used_memory)
                stats_bytes=$((used1 - used0))
                source="INFO used_memory growth" ;;
            *)
                items=$(mc_stat "$port" curr_items)
                stats_bytes=$(mc_stat "$port" bytes)
                source="stats bytes" ;;
        esac
        awk -v s="$server" -v v="$size" -v n="$items" -v r0="$rss0" -v r1="$rss1" -v sb="$stats_bytes" \
            -v kv=$((KEY_SIZE + size)) -v src="$source" 'BEGIN {
            per = (r1 - r0) * 1024 / n
            printf "%-11s %6d %9d %10.1f %10.1f %10.1f %10.1f %12.1f  %s\n", s, v, n, r0 / 1024, r1 / 1024, per, per - kv, sb / n, src
        }' | tee -a "$RESULTS"
        cleanup
    done
done
done
echo "key $KEY_SIZE B; overhead = RSS growth per item - key - value; memory limit ${MEMORY} MB, $THREADS server thread(s)"

# Medians over the runs, as markdown.
med() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo
echo "| server | value B | items | RSS growth B/item | overhead beyond key + value B/item | server's own count B/item | its overhead B/item | source |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
for size in $SIZES; do
    for server in memcached redis ferrocache; do
        col() { awk -v s="$server" -v v="$size" -v c="$1" '$1 == s && $2 == v {print $c}' "$RESULTS" | med; }
        src=$([ "$server" = redis ] && echo "INFO used_memory growth" || echo "stats bytes")
        awk -v s="$server" -v v="$size" -v n="$(col 3)" -v per="$(col 6)" -v o="$(col 7)" -v sb="$(col 8)" \
            -v kv=$((KEY_SIZE + size)) -v src="$src" 'BEGIN {
            printf "| %s | %d | %d | %.1f | %.1f | %.1f | %.1f | %s |\n", s, v, n, per, o, sb, sb - kv, src }'
    done
done
echo "(median of $RUNS run(s); RSS growth from start to after the load; key $KEY_SIZE B)"
