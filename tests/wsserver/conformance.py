"""conformance.py - the Autobahn TestSuite's categories 1-7, re-created over
raw sockets against akws /echo: framing, pings/pongs, reserved bits,
opcodes, fragmentation, UTF-8 (also split across fragments and chunks) and
close handling. Each case checks the echo or the close code, and that the
server then closed TCP.

    conformance.py AKWS atomkit|mutex [EMULATOR...]"""
import struct, sys, time
from wslib import WS, Server, check, fail, parse_args

akws, mode, emu = parse_args(sys.argv)
srv = Server(akws, mode, emu)
PORT = srv.port
cases = 0


def case(name):
    def deco(fn):
        global cases
        try:
            fn()
        except SystemExit:
            print("case %s failed" % name, flush=True)
            raise
        cases += 1
        return fn
    return deco


def echo(ws, op, payload):
    got_op, got = ws.recv_data()
    check(got_op == op and got == payload, "echo mismatch: op %d len %d, want op %d len %d"
          % (got_op, len(got), op, len(payload)))


def close_ok(ws, what):
    ws.send(8, struct.pack("!H", 1000))
    ws.expect_close({1000}, what)


# ---- 1 framing ---------------------------------------------------------------
for op in (1, 2):
    for n in (0, 125, 126, 127, 128, 65535, 65536):
        @case("1.%d.%d" % (op, n))
        def _():
            ws = WS(PORT)
            payload = (b"*" if op == 1 else b"\xfe") * n
            ws.send(op, payload)
            echo(ws, op, payload)
            close_ok(ws, "1.x len %d" % n)
    @case("1.%d.chunked" % op)
    def _():
        ws = WS(PORT)
        payload = (b"*" if op == 1 else b"\xfe") * 65536
        ws.send(op, payload, chunk=997)
        echo(ws, op, payload)
        close_ok(ws, "1.x chunked")

# ---- 2 pings and pongs ---------------------------------------------------------
@case("2.1-2.3 ping echo")
def _():
    ws = WS(PORT)
    for p in (b"", b"Hello, world!", bytes([0, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0, 0xff]), b"*" * 125):
        ws.send(9, p)
        fin, op, got = ws.recv()
        check(op == 0xA and got == p, "pong mismatch for ping of %d bytes" % len(p))
    close_ok(ws, "2.x")

@case("2.5 ping too long")
def _():
    ws = WS(PORT)
    ws.send(9, b"*" * 126)
    ws.expect_close({1002}, "2.5")

@case("2.6 ping chunked by byte")
def _():
    ws = WS(PORT)
    ws.send(9, b"*" * 125, chunk=1)
    fin, op, got = ws.recv()
    check(op == 0xA and got == b"*" * 125, "2.6 pong")
    close_ok(ws, "2.6")

@case("2.7-2.8 unsolicited pong ignored")
def _():
    ws = WS(PORT)
    ws.send(0xA, b"")
    ws.send(0xA, b"unsolicited")
    ws.send(1, b"after")
    echo(ws, 1, b"after")
    close_ok(ws, "2.7")

@case("2.10 ten pings")
def _():
    ws = WS(PORT)
    for i in range(10):
        ws.send(9, b"ping %d" % i)
    for i in range(10):
        fin, op, got = ws.recv()
        check(op == 0xA and got == b"ping %d" % i, "2.10 pong %d" % i)
    close_ok(ws, "2.10")

# ---- 3 reserved bits -------------------------------------------------------------
for rsv in range(1, 8):
    for op, p in ((1, b"Hello"), (2, b"\x00\xff"), (9, b"ping"), (8, b"\x03\xe8")):
        @case("3.rsv%d.op%d" % (rsv, op))
        def _():
            ws = WS(PORT)
            ws.send(1, b"before")
            ws.send(op, p, rsv=rsv)
            ws.send(1, b"after")  # must not be echoed
            echo(ws, 1, b"before")
            ws.expect_close({1002}, "3.x rsv %d op %d" % (rsv, op))

