#!/usr/bin/env bash
# compare.sh: ferrocache against memcached and redis-server on this machine, same run.
#
# Starts the three servers on free 127.0.0.1 ports with the same thread count and memory limit,
# runs the same ferrobench workloads against each, ROUNDS rounds interleaved (every workload on
# every server in turn, then the next round), and prints the medians and the ratios
# ferrocache/memcached and ferrocache/redis. With taskset and >= 2 CPUs the servers run on one
# core and the load generator on another ("pinned"); an unpinned pass follows. Workloads a server
# does not implement yet are reported as "n/a (not implemented)"; "-" means the server family does
# not speak that protocol at all. All traffic stays on 127.0.0.1; every server started here is
# stopped on exit. Needs: memcached, redis-server, jq, and release builds of ferrocache and
# ferrobench (`cargo build --release -p ferrocache -p ferrocache-bench`).
#
# Usage: bench/compare.sh [--duration S] [--rounds N] [--unpinned-rounds N] [--threads T]
#                         [--memory MB] [--connections C] [--keys N] [--value-size B]
#                         [--value-kind random|json] [--only REGEX] [--out DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRO=${FERROCACHE:-$ROOT/target/release/ferrocache}
BENCH=${FERROBENCH:-$ROOT/target/release/ferrobench}
DURATION=5
ROUNDS=3
UNPINNED_ROUNDS=1
THREADS=1
MEMORY=1024
CONNS=50
KEYS=100000
VALUE=100
KIND=random
ONLY=.
OUT=""

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --unpinned-rounds) UNPINNED_ROUNDS=$2; shift 2 ;;
        --threads) THREADS=$2; shift 2 ;;
        --memory) MEMORY=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --keys) KEYS=$2; shift 2 ;;
        --value-size) VALUE=$2; shift 2 ;;
        --value-kind) KIND=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument $1" >&2; usage >&2; exit 64 ;;
    esac
done

missing=0
for tool in memcached redis-server jq; do
    if ! command -v "$tool" >/dev/null; then
        echo "compare.sh: $tool not found; install it with: apt-get install memcached redis-server jq" >&2
        missing=1
    fi
done
for bin in "$FERRO" "$BENCH"; do
    if [ ! -x "$bin" ]; then
        echo "compare.sh: $bin not found; build it with: cargo build --release -p ferrocache -p ferrocache-bench" >&2
        missing=1
    fi
done
[ "$missing" = 0 ] || exit 1

OUT=${OUT:-$(mktemp -d /tmp/ferrocache-compare.XXXXXX)}
mkdir -p "$OUT"
RESULTS=$OUT/results.tsv
: >"$RESULTS"
CLK_TCK=$(getconf CLK_TCK)

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    echo "compare.sh: no free port" >&2; exit 1
}

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    for _ in $(seq 1 100); do listening "$1" && return 0; sleep 0.05; done
    return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Ticks the whole machine spent in processes (user nice system; irq and softirq time, where
# loopback TCP is processed, is left out because it is not charged to any process).
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4}' /proc/stat; }

# start_server NAME PREFIX...: sets SERVER_PID, SERVER_PORT (and FERRO_RESP_PORT for ferrocache).
# Retries on new ports if the server does not come up (another process may take a port between
# the check and the bind on a shared machine).
start_server() {
    local attempt
    for attempt in 1 2 3; do
        if try_start_server "$@"; then return 0; fi
        echo "compare.sh: $1 did not start (attempt $attempt): $(tail -1 "$OUT/$1.log")" >&2
    done
    exit 1
}

