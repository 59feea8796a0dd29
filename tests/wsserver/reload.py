"""reload.py - akws's live config (--config FILE, INI): lowering
max_message takes effect on open connections and new ones (1009); a
malformed file keeps the old settings; max_connections (1013) and the
per-client message rate (1008) are honoured, including after a reload.

    reload.py AKWS atomkit|mutex [EMULATOR...]"""
import os, socket, sys, tempfile, time
from wslib import WS, Closed, Server, check, fail, parse_args

akws, mode, emu = parse_args(sys.argv)
tmp = tempfile.mkdtemp(prefix="akws-reload-")
path = os.path.join(tmp, "akws.ini")


def write(text):
    t = path + ".tmp"
    with open(t, "w") as f:
        f.write(text)
    os.rename(t, path)  # atomic, as a config manager does


def wait_for(srv, key, value, what):
    deadline = time.time() + 20
    while time.time() < deadline:
        if srv.metrics().get(key) == value:
            return
        time.sleep(0.05)
    fail("%s: %s never became %s (now %s)" % (what, key, value, srv.metrics().get(key)))


write("[limits]\nmax_message = 100000\nmax_connections = 100\n")
srv = Server(akws, mode, emu, config=path)
P = srv.port

old = WS(P)
old.send(2, b"x" * 50000)
check(old.recv_data() == (2, b"x" * 50000), "50000 bytes echoed under max_message 100000")

# Lower max_message live.
write("[limits]\nmax_message = 1000\nmax_connections = 100\n")
wait_for(srv, "akws_config_generation", 2, "reload 1")
new = WS(P)
new.send(2, b"y" * 1000)
check(new.recv_data() == (2, b"y" * 1000), "1000 bytes still fine")
new.send(2, b"y" * 1001)
new.expect_close({1009}, "new connection, 1001 bytes over max_message 1000")
old.send(2, b"x" * 5000)  # the connection opened before the reload
old.expect_close({1009}, "old connection after reload")

# A malformed file is rejected; the old settings stay.
write("[limits]\nmax_message = lots\n")
wait_for(srv, 'akws_config_reloads_total{result="failed"}', 1, "malformed file")
m = srv.metrics()
check(m["akws_config_generation"] == 2, "generation unchanged after a bad file")
ws = WS(P)
ws.send(1, b"z" * 900)
check(ws.recv_data() == (1, b"z" * 900), "old settings still serve")
ws.send(1, b"z" * 2000)
ws.expect_close({1009}, "old max_message still enforced after the bad file")
write("max_message = 1000\nunknown_key = 3\n")
wait_for(srv, 'akws_config_reloads_total{result="failed"}', 2, "unknown key")

# max_connections: 3 open, the 4th is refused with 1013, a slot freed admits again.
write("[limits]\nmax_message = 1000\nmax_connections = 3\n")
wait_for(srv, "akws_config_generation", 3, "reload max_connections")
conns = [WS(P) for _ in range(3)]
for c in conns:
    c.send(1, b"hi")
    check(c.recv_data() == (1, b"hi"), "admitted connection works")
extra = WS(P)
extra.expect_close({1013}, "4th connection over max_connections 3")
check(srv.metrics()["akws_connection_cap_refused_total"] >= 1, "cap refusal counted")
conns[0].send(8, b"\x03\xe8")
conns[0].expect_close({1000}, "closing one")
deadline = time.time() + 10
while srv.metrics()["akws_websocket_connections"] > 2 and time.time() < deadline:
    time.sleep(0.05)
again = WS(P)
again.send(1, b"back")
check(again.recv_data() == (1, b"back"), "a freed slot admits a new connection")
for c in conns[1:] + [again]:
    c.close()

# Per-client rate: burst 5 at 2/s; message 6 sent at once is refused (1008).
write("[limits]\nmax_message = 1000\nmax_connections = 100\nper_ip_rate = 2\nper_ip_burst = 5\n")
wait_for(srv, "akws_config_generation", 4, "reload rate")
# Per IP, not per connection: two connections from 127.0.0.1 share the burst.
a, b = WS(P), WS(P)
for i in range(3):
    a.send(1, b"a%d" % i)
    check(a.recv_data() == (1, b"a%d" % i), "within the burst (first connection)")
for i in range(2):
    b.send(1, b"b%d" % i)
    check(b.recv_data() == (1, b"b%d" % i), "within the burst (second connection)")
b.send(1, b"one too many")
b.expect_close({1008}, "6th message from the same IP over per_ip_rate")
a.close()
check(srv.metrics()["akws_rate_limited_total"] >= 1, "refusal counted")

# Raising the rate again lets traffic through.
write("[limits]\nmax_message = 1000\nmax_connections = 100\nper_ip_rate = 100000\n")
wait_for(srv, "akws_config_generation", 5, "reload rate up")
ws = WS(P)
for i in range(50):
    ws.send(1, b"n%d" % i)
for i in range(50):
    check(ws.recv_data() == (1, b"n%d" % i), "high rate admits")
ws.close()
srv.stop()
os.unlink(path)
os.rmdir(tmp)
print("reload (%s): passed" % mode)
