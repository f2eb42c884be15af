#!/usr/bin/env bash
# streams.sh: XADD and XREADGROUP throughput, ferrocache against redis-server, in one run.
#
# Each server runs alone on CPU 1 (taskset), redis-benchmark on CPU 0, one server thread each.
# Per round and server: XADD of N entries (one field, 16 B value) into a fresh stream, then
# XREADGROUP COUNT 1 `>` by one consumer of a group created at 0 (N reads, each delivering and
# recording one pending entry). Reports the median requests/s over the rounds.
# Does not measure: blocking reads, several consumers, XACK, trimming, or memory.
#
# Usage: bench/streams.sh [--rounds R] [--requests N] [--clients C] [--pipeline P]
set -euo pipefail
SCRIPT=streams.sh
cd "$(dirname "$0")/.."
ROUNDS=3 N=200000 CLIENTS=50 PIPELINE=16
while [ $# -gt 0 ]; do
    case $1 in
        --rounds) ROUNDS=$2; shift 2 ;;
        --requests) N=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        --pipeline) PIPELINE=$2; shift 2 ;;
        *) echo "$SCRIPT: unknown argument $1" >&2; exit 2 ;;
    esac
done
FERRO=target/release/ferrocache
[ -x "$FERRO" ] || { echo "$SCRIPT: build it first: cargo build --release" >&2; exit 1; }
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

bench() { # PORT COMMAND...: requests/s
    taskset -c 0 redis-benchmark -h 127.0.0.1 -p "$1" -c "$CLIENTS" -n "$N" -P "$PIPELINE" --csv "${@:2}" \
        | tail -1 | awk -F'","' '{print $2}'
}

run_server() { # NAME: starts it on a free port, sets PORT and PID
    PORT=$(free_port)
    if [ "$1" = ferrocache ]; then
        taskset -c 1 "$FERRO" -l 127.0.0.1 -p "$(free_port)" --resp-port "$PORT" -t 1 -m 2048 \
            --dir "$(mktemp -d)" >/dev/null 2>&1 &
    else
        taskset -c 1 redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$(mktemp -d)" >/dev/null 2>&1 &
    fi
    PID=$!
    PIDS+=("$PID")
    wait_port "$PORT"
}

declare -A XADD XREADGROUP
for round in $(seq "$ROUNDS"); do
    for server in ferrocache redis; do
        run_server "$server"
        XADD[$server]+="$(bench "$PORT" XADD s '*' f 0123456789abcdef) "
        redis-cli -p "$PORT" XGROUP CREATE s g 0 >/dev/null
        XREADGROUP[$server]+="$(bench "$PORT" XREADGROUP GROUP g c COUNT 1 STREAMS s '>') "
        kill "$PID"; wait "$PID" 2>/dev/null || true
    done
done
echo "settings: $ROUNDS rounds, redis-benchmark -c $CLIENTS -n $N -P $PIPELINE, servers 1 thread on CPU 1"
for server in ferrocache redis; do
    x=$(printf '%s\n' ${XADD[$server]} | median)
    r=$(printf '%s\n' ${XREADGROUP[$server]} | median)
    printf '%-10s XADD %10.0f req/s   XREADGROUP %10.0f req/s   (rounds: %s| %s)\n' \
        "$server" "$x" "$r" "${XADD[$server]}" "${XREADGROUP[$server]}"
done