# ---- 4 opcodes ---------------------------------------------------------------------
for op in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
    @case("4.op%d" % op)
    def _():
        ws = WS(PORT)
        ws.send(1, b"before")
        ws.send(op, b"payload")
        ws.send(9, b"after")
        echo(ws, 1, b"before")
        ws.expect_close({1002}, "4.x op %d" % op)

# ---- 5 fragmentation ----------------------------------------------------------------
@case("5.1 fragmented ping")
def _():
    ws = WS(PORT)
    ws.send(9, b"frag", fin=False)
    ws.send(0, b"ment", fin=True)
    ws.expect_close({1002}, "5.1")

@case("5.2 fragmented pong")
def _():
    ws = WS(PORT)
    ws.send(0xA, b"frag", fin=False)
    ws.send(0, b"ment")
    ws.expect_close({1002}, "5.2")

for chunk in (None, 1):
    @case("5.3-5.4 text in two fragments")
    def _():
        ws = WS(PORT)
        ws.send(1, b"frag", fin=False, chunk=chunk)
        ws.send(0, b"ment", fin=True, chunk=chunk)
        echo(ws, 1, b"fragment")
        close_ok(ws, "5.3")

    @case("5.6-5.8 ping between fragments")
    def _():
        ws = WS(PORT)
        ws.send(1, b"frag", fin=False, chunk=chunk)
        ws.send(9, b"in the middle", chunk=chunk)
        ws.send(0, b"ment", chunk=chunk)
        fin, op, got = ws.recv()
        check(op == 0xA and got == b"in the middle", "5.6 pong first")
        echo(ws, 1, b"fragment")
        close_ok(ws, "5.6")

@case("5.9-5.11 continuation with nothing to continue")
def _():
    for fin in (True, False):
        ws = WS(PORT)
        ws.send(0, b"orphan", fin=fin)
        ws.send(1, b"text")
        ws.expect_close({1002}, "5.9")

@case("5.15 new message inside a fragmented one")
def _():
    ws = WS(PORT)
    ws.send(1, b"frag", fin=False)
    ws.send(1, b"again")
    ws.expect_close({1002}, "5.15")

@case("5.19 many fragments, pings between, delays")
def _():
    ws = WS(PORT)
    parts = [b"fragment%d" % i for i in range(10)]
    for i, p in enumerate(parts):
        ws.send(1 if i == 0 else 0, p, fin=(i == 9))
        if i in (2, 6):
            ws.send(9, b"pong me %d" % i)
            time.sleep(0.05)
    fin, op, got = ws.recv()
    check(op == 0xA and got == b"pong me 2", "5.19 pong 1")
    fin, op, got = ws.recv()
    check(op == 0xA and got == b"pong me 6", "5.19 pong 2")
    echo(ws, 1, b"".join(parts))
    close_ok(ws, "5.19")

@case("5.x empty fragments")
def _():
    ws = WS(PORT)
    ws.send(2, b"", fin=False)
    ws.send(0, b"", fin=False)
    ws.send(0, b"x", fin=False)
    ws.send(0, b"", fin=True)
    echo(ws, 2, b"x")
    close_ok(ws, "5.x")

