"""rooms.py - broadcast under concurrency: R rooms x C clients on a server
with 4 loop threads (so most deliveries cross threads through the
mailboxes), every client sending M messages at once while other clients
join and leave the same rooms (member arrays replaced under the
broadcasts). Each client must receive every message of its room exactly
once, in each sender's order, and nothing from other rooms.
Seen failing: akws built with AKWS_BROKEN_NO_WAKE (a post never wakes a
sleeping thread) loses deliveries (seen_failing_wsserver_rooms_no_wake).

    rooms.py AKWS atomkit|mutex [EMULATOR...]"""
import os, socket, sys, threading, time
from wslib import TIMEOUT, WS, Closed, Server, check, fail, parse_args

akws, mode, emu = parse_args(sys.argv)
srv = Server(akws, mode, emu, threads=4)
R, C, M = 3, 6, int(os.environ.get("AKWS_ROOM_MSGS", "40"))
errors = []


def member(r, c, ws, start):
    try:
        start.wait(30)
        for k in range(M):
            ws.send(1, b"%d:%d:%d" % (r, c, k))
        want = C * M
        seen = {}
        got = 0
        while got < want:
            op, p = ws.recv_data()
            rr, cc, kk = (int(x) for x in p.split(b":"))
            if rr != r:
                raise AssertionError("client %d/%d got a message of room %d" % (r, c, rr))
            if kk != seen.get(cc, -1) + 1:
                raise AssertionError("client %d/%d: sender %d message %d after %d"
                                     % (r, c, cc, kk, seen.get(cc, -1)))
            seen[cc] = kk
            got += 1
        ws.send(8, b"\x03\xe8")
        ws.expect_close({1000}, "room member")
    except (AssertionError, Closed, OSError, SystemExit) as e:
        errors.append("member %d/%d: %r" % (r, c, e))


def churn(r, stop):
    try:
        while not stop.is_set():
            ws = WS(srv.port, "/room/stress%d" % r)
            ws.close()
    except (Closed, OSError, SystemExit) as e:
        errors.append("churn %d: %r" % (r, e))


socks = {(r, c): WS(srv.port, "/room/stress%d" % r, timeout=3 * TIMEOUT) for r in range(R) for c in range(C)}
time.sleep(0.3)  # every join is published before anyone sends
start, stop = threading.Event(), threading.Event()
th = [threading.Thread(target=member, args=(r, c, socks[(r, c)], start)) for (r, c) in socks]
ch = [threading.Thread(target=churn, args=(r, stop)) for r in range(R)] if os.environ.get("AKWS_NO_CHURN") != "1" else []
for t in th + ch:
    t.start()
start.set()
for t in th:
    t.join(120)
stop.set()
for t in ch:
    t.join(30)
check(not any(t.is_alive() for t in th), "members still running after 120 s")
if errors:
    fail("; ".join(errors[:5]))
m = srv.metrics()
check(m["akws_messages_out_total"] >= R * C * C * M, "messages_out counts every delivery")
srv.stop()
print("rooms (%s): %d rooms x %d clients x %d messages, with churn: passed" % (mode, R, C, M))
