#!/usr/bin/env python3
"""ferrocache's /metrics through Prometheus's own Python parser (prometheus_client).

Usage: metrics_prometheus.py PATH_TO_FERROCACHE
Starts the server with its HTTP port and a pool, sends known traffic over memcached and the
HTTP cache API, then parses GET /metrics with prometheus_client's text parser and checks that
the families are well formed (types, histogram buckets cumulative and ending at _count) and
that the figures agree with memcached's `stats` and `stats pools`.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from ports import free_port, wait_for


def http(port, method, path, body=None, headers=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                     headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def memcached(port, command, end=b"END\r\n"):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(command)
        data = b""
        while not data.endswith(end):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode()


def stats(port, group=""):
    text = memcached(port, f"stats {group}\r\n".encode())
    return {k: v for k, v in (line.split(" ", 2)[1:] for line in text.splitlines() if line.startswith("STAT "))}


def main():
    binary = sys.argv[1]
    port, http_port = free_port(), free_port()
    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    config.write('[[pool]]\nname = "sessions"\nprefix = "sess:"\n')
    config.close()
    server = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "--resp-port", "0",
                               "--http-port", str(http_port), "--config", config.name])
    checks = 0

    def check(ok, what):
        nonlocal checks
        if not ok:
            raise SystemExit(f"FAIL {what}")
        checks += 1

    try:
        wait_for(port)
        wait_for(http_port)
        check(http(http_port, "PUT", "/v1/cache/1", b"alice", {"X-Pool": "sessions"})[0] == 204, "put")
        for _ in range(3):
            check(http(http_port, "GET", "/v1/cache/1", None, {"X-Pool": "sessions"})[0] == 200, "get hit")
        check(http(http_port, "GET", "/v1/cache/2", None, {"X-Pool": "sessions"})[0] == 404, "get miss")
        memcached(port, b"set plain 0 0 1\r\nx\r\n", b"\r\n")
        memcached(port, b"get plain sess:1 nothing\r\n")

        status, body = http(http_port, "GET", "/metrics")
        check(status == 200, "GET /metrics")
        families = {f.name: f for f in text_string_to_metric_families(body.decode())}
        mc, pools = stats(port), stats(port, "pools")

        def sample(family, name=None, **labels):
            for s in families[family].samples:
                if (name is None or s.name == name) and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
            raise SystemExit(f"FAIL no sample {family} {name} {labels}")

        # prometheus_client strips _total from counter family names.
        check(families["ferrocache_commands"].type == "counter", "commands is a counter")
        check(families["ferrocache_command_duration_seconds"].type == "histogram", "duration is a histogram")
        check(sample("ferrocache_cmd_get") == float(mc["cmd_get"]), "cmd_get agrees with stats")
        check(sample("ferrocache_get_hits") == float(mc["get_hits"]), "get_hits agrees with stats")
        check(sample("ferrocache_pool_hits", pool="sessions") == float(pools["pool:sessions:hits"]) == 4.0,
              "pool hits agree with stats pools")
        check(sample("ferrocache_pool_misses", pool="sessions") == float(pools["pool:sessions:misses"]),
              "pool misses agree with stats pools")
        check(sample("ferrocache_items") == float(mc["curr_items"]), "items agree")
        check(sample("ferrocache_memory_limit_bytes") == float(mc["limit_maxbytes"]), "limit agrees")
        check(sample("ferrocache_evictions", pool="default", reason="lru") == 0.0, "evictions by reason")
        check(sample("ferrocache_commands", cmd="get", proto="http") == 4.0, "http gets counted")
        check(sample("ferrocache_commands", cmd="get", proto="memcache") == 1.0, "memcached get counted")
        buckets = [(float(s.labels["le"]), s.value) for s in families["ferrocache_command_duration_seconds"].samples
                   if s.name.endswith("_bucket") and s.labels["cmd"] == "get" and s.labels["proto"] == "http"]
        check(len(buckets) > 10 and buckets[-1][0] == float("inf"), "buckets end at +Inf")
        check(all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), "buckets are cumulative")
        count = sample("ferrocache_command_duration_seconds", "ferrocache_command_duration_seconds_count",
                       cmd="get", proto="http")
        check(buckets[-1][1] == count == 4.0, "+Inf bucket equals _count")
        print(f"metrics_prometheus: {checks} checks passed ({len(families)} families)")
    finally:
        server.terminate()
        server.wait(timeout=10)
        os.unlink(config.name)


if __name__ == "__main__":
    main()
