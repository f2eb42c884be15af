#!/usr/bin/env bash
# A partition isolates the primary with its clients (issue 23): three ferrocache nodes with
# min_replicas_to_write = 1 and min_replicas_max_lag_secs = 2, three stock redis-sentinel
# processes, each node with its sentinel in its own network namespace on one bridge
# (10.77.1.11-13). Two clients run inside the primary's namespace: one acknowledges a write at
# +OK of SET, the other only when WAIT 1 1000 after the SET says one replica has it. The
# primary's link to the bridge goes down for 12 s, then comes back.
# Checks and figures:
# - the isolated primary refuses writes (-NOREPLICAS) within min_replicas_max_lag_secs plus
#   a margin: the time from the cut to the first refusal is printed;
# - the majority side promotes a replica; after the heal the old primary becomes its replica
#   and at no poll (every 50 ms) do two nodes say role:master while both take writes;
# - acknowledged writes lost (missing from the new primary once everything has synced) are
#   counted for both clients, and must be 0 for the WAIT 1 client. Jepsen's 2013 Sentinel test
#   lost 56 % of acknowledged writes.
#
# Usage: sentinel_partition_netns.sh PATH_TO_FERROCACHE
# Needs root (ip netns) and redis-sentinel.
set -euo pipefail
bin=$(realpath "$1")
prefix="fopart$$"
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
trap 'exit 1' INT TERM
fail() {
    echo "FAIL sentinel_partition_netns: $*" >&2
    for i in 1 2 3; do
        echo "--- sentinel $i ---" >&2
        tail -n 25 "$work/sentinel$i.log" >&2 || true
    done
    exit 1
}
in_ns() { ip netns exec "${prefix}$1" "${@:2}"; }

if ! ip netns add "${prefix}sw" 2>/dev/null; then
    echo "sentinel_partition_netns: SKIPPED: cannot create network namespaces (needs root)"
    exit 0
fi
namespaces+=("${prefix}sw")
ip -n "${prefix}sw" link add br0 type bridge
ip -n "${prefix}sw" link set br0 up
for i in 1 2 3; do
    ns="${prefix}n$i"
    ip netns add "$ns"
    namespaces+=("$ns")
    ip -n "$ns" link set lo up
    ip link add "vf$i" netns "$ns" type veth peer name "p$i" netns "${prefix}sw"
    ip -n "${prefix}sw" link set "p$i" master br0 up
    ip -n "$ns" addr add "10.77.1.1$i/24" dev "vf$i"
    ip -n "$ns" link set "vf$i" up
done

for i in 1 2 3; do
    mkdir -p "$work/n$i"
    {
        echo "[replication]"
        [ "$i" -eq 1 ] || echo 'replicaof = "10.77.1.11 6379"'
        echo "min_replicas_to_write = 1"
        echo "min_replicas_max_lag_secs = 2"
    } >"$work/node$i.toml"
    ip netns exec "${prefix}n$i" "$bin" --config "$work/node$i.toml" -l 0.0.0.0 -p 11211 --resp-port 6379 \
        --protected-mode no --dir "$work/n$i" 2>"$work/node$i.log" &
    pids+=($!)
    cat >"$work/sentinel$i.conf" <<EOF
port 26379
bind 10.77.1.1$i
daemonize no
dir $work
logfile $work/sentinel$i.log
sentinel monitor m 10.77.1.11 6379 2
sentinel down-after-milliseconds m 1000
sentinel failover-timeout m 10000
EOF
done
for i in 1 2 3; do
    for _ in $(seq 100); do
        in_ns "n$i" redis-cli -h "10.77.1.1$i" -p 6379 ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
    ip netns exec "${prefix}n$i" redis-sentinel "$work/sentinel$i.conf" &
    pids+=($!)
done
ready=0
for _ in $(seq 300); do
    ready=0
    for i in 1 2 3; do
        in_ns "n$i" redis-cli -h "10.77.1.1$i" -p 26379 info sentinel 2>/dev/null |
            grep -q 'slaves=2,sentinels=3' && ready=$((ready + 1))
    done
    [ "$ready" -eq 3 ] && break
    sleep 0.1
done
[ "$ready" -eq 3 ] || fail "the sentinels never saw the whole setup"
for i in 1 2 3; do
    # INFO every second, so the healed old primary is converted within the test's bounds.
    in_ns "n$i" redis-cli -h "10.77.1.1$i" -p 26379 sentinel debug info-period 1000 >/dev/null
done

# The writers, on the primary's side of the cut: each appends the keys it saw acknowledged
# to a file, and the plain writer logs the first -NOREPLICAS after the file "cut" appears.
cat >"$work/writer.py" <<'EOF'
import os, socket, sys, time
mode, work, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])

