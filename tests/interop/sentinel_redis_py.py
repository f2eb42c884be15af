#!/usr/bin/env python3
"""redis-py's Sentinel client across a failover of ferrocache nodes (issue 23).

Usage: sentinel_redis_py.py PATH_TO_FERROCACHE
Starts one ferrocache primary and two replicas, and three stock `redis-sentinel` processes
monitoring them, all on free loopback ports in a temporary directory. Then, as an application
would: `Sentinel(...).master_for("m")` writes and `slave_for("m")` reads; the primary is
killed (SIGKILL); the same client objects keep going with redis-py's own reconnection (a
connection error makes the pool ask the Sentinels again; -READONLY from a demoted node does
too). Checks: writes resume on the promoted replica within a bound, the Sentinels and the
client agree on the new address, ROLE answers as redis-py expects, and every write
acknowledged after the failover is on the new primary and its replica. phpredis's
RedisSentinel (tests/interop/phpredis_sentinel.php) finds the primary before and after the
failover too.
Needs redis-sentinel (Debian package redis-sentinel), redis-py (8.1.0 in .ci/run) and, for the
phpredis part, php-cli and php-redis (installed earlier in .ci/run).
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import redis
from redis.sentinel import Sentinel
from ports import free_port, wait_for


def main():
    binary = sys.argv[1]
    if shutil.which("redis-sentinel") is None:
        raise SystemExit("redis-sentinel is not installed (apt-get install redis-sentinel)")
    work = tempfile.mkdtemp(prefix="sentinel-redis-py-")
    procs = []
    try:
        ports = [free_port() for _ in range(3)]
        nodes = []
        for n, port in enumerate(ports):
            config = os.path.join(work, f"node-{n}.toml")
            with open(config, "w") as f:
                if n:
                    f.write(f'[replication]\nreplicaof = "127.0.0.1 {ports[0]}"\n')
            node = subprocess.Popen([binary, "--config", config, "-l", "127.0.0.1",
                                     "-p", str(free_port()), "--resp-port", str(port),
                                     "--dir", work])
            procs.append(node)
            nodes.append(node)
            wait_for(port)
        sentinel_ports = [free_port() for _ in range(3)]
        for n, port in enumerate(sentinel_ports):
            config = os.path.join(work, f"sentinel-{n}.conf")
            with open(config, "w") as f:
                f.write(f"port {port}\nbind 127.0.0.1\ndir {work}\n"
                        f"logfile {work}/sentinel-{n}.log\n"
                        f"sentinel monitor m 127.0.0.1 {ports[0]} 2\n"
                        "sentinel down-after-milliseconds m 1000\n"
                        "sentinel failover-timeout m 10000\n")
            procs.append(subprocess.Popen(["redis-sentinel", config], stdout=subprocess.DEVNULL))
            wait_for(port, "redis-sentinel")

        sentinel = Sentinel([("127.0.0.1", p) for p in sentinel_ports], socket_timeout=0.5)
        deadline = time.time() + 30
        while True:
            states = [redis.Redis(port=p, socket_timeout=1).info("sentinel").get("master0", {})
                      for p in sentinel_ports]
            if all(s.get("slaves") == 2 and s.get("sentinels") == 3 for s in states):
                break
            if time.time() > deadline:
                raise SystemExit(f"FAIL sentinels never saw the whole setup: {states}")
            time.sleep(0.2)

        master = sentinel.master_for("m", socket_timeout=0.5, decode_responses=True)
        replica = sentinel.slave_for("m", socket_timeout=0.5, decode_responses=True)
        check(sentinel.discover_master("m"), ("127.0.0.1", ports[0]), "discover_master")
        check(sorted(p for _, p in sentinel.discover_slaves("m")), sorted(ports[1:]),
              "discover_slaves")
        check(master.set("before", "1"), True, "set through master_for")
        phpredis_sentinel(sentinel_ports[0], ports[0], "php-before")
        check(master.execute_command("ROLE")[0], "master", "ROLE on the master")
        deadline = time.time() + 10
        while replica.get("before") != "1":
            if time.time() > deadline:
                raise SystemExit("FAIL the write never reached a replica read via slave_for")
            time.sleep(0.05)

        nodes[0].send_signal(signal.SIGKILL)
        nodes[0].wait()
        killed = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            try:
                master.set("after", "1")
                break
            except (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError):
                if time.monotonic() - killed > 30:
                    raise SystemExit("FAIL no write through master_for within 30 s of the kill")
                time.sleep(0.05)
        took = time.monotonic() - killed
        new = sentinel.discover_master("m")
        check(new[1] in ports[1:], True, f"new primary {new} is a former replica")
        check(master.execute_command("ROLE")[0], "master", "ROLE on the new master")
        phpredis_sentinel(sentinel_ports[0], new[1], "php-after")
        acked = []
        for i in range(200):
            master.set(f"k{i}", str(i))
            acked.append(i)
        direct = redis.Redis(host=new[0], port=new[1], decode_responses=True)
        check(direct.mget([f"k{i}" for i in acked]), [str(i) for i in acked],
              "acknowledged writes on the new primary")
        other = [p for p in ports[1:] if p != new[1]][0]
        follower = redis.Redis(port=other, decode_responses=True)
        deadline = time.time() + 20
        while follower.get("k199") != "199":
            if time.time() > deadline:
                raise SystemExit("FAIL the other replica never followed the new primary")
            time.sleep(0.05)
        role = follower.execute_command("ROLE")
        check((role[0], int(role[2])), ("slave", new[1]), "ROLE on the other replica")
        check(replica.get("k199"), "199", "a read through slave_for after the failover")
        print(f"sentinel_redis_py: ok: master_for wrote again {took:.2f} s after SIGKILL "
              f"of the primary ({attempts} attempts); {len(acked)} later writes on both nodes")
    except SystemExit:
        for n in range(3):
            log = os.path.join(work, f"sentinel-{n}.log")
            if os.path.exists(log):
                print(f"--- {log} ---\n" + open(log).read()[-3000:], file=sys.stderr)
        raise
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def phpredis_sentinel(sentinel_port, primary_port, key):
    """phpredis's RedisSentinel asks one Sentinel for the primary and writes there (retried for
    10 s: a Sentinel may learn of the failover a moment after the one redis-py asked)."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "phpredis_sentinel.php")
    if shutil.which("php") is None:
        print("sentinel_redis_py: php is not installed: the phpredis part is skipped")
        return
    deadline = time.time() + 10
    while True:
        run = subprocess.run(["php", script, str(sentinel_port), "m", str(primary_port), key],
                             capture_output=True, text=True)
        if run.returncode == 0:
            print(run.stdout.strip())
            return
        if time.time() > deadline:
            raise SystemExit(run.stdout + run.stderr)
        time.sleep(0.2)


def check(got, want, what):
    if got != want:
        raise SystemExit(f"FAIL {what}: got {got!r}, want {want!r}")


if __name__ == "__main__":
    main()
