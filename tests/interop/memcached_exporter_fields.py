#!/usr/bin/env python3
"""What Prometheus's memcached_exporter reads, asked of ferrocache as the exporter asks it.

Usage: memcached_exporter_fields.py PATH_TO_FERROCACHE [PATH_TO_MEMCACHED]

Debian has no package of memcached_exporter and its Go dependencies cannot be fetched here,
so this replays its scrape: the exact commands its client (grobie/gomemcache `Stats` and
`StatsSettings`) sends, `stats`, `stats slabs`, `stats items`, `stats settings`, split the
way that client splits them (global `STAT name value`, slab `STAT n:name value`, item
`STAT items:n:name value`), then every field `pkg/exporter/exporter.go` `parseStats` and
`parseStatsSettings` parse, with their parsers (float, `sec.usec` timeval, yes/no). A field
that does not parse (or one of the few it reads without checking) makes the real exporter
report `memcached_up 0`; here it fails the script. A missing field only drops a series, so
with a memcached binary given (or on PATH) the same scrape runs against it first, and every
series memcached gives the exporter must come from ferrocache too, except those listed in
NO_ANALOGUE (memcached machinery ferrocache does not have).
"""
import shutil
import socket
import subprocess
import sys

from ports import free_port, wait_for

GLOBAL_FLOATS = [
    "uptime", "time", "cas_badval", "cmd_flush", "cmd_set", "cas_misses", "cas_hits",
    "bytes", "limit_maxbytes", "curr_items", "total_items", "bytes_read", "bytes_written",
    "curr_connections", "total_connections", "rejected_connections", "conn_yields",
    "listen_disabled_num", "evictions", "reclaimed", "store_too_large", "store_no_memory",
    "lru_crawler_starts", "direct_reclaims", "crawler_items_checked", "crawler_reclaimed",
    "moves_to_cold", "moves_to_warm", "moves_within_lru", "total_malloced", "accepting_conns",
] + [f"{op}_{outcome}" for op in ["get", "delete", "incr", "decr", "cas", "touch"]
     for outcome in ["hits", "misses"]]
GLOBAL_TIMEVALS = ["rusage_user", "rusage_system"]
# memcached series with nothing behind them here (README, "Known differences"): its LRU
# crawler and hot/warm/cold segmented LRU, its listener pause at maxconns (ferrocache
# refuses the connection instead, counted in rejected_connections), and slab geometry
# (chunk sizes and pages: the store packs items into segments, not slab chunks).
NO_ANALOGUE = {
    ("stats", key) for key in [
        "crawler_items_checked", "crawler_reclaimed", "direct_reclaims", "listen_disabled_num",
        "lru_crawler_starts", "moves_to_cold", "moves_to_warm", "moves_within_lru"]
} | {
    ("stats items", key) for key in [
        "age", "hits_to_cold", "hits_to_hot", "hits_to_temp", "hits_to_warm"]
} | {
    ("stats settings", key) for key in [
        "hot_lru_pct", "hot_max_factor", "lru_crawler_sleep", "lru_crawler_tocrawl",
        "warm_lru_pct", "warm_max_factor"]
} | {
    ("stats slabs", key) for key in [
        "chunk_size", "chunks_per_page", "free_chunks", "free_chunks_end", "total_chunks",
        "total_pages"]
}
ITEM_FLOATS = ["number", "age", "hits_to_hot", "hits_to_warm", "hits_to_cold", "hits_to_temp"]
SLAB_FLOATS = ["cmd_set", "cas_hits", "cas_badval", "chunk_size", "chunks_per_page",
               "total_pages", "total_chunks", "used_chunks", "free_chunks", "free_chunks_end",
               "mem_requested"] + [f"{op}_hits" for op in
                                   ["get", "delete", "incr", "decr", "cas", "touch"]]
LRU_CRAWLER_FLOATS = ["lru_crawler_sleep", "lru_crawler_tocrawl", "hot_lru_pct",
                      "warm_lru_pct", "hot_max_factor", "warm_max_factor"]


