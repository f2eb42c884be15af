#!/usr/bin/env bash
# `ferrocache --export-rdb` against real Redis (Debian's redis-server and redis-tools): data
# written over RESP, SAVEd to a .fcs snapshot, converted to RDB, checked by redis-check-rdb,
# loaded by a stock redis-server, and every answer compared with ferrocache's.
# Usage: rdb_export.sh PATH_TO_FERROCACHE
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

port=$(free_port); resp=$(free_port)
"$binary" -l 127.0.0.1 -p "$port" --resp-port "$resp" --dir "$work" --dbfilename dump.fcs --save '' &
fc_pid=$!
wait_ping "$resp"
fc() { redis-cli -p "$resp" "$@"; }
fc set plain hello >/dev/null
fc set 'with space' 'a value with spaces' >/dev/null
fc set counter 12345 >/dev/null
fc set ttl 'expires later' EX 3600 >/dev/null
fc set pttl 'ms expiry' PX 7200000 >/dev/null
fc hset hash f1 v1 f2 v2 f3 12 >/dev/null
fc zadd zset 1.5 a -2 b 3e10 c 0.1 d >/dev/null
fc rpush list x y z 7 >/dev/null
fc lpush list w >/dev/null
fc sadd set m1 m2 42 >/dev/null
fc sadd ints 1 2 3 >/dev/null
fc expire hash 5000 >/dev/null
big=$(head -c 30000 /dev/zero | tr '\0' 'q')
fc set big "$big" >/dev/null
# A stream with a deleted entry, entries of other fields, and two groups with pending entries.
for i in $(seq 1 150); do fc xadd st "$i-1" a "$i" b x >/dev/null; done
fc xadd st 151-1 other field >/dev/null
fc xdel st 7-1 >/dev/null
fc xgroup create st g1 0 >/dev/null
fc xgroup create st g2 '$' >/dev/null
fc xreadgroup group g1 alice count 3 streams st '>' >/dev/null
fc xreadgroup group g1 bob count 2 streams st '>' >/dev/null
fc xack st g1 1-1 >/dev/null
fc xgroup createconsumer st g2 carol >/dev/null
fc xadd empty '*' f v >/dev/null
fc xtrim empty maxlen 0 >/dev/null
# DUMP's payload of the stream, restored into redis-server below.
python3 -c '
import redis, sys
open(sys.argv[2], "wb").write(redis.Redis(port=int(sys.argv[1])).dump("st"))
' "$resp" "$work/st.dump"

# What ferrocache answers, command by command (sets sorted: their order is not defined).
queries=(
    "get plain" "get with space" "get counter" "get ttl" "get pttl" "get big"
    "hgetall hash" "zrange zset 0 -1 withscores" "lrange list 0 -1"
    "smembers set" "smembers ints" "type hash" "type zset" "type list" "type set"
    "xrange st - +" "xinfo groups st" "xpending st g1" "xlen empty" "type empty" "dbsize"
)
answers() {
    local port=$1 q
    for q in "${queries[@]}"; do
        case $q in
            "get with space") redis-cli -p "$port" get 'with space' ;;
            hgetall*) redis-cli -p "$port" $q | paste - - | sort ;;
            smembers*) redis-cli -p "$port" $q | sort ;;
            *) redis-cli -p "$port" $q ;;
        esac
    done
}
answers "$resp" > "$work/ferrocache.txt"
[ "$(fc save)" = OK ] || { echo "FAIL: SAVE"; exit 1; }
kill "$fc_pid"; wait "$fc_pid" 2>/dev/null || true; fc_pid=''

passed=0
"$binary" --export-rdb "$work/dump.fcs" "$work/out.rdb"
passed=$((passed + 1))
if "$binary" --export-rdb "$work/missing.fcs" "$work/never.rdb" 2>/dev/null || [ -e "$work/never.rdb" ]; then
    echo "FAIL: a missing snapshot must exit 1 and write nothing"
    exit 1
fi
passed=$((passed + 1))
check=$(redis-check-rdb "$work/out.rdb" 2>&1) || { echo "$check"; echo "FAIL: redis-check-rdb"; exit 1; }
echo "$check" | grep -q "RDB looks OK" || { echo "$check"; echo "FAIL: redis-check-rdb"; exit 1; }
passed=$((passed + 1))

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --dir "$work" --dbfilename out.rdb --save '' \
    --appendonly no --logfile "$work/redis.log" &
redis_pid=$!
wait_ping "$rport"
answers "$rport" > "$work/redis.txt"
if ! diff -u "$work/ferrocache.txt" "$work/redis.txt"; then
    echo "FAIL: redis-server answers differently from ferrocache (above)"
    cat "$work/redis.log"
    exit 1
fi
passed=$((passed + 1))
for key in ttl pttl hash; do
    ttl=$(redis-cli -p "$rport" ttl "$key")
    if [ "$ttl" -le 0 ]; then
        echo "FAIL: TTL $key in redis-server is $ttl"
        exit 1
    fi
    passed=$((passed + 1))
done
[ "$(redis-cli -p "$rport" ttl plain)" = -1 ] || { echo "FAIL: plain got an expiry"; exit 1; }
passed=$((passed + 1))
# ferrocache's DUMP of the stream, RESTOREd by redis-server, is the same stream.
python3 -c '
import redis, sys
r = redis.Redis(port=int(sys.argv[1]))
r.restore("st_dumped", 0, open(sys.argv[2], "rb").read())
for q in (["XRANGE", "{}", "-", "+"], ["XINFO", "GROUPS", "{}"], ["XPENDING", "{}", "g1"]):
    a, b = (r.execute_command(*[w.format(k) for w in q]) for k in ("st", "st_dumped"))
    assert a == b, (q, a, b)
' "$rport" "$work/st.dump" || { echo "FAIL: redis-server RESTOREd another stream"; exit 1; }
passed=$((passed + 1))
echo "rdb export interop: $passed passed, 0 failed"