try_start_server() {
    local name=$1; shift
    local port; port=$(free_port)
    case "$name" in
        memcached)
            local user=(); [ "$(id -u)" = 0 ] && user=(-u root)
            "$@" memcached "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 -t "$THREADS" -m "$MEMORY" -c 4096 \
                >"$OUT/memcached.log" 2>&1 &
            ;;
        redis)
            local io=(); [ "$THREADS" -gt 1 ] && io=(--io-threads "$THREADS")
            "$@" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
                --maxmemory "${MEMORY}mb" --maxmemory-policy allkeys-lru "${io[@]}" \
                >"$OUT/redis.log" 2>&1 &
            ;;
        ferrocache)
            FERRO_RESP_PORT=$(free_port)
            while [ "$FERRO_RESP_PORT" = "$port" ]; do FERRO_RESP_PORT=$(free_port); done
            "$@" "$FERRO" -p "$port" -l 127.0.0.1 -t "$THREADS" -m "$MEMORY" -c 4096 \
                --resp-port "$FERRO_RESP_PORT" >"$OUT/ferrocache.log" 2>&1 &
            ;;
    esac
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    SERVER_PORT=$port
    # A server that lost the race for its port exits at once, while the port answers for the
    # other process: check it is still alive a moment after the port opens.
    if ! wait_port "$port" || ! sleep 0.2 || ! kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        return 1
    fi
}

# Workloads: id | label | memcached | redis | ferrocache. Each server column is "PROTOCOL ARGS"
# for ferrobench, or "-" where that server does not speak the protocol of the row.
KV="-w kv -r 9:1"
GET="-w kv -r 1:0"
WORKLOADS=(
    "text-p1|memcached text get:set 90:10, no pipeline|text $KV -p 1|-|text $KV -p 1"
    "text-p16|memcached text get:set 90:10, pipeline 16|text $KV -p 16|-|text $KV -p 16"
    "text-get-p1|memcached text GET only, no pipeline|text $GET -p 1|-|text $GET -p 1"
    "text-get-p16|memcached text GET only, pipeline 16|text $GET -p 16|-|text $GET -p 16"
    "text-set-p1|memcached text SET only, no pipeline|text -w kv -r 0:1 -p 1|-|text -w kv -r 0:1 -p 1"
    "meta-p16|memcached meta mg/ms 90:10, pipeline 16|meta $KV -p 16|-|meta $KV -p 16"
    "binary-get-p1|memcached binary GET, no pipeline|binary $GET -p 1|-|binary $GET -p 1"
    "binary-get-p16|memcached binary GET, pipeline 16|binary $GET -p 16|-|binary $GET -p 16"
    "resp-p1|RESP GET/SET 90:10, no pipeline|-|resp $KV -p 1|resp $KV -p 1"
    "resp-p16|RESP GET/SET 90:10, pipeline 16|-|resp $KV -p 16|resp $KV -p 16"
    "resp-hash|RESP HGET/HSET 90:10, no pipeline|-|resp -w hash -r 9:1 -p 1|resp -w hash -r 9:1 -p 1"
    "resp-zadd|RESP ZADD, no pipeline|-|resp -w zset -r 0:1 -p 1|resp -w zset -r 0:1 -p 1"
    "resp-zrange|RESP ZRANGE/ZADD 9:1, no pipeline (after resp-zadd filled the sets)|-|resp -w zset -r 9:1 -p 1|resp -w zset -r 9:1 -p 1"
    "resp-zadd-p16|RESP ZADD, pipeline 16|-|resp -w zset -r 0:1 -p 16|resp -w zset -r 0:1 -p 16"
    "mget-100|multi-get of 100 keys (text get / RESP MGET), no pipeline|text -w mget --batch 100 -r 1:0 -p 1|resp -w mget --batch 100 -r 1:0 -p 1|text -w mget --batch 100 -r 1:0 -p 1"
)
SERVERS=(memcached redis ferrocache)

declare -A PORT_OF PID_OF UNSUPPORTED
EXTRA=()
# A run is "noisy" when other processes used more than this share of one CPU during it.
NOISE=${NOISE:-0.10}

