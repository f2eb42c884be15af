#!/usr/bin/env bash
# libmemcached's command-line tools against the real ferrocache binary, over the binary
# protocol (plain and with SASL), as a user of a libmemcached/php-memcached fleet would.
#
# Usage: tests/interop/libmemcached.sh PATH_TO_FERROCACHE
# Needs libmemcached-tools (Debian names the tools memccp, memccat, memcstat, memccapable;
# other distributions memcp, memcat, memstat, memcapable). Exits non-zero on the first failure.
set -euo pipefail

binary=$1
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

tool() {
    # The tool's Debian name (memc*) or its upstream name (mem*).
    local debian=$1 upstream=$2
    if command -v "$debian" >/dev/null; then echo "$debian"; else echo "$upstream"; fi
}
memcp=$(tool memccp memcp)
memcat=$(tool memccat memcat)
memstat=$(tool memcstat memstat)
memcapable=$(tool memccapable memcapable)

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server PORT ARGS...: starts ferrocache and waits until it accepts connections.
start_server() {
    local port=$1
    shift
    "$binary" -l 127.0.0.1 -p "$port" --resp-port 0 "$@" &
    pids+=($!)
    for _ in $(seq 1 200); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "ferrocache did not start on port $port" >&2
    return 1
}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# --- binary protocol, no authentication ---
port=$(free_port)
start_server "$port"
server="127.0.0.1:$port"

printf 'hello from libmemcached\n' >"$work/greeting.txt"
head -c 300000 /dev/urandom >"$work/blob.bin"
"$memcp" --binary --servers="$server" "$work/greeting.txt" "$work/blob.bin"
[ "$("$memcat" --binary --servers="$server" greeting.txt)" = "hello from libmemcached" ] ||
    fail "memcat --binary greeting.txt"
"$memcat" --binary --servers="$server" blob.bin >"$work/blob.out"
# memcat ends every value with a newline (real memcached gives the same output).
{ cat "$work/blob.bin"; echo; } >"$work/blob.expected"
cmp -s "$work/blob.expected" "$work/blob.out" || fail "memcat --binary blob.bin differs"
if "$memcat" --binary --servers="$server" no-such-key >/dev/null 2>&1; then
    fail "memcat of a missing key succeeded"
fi
"$memstat" --binary --servers="$server" >"$work/stats.out" || fail "memstat --binary"
grep -q "curr_items: 2" "$work/stats.out" || { cat "$work/stats.out"; fail "memstat curr_items"; }
grep -q "cmd_set" "$work/stats.out" || fail "memstat cmd_set"

# memcapable's binary suite (it flushes the server first): every opcode libmemcached's test
# tool knows, with its expected status codes, quiet semantics and cas handling.
"$memcapable" -h 127.0.0.1 -p "$port" -b >"$work/memcapable.out" 2>&1 ||
    { cat "$work/memcapable.out"; fail "memcapable -b"; }
grep -q "All tests passed" "$work/memcapable.out" || { cat "$work/memcapable.out"; fail "memcapable -b"; }

# --- binary protocol with SASL PLAIN ---
port=$(free_port)
printf 'alice:wonderland\n' >"$work/users"
start_server "$port" -S --sasl-pwdb "$work/users"
server="127.0.0.1:$port"
"$memcp" --binary --servers="$server" --username=alice --password=wonderland "$work/greeting.txt"
[ "$("$memcat" --binary --servers="$server" --username=alice --password=wonderland greeting.txt)" = \
    "hello from libmemcached" ] || fail "memcat with SASL"
if "$memcat" --binary --servers="$server" --username=alice --password=wrong greeting.txt \
    >/dev/null 2>&1; then
    fail "memcat with a wrong password succeeded"
fi
if "$memcat" --binary --servers="$server" greeting.txt >/dev/null 2>&1; then
    fail "memcat without credentials succeeded on a SASL server"
fi

echo "libmemcached interop: OK"
