#!/usr/bin/env python3
"""An unmodified redis_exporter (Debian's prometheus-redis-exporter) scraping ferrocache.

Usage: redis_exporter.py PATH_TO_FERROCACHE [PATH_TO_REDIS_EXPORTER]
Starts ferrocache with a RESP port, sends known traffic with redis-py, points the exporter at
it and reads the exporter's /metrics: the scrape must succeed (redis_up 1, no scrape error)
and the series Grafana's redis dashboards draw must carry our figures (commands, their
durations and errors, hits and misses, memory, clients, the slow log, latency percentiles).
"""
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import redis
from prometheus_client.parser import text_string_to_metric_families
from ports import free_port, wait_for


def main():
    binary = sys.argv[1]
    exporter = sys.argv[2] if len(sys.argv) > 2 else shutil.which("prometheus-redis-exporter")
    if not exporter:
        raise SystemExit("prometheus-redis-exporter is not installed")
    port, resp_port, exporter_port = free_port(), free_port(), free_port()
    server = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "--resp-port", str(resp_port)])
    scraper = None
    checks = 0

    def check(ok, what):
        nonlocal checks
        if not ok:
            raise SystemExit(f"FAIL {what}")
        checks += 1

    try:
        wait_for(resp_port)
        r = redis.Redis(host="127.0.0.1", port=resp_port, decode_responses=True)
        r.config_set("slowlog-log-slower-than", 0)
        r.set("k", "v")
        for _ in range(5):
            r.get("k")
        r.get("missing")
        try:
            r.incr("k")
        except redis.ResponseError:
            pass
        r.config_set("slowlog-log-slower-than", 10000)
        scraper = subprocess.Popen([exporter, "-redis.addr", f"redis://127.0.0.1:{resp_port}",
                                    "-web.listen-address", f"127.0.0.1:{exporter_port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(exporter_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{exporter_port}/metrics", timeout=30) as response:
            text = response.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

        def value(name, **labels):
            key = (name, tuple(sorted(labels.items())))
            if key not in samples:
                raise SystemExit(f"FAIL the exporter has no {name} {labels}")
            return samples[key]

        check(value("redis_up") == 1, "redis_up")
        check(value("redis_exporter_last_scrape_error", err="") == 0, "no scrape error")
        check(value("redis_commands_total", cmd="get") == 6, "GET calls")
        check(value("redis_commands_duration_seconds_total", cmd="get") > 0, "GET duration")
        check(value("redis_commands_failed_calls_total", cmd="incrby") == 1, "INCR (INCRBY in redis-py) failed_calls")
        check(value("redis_keyspace_hits_total") == 5, "keyspace hits")
        check(value("redis_keyspace_misses_total") == 1, "keyspace misses")
        check(value("redis_memory_max_bytes") > 0, "maxmemory")
        check(value("redis_memory_used_bytes") > 0, "used memory")
        check(value("redis_connected_clients") >= 1, "connected clients")
        check(value("redis_slowlog_length") >= 1, "slow log length")
        check(value("redis_config_maxclients") > 0, "CONFIG GET maxclients")
        percentiles = [k for k in samples if k[0] == "redis_latency_percentiles_usec" and ("cmd", "get") in k[1]]
        check(len(percentiles) > 0, "latency percentiles of GET")
        print(f"redis_exporter: {checks} checks passed ({len(samples)} series)")
    finally:
        if scraper:
            scraper.terminate()
            scraper.wait(timeout=10)
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
