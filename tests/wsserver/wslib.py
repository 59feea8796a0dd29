"""wslib.py - helpers for akws's tests: start/stop the server, a raw
RFC 6455 client over plain sockets, and /proc readings (fds, RSS).

Every server listens on 127.0.0.1 with a port it picks itself (--port 0);
every client call has a timeout. Standard library only."""
import atexit, base64, faulthandler, hashlib, os, re, signal, socket, struct, subprocess, sys, time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TIMEOUT = float(os.environ.get("AKWS_TEST_TIMEOUT", "10"))
# A hung test prints where it hangs and exits (CTest's own timeout is later).
faulthandler.dump_traceback_later(float(os.environ.get("AKWS_TEST_LIMIT", "400")), exit=True)
_servers = []


@atexit.register
def _kill_servers():
    for p in _servers:
        if p.poll() is None:
            p.kill()
            p.wait()


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


class Server:
    """akws as a child process. args: the test's argv tail
    (AKWS [--emulator CMD...] --sync MODE)."""

    def __init__(self, akws, mode, emulator=(), threads=2, config=None, extra=()):
        cmd = list(emulator) + [akws, "--port", "0", "--sync", mode, "--threads", str(threads)]
        if config:
            cmd += ["--config", config]
        cmd += list(extra)
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=None)
        _servers.append(self.p)
        deadline = time.time() + 60
        line = b""
        while time.time() < deadline:
            line = self.p.stdout.readline()
            if not line:
                break
            m = re.match(rb"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                return
        self.p.kill()
        fail("server did not print 'listening on': %r" % line)

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        """SIGTERM; the server must exit 0 (sanitizer reports make it non-zero)."""
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            fail("server did not exit within 60 s of SIGTERM")
        check(rc == 0, "server exit status %d (want 0)" % rc)

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def metrics(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 200"), "metrics: %r" % head[:40])
        out = {}
        for line in body.decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out


class Closed(Exception):
    pass


class WS:
    """A raw WebSocket client: frames exactly as the test builds them."""

    def __init__(self, port, path="/echo", timeout=TIMEOUT, expect_status=101):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16))
        self.s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            b = self.s.recv(4096)
            if not b:
                raise Closed("closed during handshake")
            self.buf += b
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.status = int(head.split()[1])
        check(self.status == expect_status, "handshake status %d, want %d" % (self.status, expect_status))
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(key + GUID).digest())
            check(b"Sec-WebSocket-Accept: " + want in head, "bad Sec-WebSocket-Accept")

    @staticmethod
    def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload) if length is None else length
        mb = 0x80 if mask else 0
        if n < 126:
            h = struct.pack("!BB", b0, mb | n)
        elif n <= 0xFFFF:
            h = struct.pack("!BBH", b0, mb | 126, n)
        else:
            h = struct.pack("!BBQ", b0, mb | 127, n)
        if not mask:
            return h + payload
        k = os.urandom(4)
        masked = bytes(c ^ k[i & 3] for i, c in enumerate(payload))
        return h + k + masked

    def send(self, opcode, payload=b"", chunk=None, **kw):
        data = self.frame(opcode, payload, **kw)
        self.sendraw(data, chunk)

    def sendraw(self, data, chunk=None):
        if not chunk:
            self.s.sendall(data)
            return
        for i in range(0, len(data), chunk):
            self.s.sendall(data[i:i + chunk])

    def _need(self, n):
        while len(self.buf) < n:
            b = self.s.recv(65536)
            if not b:
                raise Closed("TCP closed")
            self.buf += b

    def recv(self):
        """One frame: (fin, opcode, payload). Raises Closed on EOF."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        check(not (b1 & 0x80), "server frame is masked")
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        self._need(off + n)
        p = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return bool(b0 & 0x80), b0 & 0x0F, p

    def recv_data(self):
        """Next data message (skipping pongs); fails on anything else."""
        while True:
            fin, op, p = self.recv()
            if op == 0xA:
                continue
            check(fin and op in (1, 2), "expected a data frame, got op %d fin %d" % (op, fin))
            return op, p

    def expect_close(self, codes, what=""):
        """Read until the server's close frame; its code must be in codes
        (None: no code); then the server must close TCP."""
        while True:
            try:
                fin, op, p = self.recv()
            except Closed:
                fail("%s: TCP closed without a close frame" % what)
            except socket.timeout:
                fail("%s: no close frame within the timeout" % what)
            if op == 8:
                break
        code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
        check(code in codes, "%s: close code %s, want %s" % (what, code, codes))
        try:  # answer, as a client does; the server may already be gone
            self.s.sendall(self.frame(8, p[:2]))
        except OSError:
            pass
        self.expect_tcp_closed(what)
        return code

    def expect_tcp_closed(self, what=""):
        try:
            while True:
                b = self.s.recv(65536)
                if not b:
                    break
        except socket.timeout:
            fail("%s: server did not close TCP" % what)
        except ConnectionResetError:
            pass
        self.s.close()

    def close(self):
        self.s.close()


def parse_args(argv):
    """argv: AKWS MODE [EMULATOR...]"""
    if len(argv) < 3:
        print("usage: %s AKWS atomkit|mutex [EMULATOR...]" % argv[0])
        sys.exit(2)
    return argv[1], argv[2], argv[3:]
