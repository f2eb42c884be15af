#!/usr/bin/env bash
# metrics_cost.sh: what per-command latency histograms and counters cost, and the HTTP cache
# API's GET rate next to the memcached port's, in one run.
#
# Two release builds of ferrocache: ON (default features: every command timed into its
# worker's histogram) and OFF (`--no-default-features`: the `latency` feature compiled
# out). Each round runs every workload against both, ON first in odd rounds and OFF first in
# even ones (same flags: -t 1 -m 1024, server
# pinned to CPU 1, ferrobench to CPU 0 when there are 2 CPUs), and prints ops/s and the
# server's CPU µs per op; the cost is 1 - ON/OFF of the medians. Then, ON only: GETs of one
# existing key over HTTP (wrk, keep-alive, one thread) and over memcached text (ferrobench
# -r 1:0 on a one-key space), the same number of connections. Does not measure: the cost of
# a reader (INFO, /metrics) running during the load, or more than one worker thread.
#
# Usage: bench/metrics_cost.sh ON_BINARY OFF_BINARY [--rounds N] [--duration S] [--connections C]
#            [--only ID,ID...] [--no-http]
#   --only: run just these workloads (text-p1 text-p16 resp-p1 resp-p16);
#   --no-http: skip the HTTP-versus-memcached GET comparison;
#   --side-by-side: run ON and OFF at the same time, both servers on CPU 1 and both
#     ferrobenches on CPU 0, so whatever else the machine runs disturbs both alike (each gets
#     about half the throughput; compare the CPU per operation).
# Needs: jq, wrk (apt-get install wrk), ferrobench (cargo build --release -p ferrocache-bench).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
ON=$1
OFF=$2
shift 2
ROUNDS=3
DURATION=5
CONNS=50
ONLY=""
HTTP_PART=1
SIDE_BY_SIDE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --no-http) HTTP_PART=0; shift ;;
        --side-by-side) SIDE_BY_SIDE=1; shift ;;
        *) echo "metrics_cost.sh: unknown argument $1" >&2; exit 64 ;;
    esac
done
for tool in jq wrk; do
    command -v "$tool" >/dev/null || { echo "metrics_cost.sh: $tool not found (apt-get install $tool)" >&2; exit 1; }
done

if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    server_pin=(taskset -c 1)
    load_pin=(taskset -c 0)
else
    server_pin=()
    load_pin=()
fi
CLK_TCK=$(getconf CLK_TCK)
OUT=$(mktemp -d /tmp/ferrocache-metrics-cost.XXXXXX)
PID=""
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
wait_port() {
    for _ in $(seq 1 500); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.01
    done
    echo "metrics_cost.sh: nothing listens on $1" >&2
    exit 1
}

