#!/usr/bin/env bash
# A stock redis-server (Debian's 7.0) as a replica of ferrocache (issue 22): it completes a
# full sync (RDB version 9 over PSYNC), follows the live stream (plain RESP: SET ... PXAT,
# HSET, ZADD, DEL, FLUSHALL, PING), and stands at the same replication offset as the
# primary; every answer is compared with ferrocache's, expiries to the millisecond.
# Usage: replica_redis.sh PATH_TO_FERROCACHE
set -euo pipefail
binary=$(realpath "$1")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
fc_pid=''; redis_pid=''
cleanup() {
    [ -n "$fc_pid" ] && kill "$fc_pid" 2>/dev/null && wait "$fc_pid" 2>/dev/null
    [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
wait_ping() {
    for _ in $(seq 1 500); do
        [ "$(redis-cli -p "$1" ping 2>/dev/null)" = PONG ] && return 0
        sleep 0.02
    done
    echo "FAIL: nothing answers PING on port $1"
    exit 1
}
info_field() { redis-cli -p "$1" info replication | tr -d '\r' | sed -n "s/^$2://p"; }

port=$(free_port); resp=$(free_port); rport=$(free_port)
"$binary" -l 127.0.0.1 -p "$port" --resp-port "$resp" --dir "$work" --save '' &
fc_pid=$!
wait_ping "$resp"
fc() { redis-cli -p "$resp" "$@"; }
mc() { printf "$1" | timeout 5 python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.stdin.buffer.read() + b"mn\r\n")
data = b""
while not data.endswith(b"MN\r\n"):
    data += s.recv(65536)
' "$port"; }

# Before the replica: what the full sync carries.
fc set plain hello >/dev/null
fc set ttl 'expires later' EX 3600 >/dev/null
fc hset hash f1 v1 f2 v2 >/dev/null
fc zadd zset 1.5 a -2 b 3e10 c >/dev/null
fc rpush list x y z >/dev/null
fc sadd set m1 m2 42 >/dev/null
mc 'set mc:flags 42 0 5 noreply\r\nhello\r\nset mc:ttl 0 5000 3 noreply\r\nabc\r\n'

redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --replicaof 127.0.0.1 "$resp" --loglevel warning &
redis_pid=$!
wait_ping "$rport"
for _ in $(seq 1 500); do
    [ "$(info_field "$rport" master_link_status)" = up ] && break
    sleep 0.02
done
[ "$(info_field "$rport" master_link_status)" = up ] || { echo "FAIL: redis never synced"; exit 1; }

# While attached: the live stream.
fc set plain changed >/dev/null
fc set px 'ms expiry' PX 7200000 >/dev/null
fc incr counter >/dev/null
fc incrby counter 41 >/dev/null
fc hset hash f3 v3 >/dev/null
fc hdel hash f1 >/dev/null
fc zadd zset 7 d >/dev/null
fc zincrby zset 2 a >/dev/null
fc zrem zset b >/dev/null
fc lpush list w >/dev/null
fc srem set m1 >/dev/null
fc expire hash 5000 >/dev/null
fc persist ttl >/dev/null
fc del set >/dev/null
fc set gone soon >/dev/null
fc del gone >/dev/null
mc 'set mc:more 1 0 4 noreply\r\nmore\r\nincr mc:counter 1 noreply\r\nset mc:n 0 0 1 noreply\r\n5\r\nincr mc:n 10 noreply\r\ndelete mc:flags noreply\r\ntouch mc:ttl 9000 noreply\r\n'
big=$(head -c 30000 /dev/zero | tr '\0' 'q')
fc set big "$big" >/dev/null

wait_offsets() {
    for _ in $(seq 1 500); do
        primary=$(info_field "$resp" master_repl_offset)
        replica=$(info_field "$rport" slave_repl_offset)
        [ -n "$primary" ] && [ "$primary" = "$replica" ] && return 0
        sleep 0.02
    done
    echo "FAIL: offsets never agreed: ferrocache $(info_field "$resp" master_repl_offset), redis $(info_field "$rport" slave_repl_offset)"
    exit 1
}
wait_offsets

queries=(
    "get plain" "get ttl" "get px" "get counter" "get big" "get mc:flags" "get mc:ttl"
    "get mc:more" "get mc:n" "get gone"
    "pexpiretime ttl" "pexpiretime px" "pexpiretime hash" "pexpiretime mc:ttl"
    "hgetall hash" "zrange zset 0 -1 withscores" "lrange list 0 -1" "exists set"
    "type hash" "type zset" "type list" "dbsize"
)
answers() {
    local port=$1 q
    for q in "${queries[@]}"; do
        case $q in
            hgetall*) redis-cli -p "$port" $q | paste - - | sort ;;
            *) redis-cli -p "$port" $q ;;
        esac
    done
}
answers "$resp" > "$work/ferrocache.txt"
answers "$rport" > "$work/redis.txt"
if ! diff -u "$work/ferrocache.txt" "$work/redis.txt"; then
    echo "FAIL: the redis replica answers differently"
    exit 1
fi

# The keepalive and the primary's view: redis acks its offset (once a second).
for _ in $(seq 1 300); do
    line=$(redis-cli -p "$resp" info replication | tr -d '\r' | grep '^slave0:' || true)
    case $line in *"offset=$(info_field "$resp" master_repl_offset),"*) break ;; esac
    sleep 0.02
done
case $line in
    *state=online*"offset=$(info_field "$resp" master_repl_offset),"*) ;;
    *) echo "FAIL: ferrocache shows the replica as: $line"; exit 1 ;;
esac

# WAIT: the primary asks for an ack (REPLCONF GETACK *, counted in the offsets like any
# record) and redis answers at once.
fc set waited yes >/dev/null
start_ms=$(date +%s%3N)
[ "$(fc wait 1 5000)" = 1 ] || { echo "FAIL: WAIT 1 did not count the redis replica"; exit 1; }
elapsed=$(( $(date +%s%3N) - start_ms ))
[ "$elapsed" -lt 400 ] || { echo "FAIL: WAIT took ${elapsed} ms (no GETACK?)"; exit 1; }
wait_offsets

# A flush reaches it too.
fc flushall >/dev/null
wait_offsets
[ "$(redis-cli -p "$rport" dbsize)" = 0 ] || { echo "FAIL: FLUSHALL did not reach redis"; exit 1; }
echo "replica_redis: redis-server $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') followed ferrocache, offsets equal, ${#queries[@]} answers equal"
