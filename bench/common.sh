# common.sh: helpers sourced by bench/compress.sh and bench/hitratio.sh (not run on its own).
#
# Provides: free_port, wait_port, rss_kb, mc_stats PORT (all `stats` lines as "name value"),
# stat_of "$STATS" NAME, median (numbers on stdin), start_server NAME ARGS... / stop_server
# (memcached or ferrocache on a free 127.0.0.1 port, retried on a lost port race, stopped by the
# EXIT trap whatever happens), check_tools. The sourcing script sets SCRIPT (its name for
# messages), FERRO and BENCH before calling them.

SERVER_PID=""
SERVER_PORT=""
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

die() { echo "$SCRIPT: $*" >&2; exit 1; }

free_port() {
    local p
    for _ in $(seq 1 100); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free port"
}

wait_port() {
    for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
    return 1
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# Every `stats` line of the memcached-protocol server on PORT as "name value".
mc_stats() {
    local out
    out=$(exec 3<>"/dev/tcp/127.0.0.1/$1"; printf 'stats\r\nquit\r\n' >&3; timeout 5 cat <&3 || true)
    printf '%s\n' "$out" | tr -d '\r' | awk '$1 == "STAT" {print $2, $3}'
}

stat_of() { printf '%s\n' "$1" | awk -v k="$2" '$1 == k {print $2}'; }

# Median of the numbers on stdin, one a line.
median() { sort -g | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

check_tools() {
    command -v memcached >/dev/null || die "memcached not found; install it with: apt-get install memcached"
    for bin in "$FERRO" "$BENCH"; do
        [ -x "$bin" ] || die "$bin not found; build it with: cargo build --release -p ferrocache -p ferrocache-bench"
    done
}

# start_server NAME ARGS...: memcached or ferrocache on 127.0.0.1 with the given memcached-style
# flags (-m -I -t ...); sets SERVER_PID and SERVER_PORT. Retries on new ports if the server does
# not come up (another process may take the port between the check and the bind).
start_server() {
    local name=$1; shift
    local attempt port user=()
    [ "$(id -u)" = 0 ] && user=(-u root)
    for attempt in 1 2 3; do
        port=$(free_port)
        case "$name" in
            memcached) memcached "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 "$@" >"/tmp/$SCRIPT.$$.log" 2>&1 & ;;
            ferrocache) "$FERRO" -l 127.0.0.1 -p "$port" -U 0 --resp-port 0 "$@" >"/tmp/$SCRIPT.$$.log" 2>&1 & ;;
            *) die "unknown server $name" ;;
        esac
        SERVER_PID=$!
        SERVER_PORT=$port
        if wait_port "$port" && sleep 0.2 && kill -0 "$SERVER_PID" 2>/dev/null; then
            rm -f "/tmp/$SCRIPT.$$.log"
            return 0
        fi
        echo "$SCRIPT: $name did not start (attempt $attempt): $(tail -1 "/tmp/$SCRIPT.$$.log")" >&2
        stop_server
    done
    rm -f "/tmp/$SCRIPT.$$.log"
    exit 1
}