# bench PHASE ROUND WORKLOAD_ID SERVER SPEC LOADPIN...: one measured run, one line in results.tsv.
bench() {
    local phase=$1 round=$2 id=$3 server=$4 spec=$5; shift 5
    local proto=${spec%% *} args=${spec#* }
    local port=${PORT_OF[$server]}
    local na=${UNSUPPORTED["$server $id"]:-}
    if [ "$server" = ferrocache ] && [ "$proto" = resp ]; then
        port=$FERRO_RESP_PORT
        listening "$port" || na=1
    fi
    if [ -n "$na" ]; then
        printf '%s\t%s\t%s\t%s\tna\t\t\t\t\t\t\t\n' "$phase" "$round" "$id" "$server" >>"$RESULTS"
        return
    fi
    local pid=${PID_OF[$server]} log="$OUT/$phase-$round-$id-$server"
    local before after busy0 busy1 rc=0
    before=$(cpu_ticks "$pid")
    busy0=$(busy_ticks)
    # shellcheck disable=SC2086 # $args is a list of flags
    "$@" "$BENCH" -s "127.0.0.1:$port" -P "$proto" $args -c "$CONNS" -t 1 -n "$KEYS" -d "$VALUE" \
        --value-kind "$KIND" -D "$DURATION" --json "${EXTRA[@]}" >"$log.json" 2>"$log.err" || rc=$?
    after=$(cpu_ticks "$pid")
    busy1=$(busy_ticks)
    case "$rc" in
        0)
            local ops ops_s p50 p99 p999 client secs cpu foreign
            read -r ops ops_s p50 p99 p999 client secs < <(jq -r '[.measured.ops, .measured.ops_per_sec,
                .measured.latency_us.p50, .measured.latency_us.p99, .measured.latency_us.p99_9,
                (.client_cpu_seconds // 0), .measured.seconds] | @tsv' "$log.json")
            cpu=$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v n="$ops" \
                'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e6 / n }')
            # CPU used by anything but this server and this load generator, as a share of one CPU
            # over the run: other builds or tests on a shared machine make a run "noisy".
            foreign=$(awk -v b=$((busy1 - busy0)) -v s=$((after - before)) -v c="$client" \
                -v hz="$CLK_TCK" -v secs="$secs" \
                'BEGIN { f = (b - s - c * hz) / (hz * (secs > 0 ? secs : 1)); printf "%.2f", f < 0 ? 0 : f }')
            printf '%s\t%s\t%s\t%s\tok\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$phase" "$round" "$id" "$server" \
                "$ops_s" "$p99" "$cpu" "$foreign" "$p50" "$p999" "$client" >>"$RESULTS"
            ;;
        3)
            UNSUPPORTED["$server $id"]=1
            printf '%s\t%s\t%s\t%s\tna\t\t\t\t\t\t\t\n' "$phase" "$round" "$id" "$server" >>"$RESULTS"
            ;;
        *)
            echo "compare.sh: $server $id failed (exit $rc): $(head -c 300 "$log.err")" >&2
            printf '%s\t%s\t%s\t%s\tfail\t\t\t\t\t\t\t\n' "$phase" "$round" "$id" "$server" >>"$RESULTS"
            ;;
    esac
}

# phase NAME ROUNDS SERVER_PIN LOAD_PIN: start the servers, warm them, run the rounds, stop them.
phase() {
    local name=$1 rounds=$2 spin=$3 lpin=$4
    local -a server_pin=() load_pin=()
    [ -n "$spin" ] && server_pin=(taskset -c "$spin")
    [ -n "$lpin" ] && load_pin=(taskset -c "$lpin")
    for s in "${SERVERS[@]}"; do
        start_server "$s" "${server_pin[@]}"
        PORT_OF[$s]=$SERVER_PORT
        PID_OF[$s]=$SERVER_PID
    done
    # Warm: every key once, so GET-only workloads hit.
    "${load_pin[@]}" "$BENCH" -s "127.0.0.1:${PORT_OF[memcached]}" -P text -n "$KEYS" -d "$VALUE" --value-kind "$KIND" --warm-only --json >/dev/null
    "${load_pin[@]}" "$BENCH" -s "127.0.0.1:${PORT_OF[ferrocache]}" -P text -n "$KEYS" -d "$VALUE" --value-kind "$KIND" --warm-only --json >/dev/null
    "${load_pin[@]}" "$BENCH" -s "127.0.0.1:${PORT_OF[redis]}" -P resp -n "$KEYS" -d "$VALUE" --value-kind "$KIND" --warm-only --json >/dev/null
    "${load_pin[@]}" "$BENCH" -s "127.0.0.1:${PORT_OF[redis]}" -P resp -w hash -n "$KEYS" -d "$VALUE" --value-kind "$KIND" --warm-only --json >/dev/null
    if listening "$FERRO_RESP_PORT"; then
        "${load_pin[@]}" "$BENCH" -s "127.0.0.1:$FERRO_RESP_PORT" -P resp -n "$KEYS" -d "$VALUE" --value-kind "$KIND" --warm-only --json >/dev/null 2>&1 || true
        "${load_pin[@]}" "$BENCH" -s "127.0.0.1:$FERRO_RESP_PORT" -P resp -w hash -n "$KEYS" -d "$VALUE" --value-kind "$KIND" --warm-only --json >/dev/null 2>&1 || true
    fi
    for round in $(seq 1 "$rounds"); do
        for w in "${WORKLOADS[@]}"; do
            IFS='|' read -r id _label mc rd fc <<<"$w"
            [[ "$id" =~ $ONLY ]] || continue
            echo "[$name round $round/$rounds] $id" >&2
            if [ "$mc" != - ]; then bench "$name" "$round" "$id" memcached "$mc" "${load_pin[@]}"; fi
            if [ "$rd" != - ]; then bench "$name" "$round" "$id" redis "$rd" "${load_pin[@]}"; fi
            if [ "$fc" != - ]; then bench "$name" "$round" "$id" ferrocache "$fc" "${load_pin[@]}"; fi
        done
    done
    if [ "$name" = pinned ]; then load80 "$name" "${load_pin[@]}"; fi
    cleanup
    PIDS=()
}

