#!/usr/bin/env python3
"""redis-py against the real ferrocache binary, as a new user would use it.

Usage: redis_py_smoke.py PATH_TO_FERROCACHE
Starts the server on free loopback ports and runs cache-style code through redis-py over RESP2
and RESP3 (protocol=3), including its default (transactional) pipeline and WATCH.
"""
import socket
import subprocess
import sys
import time

import redis
from ports import free_port, wait_for


def main():
    binary = sys.argv[1]
    port, resp_port = free_port(), free_port()
    server = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "--resp-port", str(resp_port)])
    checks = 0

    def check(got, want, what):
        nonlocal checks
        if got != want:
            raise SystemExit(f"FAIL {what}: got {got!r}, want {want!r}")
        checks += 1

    try:
        wait_for(resp_port)
        for protocol in (2, 3):
            r = redis.Redis(host="127.0.0.1", port=resp_port, protocol=protocol, decode_responses=True)
            r.flushall()
            check(r.ping(), True, f"ping (RESP{protocol})")
            check(r.set("user:1", "ada", ex=60), True, "set ex")
            check(r.get("user:1"), "ada", "get")
            check(0 < r.ttl("user:1") <= 60, True, "ttl")
            check(r.set("user:1", "x", nx=True), None, "set nx on existing")
            check(r.incr("hits"), 1, "incr")
            check(r.incrbyfloat("f", 1.5), 1.5, "incrbyfloat")
            check(r.hset("h", mapping={"a": "1", "b": "2"}), 2, "hset mapping")
            check(r.hgetall("h"), {"a": "1", "b": "2"}, "hgetall")
            check(r.hincrby("h", "a", 5), 6, "hincrby")
            check(r.mget(["user:1", "nope"]), ["ada", None], "mget")
            check(sorted(r.scan_iter(match="user:*")), ["user:1"], "scan_iter")
            try:
                r.hget("user:1", "x")
                raise SystemExit("FAIL WRONGTYPE not raised")
            except redis.ResponseError as e:
                check(str(e).startswith("WRONGTYPE"), True, "wrongtype")
            pipe = r.pipeline()  # transactional by default: MULTI ... EXEC
            pipe.incr("counter").incr("counter").get("counter")
            check(pipe.execute(), [1, 2, "2"], "transactional pipeline")
            with r.pipeline() as pipe:
                pipe.watch("counter")
                other = redis.Redis(host="127.0.0.1", port=resp_port, protocol=protocol)
                other.set("counter", 100)
                pipe.multi()
                pipe.incr("counter")
                try:
                    pipe.execute()
                    raise SystemExit("FAIL WATCH did not abort")
                except redis.WatchError:
                    checks += 1
            check(r.dbsize() >= 5, True, "dbsize")
            check("redis_version" in r.info("server"), True, "info server")
        print(f"redis-py interop: {checks} passed, 0 failed")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
