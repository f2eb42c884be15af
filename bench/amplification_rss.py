#!/usr/bin/env python3
"""RSS over time while one client asks for a 10 GB reply and never reads it.

Starts a server (ferrocache, or memcached for reference) on a free 127.0.0.1 port with a
64 MB store, stores one 500 KB value that does not compress, then sends one 80 KB line
`get big big ... big` (20,000 times the key) on a connection that never reads. Samples the
server's RSS (/proc/PID/status VmRSS) every 100 ms for --seconds, while a second client reads
the value every 100 ms (it must keep getting it whole). Prints one markdown row per half
second: RSS, and at the end the kernel's peak (VmHWM, which sampling can miss), whether the attacking connection is still open, the other client's reads.
What it does not measure: throughput, or other amplification shapes (tests/amplification.rs
checks those). Every process it starts is killed on exit; traffic stays on loopback.

Usage: bench/amplification_rss.py [--server ferrocache|memcached] [--binary PATH] [--seconds S]
                                  [--max-rss-mb MB]
"""
import argparse
import os
import socket
import subprocess
import sys
import time

VALUE_LEN = 500_000
REPEATS = 20_000


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_mb(pid, field="VmRSS"):
    """A /proc/PID/status memory field in MB: VmRSS (now) or VmHWM (the peak so far)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def read_value(sock):
    sock.sendall(b"get big\r\n")
    want = len(f"VALUE big 0 {VALUE_LEN}\r\n") + VALUE_LEN + 2 + 5
    got = b""
    while len(got) < want:
        chunk = sock.recv(1 << 20)
        if not chunk:
            return False
        got += chunk
    return got.endswith(b"END\r\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", choices=["ferrocache", "memcached"], default="ferrocache")
    parser.add_argument("--binary")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-rss-mb", type=float, default=4096,
                        help="stop (and kill the server) once its RSS passes this")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    port = free_port()
    if args.server == "ferrocache":
        binary = args.binary or os.path.join(root, "target/release/ferrocache")
        command = [binary, "-l", "127.0.0.1", "-p", str(port), "--resp-port", "0", "-m", "64", "-t", "1"]
    else:
        binary = args.binary or "memcached"
        command = [binary, "-l", "127.0.0.1", "-p", str(port), "-m", "64", "-t", "1", "-U", "0"]
        if os.geteuid() == 0:
            command += ["-u", "nobody"]  # memcached refuses to run as root
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        setup = None
        for _ in range(200):
            try:
                setup = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                time.sleep(0.05)
        if setup is None:
            sys.exit(f"{args.server} did not start on port {port}")
        value = os.urandom(VALUE_LEN)
        setup.sendall(b"set big 0 0 %d\r\n" % VALUE_LEN + value + b"\r\n")
        assert setup.recv(100) == b"STORED\r\n"
        baseline = rss_mb(server.pid)
        attacker = socket.create_connection(("127.0.0.1", port))
        attacker.sendall(b"get" + b" big" * REPEATS + b"\r\n")
        attacker.setblocking(False)
        reader = socket.create_connection(("127.0.0.1", port))
        print(f"{args.server} ({' '.join(command[:1])}), 64 MB store, RSS before the attack: {baseline:.0f} MB")
        print("| t (s) | RSS (MB) | attacker connection | other client's reads ok |")
        print("|---:|---:|---|---:|")
        start = time.time()
        ok = 0
        peak = baseline
        next_row = 0.0
        closed_at = None
        while time.time() - start < args.seconds:
            if server.poll() is not None:
                print(f"| {time.time() - start:.1f} | - | server exited with {server.returncode} | {ok} |")
                return
            peak = max(peak, rss_mb(server.pid))
            if peak > args.max_rss_mb:
                print(f"| {time.time() - start:.1f} | {peak:.0f} | stopped: RSS over "
                      f"{args.max_rss_mb:.0f} MB, server killed | {ok} |")
                break
            if closed_at is None:
                try:
                    if attacker.recv(1, socket.MSG_PEEK) == b"":
                        closed_at = time.time() - start
                except BlockingIOError:
                    pass
                except ConnectionError:
                    closed_at = time.time() - start
            if read_value(reader):
                ok += 1
            elapsed = time.time() - start
            if elapsed >= next_row:
                state = "open" if closed_at is None else f"closed at {closed_at:.1f} s"
                print(f"| {elapsed:.1f} | {rss_mb(server.pid):.0f} | {state} | {ok} |")
                next_row += 0.5
            time.sleep(0.1)
        hwm = rss_mb(server.pid, "VmHWM")
        print(f"peak RSS sampled {peak:.0f} MB; VmHWM (the kernel's peak) {hwm:.0f} MB, "
              f"{hwm - baseline:+.0f} MB over the RSS before the attack")
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    sys.exit(main())