def ask(sock, command):
    """Sends one stats command and returns its lines up to END (as gomemcache reads them)."""
    sock.sendall(command.encode())
    data = b""
    while not data.endswith(b"END\r\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"FAIL connection closed during {command.strip()!r}")
        data += chunk
        if data.startswith(b"CLIENT_ERROR"):
            raise SystemExit(f"FAIL {command.strip()!r}: {data!r}")
    return data.split(b"\r\n")[:-2]


def scrape(port):
    """The exporter's view: global, per-slab and per-item stats, and the settings."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    stats, slabs, items = {}, {}, {}
    for command in ["stats\r\n", "stats slabs\r\n", "stats items\r\n"]:
        for line in ask(sock, command):
            parts = line.split(b" ")
            if len(parts) != 3 or parts[0] != b"STAT":
                continue
            name, value = parts[1].decode(), parts[2].strip().decode()
            fields = name.split(":")
            if len(fields) == 1:
                stats[name] = value
            elif len(fields) == 2:
                slabs.setdefault(int(fields[0]), {})[fields[1]] = value
            elif len(fields) == 3:
                items.setdefault(int(fields[1]), {})[fields[2]] = value
    settings = {}
    for line in ask(sock, "stats settings\r\n"):
        parts = line.split(b" ")
        if len(parts) == 3 and parts[0] == b"STAT":
            settings[parts[1].decode()] = parts[2].strip().decode()
    sock.close()
    return stats, slabs, items, settings


def check_scrape(port, who):
    """The series the exporter would make, as (table, key) pairs; fails where the exporter's
    scrape would fail: a value that does not parse, or a field it reads without checking."""
    stats, slabs, items, settings = scrape(port)
    problems, series = [], set()

    def number(table, key, where):
        # A missing key is skipped by the exporter (errKeyNotFound): no series, no failure.
        if key not in table:
            return
        try:
            float(table[key])
            series.add((where, key))
        except ValueError:
            problems.append(f"{where}: {key}={table[key]!r} is not a number")

    for key in GLOBAL_FLOATS:
        number(stats, key, "stats")
    # cmd_set and the cas counters are read with parse() and sum(): missing fails the scrape.
    for key in ["cmd_set", "cas_misses", "cas_hits", "cas_badval"]:
        if key not in stats:
            problems.append(f"stats: {key} missing (read unconditionally)")
    for key in GLOBAL_TIMEVALS:
        if key not in stats:
            continue
        halves = stats[key].split(".")
        if len(halves) != 2 or not all(h.isdigit() for h in halves):
            problems.append(f"stats: {key}={stats[key]!r} is not sec.usec")
        series.add(("stats", key))
    if "version" not in stats:
        problems.append("stats: version missing")
    for slab, table in items.items():
        for key in ITEM_FLOATS:
            number(table, key, "stats items")
    for slab, table in slabs.items():
        for key in SLAB_FLOATS:
            number(table, key, "stats slabs")
        for key in ["cmd_set", "cas_hits", "cas_badval"]:
            if key not in table:
                problems.append(f"stats slabs slab {slab}: {key} missing (read unconditionally)")
    number(settings, "maxconns", "stats settings")
    if settings.get("lru_crawler") == "yes":
        for key in LRU_CRAWLER_FLOATS:
            number(settings, key, "stats settings")
        if settings.get("lru_maintainer_thread") not in ("yes", "no"):
            problems.append("stats settings: lru_maintainer_thread is not yes/no")
    if problems:
        raise SystemExit(f"FAIL {who}: the exporter would report memcached_up 0:\n  "
                         + "\n  ".join(problems))
    if not items or not slabs:
        raise SystemExit(f"FAIL {who}: no per-slab figures after traffic "
                         f"(items {len(items)}, slabs {len(slabs)})")
    print(f"memcached_exporter fields: {who} OK, {len(series)} series")
    return stats, series


def traffic(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    for i in range(50):
        sock.sendall(f"set k{i} 0 0 5\r\nvalue\r\n".encode())
        assert sock.recv(100) == b"STORED\r\n"
    sock.sendall(b"get k1 nothere\r\n")
    reply = b""
    while not reply.endswith(b"END\r\n"):
        reply += sock.recv(1000)
    sock.close()


def run(command, port, who):
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        traffic(port)
        stats, series = check_scrape(port, who)
        if float(stats["get_hits"]) < 1 or float(stats["get_misses"]) < 1:
            raise SystemExit(f"FAIL {who}: get_hits/get_misses did not move")
        if float(stats["curr_items"]) < 50:
            raise SystemExit(f"FAIL {who}: curr_items {stats['curr_items']} after 50 sets")
        return series
    finally:
        process.terminate()
        process.wait(timeout=10)


def main():
    binary = sys.argv[1]
    memcached = sys.argv[2] if len(sys.argv) > 2 else shutil.which("memcached")
    reference = None
    if memcached:
        port = free_port()
        reference = run([memcached, "-u", "nobody", "-l", "127.0.0.1", "-p", str(port),
                         "-U", "0"], port, "memcached")
    port = free_port()
    ours = run([binary, "-l", "127.0.0.1", "-p", str(port), "--resp-port", "0"], port,
               "ferrocache")
    if reference is not None:
        missing = reference - ours
        unexplained = sorted(m for m in missing if m not in NO_ANALOGUE)
        if unexplained:
            raise SystemExit(f"FAIL series memcached gives the exporter and ferrocache does "
                             f"not: {unexplained}")
        print(f"memcached_exporter fields: {len(reference) - len(missing)} of memcached's "
              f"{len(reference)} series served; the other {len(missing)} describe machinery a "
              f"segment store does not have: {sorted(k for _, k in missing)}")


if __name__ == "__main__":
    main()
