#!/usr/bin/env python3
"""Kill->writable time of a Sentinel failover (issue 23), driven by bench/failover.sh.

Each run: 1 primary + 2 replicas (ferrocache or redis-server) and 3 stock redis-sentinel
processes on loopback, fresh ports and a fresh directory; once every sentinel knows both
replicas and the other sentinels, SET on the primary, SIGKILL it, then SET on both replicas
every 10 ms (a fresh connection each) until one answers +OK: that time is the run's figure.
After a settle time it counts the nodes reporting role:master (must be 1) and the sentinels'
+switch-master events. Does not measure: time until clients learn the new address, load
during the failover, partitions (the primary is killed, not cut off)."""
import argparse, os, shutil, signal, socket, subprocess, sys, tempfile, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cmd(port, *args, timeout=1.0):
    """One RESP command on a fresh connection; returns the reply's first line or raises."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        buf = b""
        while b"\r\n" not in buf:
            d = s.recv(65536)
            if not d: raise ConnectionError("closed")
            buf += d
        return buf.split(b"\r\n")[0].decode()
    finally:
        s.close()

def info(port, section):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.sendall(b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode()))
    buf = b""
    while True:
        d = s.recv(65536)
        buf += d
        if b"\r\n" in buf:
            n = int(buf.split(b"\r\n")[0][1:])
            if len(buf) >= len(buf.split(b"\r\n")[0]) + 2 + n: break
    s.close()
    return dict(l.split(":", 1) for l in buf.decode().split("\r\n")[1:] if ":" in l)

def run_once(args, workdir):
    ports = [free_port() for _ in range(3)]
    procs = []
    for i, p in enumerate(ports):
        if args.server == "redis":
            conf = os.path.join(workdir, f"n{i}.conf")
            with open(conf, "w") as f:
                f.write(f"port {p}\nbind 127.0.0.1\ndir {workdir}\ndbfilename n{i}.rdb\nsave \"\"\n")
                if i: f.write(f"replicaof 127.0.0.1 {ports[0]}\n")
            argv = ["redis-server", conf]
        else:
            conf = os.path.join(workdir, f"n{i}.toml")
            with open(conf, "w") as f:
                if i: f.write(f"[replication]\nreplicaof = \"127.0.0.1 {ports[0]}\"\n")
            argv = [args.binary, "--config", conf, "-p", str(free_port()), "--resp-port", str(p)]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, f"n{i}.log"), "w")))
    sentinels = []
    sports = [free_port() for _ in range(3)]
    for i, sp in enumerate(sports):
        conf = os.path.join(workdir, f"s{i}.conf")
        with open(conf, "w") as f:
            f.write(f"port {sp}\nbind 127.0.0.1\ndir {workdir}\nlogfile {workdir}/s{i}.log\n"
                    f"sentinel monitor m 127.0.0.1 {ports[0]} 2\n"
                    f"sentinel down-after-milliseconds m {args.down_after}\n"
                    f"sentinel failover-timeout m 20000\n")
        sentinels.append(subprocess.Popen(["redis-sentinel", conf], stdout=subprocess.DEVNULL))
    try:
        deadline = time.time() + 30
        while True:
            try:
                ok = all(info(sp, "sentinel").get("master0", "").endswith("slaves=2,sentinels=3") for sp in sports)
            except OSError:
                ok = False
            if ok: break
            if time.time() > deadline: raise RuntimeError("sentinels never saw the whole setup")
            time.sleep(0.1)
        cmd(ports[0], "SET", "before", "1")
        time.sleep(0.5)
        procs[0].send_signal(signal.SIGKILL); procs[0].wait()
        t0 = time.monotonic()
        writable = None
        while writable is None and time.monotonic() - t0 < 60:
            for p in ports[1:]:
                try:
                    if cmd(p, "SET", "after", "1", timeout=0.5) == "+OK":
                        writable = p; break
                except OSError:
                    pass
            else:
                time.sleep(0.01)
        elapsed = time.monotonic() - t0
        # Let things settle, then count promotions.
        time.sleep(args.settle)
        logs = [open(os.path.join(workdir, f"s{i}.log")).read() for i in range(3)]
        switches = sum(l.count("+switch-master") for l in logs)
        # +sdown of a master beyond the one per sentinel for the killed node.
        resdown = sum(l.count("+sdown master") for l in logs) - 3
        masters = [p for p in ports[1:] if info(p, "replication")["role"] == "master"]
        return elapsed, writable, switches, len(masters), resdown
    finally:
        for pr in procs + sentinels:
            if pr.poll() is None:
                pr.kill(); pr.wait()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", choices=["ferrocache", "redis"], default="ferrocache")
    ap.add_argument("--binary", default="target/release/ferrocache")
    ap.add_argument("--down-after", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--settle", type=float, default=4.0)
    args = ap.parse_args()
    times = []
    for r in range(args.runs):
        workdir = tempfile.mkdtemp(prefix="failover-")
        try:
            t, port, switches, masters, resdown = run_once(args, workdir)
            times.append(t)
            print(f"run {r}: writable after {t:.3f}s on {port}; switch-master events {switches}; masters {masters}; later sdowns of a master {resdown}", flush=True)
            if masters != 1 or resdown:
                print(f"  logs kept in {workdir}", flush=True); continue
        except Exception as e:
            print(f"run {r}: {e}; logs in {workdir}"); continue
        shutil.rmtree(workdir)
    times.sort()
    if times:
        median = (times[(len(times) - 1) // 2] + times[len(times) // 2]) / 2
        print(f"RESULT {args.server} down-after-milliseconds {args.down_after}: median {median:.2f} s, "
              f"best {times[0]:.2f} s, worst {times[-1]:.2f} s over {len(times)} runs")

main()