# load80 PHASE LOADPIN...: open loop at 80% of each server's median peak of the no-pipeline
# get:set row, latency measured from the intended send times (the p99 target of issue 7).
load80() {
    local phase=$1; shift
    local server id spec peak
    # -p 16 here is only the cap on requests in flight per connection: the schedule, not the
    # replies, decides when a request goes out, so a slow reply does not hold back the next one.
    for entry in "memcached|text-p1|text $KV -p 16" "ferrocache|text-p1|text $KV -p 16" \
        "redis|resp-p1|resp $KV -p 16" "ferrocache|resp-p1|resp $KV -p 16"; do
        IFS='|' read -r server id spec <<<"$entry"
        [[ "$id" =~ $ONLY ]] || continue
        peak=$(median_ops "$phase" "$id" "$server")
        [ -n "$peak" ] || continue
        local rate; rate=$(awk -v p="$peak" 'BEGIN { printf "%.0f", p * 0.8 }')
        echo "[$phase] $id at 80% of peak: $rate req/s on $server" >&2
        EXTRA=(--rate "$rate")
        bench "$phase-load80" 1 "$id" "$server" "$spec" "$@"
        EXTRA=()
    done
}

# median_ops PHASE ID SERVER: median ops/s of the clean ok runs (all ok runs if none is clean).
median_ops() {
    awk -F'\t' -v p="$1" -v id="$2" -v s="$3" -v noise="$NOISE" '
        $1 == p && $3 == id && $4 == s && $5 == "ok" { all[++n] = $6; if ($9 <= noise) clean[++m] = $6 }
        function med(a, k,   i, j, t) {
            for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
        }
        END { if (m > 0) print med(clean, m); else if (n > 0) print med(all, n) }' "$RESULTS"
}