# start BINARY [extra flags]: sets PID, PORT, RESP, HTTP
start() {
    local binary=$1
    shift
    PORT=$(free_port)
    RESP=$(free_port)
    HTTP=$(free_port)
    "${server_pin[@]}" "$binary" -l 127.0.0.1 -p "$PORT" --resp-port "$RESP" --http-port "$HTTP" \
        -t 1 -m 1024 "$@" &
    PID=$!
    wait_port "$PORT"
    wait_port "$RESP"
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

WORKLOADS=(
    "text-p1|text|-r 9:1 -p 1"
    "text-p16|text|-r 9:1 -p 16"
    "resp-p1|resp|-r 9:1 -p 1"
    "resp-p16|resp|-r 9:1 -p 16"
)
if [ -n "$ONLY" ]; then
    chosen=()
    for entry in "${WORKLOADS[@]}"; do
        case ",$ONLY," in *",${entry%%|*},"*) chosen+=("$entry") ;; esac
    done
    [ ${#chosen[@]} -gt 0 ] || { echo "metrics_cost.sh: --only names no workload" >&2; exit 64; }
    WORKLOADS=("${chosen[@]}")
fi

printf 'round\tworkload\tbuild\tops_per_sec\tserver_cpu_us_per_op\tp99_us\n' | tee "$OUT/results.tsv"

# One round of one workload with both builds serving at once (--side-by-side).
side_by_side() { # round id proto args
    local round=$1 id=$2 proto=$3 args=$4 build binary port pid
    local -A ports pids before after
    local loads=()
    for build in on off; do
        binary=$ON
        [ "$build" = off ] && binary=$OFF
        start "$binary"
        port=$PORT
        [ "$proto" = resp ] && port=$RESP
        ports[$build]=$port
        pids[$build]=$PID
        PID=""
        "${load_pin[@]}" "$BENCH" -s "127.0.0.1:$port" -P "$proto" -n 100000 -d 100 --warm-only --json >/dev/null
    done
    for build in on off; do before[$build]=$(cpu_ticks "${pids[$build]}"); done
    for build in on off; do
        # shellcheck disable=SC2086 # $args is a list of flags
        "${load_pin[@]}" "$BENCH" -s "127.0.0.1:${ports[$build]}" -P "$proto" $args -c "$CONNS" -t 1 \
            -n 100000 -d 100 -D "$DURATION" --json >"$OUT/$round-$id-$build.json" &
        loads+=($!)
    done
    wait "${loads[@]}"
    for build in on off; do after[$build]=$(cpu_ticks "${pids[$build]}"); done
    for build in on off; do
        pid=${pids[$build]}
        kill "$pid"; wait "$pid" 2>/dev/null || true
        read -r ops ops_s p99 < <(jq -r '[.measured.ops, .measured.ops_per_sec, .measured.latency_us.p99] | @tsv' \
            "$OUT/$round-$id-$build.json")
        cpu=$(awk -v t=$((after[$build] - before[$build])) -v hz="$CLK_TCK" -v n="$ops" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }')
        printf '%s\t%s\t%s\t%.0f\t%s\t%s\n' "$round" "$id" "$build" "$ops_s" "$cpu" "$p99" | tee -a "$OUT/results.tsv"
    done
}

for round in $(seq 1 "$ROUNDS"); do
    for entry in "${WORKLOADS[@]}"; do
        IFS='|' read -r id proto args <<<"$entry"
        if [ "$SIDE_BY_SIDE" = 1 ]; then
            side_by_side "$round" "$id" "$proto" "$args"
            continue
        fi
        # Alternate which build goes first, so a drift in the machine's load (or its caches
        # and clocks warming) does not always favour the same one.
        order="on off"
        [ $((round % 2)) = 0 ] && order="off on"
        for build in $order; do
            binary=$ON
            [ "$build" = off ] && binary=$OFF
            start "$binary"
            port=$PORT
            [ "$proto" = resp ] && port=$RESP
            "${load_pin[@]}" "$BENCH" -s "127.0.0.1:$port" -P "$proto" -n 100000 -d 100 --warm-only --json >/dev/null
            before=$(cpu_ticks "$PID")
            # shellcheck disable=SC2086 # $args is a list of flags
            "${load_pin[@]}" "$BENCH" -s "127.0.0.1:$port" -P "$proto" $args -c "$CONNS" -t 1 -n 100000 \
                -d 100 -D "$DURATION" --json >"$OUT/$round-$id-$build.json"
            after=$(cpu_ticks "$PID")
            stop
            read -r ops ops_s p99 < <(jq -r '[.measured.ops, .measured.ops_per_sec, .measured.latency_us.p99] | @tsv' \
                "$OUT/$round-$id-$build.json")
            cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$ops" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
            printf '%s\t%s\t%s\t%.0f\t%s\t%s\n' "$round" "$id" "$build" "$ops_s" "$cpu" "$p99" | tee -a "$OUT/results.tsv"
        done
    done
done

echo
echo "medians over $ROUNDS rounds (cost = 1 - on/off)"
for entry in "${WORKLOADS[@]}"; do
    id=${entry%%|*}
    on=$(awk -v id="$id" '$2 == id && $3 == "on" { print $4 }' "$OUT/results.tsv" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    off=$(awk -v id="$id" '$2 == id && $3 == "off" { print $4 }' "$OUT/results.tsv" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    con=$(awk -v id="$id" '$2 == id && $3 == "on" { print $5 }' "$OUT/results.tsv" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    coff=$(awk -v id="$id" '$2 == id && $3 == "off" { print $5 }' "$OUT/results.tsv" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
    awk -v id="$id" -v on="$on" -v off="$off" -v con="$con" -v coff="$coff" 'BEGIN {
        printf "%-10s on %8.0f ops/s  off %8.0f ops/s  cost %+5.1f %%   cpu/op on %s us  off %s us  (%+5.1f %%)\n",
            id, on, off, (1 - on / off) * 100, con, coff, (con / coff - 1) * 100 }'
done

if [ "$HTTP_PART" = 0 ]; then
    echo "raw results: $OUT"
    exit 0
fi
echo
echo "GET of one 100-byte key, $CONNS connections, ${DURATION}s, ON build"
start "$ON"
"${load_pin[@]}" "$BENCH" -s "127.0.0.1:$PORT" -P text -n 1 -d 100 --warm-only --json >/dev/null
value=$(head -c 100 /dev/zero | tr '\0' v)
curl -s -X PUT --data-binary "$value" "http://127.0.0.1:$HTTP/v1/cache/k" >/dev/null
before=$(cpu_ticks "$PID")
"${load_pin[@]}" wrk -t 1 -c "$CONNS" -d "${DURATION}s" "http://127.0.0.1:$HTTP/v1/cache/k" >"$OUT/wrk.txt"
after=$(cpu_ticks "$PID")
http_rps=$(awk '/Requests\/sec/ { print $2 }' "$OUT/wrk.txt")
http_n=$(awk '/requests in/ { print $1 }' "$OUT/wrk.txt")
http_cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$http_n" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
before=$(cpu_ticks "$PID")
"${load_pin[@]}" "$BENCH" -s "127.0.0.1:$PORT" -P text -r 1:0 -p 1 -c "$CONNS" -t 1 -n 1 -d 100 -D "$DURATION" \
    --json >"$OUT/mc-get.json"
after=$(cpu_ticks "$PID")
read -r mc_n mc_rps < <(jq -r '[.measured.ops, .measured.ops_per_sec] | @tsv' "$OUT/mc-get.json")
mc_cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$mc_n" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
stop
printf 'http GET      %10.0f req/s  server cpu %s us/op  (wrk -t 1 -c %s)\n' "$http_rps" "$http_cpu" "$CONNS"
printf 'memcached get %10.0f req/s  server cpu %s us/op  (ferrobench -P text -r 1:0 -p 1 -c %s)\n' "$mc_rps" "$mc_cpu" "$CONNS"
echo "raw results: $OUT"
