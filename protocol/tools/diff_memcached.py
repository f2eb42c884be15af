#!/usr/bin/env python3
"""Differential check of the parser against a real memcached (1.6.18 was used).

Generates random single requests (a line built from a vocabulary of tricky tokens, an
optional data block, then `version\\r\\n` as a sentinel), each with a key never used
before so every read misses, sends each on a fresh connection, and writes
`<hex input> <hex reply> <0|1 closed>` lines. Then replay them through the parser:

  memcached -u root -p 21811 -U 0 -l 127.0.0.1 &     # no -A: `shutdown` is not generated
  python3 protocol/tools/diff_memcached.py 21811 3000 > /tmp/diff.txt
  MEMCACHED_DIFF_CASES=/tmp/diff.txt cargo test -p ferrocache-protocol -- --ignored diff

(Without MEMCACHED_DIFF_CASES the test starts memcached and runs this script itself; CI
does that.) Cases are generated in order from the seed, then probed 16 at a time (each on
its own connection, every key fresh, so they do not interfere); the output keeps their order.

Known deviations (see the parser's docs) are kept out of the vocabulary: control bytes in
keys, lenient base64, the `E`/`x` meta flags, values near the item size limit, shutdown.
"""
import base64
import random
import re
import socket
import sys
from concurrent.futures import ThreadPoolExecutor

PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 21811
N = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 1
rng = random.Random(SEED)
# The sentinel's answer, from any memcached version.
SENTINEL = re.compile(rb"VERSION [^\r\n ]+\r\n$")

CMDS = [b"get", b"gets", b"gat", b"gats", b"bget", b"set", b"add", b"replace", b"append",
        b"prepend", b"cas", b"incr", b"decr", b"touch", b"delete", b"flush_all", b"version",
        b"verbosity", b"cache_memlimit", b"stats", b"mg", b"ms", b"md", b"ma", b"mn", b"me",
        b"quit", b"bogus", b"GET", b"m", b"mx", b"gx", b"sx", b"xx"]
NUMS = [b"0", b"1", b"3", b"-1", b"-0", b"+2", b"10", b"4294967297", b"4294967296",
        b"18446744073709551615", b"18446744073709551616", b"2147483646", b"99999999999",
        b"abc", b"5x", b"\t5", b"5\t", b"1\r", b"noreply", b"100", b"-9223372036854775809"]
FLAGS = [b"b", b"c", b"f", b"h", b"k", b"l", b"O", b"O123", b"O" + b"a" * 31, b"O" + b"a" * 32,
         b"q", b"s", b"t", b"u", b"v", b"vfoo", b"I", b"P", b"L", b"T10", b"T", b"Tx", b"N0",
         b"Nx", b"R5", b"Rx", b"F5", b"Fx", b"F4294967297", b"C1", b"Cx", b"C-1", b"MS", b"ME",
         b"MA", b"MP", b"MR", b"MI", b"MD", b"M+", b"M-", b"Ms", b"MZ", b"M", b"MSS", b"J5",
         b"Jx", b"D2", b"Dx", b"D-1", b"zz", b"Z", b"\x80", b"\x7f"]
OTHER = [b"HTTP/1.1", b"graceful", b"reset", b"items", b"settings", b"detail", b"on",
         b"noreply", b"foo", b"\x00", b"b"]
DATA = [b"abc\r\n", b"x\r\n", b"\r\n", b"xyz\r\n", b"abcd\r\n", b"", b"x\n", b"ab"]


def key(i, j):
    """A key no other case uses, so every read misses."""
    r = rng.random()
    if r < 0.05:
        return (b"d%dk%d" % (i, j)).ljust(251, b"a")
    if r < 0.1:
        return (b"d%dk%d" % (i, j)).ljust(250, b"a")
    if r < 0.15:
        return b"!!!%d" % i
    if r < 0.25:
        return base64.b64encode(b"d%dk%d" % (i, j))
    return b"d%dk%d" % (i, j)


def case(i):
    toks = []
    r = rng.random()
    if r < 0.9:
        toks.append(rng.choice(CMDS))
    n = rng.randint(0, 6)
    for j in range(n):
        kind = rng.random()
        if j == 0 and kind < 0.7:
            toks.append(key(i, j))
        elif kind < 0.45:
            toks.append(rng.choice(NUMS))
        elif kind < 0.8:
            toks.append(rng.choice(FLAGS))
        elif kind < 0.9:
            toks.append(key(i, j))
        else:
            toks.append(rng.choice(OTHER))
    if rng.random() < 0.03:
        toks += [rng.choice(FLAGS) for _ in range(rng.randint(14, 22))]
    sep = rng.choice([b" ", b" ", b"  "])
    line = (b" " if rng.random() < 0.05 else b"") + sep.join(toks)
    end = rng.choice([b"\r\n", b"\r\n", b"\n", b" \r\n"])
    return line + end + rng.choice(DATA) + b"version\r\n"


def probe(data):
    s = socket.create_connection(("127.0.0.1", PORT))
    s.sendall(data)
    out, closed = b"", False
    s.settimeout(0.15)
    try:
        while not SENTINEL.search(out):
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
        s.settimeout(0.01)
        while True:  # anything after the sentinel's answer?
            d = s.recv(65536)
            if not d:
                closed = True
                break
            out += d
    except socket.timeout:
        pass
    s.close()
    return out, closed


cases = [case(i) for i in range(N)]
with ThreadPoolExecutor(max_workers=16) as pool:
    for c, (out, closed) in zip(cases, pool.map(probe, cases)):
        print(c.hex(), out.hex() or "-", 1 if closed else 0)
