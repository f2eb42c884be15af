#!/usr/bin/env python3
"""replication_lag.py: how long a write on a primary takes to become visible on a replica
(issue 22), under a background write load.

A primary (`-t 1`) and one ferrocache replica run on loopback. ferrobench drives the primary
at a fixed rate (text get:set 1:1; default 100,000 ops/s, so 50,000 writes/s); meanwhile a
prober writes `lagprobe:<i>` on the primary every 5 ms, and a subscriber on the replica (keyspace
notifications, `notify-keyspace-events KA` there) notes when each arrives. Lag = arrival on
the replica minus the moment the SET was sent to the primary (so it includes the primary's own
answer time). Prints p50, p99 and max in ms.

Does not measure: lag to a stock Redis replica (it would not notify the same way), lag with
several replicas, lag under pipelined saturation.

Usage: bench/replication_lag.py [--rate OPS] [--seconds S]
Needs release builds (cargo build --release -p ferrocache -p ferrocache-bench) and redis-py.
"""
import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_ping(port):
    for _ in range(500):
        try:
            if redis.Redis(port=port).ping():
                return
        except redis.exceptions.ConnectionError:
            time.sleep(0.02)
    sys.exit(f"nothing answers on {port}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=int, default=100_000)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    ferro = os.environ.get("FERRO", f"{ROOT}/target/release/ferrocache")
    bench = os.environ.get("FERROBENCH", f"{ROOT}/target/release/ferrobench")
    work = tempfile.mkdtemp()
    procs = []
    try:
        ports = {name: (free_port(), free_port()) for name in ("primary", "replica")}
        for name, (mc, rp) in ports.items():
            cmd = [ferro, "-l", "127.0.0.1", "-p", str(mc), "--resp-port", str(rp), "-t", "1",
                   "-m", "1024", "--dir", work, "--dbfilename", f"{name}.fcs"]
            if name == "replica":
                cmd += ["--replicaof", "127.0.0.1", str(ports["primary"][1])]
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_ping(rp)
        replica = redis.Redis(port=ports["replica"][1])
        for _ in range(500):
            if replica.info("replication").get("master_link_status") == "up":
                break
            time.sleep(0.02)
        replica.config_set("notify-keyspace-events", "KA")
        sub = replica.pubsub()
        sub.psubscribe("__keyspace@0__:lagprobe:*")
        sub.get_message(timeout=1)
        load = subprocess.Popen(
            [bench, "-s", f"127.0.0.1:{ports['primary'][0]}", "-P", "text", "-r", "1:1",
             "-c", "20", "-p", "16", "-n", "100000", "-d", "100", "--rate", str(args.rate),
             "-D", str(args.seconds + 2)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(load)
        time.sleep(1)
        sent = {}
        lags = []

        def listen():
            while True:
                msg = sub.get_message(timeout=2)
                if msg is None:
                    return
                if msg["type"] != "pmessage" or msg["data"] != b"set":
                    continue
                now = time.monotonic()
                key = msg["channel"].split(b":", 2)[-1].decode()
                i = int(key.split(":")[-1])
                if i in sent:
                    lags.append((now - sent[i]) * 1000)

        listener = threading.Thread(target=listen)
        listener.start()
        primary = redis.Redis(port=ports["primary"][1])
        i = 0
        end = time.monotonic() + args.seconds
        while time.monotonic() < end:
            i += 1
            sent[i] = time.monotonic()
            primary.set(f"lagprobe:{i}", "x")
            time.sleep(0.005)
        listener.join()
        lags.sort()
        if not lags:
            sys.exit("no probe arrived")
        p = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
        print(f"probes {i}, arrived {len(lags)}; lag ms p50 {p(0.5):.2f} p99 {p(0.99):.2f} "
              f"max {lags[-1]:.2f} (load {args.rate} ops/s, 1:1 get:set)")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