summary() {
    local name=$1
    echo
    echo "== $name: medians over rounds (ops/s; p99 in us; server CPU us per op) =="
    echo "   medians use the clean runs (other processes < $NOISE CPU); '*' = every run was noisy, [c/n] = clean/total"
    awk -F'\t' -v phase="$name" -v noise="$NOISE" -v spec="$(printf '%s\n' "${WORKLOADS[@]}")" '
        function median(list,   n, a, i, j, t) {
            n = split(list, a, " ")
            for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
            return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        BEGIN {
            nw = split(spec, lines, "\n")
            for (i = 1; i <= nw; i++) { split(lines[i], f, "|"); ids[i] = f[1]; label[f[1]] = f[2] }
        }
        $1 == phase {
            k = $3 SUBSEP $4
            status[k] = (status[k] == "" || status[k] == "ok") ? $5 : status[k]
            if ($5 == "ok") {
                total[k]++
                all_ops[k] = all_ops[k] " " $6; all_p99[k] = all_p99[k] " " $7; all_cpu[k] = all_cpu[k] " " $8
                if ($9 <= noise) {
                    clean[k]++
                    ops[k] = ops[k] " " $6; p99[k] = p99[k] " " $7; cpu[k] = cpu[k] " " $8
                }
            }
        }
        END {
            for (k in total) if (!clean[k]) { ops[k] = all_ops[k]; p99[k] = all_p99[k]; cpu[k] = all_cpu[k] }
            printf "%-15s %16s %16s %22s %8s %8s | %8s %8s %8s | %6s %6s %6s\n", "workload", "memcached", "redis", "ferrocache", "fc/mc", "fc/redis", "p99 mc", "p99 rd", "p99 fc", "cpu mc", "cpu rd", "cpu fc"
            for (i = 1; i <= nw; i++) {
                id = ids[i]; m = id SUBSEP "memcached"; r = id SUBSEP "redis"; c = id SUBSEP "ferrocache"
                if (status[m] == "" && status[r] == "" && status[c] == "") continue
                printf "%-15s %16s %16s %22s %8s %8s | %8s %8s %8s | %6s %6s %6s\n", id, cell(m), cell(r), cell(c), ratio(c, m), ratio(c, r), extra(m, p99), extra(r, p99), extra(c, p99), extracpu(m), extracpu(r), extracpu(c)
            }
            print ""
            for (i = 1; i <= nw; i++) printf "  %-15s %s\n", ids[i], label[ids[i]]
        }
        function cell(k) {
            if (status[k] == "") return "-"
            if (status[k] == "na") return "n/a (not implemented)"
            if (status[k] != "ok") return "FAILED"
            return sprintf("%.0f%s [%d/%d]", median(ops[k]), clean[k] ? "" : "*", clean[k], total[k])
        }
        function extra(k, arr) { return (status[k] == "ok") ? sprintf("%.0f", median(arr[k])) : "-" }
        function extracpu(k) { return (status[k] == "ok") ? sprintf("%.2f", median(cpu[k])) : "-" }
        function ratio(a, b) {
            if (status[a] != "ok" || status[b] != "ok") return "-"
            return sprintf("%.2f", median(ops[a]) / median(ops[b]))
        }' "$RESULTS"
    if grep -q "^$name-load80" "$RESULTS"; then
        echo
        echo "== $name: open loop at 80% of each server's median peak (latency from intended send time, us) =="
        awk -F'\t' -v p="$name-load80" -v noise="$NOISE" '$1 == p {
            if ($5 == "ok") printf "  %-12s %-10s %10.0f ops/s  p50 %8.0f  p99 %8.0f  p99.9 %8.0f%s\n", $3, $4, $6, $10, $7, $11, ($9 > noise ? "  (noisy)" : "")
            else printf "  %-12s %-10s %s\n", $3, $4, ($5 == "na" ? "n/a (not implemented)" : "FAILED") }' "$RESULTS"
    fi
}

NPROC=$(nproc)
echo "machine: $NPROC CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "memcached: $(memcached -V)  redis: $(redis-server --version | awk '{print $3}')  ferrocache: $("$FERRO" -V 2>/dev/null || echo '?')"
echo "settings: server threads $THREADS, memory ${MEMORY} MB, ferrobench -c $CONNS -t 1 -n $KEYS -d $VALUE --value-kind $KIND -D $DURATION, $ROUNDS pinned rounds, $UNPINNED_ROUNDS unpinned"
echo "raw results: $RESULTS (phase round workload server status ops/s p99 server-cpu-us/op foreign-cpu p50 p99.9 client-cpu-s)"

if command -v taskset >/dev/null && [ "$NPROC" -ge 2 ]; then
    echo "pinning: servers on CPU 1, load generator on CPU 0 (taskset)"
    phase pinned "$ROUNDS" 1 0
    summary pinned
else
    echo "pinning: not available (taskset missing or fewer than 2 CPUs); pinned pass skipped"
fi
if [ "$UNPINNED_ROUNDS" -gt 0 ]; then
    phase unpinned "$UNPINNED_ROUNDS" "" ""
    summary unpinned
fi
