#!/usr/bin/python3
"""akload's self-test (doc/akload.md): akload against a small WebSocket server
written here, whose behaviour is known exactly.

  akload_selftest.py AKLOAD

The server (asyncio, raw RFC 6455, 127.0.0.1 on a free port) echoes /echo
and broadcasts /room/NAME, each reply sent DELAY seconds after the message
arrived (scheduled, so pipelined messages are not serialised), and can stall
its whole event loop once for STALL seconds. It counts what it received and
sent. The checks:

 1. delay: with a 40 ms delay, closed loop, every reported latency (min,
    p50, p99) is at least 40 ms, and counts match: akload's totals equal
    the server's (sent == received by the server == replies).
 2. open loop, no coordinated omission: at 400 msg/s for 2 s, a single
    600 ms stall of the server inside the window shows up in p99 (at least
    half the stall), though only a few messages per connection were in
    flight when it began.
 3. rooms: 2 rooms x 4 clients, closed loop: every message reaches the 4
    members of its room (deliveries == 4 x sent, as the server counted).
 0. the histogram: quantiles of 200000 values over 12 decades are at or
    above the exact ones and within one bucket (1/64) of them.
 4. bounds and refusals: --max-messages caps what is sent; another host
    than 127.0.0.1 and bad arguments exit 2 without sending anything.

Latency bounds are one-sided (at least the delay) or generous, so a slow
CI machine cannot fail the test; it can only make a result look worse.
"""
import asyncio
import base64
import errno
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Server:
    def __init__(self, delay=0.0, stall_after=None, stall=0.0):
        self.delay = delay
        self.stall_after = stall_after  # seconds after the first message
        self.stall = stall
        self.received = 0
        self.sent = 0
        self.rooms = {}
        self.first = None
        self.stalled = False
        self.ready = threading.Event()
        self.loop = None
        self.port = None
        self.errors = []

    # -- framing ---------------------------------------------------------
    @staticmethod
    def frame(op, payload):
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", 0x80 | op, n)
        elif n < 65536:
            hdr = struct.pack("!BBH", 0x80 | op, 126, n)
        else:
            hdr = struct.pack("!BBQ", 0x80 | op, 127, n)
        return hdr + payload

    async def handle(self, reader, writer):
        room = None
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            key = None
            for l in lines[1:]:
                if l.lower().startswith("sec-websocket-key:"):
                    key = l.split(":", 1)[1].strip().encode()
            acc = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % acc).encode())
            if path.startswith("/room/"):
                room = self.rooms.setdefault(path, [])
                room.append(writer)
            while True:
                b0, b1 = await reader.readexactly(2)
                op, n = b0 & 15, b1 & 127
                if n == 126:
                    n = struct.unpack("!H", await reader.readexactly(2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", await reader.readexactly(8))[0]
                if not b1 & 0x80:
                    self.errors.append("unmasked client frame")
                    return
                mask = await reader.readexactly(4)
                data = bytes(c ^ mask[i & 3] for i, c in enumerate(await reader.readexactly(n)))
                if op == 8:
                    writer.write(self.frame(8, data[:2]))
                    await writer.drain()
                    return
                if op not in (1, 2):
                    continue
                self.received += 1
                now = time.monotonic()
                if self.first is None:
                    self.first = now
                if (self.stall_after is not None and not self.stalled
                        and now - self.first >= self.stall_after):
                    self.stalled = True
                    time.sleep(self.stall)  # the whole server stops, as in a GC pause
                targets = list(room) if room is not None else [writer]
                f = self.frame(op, data)

                def send(targets=targets, f=f):
                    for t in targets:
                        if not t.is_closing():
                            t.write(f)
                            self.sent += 1
                if self.delay > 0:
                    self.loop.call_later(self.delay, send)
                else:
                    send()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if room is not None and writer in room:
                room.remove(writer)
            writer.close()

    def run(self):
        async def main():
            self.loop = asyncio.get_running_loop()
            srv = await asyncio.start_server(self.handle, "127.0.0.1", 0, backlog=512)
            self.port = srv.sockets[0].getsockname()[1]
            self.stop = asyncio.Event()
            self.ready.set()
            await self.stop.wait()
            srv.close()
        asyncio.run(main())

    def __enter__(self):
        self.th = threading.Thread(target=self.run, daemon=True)
        self.th.start()
        if not self.ready.wait(10):
            raise RuntimeError("test server did not start")
        return self

    def __exit__(self, *a):
        self.loop.call_soon_threadsafe(self.stop.set)
        self.th.join(10)


AKLOAD = None
failures = []


def run(args, timeout=60):
    p = subprocess.run([AKLOAD] + args, capture_output=True, text=True, timeout=timeout)
    return p


def load(srv, path, args):
    p = run(["--json", "-q"] + args + ["ws://127.0.0.1:%d%s" % (srv.port, path)])
    sys.stdout.write(p.stderr)
    if p.returncode != 0:
        fail("akload exited %d: %s" % (p.returncode, p.stderr.strip()))
        return None
    return json.loads(p.stdout)


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def fail(what):
    check(False, what)


def main():
    global AKLOAD
    AKLOAD = sys.argv[1]
    if os.environ.get("AK_UNDER_QEMU_USER") == "1":
        print("skipped: under qemu-user (the test needs the host's sockets and timing)")
        return 77

    # 0. the histogram against exact order statistics
    try:
        p = run(["--check-histogram"])
    except OSError as e:
        if e.errno == errno.ENOEXEC:  # an -m32 or foreign binary this kernel cannot run
            print("skipped: %s cannot be executed here (%s)" % (AKLOAD, e.strerror))
            return 77
        raise
    sys.stdout.write(p.stdout + p.stderr)
    check(p.returncode == 0, "log-linear histogram: quantiles within one bucket, never below")

    # 1. a known delay, closed loop; the counts match the server's
    delay = 0.040
    with Server(delay=delay) as s:
        r = load(s, "/echo", ["-c", "8", "-t", "2", "-d", "2", "-w", "0.3", "-T", "1"])
        time.sleep(0.2)
        if r:
            L = r["latency_ms"]
            check(L["samples"] > 50, "delay: enough samples (%d)" % L["samples"])
            check(L["min"] >= delay * 1e3, "delay: min %.2f ms >= %.0f ms" % (L["min"], delay * 1e3))
            check(L["p50"] >= delay * 1e3, "delay: p50 %.2f ms >= %.0f ms" % (L["p50"], delay * 1e3))
            check(L["p99"] >= L["p50"] and L["max"] >= L["p99.9"] >= L["p99"] >= L["p90"] >= L["p50"],
                  "delay: percentiles are ordered")
            check(L["p50"] < delay * 1e3 + 1000, "delay: p50 %.2f ms is the delay, not seconds" % L["p50"])
            # 8 connections x depth 2, each reply 40 ms later: ~400 msg/s.
            check(r["msgs_per_s"] <= 16 / delay * 1.05,
                  "delay: closed loop cannot beat conns*depth/delay (%.0f <= %.0f msg/s)"
                  % (r["msgs_per_s"], 16 / delay * 1.05))
            t = r["totals"]
            check(t["sent"] == s.received == t["replies"] == s.sent,
                  "counts match: akload sent %d, server received %d, server sent %d, akload got %d"
                  % (t["sent"], s.received, s.sent, t["replies"]))
            check(r["lost"] == 0 and r["errors"] == 0, "delay: nothing lost, no errors")

    # 2. open loop: a stall shows up in p99 (no coordinated omission)
    stall = 0.6
    with Server(stall_after=0.3 + 0.7, stall=stall) as s:
        r = load(s, "/echo", ["-c", "4", "-t", "1", "-r", "400", "-w", "0.3", "-T", "2",
                              "--drain", "5"])
        if r:
            L = r["latency_ms"]
            check(s.stalled, "open loop: the server did stall")
            check(L["p99"] >= stall * 1e3 / 2,
                  "open loop: p99 %.1f ms shows the %.0f ms stall" % (L["p99"], stall * 1e3))
            check(L["max"] >= stall * 1e3 * 0.8, "open loop: max %.1f ms ~ the stall" % L["max"])
            check(700 <= r["sent"] <= 900, "open loop: ~400 msg/s x 2 s were sent (%d)" % r["sent"])
            check(r["totals"]["sent"] == s.received, "open loop: counts match (%d, %d)"
                  % (r["totals"]["sent"], s.received))
    # the same stall seen by a closed loop, for contrast (printed, not asserted)
    with Server(stall_after=0.3 + 0.7, stall=stall) as s:
        r = load(s, "/echo", ["-c", "4", "-t", "1", "-w", "0.3", "-T", "2", "--drain", "5"])
        if r:
            print("info closed loop with the same stall: %d samples, p99 %.1f ms, p99.9 %.1f ms "
                  "(coordinated omission: the stall holds back the sends)"
                  % (r["latency_ms"]["samples"], r["latency_ms"]["p99"], r["latency_ms"]["p99.9"]))

    # 3. rooms: each message reaches every member of its room
    with Server() as s:
        r = load(s, "/room/t", ["--rooms", "2", "-c", "8", "-t", "2", "-w", "0.2", "-T", "0.5"])
        if r:
            t = r["totals"]
            check(t["sent"] > 0 and t["deliveries"] == 4 * t["sent"] == t["expected_deliveries"],
                  "rooms: deliveries %d == 4 x sent %d" % (t["deliveries"], t["sent"]))
            check(s.sent == t["deliveries"] and s.received == t["sent"],
                  "rooms: the server agrees (received %d, sent %d)" % (s.received, s.sent))
            check(r["latency_ms"]["samples"] == r["deliveries"], "rooms: one sample per delivery")

    # 4. bounds and refusals
    with Server() as s:
        r = load(s, "/echo", ["-c", "4", "-t", "1", "-w", "0", "-T", "5", "--max-messages", "300"])
        if r:
            check(r["totals"]["sent"] <= 300 and r["totals"]["sent"] == s.received,
                  "--max-messages 300: sent %d" % r["totals"]["sent"])
            check(r["window_s"] < 4.5, "--max-messages ends the window early (%.2f s)" % r["window_s"])
        before = s.received
        for args in (["ws://10.0.0.1:%d/echo" % s.port], ["ws://localhost:%d/echo" % s.port],
                     ["ws://0.0.0.0:%d/echo" % s.port], ["ws://127.0.0.1/echo"],
                     ["-c", "0", "ws://127.0.0.1:%d/echo" % s.port],
                     ["--rate", "-5", "ws://127.0.0.1:%d/echo" % s.port],
                     ["--size", "8", "ws://127.0.0.1:%d/echo" % s.port],
                     ["--rooms", "3", "ws://127.0.0.1:%d/echo" % s.port],
                     ["--bogus", "ws://127.0.0.1:%d/echo" % s.port], []):
            p = run(args, timeout=20)
            check(p.returncode == 2, "refused with exit 2: akload %s" % " ".join(args))
        check(s.received == before, "refusals sent nothing")
    # a server that is not there: exit 1, quickly
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    p = run(["-q", "-c", "2", "-T", "1", "ws://127.0.0.1:%d/echo" % port], timeout=30)
    check(p.returncode == 1, "no server: exit 1 (%d)" % p.returncode)

    print("akload self-test: %s" % ("FAILED: " + "; ".join(failures) if failures else "all passed"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