def command(sock, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    line = b""
    while not line.endswith(b"\r\n"):
        data = sock.recv(1)
        if not data:
            raise OSError("closed")
        line += data
    return line[:-2].decode()

acked = open(os.path.join(work, f"acked-{mode}"), "w")
cut_at = None
end = time.time() + seconds
i = 0
sock = None
while time.time() < end:
    if cut_at is None and os.path.exists(os.path.join(work, "cut")):
        cut_at = time.monotonic()
    i += 1
    key = f"{mode}-{i}".encode()
    try:
        if sock is None:
            sock = socket.create_connection(("10.77.1.11", 6379), timeout=2)
        reply = command(sock, b"SET", key, b"v")
        if reply == "+OK" and mode == "wait":
            reply = "+OK" if command(sock, b"WAIT", b"1", b"1000") not in (":0",) else "unacked"
        if reply == "+OK":
            acked.write(key.decode() + "\n")
            acked.flush()
        elif reply.startswith("-NOREPLICAS") and cut_at is not None and mode == "plain":
            with open(os.path.join(work, "refused-after"), "a") as f:
                f.write(f"{time.monotonic() - cut_at:.2f}\n")
            cut_at = float("inf")
    except OSError:
        sock = None
    time.sleep(0.005)
EOF
ip netns exec "${prefix}n1" python3 "$work/writer.py" plain "$work" 24 &
plain=$!
pids+=("$plain")
ip netns exec "${prefix}n1" python3 "$work/writer.py" wait "$work" 24 &
waiter=$!
pids+=("$waiter")

# Watch the roles (every 50 ms): a poll where two nodes say master and both accept a write
# is two primaries.
cat >"$work/roles.py" <<'EOF'
import socket, sys, time
work, seconds = sys.argv[1], float(sys.argv[2])
def ask(host, *args):
    try:
        s = socket.create_connection((host, 6379), timeout=0.3)
        s.settimeout(0.3)
        out = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        s.sendall(out)
        data = s.recv(4096).decode(errors="replace")
        s.close()
        return data
    except OSError:
        return ""
end = time.time() + seconds
worst = 0
while time.time() < end:
    masters = [h for h in ("10.77.1.11", "10.77.1.12", "10.77.1.13")
               if "role:master" in ask(h, b"INFO", b"replication")]
    writable = [h for h in masters if ask(h, b"SET", b"probe", b"1").startswith("+OK")]
    worst = max(worst, len(writable))
    time.sleep(0.05)
print(worst)
EOF
echo "sentinel_partition_netns: writing; cutting the primary off for 12 s"
sleep 3
touch "$work/cut"
ip -n "${prefix}sw" link set p1 down
sleep 12
ip -n "${prefix}sw" link set p1 up
# The role watcher runs where it sees every node: after the heal only (during the cut each
# side sees one node of its own by design).
ip netns exec "${prefix}n2" python3 "$work/roles.py" "$work" 8 >"$work/roles.out" &
watcher=$!
pids+=("$watcher")
echo "sentinel_partition_netns: healed"
wait "$plain" "$waiter" || true
wait "$watcher" || true
new=$(in_ns n2 redis-cli -h 10.77.1.12 -p 26379 sentinel get-master-addr-by-name m | head -n 1)
[ "$new" != 10.77.1.11 ] || fail "no failover happened"
for _ in $(seq 300); do
    role=$(in_ns n1 redis-cli -h 10.77.1.11 -p 6379 role 2>/dev/null | head -n 3 | tr '\n' ' ')
    [ "$role" = "slave $new 6379 " ] || { sleep 0.1; continue; }
    link=$(in_ns n1 redis-cli -h 10.77.1.11 -p 6379 info replication | tr -d '\r' |
        grep '^master_link_status:' | cut -d: -f2)
    [ "$link" = up ] && break
    sleep 0.1
done
[ "$link" = up ] || fail "the old primary never followed $new (ROLE: $role)"
[ -s "$work/refused-after" ] || fail "the isolated primary never refused a write"
refused=$(head -n 1 "$work/refused-after")
awk -v r="$refused" 'BEGIN { exit !(r <= 2 + 3) }' ||
    fail "the isolated primary refused writes only $refused s after the cut"
two=$(cat "$work/roles.out")
[ "$two" -le 1 ] || fail "two writable primaries seen after the heal"
count_lost() {
    local file=$1 lost=0 total
    total=$(wc -l <"$file")
    lost=$(in_ns n2 bash -c "xargs -a '$file' -n 500 redis-cli -h '$new' -p 6379 exists" |
        awk -v total="$total" '{ found += $1 } END { print total - found }')
    echo "$lost $total"
}
read -r lost_plain total_plain < <(count_lost "$work/acked-plain")
read -r lost_wait total_wait < <(count_lost "$work/acked-wait")
[ "$total_wait" -gt 0 ] || fail "no write was acknowledged with WAIT 1"
[ "$lost_wait" -eq 0 ] || fail "$lost_wait of $total_wait writes acknowledged with WAIT 1 lost"
echo "sentinel_partition_netns: ok: the isolated primary refused writes $refused s after the cut" \
    "(min_replicas_max_lag_secs 2); new primary $new; acknowledged writes lost:" \
    "$lost_plain of $total_plain plain SET, $lost_wait of $total_wait with WAIT 1;" \
    "at most $two writable primary after the heal"
