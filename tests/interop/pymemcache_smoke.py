#!/usr/bin/env python3
"""pymemcache against the real ferrocache binary, used as a new user would use it.

Usage: pymemcache_smoke.py PATH_TO_FERROCACHE
Starts the server on a free loopback port, runs set/get/gets+cas/incr/decr/touch/gat/delete/
flush_all through pymemcache, and exits non-zero on the first difference from memcached.
"""
import socket
import subprocess
import sys
import time

from pymemcache.client.base import Client
from ports import free_port


def main():
    binary = sys.argv[1]
    port = free_port()
    server = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "--resp-port", "0"])
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("ferrocache did not start")
                time.sleep(0.02)
        c = Client(("127.0.0.1", port), connect_timeout=5, timeout=5)
        checks = 0

        def check(got, want, what):
            nonlocal checks
            if got != want:
                raise SystemExit(f"FAIL {what}: got {got!r}, want {want!r}")
            checks += 1

        check(c.set("k", "v1"), True, "set")
        check(c.get("k"), b"v1", "get")
        value, cas = c.gets("k")
        check(value, b"v1", "gets value")
        check(c.cas("k", "v2", cas), True, "cas with a fresh unique")
        check(c.cas("k", "v3", cas), False, "cas with a stale unique")
        check(c.get("k"), b"v2", "value after cas")
        check(c.set("n", "41"), True, "set counter")
        check(c.incr("n", 1), 42, "incr")
        check(c.decr("n", 50), 0, "decr stops at 0")
        check(c.incr("missing", 1), None, "incr on a missing key")
        check(c.touch("k", 100, noreply=False), True, "touch")
        check(c.touch("missing", 100, noreply=False), False, "touch missing")
        # pymemcache 4.0 has no gat() method; its own fetch path sends "gat <exptime> <key>"
        # and parses the VALUE lines exactly as for get.
        if hasattr(c, "gat"):
            check(c.gat("k", 100), b"v2", "gat")
        else:
            check(c._fetch_cmd(b"gat 100", ["k"], False), {"k": b"v2"}, "gat")
        check(c.get_many(["k", "n", "missing"]), {"k": b"v2", "n": b"0 "}, "get_many")
        check(c.add("k", "x"), True, "add with noreply reports True as pymemcache does")
        check(c.add("k", "x", noreply=False), False, "add on an existing key")
        check(c.delete("k", noreply=False), True, "delete")
        check(c.delete("k", noreply=False), False, "delete again")
        check(c.flush_all(noreply=False), True, "flush_all")
        check(c.get("n"), None, "get after flush_all")
        stats = c.stats()
        check(int(stats[b"cmd_flush"]), 1, "stats cmd_flush")
        check(c.version(), b"1.6.21", "version")
        print(f"pymemcache interop: {checks} passed, 0 failed")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
