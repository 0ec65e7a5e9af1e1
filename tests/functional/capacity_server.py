"""An echo server of known capacity, for the sweep and SLO tests.

    python3 capacity_server.py PORT --rate N --size S [--delay SECONDS]
                               [--stats FILE]

It serves at most N messages of S bytes a second over all its connections
and queues the rest, in arrival order: message k is echoed no earlier than
1/N seconds after message k-1 was, and no earlier than its arrival plus
--delay. Below N a message waits at most one slot; above N the queue, and
the latency, grow without bound, so the knee sits exactly at N. --stats
names a file that holds the count of connections accepted so far.

Listens on 127.0.0.1:PORT until killed. Standard library only."""

import argparse
import collections
import os
import selectors
import socket
import time


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.pending = 0         # bytes of an incomplete message
        self.held = bytearray()  # received, not yet released
        self.out = bytearray()   # released, not yet written


def write_stats(path, accepted):
    if path is None:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{accepted}\n")
    os.replace(tmp, path)


def serve(a):
    sel = selectors.DefaultSelector()
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", a.port))
    lsock.listen(128)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    slot = 1.0 / a.rate
    queue = collections.deque()   # (release time, conn, bytes)
    next_free = 0.0
    accepted = 0
    write_stats(a.stats, accepted)

    def close(c):
        sel.unregister(c.sock)
        c.sock.close()
        c.sock = None

    def flush(c):
        try:
            n = c.sock.send(c.out)
        except BlockingIOError:
            n = 0
        except OSError:
            close(c)
            return
        del c.out[:n]
        sel.modify(c.sock, selectors.EVENT_READ |
                   (selectors.EVENT_WRITE if c.out else 0), c)

    while True:
        now = time.monotonic()
        timeout = None
        if queue:
            timeout = max(0.0, queue[0][0] - now)
        for key, events in sel.select(timeout):
            if key.data is None:
                try:
                    s, _ = lsock.accept()
                except BlockingIOError:
                    continue
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sel.register(s, selectors.EVENT_READ, Conn(s))
                accepted += 1
                write_stats(a.stats, accepted)
                continue
            c = key.data
            if c.sock is None:
                continue
            if events & selectors.EVENT_WRITE:
                flush(c)
                if c.sock is None:
                    continue
            if events & selectors.EVENT_READ:
                try:
                    data = c.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    close(c)
                    continue
                arrival = time.monotonic()
                c.held += data
                c.pending += len(data)
                while c.pending >= a.size:
                    c.pending -= a.size
                    release = max(arrival + a.delay, next_free)
                    next_free = release + slot
                    queue.append((release, c, a.size))
        now = time.monotonic()
        touched = set()
        while queue and queue[0][0] <= now:
            _, c, n = queue.popleft()
            if c.sock is None:
                continue
            # Echo the client's own bytes, in order.
            c.out += c.held[:n]
            del c.held[:n]
            touched.add(c)
        for c in touched:
            if c.sock is not None:
                flush(c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--rate", type=float, required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--stats")
    serve(ap.parse_args())


if __name__ == "__main__":
    main()
