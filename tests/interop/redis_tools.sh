#!/usr/bin/env bash
# redis-cli and redis-benchmark (Debian's redis-tools) against the real ferrocache binary:
# plain commands, `redis-cli --pipe` mass insertion of 100,000 keys, and redis-benchmark
# completing without errors. Usage: redis_tools.sh PATH_TO_FERROCACHE
set -euo pipefail
binary=$1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); resp=$(free_port)
"$binary" -l 127.0.0.1 -p "$port" --resp-port "$resp" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 1 500); do
    redis-cli -p "$resp" ping >/dev/null 2>&1 && break
    sleep 0.02
done
cli() { redis-cli -p "$resp" "$@"; }
passed=0
expect() {
    local want=$1; shift
    local got
    got=$(cli "$@")
    if [ "$got" != "$want" ]; then
        echo "FAIL: redis-cli $*: got '$got', want '$want'"
        exit 1
    fi
    passed=$((passed + 1))
}
expect PONG ping
expect OK set greeting hello
expect hello get greeting
expect 2 hset user:1 name ada lang rust
expect ada hget user:1 name
expect 5 incrby n 5
expect hash type user:1

# Mass insertion: 100,000 SET commands in RESP through --pipe.
python3 - <<'PY' > /tmp/ferrocache-pipe.$$
import sys
out = sys.stdout
for i in range(100000):
    key, value = f"mass:{i}", f"value-{i}"
    out.write(f"*3\r\n$3\r\nSET\r\n${len(key)}\r\n{key}\r\n${len(value)}\r\n{value}\r\n")
PY
summary=$(redis-cli -p "$resp" --pipe < /tmp/ferrocache-pipe.$$)
rm -f /tmp/ferrocache-pipe.$$
echo "$summary" | grep -q "errors: 0, replies: 100000" || { echo "FAIL: --pipe: $summary"; exit 1; }
passed=$((passed + 1))
expect value-99999 get mass:99999

# redis-benchmark must finish every test with no error replies.
bench=$(redis-benchmark -p "$resp" -t set,get,incr,hset -q -n 100000 2>&1 | tr '\r' '\n' | grep -v 'rps=' | grep -v '^[[:space:]]*$' || true)
echo "$bench"
for t in SET GET INCR HSET; do
    echo "$bench" | grep -q "^$t: .* requests per second" || { echo "FAIL: redis-benchmark $t"; exit 1; }
    passed=$((passed + 1))
done
if echo "$bench" | grep -qi "error"; then
    echo "FAIL: redis-benchmark reported errors"
    exit 1
fi
echo "redis-tools interop: $passed passed, 0 failed"
