#!/usr/bin/env bash
# A memcached client keeps one address across a Sentinel failover (issue 23): three ferrocache
# nodes and three stock redis-sentinel processes, each pair in its own network namespace on
# one bridge (10.77.0.11-13), and a client namespace (10.77.0.99) that only knows the virtual
# IP 10.77.0.100. The sentinels run packaging/sentinel/vip-reconfig.sh as their
# client-reconfig-script. The primary is SIGKILLed while the client writes with memcached
# `set` to the virtual IP; the test passes when writes to that same address are STORED again
# by the promoted node, the address left the old primary's namespace, and ROLE on the virtual
# IP says master.
#
# Usage: sentinel_vip_netns.sh PATH_TO_FERROCACHE
# Needs root (ip netns), redis-sentinel, and arping (iputils-arping) for the gratuitous ARP.
set -euo pipefail
bin=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
script="$root/packaging/sentinel/vip-reconfig.sh"
prefix="fovip$$"
vip=10.77.0.100
work=$(mktemp -d)
pids=()
namespaces=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL sentinel_vip_netns: $*" >&2
    for i in 1 2 3; do
        echo "--- sentinel $i ---" >&2
        tail -n 30 "$work/sentinel$i.log" >&2 || true
    done
    exit 1
}

if ! ip netns add "${prefix}sw" 2>/dev/null; then
    echo "sentinel_vip_netns: SKIPPED: cannot create network namespaces (needs root)"
    exit 0
fi
namespaces+=("${prefix}sw")
ip -n "${prefix}sw" link add br0 type bridge
ip -n "${prefix}sw" link set br0 up
for i in 1 2 3 9; do
    ns="${prefix}n$i"
    ip netns add "$ns"
    namespaces+=("$ns")
    ip -n "$ns" link set lo up
    ip link add "vf$i" netns "$ns" type veth peer name "p$i" netns "${prefix}sw"
    ip -n "${prefix}sw" link set "p$i" master br0 up
    ip -n "$ns" addr add "10.77.0.$((i == 9 ? 99 : 10 + i))/24" dev "vf$i"
    ip -n "$ns" link set "vf$i" up
done
# The virtual IP starts on the primary's host.
ip -n "${prefix}n1" addr add "$vip/24" dev vf1

for i in 1 2 3; do
    ns="${prefix}n$i"
    mkdir -p "$work/n$i"
    if [ "$i" -eq 1 ]; then
        echo "" >"$work/node$i.toml"
    else
        printf '[replication]\nreplicaof = "10.77.0.11 6379"\n' >"$work/node$i.toml"
    fi
    ip netns exec "$ns" "$bin" --config "$work/node$i.toml" -l 0.0.0.0 -p 11211 \
        --resp-port 6379 --protected-mode no --dir "$work/n$i" 2>"$work/node$i.log" &
    pids+=($!)
    printf 'VIP=%s/24\nVIP_DEV=vf%s\n' "$vip" "$i" >"$work/vip$i.conf"
    cat >"$work/sentinel$i.conf" <<EOF
port 26379
bind 10.77.0.1$i
daemonize no
dir $work
logfile $work/sentinel$i.log
sentinel monitor m 10.77.0.11 6379 2
sentinel down-after-milliseconds m 1000
sentinel failover-timeout m 10000
sentinel client-reconfig-script m $script
EOF
done
for i in 1 2 3; do
    for _ in $(seq 100); do
        ip netns exec "${prefix}n9" redis-cli -h "10.77.0.1$i" -p 6379 ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    ip netns exec "${prefix}n$i" env FERROCACHE_VIP_CONF="$work/vip$i.conf" \
        redis-sentinel "$work/sentinel$i.conf" &
    pids+=($!)
done
for _ in $(seq 300); do
    ready=0
    for i in 1 2 3; do
        ip netns exec "${prefix}n9" redis-cli -h "10.77.0.1$i" -p 26379 info sentinel 2>/dev/null |
            grep -q 'slaves=2,sentinels=3' && ready=$((ready + 1))
    done
    [ "$ready" -eq 3 ] && break
    sleep 0.1
done
[ "$ready" -eq 3 ] || fail "the sentinels never saw the whole setup"

# The client: memcached sets to the virtual IP, a fresh connection each, 0.3 s timeouts; it
# prints the time from the kill (the file "killed" appears) to the first STORED after it.
cat >"$work/client.py" <<'EOF'
import os, socket, sys, time
vip, work = sys.argv[1], sys.argv[2]
killed_at = None
stored_before = stored_after = 0
deadline = time.time() + 60
i = 0
while time.time() < deadline:
    i += 1
    if killed_at is None and os.path.exists(os.path.join(work, "killed")):
        killed_at = time.monotonic()
    try:
        s = socket.create_connection((vip, 11211), timeout=0.3)
        s.settimeout(0.3)
        s.sendall(b"set k%d 0 0 1\r\nv\r\n" % i)
        reply = s.recv(100)
        s.close()
    except OSError:
        reply = b""
    if reply == b"STORED\r\n":
        if killed_at is None:
            stored_before += 1
        else:
            stored_after += 1
            if stored_after == 1:
                took = time.monotonic() - killed_at
            if stored_after >= 20:
                print(f"{took:.2f} {stored_before} {stored_after}")
                sys.exit(0)
    else:
        time.sleep(0.02)
sys.exit(1)
EOF
ip netns exec "${prefix}n9" python3 "$work/client.py" "$vip" "$work" >"$work/client.out" &
client=$!
pids+=("$client")
sleep 1
kill -9 "${pids[0]}"
touch "$work/killed"
wait "$client" || fail "no memcached write to $vip was STORED within 60 s of the kill"
read -r took before after <"$work/client.out"
[ "$before" -gt 0 ] || fail "no write was stored before the kill"
role=$(ip netns exec "${prefix}n9" redis-cli -h "$vip" -p 6379 role | head -n 1)
[ "$role" = master ] || fail "ROLE on the virtual IP says $role"
new=$(ip netns exec "${prefix}n9" redis-cli -h 10.77.0.12 -p 26379 sentinel get-master-addr-by-name m | head -n 1)
holder=""
for i in 1 2 3; do
    ip -n "${prefix}n$i" -o addr show | grep -q " $vip/" && holder="$holder 10.77.0.1$i"
done
[ "$holder" = " $new" ] || fail "the virtual IP is on [$holder], the new primary is $new"
echo "sentinel_vip_netns: ok: memcached writes to $vip STORED again $took s after SIGKILL of the primary ($before before, $after after); the address moved to $new"
