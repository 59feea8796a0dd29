"""hostile.py - akws under hostile input: a bounded fuzz of random frames
and truncated handshakes (clients that vanish at random points, some with
a RST), a header over the size cap, then the server must still serve, with
its fd count back to the baseline and its RSS near it; and slowloris
connections must not block a normal client, and are closed by the
handshake timeout.

    hostile.py AKWS atomkit|mutex [EMULATOR...]
Environment: AKWS_FUZZ_CONNS (default 400), AKWS_RSS_SLACK_KB (default
16384; the check is skipped when AKWS_NO_RSS=1, e.g. under ASan, whose
quarantine holds freed memory on purpose; LeakSanitizer checks at exit)."""
import os, random, socket, struct, sys, tempfile, time
from wslib import WS, Closed, Server, check, fail, parse_args

akws, mode, emu = parse_args(sys.argv)
tmp = tempfile.mkdtemp(prefix="akws-hostile-")
cfg = os.path.join(tmp, "akws.ini")
with open(cfg, "w") as f:
    f.write("[limits]\nmax_message = 65536\n[server]\nhandshake_timeout_ms = 1000\n"
            "close_timeout_ms = 500\nmax_header = 4096\n")
srv = Server(akws, mode, emu, config=cfg)
P = srv.port
rng = random.Random(int(os.environ.get("AKWS_FUZZ_SEED", "13")))
N = int(os.environ.get("AKWS_FUZZ_CONNS", "400"))


def echo_ok(what):
    ws = WS(P)
    for n in (0, 1000, 65536):
        ws.send(2, b"\x5a" * n)
        check(ws.recv_data() == (2, b"\x5a" * n), "%s: echo %d" % (what, n))
    ws.send(8, b"\x03\xe8")
    ws.expect_close({1000}, what)


def settle(what, base_fds):
    deadline = time.time() + 20
    while time.time() < deadline:
        if srv.fds() <= base_fds:
            return
        time.sleep(0.1)
    fail("%s: fds %d, baseline %d" % (what, srv.fds(), base_fds))


# Warm up (threads, arenas, first rooms), then take the baseline.
for _ in range(3):
    echo_ok("warm-up")
r = WS(P, "/room/fuzz")
r.close()
time.sleep(0.5)
base_fds, base_rss = srv.fds(), srv.rss_kb()

REQ = (b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def random_frame():
    kind = rng.randrange(6)
    if kind == 0:  # pure noise
        return os.urandom(rng.randrange(1, 200))
    op = rng.choice([0, 1, 2, 3, 8, 9, 10, 11, 15])
    n = rng.choice([0, 1, 2, 125, 126, 127, 1000, 70000])
    payload = os.urandom(min(n, 2000)) if kind != 1 else b"ok" * (min(n, 2000) // 2)
    if kind == 2:  # lies about its length
        return WS.frame(op, payload, fin=rng.random() < 0.5, length=rng.choice([2000, 1 << 40]))
    return WS.frame(op, payload, fin=rng.random() < 0.7, rsv=rng.choice([0, 0, 0, 1, 4]),
                    mask=rng.random() < 0.9)


t_end = time.time() + 60  # bounded in time as well as in count
done = 0
for i in range(N):
    if time.time() > t_end:
        break
    s = socket.create_connection(("127.0.0.1", P), timeout=5)
    try:
        kind = rng.randrange(4)
        if kind == 0:  # truncated handshake
            s.sendall(REQ[:rng.randrange(len(REQ))])
        elif kind == 1:  # garbage instead of HTTP
            s.sendall(os.urandom(rng.randrange(1, 3000)))
        else:  # a real upgrade, then random frames
            s.sendall(REQ)
            for _ in range(rng.randrange(1, 8)):
                s.sendall(random_frame())
        if rng.random() < 0.5:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
        elif rng.random() < 0.5:
            s.settimeout(0.2)
            try:
                s.recv(65536)
            except OSError:
                pass
    except OSError:
        pass  # the server may have closed on us already: that is allowed
    s.close()
    done += 1
check(done >= min(N, 50), "fuzz ran %d connections" % done)

# A request head over max_header gets 431 and the connection is closed.
s = socket.create_connection(("127.0.0.1", P), timeout=10)
s.sendall(b"GET /echo HTTP/1.1\r\nX-Pad: " + b"a" * 5000 + b"\r\n\r\n")
resp = s.recv(4096)
check(resp.startswith(b"HTTP/1.1 431"), "oversized head: %r" % resp[:30])
s.close()

echo_ok("after fuzz")
settle("after fuzz", base_fds)
if os.environ.get("AKWS_NO_RSS") != "1":
    slack = int(os.environ.get("AKWS_RSS_SLACK_KB", "16384"))
    rss = srv.rss_kb()
    check(rss <= base_rss + slack, "RSS %d kB after fuzz, baseline %d kB (+%d allowed)"
          % (rss, base_rss, slack))
    print("fds %d (baseline %d), RSS %d kB (baseline %d kB)" % (srv.fds(), base_fds, rss, base_rss))
else:
    print("RSS check skipped (AKWS_NO_RSS=1)")

# Slowloris: many clients trickle a request head; a normal client is served
# at once, and the trickling ones are dropped by the 1 s handshake timeout.
slow = []
for i in range(100):
    s = socket.create_connection(("127.0.0.1", P), timeout=10)
    s.sendall(b"GET /echo HTTP/1.1\r\nX-")
    slow.append(s)
t0 = time.time()
echo_ok("normal client during slowloris")
check(time.time() - t0 < 5, "normal client took %.1f s during slowloris" % (time.time() - t0))
for s in slow:
    try:
        s.sendall(b"a")  # one more byte each: the timer does not restart
    except OSError:
        pass
closed = 0
deadline = time.time() + 10
for s in slow:
    s.settimeout(max(0.1, deadline - time.time()))
    try:
        while s.recv(4096):
            pass
        closed += 1
    except ConnectionResetError:
        closed += 1
    except socket.timeout:
        pass
    s.close()
check(closed == len(slow), "%d of %d slowloris connections closed by the timeout" % (closed, len(slow)))
check(srv.metrics()["akws_handshake_timeouts_total"] >= len(slow), "timeouts counted")
settle("after slowloris", base_fds)
echo_ok("after slowloris")
srv.stop()
os.unlink(cfg)
os.rmdir(tmp)
print("hostile (%s): %d fuzz connections, passed" % (mode, done))
