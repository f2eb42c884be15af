#!/usr/bin/env python3
"""Differential test: the same random command stream against ferrocache and the real server.

Usage: differential.py PATH_TO_FERROCACHE [--commands N] [--seed S]

Starts ferrocache, memcached and redis-server (all from PATH / apt) on free loopback ports,
replays a seeded random stream of memcached text+meta commands, and one of memcached binary
requests, against ferrocache's and memcached's memcached ports, and of RESP commands against ferrocache's and redis-server's
RESP ports, and stops at the first reply that differs (printing the command and both
replies). Known, intentional differences are normalised before comparing, each explained
where it is applied:
  - cas uniques are server-specific numbers: compared as "present", not by value (binary
    requests that compare a cas send each server the cas it gave last for that key);
  - trailing spaces that incr/decr pad values with, and so value lengths (see
    normalise_mc: memcached itself pads only sometimes);
  - hash field order is an implementation detail in Redis too: HGETALL/HKEYS/HVALS/KEYS
    replies are compared as sorted multisets;
  - remaining TTLs (each server's clock ticks differently) compare as "positive";
  - `version`/INFO are not sent (they name different servers).
"""
import argparse
import random
import re
import socket
import struct
import subprocess
import sys
import time
from ports import free_port, wait_for


class Reader:
    """Buffered socket reads of lines and exact byte counts."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


# ---------- memcached text + meta ----------

PLAIN_KEYS = [f"k{i}" for i in range(12)]
ARITH_KEYS = ["counter", "n1", "n2"]
KEYS = PLAIN_KEYS + ARITH_KEYS


def mc_command(rng):
    key = rng.choice(KEYS)
    value = rng.choice([b"", b"x", b"hello", b"12", b"007", b"18446744073709551615", b"a b c"])
    ttl = rng.choice([0, 0, 0, 100, -1])
    flags = rng.choice([0, 1, 4294967295])
    kind = rng.randrange(14)
    if kind < 3:
        verb = rng.choice(["set", "add", "replace", "append", "prepend"])
        if verb in ("append", "prepend"):
            # Never extend a counter: memcached's padding of incr results varies (see
            # normalise_mc), and appending would make that visible in the value itself.
            key = rng.choice(PLAIN_KEYS)
        noreply = " noreply" if rng.random() < 0.1 else ""
        return f"{verb} {key} {flags} {ttl} {len(value)}{noreply}\r\n".encode() + value + b"\r\n", "store"
    if kind < 5:
        keys = " ".join(rng.sample(KEYS, rng.randint(1, 3)))
        return f"{rng.choice(['get', 'gets'])} {keys}\r\n".encode(), "get"
    if kind == 5:
        return f"delete {key}\r\n".encode(), "line"
    if kind == 6:
        key = rng.choice(ARITH_KEYS)
        return f"{rng.choice(['incr', 'decr'])} {key} {rng.choice([0, 1, 5, 18446744073709551615])}\r\n".encode(), "line"
    if kind == 7:
        return f"touch {key} {rng.choice([0, 100])}\r\n".encode(), "line"
    if kind == 8:
        # No `h`/`l`: memcached's fetched bit and access time also move with its LRU
        # maintainer thread (we saw `h0` after an in-place arithmetic that a lone replay keeps
        # at `h1`), so they are not deterministic across servers.
        flags = " ".join(rng.sample(["v", "s", "f", "t", "k", "c", "q", "O123"], rng.randint(0, 4)))
        return f"mg {key} {flags}\r\nmn\r\n".encode(), "meta"
    if kind == 9:
        mode = rng.choice(["", " MS", " ME", " MA", " MP", " MR"])
        if mode in (" MA", " MP"):
            key = rng.choice(PLAIN_KEYS)
        opts = rng.choice(["", " T100", " F7", " c", " q", " I"])
        return f"ms {key} {len(value)}{mode}{opts}\r\n".encode() + value + b"\r\nmn\r\n", "meta"
    if kind == 10:
        # No invalidation of counters: whether memcached's arithmetic then keeps the stale
        # flags depends on its in-place-or-new-item race (see normalise_mc).
        modes = ["", "q", "k"] if key in ARITH_KEYS else ["", "q", "I T30", "k"]
        return f"md {key} {rng.choice(modes)}\r\nmn\r\n".encode(), "meta"
    if kind == 11:
        key = rng.choice(ARITH_KEYS)
        opts = rng.choice(["", "v", "N0 J5 v", "MD D2 v", "q", "t v"])
        return f"ma {key} {opts}\r\nmn\r\n".encode(), "meta"
    if kind == 12:
        return rng.choice([b"bogus\r\n", b"get\r\n", b"set x 0 0 -1\r\n", b"incr k1 abc\r\n", b"delete k1 5\r\n"]), "line"
    return f"gat {rng.choice([0, 100])} {key}\r\n".encode(), "get"


def mc_read(reader, kind):
    if kind == "line" or kind == "store":
        if kind == "store":
            pass
        return reader.line()
    if kind == "get":
        out = []
        while True:
            line = reader.line()
            out.append(line)
            if line.startswith(b"VALUE"):
                size = int(line.split()[3])
                out.append(reader.exact(size + 2))
            elif line == b"END" or line.startswith(b"CLIENT_ERROR") or line == b"ERROR":
                return b"\n".join(out)
    # meta: read until MN
    out = []
    while True:
        line = reader.line()
        out.append(line)
        if line.startswith(b"VA "):
            out.append(reader.exact(int(line.split()[1]) + 2))
        if line == b"MN":
            return b"\n".join(out)


def normalise_mc(reply):
    reply = re.sub(rb"(VALUE \S+ \d+ \d+) \d+", rb"\1 CAS", reply)
    reply = re.sub(rb"(^|\n|\s)c\d+", rb"\1cCAS", reply)
    # memcached rewrites an incr/decr result in place, padded with spaces, only when no other
    # thread holds the item (refcount 2); when its LRU maintainer does, it allocates an
    # unpadded item instead, so the padding (and so the length) varies from run to run.
    # ferrocache always pads. Compare values without trailing spaces and lengths as "N".
    reply = re.sub(rb" +\r\n", b"\r\n", reply)
    reply = re.sub(rb"(VALUE \S+ \d+) \d+", rb"\1 N", reply)
    reply = re.sub(rb"(^|\n)VA \d+", rb"\1VA N", reply)
    reply = re.sub(rb" s\d+", b" sN", reply)
    # Remaining TTLs tick with each server's clock (memcached's moves once a second from its
    # start, ours in milliseconds), so a positive TTL is compared as "positive".
    reply = re.sub(rb" t[1-9]\d*", b" tPOS", reply)
    return reply


def run_memcached(binary_port, real_port, count, rng):
    ours, theirs = socket.create_connection(("127.0.0.1", binary_port)), socket.create_connection(("127.0.0.1", real_port))
    ro, rt = Reader(ours), Reader(theirs)
    for i in range(count):
        request, kind = mc_command(rng)
        if kind == "store" and b" noreply\r\n" in request:
            # No reply to compare: follow with a get of the key to see the effect.
            ours.sendall(request)
            theirs.sendall(request)
            key = request.split()[1].decode()
            request, kind = f"get {key}\r\n".encode(), "get"
        ours.sendall(request)
        theirs.sendall(request)
        a, b = normalise_mc(mc_read(ro, kind)), normalise_mc(mc_read(rt, kind))
        if a != b:
            print(f"memcached difference at command {i}: {request!r}\n  ferrocache: {a!r}\n  memcached:  {b!r}")
            return False
    return True


# ---------- memcached binary ----------

BKEYS = [f"b{i}".encode() for i in range(6)]
BCOUNTERS = [b"bn1", b"bn2"]
# Opcodes (protocol-binary.xml): the quiet ones answer only on a miss or an error.
GET, SET, ADD, REPLACE, DELETE, INCR, DECR = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
GETQ, NOOP, GETK, GETKQ, APPEND, PREPEND = 0x09, 0x0A, 0x0C, 0x0D, 0x0E, 0x0F
SETQ, DELETEQ, INCRQ, TOUCH, GAT, GATQ, GATK = 0x11, 0x14, 0x15, 0x1C, 0x1D, 0x1E, 0x23
QUIET = {GETQ, GETKQ, SETQ, DELETEQ, INCRQ, GATQ}


def bin_request(opcode, key=b"", extras=b"", value=b"", cas=0, opaque=0):
    body = len(key) + len(extras) + len(value)
    header = struct.pack(">BBHBBHIIQ", 0x80, opcode, len(key), len(extras), 0, 0, body, opaque, cas)
    return header + extras + key + value


def bin_command(rng, i):
    """One request as (opcode, key, extras, value, cas_rule); cas_rule is None (send 0),
    "own" (the cas this server last returned for the key) or "stale" (a cas it never gave)."""
    key = rng.choice(BKEYS)
    value = rng.choice([b"", b"v", b"hello", b"12", b"a b"])
    flags = rng.choice([0, 5, 0xFFFFFFFF])
    ttl = rng.choice([0, 0, 1000])
    kind = rng.randrange(12)
    if kind < 3:
        op = rng.choice([SET, ADD, REPLACE, SETQ])
        cas = rng.choice([None, None, None, "own", "stale"])
        return op, key, struct.pack(">II", flags, ttl), value, cas
    if kind < 5:
        return rng.choice([GET, GETK, GETQ, GETKQ]), rng.choice(BKEYS + BCOUNTERS), b"", b"", None
    if kind == 5:
        return rng.choice([DELETE, DELETEQ]), key, b"", b"", rng.choice([None, None, "own", "stale"])
    if kind == 6:
        key = rng.choice(BCOUNTERS + [rng.choice(BKEYS)])
        # Expiry 0xffffffff: fail on a miss instead of creating the counter.
        expiry = rng.choice([0, 0xFFFFFFFF])
        extras = struct.pack(">QQI", rng.choice([0, 1, 7, 2**64 - 1]), rng.choice([0, 10]), expiry)
        return rng.choice([INCR, DECR, INCRQ]), key, extras, b"", None
    if kind == 7:
        return rng.choice([APPEND, PREPEND]), key, b"", value, rng.choice([None, None, "stale"])
    if kind == 8:
        return TOUCH, key, struct.pack(">I", rng.choice([0, 1000])), b"", None
    if kind == 9:
        return rng.choice([GAT, GATQ, GATK]), key, struct.pack(">I", rng.choice([0, 1000])), b"", None
    if kind == 10:
        # Malformed: a get with extras, a set without them, a key on a noop.
        return rng.choice([(GET, key, b"\0\0\0\0", b"", None), (SET, key, b"", value, None),
                           (NOOP, key, b"", b"", None)])
    return NOOP, b"", b"", b"", None


def bin_read(reader):
    """One response: (opcode, status, key, extras, value, cas)."""
    header = reader.exact(24)
    magic, opcode, keylen, extlen, _, status, body, _, cas = struct.unpack(">BBHBBHIIQ", header)
    if magic != 0x81:
        raise ValueError(f"bad response magic {magic:#x}")
    data = reader.exact(body)
    extras, key, value = data[:extlen], data[extlen:extlen + keylen], data[extlen + keylen:]
    return opcode, status, key, extras, value, cas


def normalise_bin(response, last_cas, key):
    opcode, status, rkey, extras, value, cas = response
    if cas:
        last_cas[key] = cas
    # cas uniques are each server's own numbers: compare only whether one was given. Values
    # lose trailing spaces: memcached pads an incr/decr result in place only sometimes (see
    # normalise_mc).
    return opcode, status, rkey, extras, value.rstrip(b" "), bool(cas)


def run_binary(our_port, real_port, count, rng):
    ports = (our_port, real_port)
    socks = [socket.create_connection(("127.0.0.1", port)) for port in ports]
    readers = [Reader(sock) for sock in socks]
    last_cas = [{}, {}]
    for i in range(count):
        opcode, key, extras, value, cas_rule = bin_command(rng, i)
        replies = []
        for n in range(2):
            cas = {None: 0, "own": last_cas[n].get(key, 0), "stale": 0x0BAD_CA5}[cas_rule]
            request = bin_request(opcode, key, extras, value, cas, opaque=i)
            if opcode in QUIET:
                # Quiet requests answer only on a miss or error: a noop after shows which.
                request += bin_request(NOOP, opaque=0xFFFFFFFF)
            socks[n].sendall(request)
            got = []
            while True:
                try:
                    response = bin_read(readers[n])
                except (EOFError, ConnectionResetError):
                    # Both servers close the connection after some malformed requests.
                    got.append("connection closed")
                    socks[n] = socket.create_connection(("127.0.0.1", ports[n]))
                    readers[n] = Reader(socks[n])
                    break
                got.append(normalise_bin(response, last_cas[n], key))
                if opcode not in QUIET or response[0] == NOOP:
                    break
            replies.append(got)
        if replies[0] != replies[1]:
            print(f"binary difference at command {i}: opcode {opcode:#x} key {key!r} extras {extras!r} "
                  f"value {value!r} cas {cas_rule}\n  ferrocache: {replies[0]!r}\n  memcached:  {replies[1]!r}")
            return False
    return True


# ---------- RESP ----------

RKEYS = ["a", "b", "c", "n", "h1", "h2"]


def resp_encode(args):
    out = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        arg = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(f"${len(arg)}\r\n".encode() + arg + b"\r\n")
    return b"".join(out)


def resp_read(reader):
    line = reader.line()
    kind, rest = line[:1], line[1:]
    if kind in (b"+", b"-", b":"):
        return line
    if kind == b"$":
        n = int(rest)
        return b"$-1" if n < 0 else reader.exact(n + 2)[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [resp_read(reader) for _ in range(n)]
    raise ValueError(f"unexpected reply {line!r}")


def resp_command(rng):
    key, other = rng.choice(RKEYS), rng.choice(RKEYS)
    value = rng.choice(["v", "10", "-3", "3.5", "hello", ""])
    field = rng.choice(["f1", "f2", "f3"])
    return rng.choice([
        ["SET", key, value],
        ["SET", key, value, "NX"],
        ["SET", key, value, "XX", "GET"],
        ["SET", key, value, "EX", "1000"],
        ["GET", key],
        ["GETSET", key, value],
        ["GETDEL", key],
        ["INCR", key],
        ["DECRBY", key, "7"],
        ["INCRBYFLOAT", key, "1.5"],
        ["APPEND", key, value],
        ["STRLEN", key],
        ["GETRANGE", key, "0", "-2"],
        ["SETRANGE", key, "2", "zz"],
        ["MSET", key, value, other, value],
        ["MGET", key, other, "nope"],
        ["DEL", key, other],
        ["EXISTS", key, other],
        ["EXPIRE", key, "1000"],
        ["EXPIRE", key, "500", rng.choice(["NX", "XX", "GT", "LT"])],
        ["TTL", key],
        ["PERSIST", key],
        ["TYPE", key],
        ["RENAME", key, other],
        ["HSET", key, field, value],
        ["HSET", key, field, value, "f9", "x"],
        ["HGET", key, field],
        ["HDEL", key, field],
        ["HLEN", key],
        ["HEXISTS", key, field],
        ["HINCRBY", key, field, "3"],
        ["HGETALL", key],
        ["HKEYS", key],
        ["HSTRLEN", key, field],
        ["HSETNX", key, field, value],
        ["HMGET", key, field, "f9"],
        ["ZADD", key, rng.choice(["1", "2.5", "-3", "inf"]), rng.choice(["m1", "m2", "m3"])],
        ["ZADD", key, rng.choice(["NX", "XX", "GT", "LT"]), "CH", "2", "m1", "0", "m4"],
        ["ZADD", key, "INCR", "1.5", "m2"],
        ["ZINCRBY", key, "2", rng.choice(["m1", "m2"])],
        ["ZSCORE", key, rng.choice(["m1", "m2", "m9"])],
        ["ZREM", key, "m1", "m9"],
        ["ZCARD", key],
        ["ZRANK", key, "m2"],
        ["ZREVRANK", key, "m1"],
        ["ZCOUNT", key, "(1", "+inf"],
        ["ZRANGE", key, "0", "-1", "WITHSCORES"],
        ["ZRANGE", key, "(0", "10", "BYSCORE", "LIMIT", "0", "2"],
        ["ZRANGEBYSCORE", key, "-inf", "2"],
        ["ZREVRANGE", key, "0", "1"],
        ["ZPOPMIN", key],
        ["ZMSCORE", key, "m1", "m4"],
        ["GET"],
        ["NOSUCHCMD", key],
        ["SET", key],
        ["PING"],
        ["ECHO", value],
    ])


SORTED = {"HGETALL", "HKEYS", "HVALS", "KEYS"}


def normalise_resp(command, reply):
    if command[0] == "HGETALL" and isinstance(reply, list):
        pairs = sorted(zip(reply[::2], reply[1::2]))
        return [x for pair in pairs for x in pair]
    if command[0] in SORTED and isinstance(reply, list):
        return sorted(reply)
    return reply


def run_resp(our_port, real_port, count, rng):
    ours, theirs = socket.create_connection(("127.0.0.1", our_port)), socket.create_connection(("127.0.0.1", real_port))
    ro, rt = Reader(ours), Reader(theirs)
    for sock in (ours, theirs):
        sock.sendall(resp_encode(["FLUSHALL"]))
    resp_read(ro), resp_read(rt)
    for i in range(count):
        command = resp_command(rng)
        request = resp_encode(command)
        ours.sendall(request)
        theirs.sendall(request)
        a, b = normalise_resp(command, resp_read(ro)), normalise_resp(command, resp_read(rt))
        if a != b:
            print(f"RESP difference at command {i}: {command}\n  ferrocache: {a!r}\n  redis:      {b!r}")
            return False
    return True


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--commands", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    mc_port, resp_port, real_mc, real_redis = free_port(), free_port(), free_port(), free_port()
    procs = [
        subprocess.Popen([args.binary, "-l", "127.0.0.1", "-p", str(mc_port), "--resp-port", str(resp_port)]),
        subprocess.Popen(["memcached", "-u", "root", "-l", "127.0.0.1", "-p", str(real_mc), "-U", "0"]),
        subprocess.Popen(["redis-server", "--port", str(real_redis), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no"], stdout=subprocess.DEVNULL),
    ]
    try:
        for port in (mc_port, resp_port, real_mc, real_redis):
            wait_for(port)
        ok = run_memcached(mc_port, real_mc, args.commands, random.Random(args.seed))
        ok = run_binary(mc_port, real_mc, args.commands, random.Random(args.seed + 2)) and ok
        ok = run_resp(resp_port, real_redis, args.commands, random.Random(args.seed + 1)) and ok
        if not ok:
            sys.exit(1)
        print(f"differential: {3 * args.commands} passed, 0 failed "
              f"({args.commands} each: memcached text+meta, memcached binary, RESP)")
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)


if __name__ == "__main__":
    main()
