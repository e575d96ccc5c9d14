#!/usr/bin/env python3
"""Hold N idle SMTP sessions open against a server and measure what they cost it.

Opens N connections to HOST:PORT (from source addresses 127.0.0.1..127.0.0.K round-robin, so no
one source runs out of ports), waits for every 220 greeting, then samples the server's resident
memory (VmRSS of --pid) and times a fresh client: connect, greeting, EHLO, QUIT. Everything is
bounded: each phase has a deadline and the script exits by itself. Loopback only.
"""
import argparse
import os
import selectors
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def probe(host, port, timeout):
    """One new client: time to the greeting and to the EHLO reply."""
    start = time.perf_counter()
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        f = s.makefile("rb")
        line = f.readline()
        greeting = time.perf_counter() - start
        if not line.startswith(b"220"):
            raise RuntimeError(f"greeting: {line!r}")
        s.sendall(b"EHLO probe.test\r\n")
        while True:
            line = f.readline()
            if not line or line[3:4] != b"-":
                break
        ehlo = time.perf_counter() - start
        if not line.startswith(b"250"):
            raise RuntimeError(f"EHLO: {line!r}")
        s.sendall(b"QUIT\r\n")
        f.readline()
        return greeting, ehlo
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the server process, for its RSS")
    ap.add_argument("--sessions", type=int, default=10000)
    ap.add_argument("--sources", type=int, default=4, help="source addresses 127.0.0.1..N")
    ap.add_argument("--hold", type=float, default=5.0, help="seconds to hold the sessions once all are greeted")
    ap.add_argument("--deadline", type=float, default=300.0, help="give up after this many seconds")
    args = ap.parse_args()
    if not args.host.startswith("127.") and args.host != "::1":
        sys.exit("loopback only")

    began = time.monotonic()
    before = rss_kib(args.pid)
    idle_probe = probe(args.host, args.port, 10)
    sel = selectors.DefaultSelector()
    socks = []
    greeted = 0
    pending = {}
    for i in range(args.sessions):
        if time.monotonic() - began > args.deadline:
            sys.exit(f"deadline passed while connecting ({i} open)")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((f"127.0.0.{1 + i % args.sources}", 0))
        s.setblocking(False)
        try:
            s.connect((args.host, args.port))
        except BlockingIOError:
            pass
        socks.append(s)
        pending[s] = b""
        sel.register(s, selectors.EVENT_READ)
        # Read greetings as they come, so the server's send buffers never fill.
        for key, _ in sel.select(timeout=0):
            greeted += read_greeting(key.fileobj, pending, sel)
    while greeted < args.sessions:
        if time.monotonic() - began > args.deadline:
            sys.exit(f"deadline passed: {greeted} of {args.sessions} greeted")
        events = sel.select(timeout=1)
        for key, _ in events:
            greeted += read_greeting(key.fileobj, pending, sel)
    connected_in = time.monotonic() - began

    time.sleep(1)  # let the server settle (GC, lazily committed pages)
    samples = []
    end = time.monotonic() + args.hold
    while time.monotonic() < end:
        samples.append(rss_kib(args.pid))
        time.sleep(0.25)
    held = max(samples)
    loaded_probe = probe(args.host, args.port, 10)
    alive = sum(1 for s in socks if still_open(s))
    for s in socks:
        s.close()

    per = (held - before) / args.sessions
    print(f"sessions={args.sessions} greeted={greeted} still_open={alive} connect_all_s={connected_in:.1f}")
    print(f"rss_before_kib={before} rss_held_kib={held} per_session_kib={per:.1f} total_per_session_kib={held / args.sessions:.1f}")
    print(f"new_client_idle_ms greeting={idle_probe[0] * 1000:.1f} ehlo={idle_probe[1] * 1000:.1f}")
    print(f"new_client_loaded_ms greeting={loaded_probe[0] * 1000:.1f} ehlo={loaded_probe[1] * 1000:.1f}")
    ok = greeted == args.sessions and alive == args.sessions
    sys.exit(0 if ok else 1)


def read_greeting(s, pending, sel):
    try:
        data = s.recv(4096)
    except BlockingIOError:
        return 0
    except OSError as e:
        sys.exit(f"connection failed: {e}")
    if not data:
        sys.exit("server closed a session before greeting it")
    pending[s] += data
    if pending[s].endswith(b"\r\n"):
        if not pending[s].startswith(b"220"):
            sys.exit(f"refused: {pending[s]!r}")
        sel.unregister(s)
        del pending[s]
        return 1
    return 0


def still_open(s):
    try:
        s.setblocking(False)
        data = s.recv(1, socket.MSG_PEEK)
        return data != b""  # data (unexpected) still means open; b"" means closed
    except BlockingIOError:
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