# ---- 6 UTF-8 ----------------------------------------------------------------------------
VALID = [b"", "\u03ba\u1f79\u03c3\u03bc\u03b5".encode(), b"\xf0\x90\x80\x80", b"\xf4\x8f\xbf\xbf",
         b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\x7f", b"\xc2\x80", b"\xdf\xbf",
         "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode()]
INVALID = [b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
           b"\x80", b"\xbf", b"\x80\xbf\x80", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf",
           b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xed\xa0\x80\xed\xb0\x80",
           b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xfe", b"\xff", b"\xfe\xfe\xff\xff",
           b"\xc0 ", b"\xe0\x80 ", b"\xce", b"\xe1\xbd", b"\xf0\x9f\x98"]

for i, s in enumerate(VALID):
    @case("6.valid.%d" % i)
    def _():
        ws = WS(PORT)
        ws.send(1, s)
        echo(ws, 1, s)
        # The same split into one-byte fragments (split inside characters).
        if s:
            for j in range(len(s)):
                ws.send(1 if j == 0 else 0, s[j:j + 1], fin=(j == len(s) - 1))
            echo(ws, 1, s)
        close_ok(ws, "6 valid %d" % i)

for i, s in enumerate(INVALID):
    for how in ("whole", "fragments", "chunks"):
        @case("6.invalid.%d.%s" % (i, how))
        def _():
            ws = WS(PORT)
            if how == "whole":
                ws.send(1, s)
            elif how == "fragments":
                for j in range(len(s)):
                    ws.send(1 if j == 0 else 0, s[j:j + 1], fin=(j == len(s) - 1))
            else:
                ws.send(1, s, chunk=1)
            ws.expect_close({1007}, "6 invalid %d (%s)" % (i, how))

@case("6.fail-fast")
def _():
    # A bad byte early in a long message: closed before the rest arrives.
    ws = WS(PORT)
    ws.send(1, b"ok\xc0", fin=False)
    ws.expect_close({1007}, "6 fail fast")

# ---- 7 close handling ---------------------------------------------------------------------
@case("7.1.1 close after echo")
def _():
    ws = WS(PORT)
    ws.send(1, b"Hello World!")
    echo(ws, 1, b"Hello World!")
    close_ok(ws, "7.1.1")

@case("7.1.2-7.1.4 nothing after close")
def _():
    ws = WS(PORT)
    ws.send(8, struct.pack("!H", 1000))
    ws.send(1, b"not echoed")
    ws.send(9, b"not ponged")
    ws.expect_close({1000}, "7.1.3")

@case("7.3.1 empty close")
def _():
    ws = WS(PORT)
    ws.send(8, b"")
    ws.expect_close({None}, "7.3.1")

@case("7.3.2 close of 1 byte")
def _():
    ws = WS(PORT)
    ws.send(8, b"\x03")
    ws.expect_close({1002}, "7.3.2")

@case("7.3.3-7.3.4 close with reason")
def _():
    for reason in (b"", b"bye", b"*" * 123):
        ws = WS(PORT)
        ws.send(8, struct.pack("!H", 1000) + reason)
        ws.expect_close({1000}, "7.3.4")

@case("7.3.5 close payload too long")
def _():
    ws = WS(PORT)
    ws.send(8, struct.pack("!H", 1000) + b"*" * 124)
    ws.expect_close({1002}, "7.3.5")

@case("7.5.1 close reason not UTF-8")
def _():
    ws = WS(PORT)
    ws.send(8, struct.pack("!H", 1000) + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited")
    ws.expect_close({1007}, "7.5.1")

for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
    @case("7.7 valid code %d" % code)
    def _():
        ws = WS(PORT)
        ws.send(8, struct.pack("!H", code))
        ws.expect_close({code}, "7.7 %d" % code)

for code in (0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535):
    @case("7.9 invalid code %d" % code)
    def _():
        ws = WS(PORT)
        ws.send(8, struct.pack("!H", code))
        ws.expect_close({1002}, "7.9 %d" % code)

@case("7.13 unmasked client frame")
def _():
    ws = WS(PORT)
    ws.send(1, b"naked", mask=False)
    ws.expect_close({1002}, "unmasked")

m = srv.metrics()
check(m.get('akws_closes_total{code="1002"}', 0) > 50, "metrics count the 1002 closes")
check(m.get('akws_closes_total{code="1007"}', 0) > 50, "metrics count the 1007 closes")
srv.stop()
print("conformance (%s): %d cases passed" % (mode, cases))
