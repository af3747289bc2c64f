#!/usr/bin/env python3
"""Page-paint figure of the dashboard (docs/BENCHMARKS.md, "Dashboard").

Loads a page of a running `benchfleet serve` in headless Chromium N times (a fresh tab each) and
prints p50 and max of `window.bfPaintMs`: milliseconds from navigation start until the history
plot is on screen (set by app.js in the first animation frame after the plot is drawn).

    python3 xtask/scripts/page_paint.py http://127.0.0.1:PORT/history.html?benchmark=bench-0000 20

Standard library only: a minimal WebSocket client for the DevTools protocol.
"""
import base64
import json
import os
import re
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time


class Ws:
    def __init__(self, url):
        m = re.match(r"ws://([^/:]+):(\d+)(/.*)", url)
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.s = socket.create_connection((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall(
            (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.s.recv(1)
        assert b" 101 " in head, head
        self.next = 0

    def send(self, obj):
        data = json.dumps(obj).encode()
        hdr = bytearray([0x81])
        n = len(data)
        if n < 126:
            hdr.append(0x80 | n)
        elif n < 65536:
            hdr.append(0x80 | 126)
            hdr += struct.pack(">H", n)
        else:
            hdr.append(0x80 | 127)
            hdr += struct.pack(">Q", n)
        mask = os.urandom(4)
        hdr += mask
        self.s.sendall(bytes(hdr) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.s.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._exact(8))[0]
            msg += self._exact(n)
            if b0 & 0x80:
                return json.loads(msg)

    def call(self, method, params=None, session=None):
        self.next += 1
        req = {"id": self.next, "method": method, "params": params or {}}
        if session:
            req["sessionId"] = session
        self.send(req)
        while True:
            m = self.recv()
            if m.get("id") == self.next:
                if "error" in m:
                    raise RuntimeError(m["error"])
                return m["result"]


def main():
    url, n = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
    profile = tempfile.mkdtemp()
    chrome = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1300,1000", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        for line in chrome.stderr:
            if line.startswith("DevTools listening on "):
                ws = Ws(line.split(" ")[-1].strip())
                break
        times = []
        for _ in range(n):
            target = ws.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = ws.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            ws.call("Page.navigate", {"url": url}, session)
            deadline = time.time() + 30
            while time.time() < deadline:
                r = ws.call("Runtime.evaluate", {"expression": "window.bfPaintMs", "returnByValue": True}, session)
                v = r["result"].get("value")
                if v is not None:
                    times.append(v)
                    break
                time.sleep(0.01)
            ws.call("Target.closeTarget", {"targetId": target})
        times.sort()
        print(f"{url}: {len(times)} loads, painted p50 {statistics.median(times):.0f} ms, "
              f"max {times[-1]:.0f} ms (from navigation start)")
    finally:
        chrome.kill()


if __name__ == "__main__":
    main()
