#!/usr/bin/env bash
# failover.sh: how long a stock Redis Sentinel takes to fail over a killed primary (issue 23),
# ferrocache nodes against redis-server nodes.
#
# For each node kind (ferrocache, redis-server) and each down-after-milliseconds (1000, 3000):
# RUNS runs of 1 primary + 2 replicas + 3 redis-sentinel (quorum 2) on loopback, SIGKILL of the
# primary, time until a replica answers SET with +OK (bench/failover_runs.py says exactly what
# is timed). Prints every run and a RESULT line (median, best, worst) per setting.
# Does not measure: client-side discovery time, failover under load, partitions.
#
# Usage: bench/failover.sh [--runs N] [--servers "ferrocache redis"] [--down-after "1000 3000"]
# Needs: cargo build --release (target/release/ferrocache), redis-server, redis-sentinel.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERRO:-$ROOT/target/release/ferrocache}
RUNS=10
SERVERS="ferrocache redis"
DOWN_AFTER="1000 3000"
while [ $# -gt 0 ]; do
    case $1 in
        --runs) RUNS=$2; shift 2 ;;
        --servers) SERVERS=$2; shift 2 ;;
        --down-after) DOWN_AFTER=$2; shift 2 ;;
        *) echo "usage: $0 [--runs N] [--servers LIST] [--down-after LIST]" >&2; exit 2 ;;
    esac
done
for tool in redis-server redis-sentinel; do
    command -v "$tool" >/dev/null || { echo "$tool missing" >&2; exit 1; }
done
[ -x "$FERRO" ] || { echo "missing $FERRO (cargo build --release)" >&2; exit 1; }
echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(redis-sentinel --version | cut -d' ' -f3), ferrocache $(git -C "$ROOT" rev-parse --short HEAD)"
for server in $SERVERS; do
    for down_after in $DOWN_AFTER; do
        python3 "$ROOT/bench/failover_runs.py" --server "$server" --binary "$FERRO" \
            --down-after "$down_after" --runs "$RUNS" --settle 2
    done
done
