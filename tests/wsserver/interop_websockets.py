"""interop_websockets.py - akws against Debian's python3-websockets (run
with /usr/bin/python3, which sees Debian's packages): echo of text and
binary at 0/125/126/65535/65536 bytes, fragmented messages, ping, close
1000, and a room. Skips (exit 77) if the module is absent.

    interop_websockets.py AKWS atomkit|mutex [EMULATOR...]"""
import asyncio, sys
try:
    import websockets
except ImportError:
    print("SKIP: python3-websockets is not installed for %s" % sys.executable)
    sys.exit(77)
from wslib import Server, check, parse_args

akws, mode, emu = parse_args(sys.argv)
srv = Server(akws, mode, emu)
URL = "ws://127.0.0.1:%d" % srv.port
T = 20


async def main():
    async with websockets.connect(URL + "/echo", max_size=None, open_timeout=T) as ws:
        for n in (0, 125, 126, 65535, 65536):
            t = "\u00e9" * (n // 2) + "a" * (n % 2)  # multi-byte UTF-8, n bytes
            await ws.send(t)
            check(await asyncio.wait_for(ws.recv(), T) == t, "text echo %d" % n)
            b = bytes(range(256)) * (n // 256) + bytes(n % 256)
            await ws.send(b)
            check(await asyncio.wait_for(ws.recv(), T) == b, "binary echo %d" % n)
        # Fragmented: websockets sends an iterable as one fragmented message.
        await ws.send(["frag", "men", "\u00e9ted"])
        check(await asyncio.wait_for(ws.recv(), T) == "fragmen\u00e9ted", "fragmented text")
        await ws.send([b"\x00\x01", b"", b"\x02"])
        check(await asyncio.wait_for(ws.recv(), T) == b"\x00\x01\x02", "fragmented binary")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, T)
        await ws.close(code=1000, reason="done")
        check(ws.close_code == 1000, "close code %s" % ws.close_code)

    # A room of three: each message reaches every member, the sender too.
    members = [await websockets.connect(URL + "/room/interop", open_timeout=T) for _ in range(3)]
    await asyncio.sleep(0.2)  # joins are done once the 101 is sent; margin for the scheduler
    for i, m in enumerate(members):
        await m.send("from %d" % i)
        for other in members:
            got = await asyncio.wait_for(other.recv(), T)
            check(got == "from %d" % i, "room: got %r, want 'from %d'" % (got, i))
    # A different room hears nothing.
    lone = await websockets.connect(URL + "/room/other", open_timeout=T)
    await members[0].send("not for lone")
    for m in members:
        check(await asyncio.wait_for(m.recv(), T) == "not for lone", "room echo")
    try:
        got = await asyncio.wait_for(lone.recv(), 0.3)
        check(False, "other room received %r" % got)
    except asyncio.TimeoutError:
        pass
    for m in members + [lone]:
        await m.close()
        check(m.close_code == 1000, "room close code %s" % m.close_code)

asyncio.run(main())
srv.stop()
print("interop python3-websockets %s (%s): passed" % (websockets.__version__, mode))
