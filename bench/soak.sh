#!/usr/bin/env bash
# Soak: mixed protocols and random value sizes against one ferrocache for N minutes, checking
# that its resident memory stays under -m plus a stated overhead.
#
# Load, all at once for the whole duration: memcached text, meta and binary get/set with
# values of 10 B to 100 KB, RESP GET/SET with 10 B to 10 KB, RESP HSET/HGET and ZADD/ZRANGE,
# 8 connections each, over a key space large enough to keep the store evicting. RSS is read
# from /proc/PID/status every second. The bound: RSS <= -m + OVERHEAD, OVERHEAD = 64 MiB by
# default (code, worker and connection buffers, allocator slack). What it does not check:
# latency (see compare.sh) or correctness under eviction beyond ferrobench's own reply checks.
# Usage: bench/soak.sh [MINUTES] [MEMORY_MB] [OVERHEAD_MB]
set -euo pipefail
MINUTES=${1:-2}
MEMORY=${2:-64}
OVERHEAD=${3:-64}
root=$(cd "$(dirname "$0")/.." && pwd)
FERRO=$root/target/release/ferrocache
BENCH=$root/target/release/ferrobench
for need in "$FERRO" "$BENCH"; do
    [ -x "$need" ] || { echo "build first: cargo build --release -p ferrocache -p ferrocache-bench"; exit 1; }
done
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); resp=$(free_port)
out=$(mktemp -d)
"$FERRO" -l 127.0.0.1 -p "$port" --resp-port "$resp" -t 2 -m "$MEMORY" &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$resp") 2>/dev/null && break
    sleep 0.05
done
seconds=$((MINUTES * 60))
run() { local name=$1; shift; "$BENCH" "$@" -c 8 -D "$seconds" --json > "$out/$name.json" 2>"$out/$name.err" || echo "$name: exit $?" >> "$out/failures"; }
run text    -s "127.0.0.1:$port" -P text   -n 200000 -d 10-100000 -r 3:1 &
run meta    -s "127.0.0.1:$port" -P meta   -n 200000 -d 10-100000 -r 3:1 &
run binary  -s "127.0.0.1:$port" -P binary -n 200000 -d 10-100000 -r 3:1 &
run resp    -s "127.0.0.1:$resp" -P resp   -n 200000 -d 10-10000  -r 3:1 &
run hash    -s "127.0.0.1:$resp" -P resp   -n 50000  -d 10-1000   -r 3:1 -w hash &
run zset    -s "127.0.0.1:$resp" -P resp   -n 50000              -r 3:1 -w zset &
max_rss=0
for _ in $(seq 1 "$seconds"); do
    rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$server/status")
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    sleep 1
done
wait $(jobs -p | grep -v "^$server$") 2>/dev/null || true
final_rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$server/status")
stats=$(printf 'stats\r\nquit\r\n' | nc -q 1 127.0.0.1 "$port" | tr -d '\r')
stat() { echo "$stats" | awk -v k="$1" '$2 == k {print $3}'; }
limit=$((MEMORY * 1024 * 1024))
bound=$(((MEMORY + OVERHEAD) * 1024 * 1024))
echo "soak: $MINUTES min, -m $MEMORY MiB, bound -m + $OVERHEAD MiB = $((bound / 1048576)) MiB"
for name in text meta binary resp hash zset; do
    python3 - "$out/$name.json" "$name" <<'PY'
import json, sys
try:
    m = json.load(open(sys.argv[1]))["measured"]
    print(f"  {sys.argv[2]:7} {m['ops']:>10,} ops  {m['ops_per_sec']:>9,.0f}/s  errors {m['server_errors']}  wrong values {m['verify_failures']}")
except Exception as e:
    print(f"  {sys.argv[2]:7} no report ({e})")
PY
done
echo "  max RSS $((max_rss / 1048576)) MiB, final RSS $((final_rss / 1048576)) MiB, store bytes $(( $(stat bytes) / 1048576 )) MiB of $((limit / 1048576)), items $(stat curr_items), evictions $(stat evictions)"
if [ -s "$out/failures" ]; then
    cat "$out/failures"; cat "$out"/*.err | head -20
    exit 1
fi
if [ "$max_rss" -gt "$bound" ]; then
    echo "FAIL: RSS $max_rss above the bound $bound"
    exit 1
fi
echo "soak: RSS stayed within the bound"
