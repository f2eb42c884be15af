#!/usr/bin/env bash
# TLS against plain, and against Debian's redis-server over TLS, in one run: redis-benchmark
# (Debian's, built with OpenSSL) on one core, the server on the other, one server thread.
#   - throughput: GET and SET, 50 clients, no pipelining, keep-alive (handshake cost excluded);
#   - full handshakes per second: PING with keep-alive off (-k 0), so every request pays a
#     TCP connect and a full TLS handshake (no session resumption: redis-benchmark does not
#     resume);
#   - p99 of the throughput runs, from redis-benchmark's latency summary;
#   - the HTTP port plain and over TLS (`--http-tls`): wrk GETs of one 100-byte key, 50
#     keep-alive connections, HTTP_SECONDS (5) each.
# It does not measure: mutual TLS, large values, pipelining, TLS 1.2 (both negotiate 1.3), or
# the memcached protocol over TLS (no load generator here speaks it: ferrobench has no TLS,
# memtier_benchmark is not packaged).
# Usage: bench/tls_compare.sh [PATH_TO_FERROCACHE]   (default target/release/ferrocache)
set -euo pipefail
binary=${1:-target/release/ferrocache}
requests=${REQUESTS:-200000}
handshakes=${HANDSHAKES:-5000}
dir=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
    -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
wait_for() { # redis-cli args...
    for _ in $(seq 1 500); do redis-cli "$@" ping >/dev/null 2>&1 && return 0; sleep 0.02; done
    echo "server did not come up: $*"; exit 1
}
tls_args=(--tls --cacert "$dir/cert.pem")

fc_plain=$(free_port); fc_tls=$(free_port); rs_tls=$(free_port)
taskset -c 0 "$binary" -t 1 -p 0 -s "$dir/fc.sock" --resp-port "$fc_plain" \
    --resp-tls-port "$fc_tls" --tls-cert-file "$dir/cert.pem" --tls-key-file "$dir/key.pem" \
    --tls-auth-clients no -m 256 &
pids+=($!)
wait_for -p "$fc_plain"
wait_for -p "$fc_tls" "${tls_args[@]}"

run() { # label port extra-args...
    local label=$1 port=$2; shift 2
    local out
    out=$(taskset -c 1 redis-benchmark -h 127.0.0.1 -p "$port" "$@" 2>&1 | tr '\r' '\n')
    echo "$out" | awk -v label="$label" '
        /^====== / { test=$2 }
        /throughput summary:/ { rps=$3 }
        /^ *avg +min +p50/ { getline; printf "%-28s %-5s %10s rps  p50 %s ms  p99 %s ms\n", label, test, rps, $3, $5 }'
}

echo "# $(date -u +%FT%TZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run "ferrocache plain" "$fc_plain" -t get,set -n "$requests" -c 50
run "ferrocache tls" "$fc_tls" "${tls_args[@]}" -t get,set -n "$requests" -c 50
run "ferrocache tls handshakes" "$fc_tls" "${tls_args[@]}" -t ping_mbulk -k 0 -n "$handshakes" -c 10
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

taskset -c 0 redis-server --port 0 --tls-port "$rs_tls" --tls-cert-file "$dir/cert.pem" \
    --tls-key-file "$dir/key.pem" --tls-ca-cert-file "$dir/cert.pem" --tls-auth-clients no \
    --save '' --appendonly no --io-threads 1 --daemonize no >"$dir/redis.log" 2>&1 &
pids+=($!)
wait_for -p "$rs_tls" "${tls_args[@]}"
run "redis-server tls" "$rs_tls" "${tls_args[@]}" -t get,set -n "$requests" -c 50
run "redis-server tls handshakes" "$rs_tls" "${tls_args[@]}" -t ping_mbulk -k 0 -n "$handshakes" -c 10

kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()

# The HTTP port, plain and over TLS, one server at a time.
http_run() { # label scheme extra-flags...
    local label=$1 scheme=$2
    shift 2
    local port
    port=$(free_port)
    taskset -c 0 "$binary" -t 1 -p 0 -s "$dir/fc-http.sock" --resp-port 0 --http-port "$port" "$@" \
        --tls-cert-file "$dir/cert.pem" --tls-key-file "$dir/key.pem" --tls-auth-clients no -m 256 &
    pids+=($!)
    for _ in $(seq 1 500); do
        curl -sk -o /dev/null "$scheme://127.0.0.1:$port/healthz" && break
        sleep 0.02
    done
    curl -sk -X PUT --data-binary "$(head -c 100 /dev/zero | tr '\0' v)" \
        "$scheme://127.0.0.1:$port/v1/cache/k" >/dev/null
    local rps
    # "localhost", not the IP: wrk would send the IP as SNI, which rustls logs a warning about.
    rps=$(taskset -c 1 wrk -t 1 -c 50 -d "${HTTP_SECONDS:-5}s" "$scheme://localhost:$port/v1/cache/k" |
        awk '/Requests\/sec/ { print $2 }')
    kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()
    printf "%-28s %-5s %10s rps  (wrk -t 1 -c 50, keep-alive)\n" "$label" GET "$rps"
}
command -v wrk >/dev/null || { echo "tls_compare.sh: wrk not found (apt-get install wrk)" >&2; exit 1; }
http_run "ferrocache http plain" http
http_run "ferrocache http tls" https --http-tls
