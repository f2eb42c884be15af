#!/usr/bin/env python3
"""The dashboard page in headless Chromium, after real traffic.

Usage: dashboard_chromium.py PATH_TO_FERROCACHE [SCREENSHOT.png]
Starts ferrocache (2 MB, two pools, HTTP port), drives mixed traffic for a few seconds (HTTP
cache API hits and misses in both pools, memcached sets that make the LRU evict) while
Chromium loads the page (--virtual-time-budget lets its one-second updates run), then checks
the DOM Chromium rendered: every chart drew points, the pools table has a row per pool, the
status line shows the server's figures. With a second argument, also saves a screenshot there.
"""
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from ports import free_port, wait_for


def traffic(port, http_port, seconds):
    """Mixed load for a bounded time."""
    deadline = time.time() + seconds
    value = b"v" * 1000
    mc = socket.create_connection(("127.0.0.1", port), timeout=10)
    i = 0
    while time.time() < deadline:
        for pool, key in (("sessions", f"s{i % 50}"), ("pages", f"p{i % 200}")):
            if i % 3 == 0:
                req = urllib.request.Request(f"http://127.0.0.1:{http_port}/v1/cache/{key}", data=b"x",
                                             method="PUT", headers={"X-Pool": pool})
            else:
                req = urllib.request.Request(f"http://127.0.0.1:{http_port}/v1/cache/{key}",
                                             headers={"X-Pool": pool})
            try:
                urllib.request.urlopen(req, timeout=10).read()
            except urllib.error.HTTPError:
                pass  # a miss is a 404
        mc.sendall(b"set fill%d 0 0 %d\r\n%s\r\n" % (i, len(value), value))
        mc.recv(64)
        i += 1
    mc.close()


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("chromium is not installed")


def main():
    binary = sys.argv[1]
    screenshot = sys.argv[2] if len(sys.argv) > 2 else None
    chromium = find_chromium()
    port, http_port = free_port(), free_port()
    config = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    config.write('[[pool]]\nname = "sessions"\nprefix = "sess:"\n\n[[pool]]\nname = "pages"\nprefix = "page:"\n')
    config.close()
    server = subprocess.Popen([binary, "-l", "127.0.0.1", "-p", str(port), "--resp-port", "0", "-m", "2",
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
        load = threading.Thread(target=traffic, args=(port, http_port, 8))
        load.start()
        time.sleep(1)  # some traffic before the first sample, so the first deltas are not empty
        common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                  "--virtual-time-budget=15000", "--window-size=1400,1000"]
        url = f"http://127.0.0.1:{http_port}/"
        dom = subprocess.run(common + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
        if screenshot:
            subprocess.run(common + [f"--screenshot={screenshot}", url], capture_output=True, timeout=120)
        load.join()
        canvases = dict(re.findall(r'<canvas id="chart-([a-z]+)"[^>]*data-points="(\d+)"', dom))
        for chart in ("hits", "ops", "memory", "evictions", "latency"):
            check(int(canvases.get(chart, 0)) > 0, f"chart {chart} drew points ({canvases})")
        rows = re.findall(r"<tr><td>([a-z]+)</td>", dom)
        check(sorted(rows) == ["default", "pages", "sessions"], f"a row per pool: {rows}")
        check(re.search(r'id="status">v[0-9.]+ · up \d+s · \d+ items', dom) is not None, "status line")
        print(f"dashboard_chromium: {checks} checks passed")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
