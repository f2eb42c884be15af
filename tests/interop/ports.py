"""Ports for the interop scripts: a free loopback port, and waiting until something listens.

Shared by every Python interop script (run as `python3 tests/interop/<script>.py`, so this
directory is on the import path). No server is started here: each script starts its own.
"""

import socket
import time


def free_port():
    """A loopback TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port, what="ferrocache", seconds=10):
    """Returns once 127.0.0.1:port accepts a connection; exits the script after `seconds`."""
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() > deadline:
                raise SystemExit(f"{what} did not start: nothing listens on {port}")
            time.sleep(0.02)
