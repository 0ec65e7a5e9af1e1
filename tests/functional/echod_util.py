"""echod_util.py: helpers for the echod functional tests that conftest.py
does not provide: config text, many connections echoing at once through one
selector, a client that sends and never reads, the chargen line check, and
running echod for its exit code and output. Every loop here is bounded by a
byte count and a deadline."""

import os
import re
import select
import selectors
import socket
import subprocess
import time

from conftest import ECHOD, ROOT, SLOW


def make_conf(listeners=None, server=None, limits=None):
    """Config text: [server] (workers = 1 unless given), [limits] when
    given, and listeners as {NAME: {key: value}} (default: one echo listener
    named a on 127.0.0.1:{port})."""
    server = {"workers": "1", **(server or {})}
    lines = ["[server]"] + [f"{k} = {v}" for k, v in server.items()]
    if limits:
        lines += ["", "[limits]"] + [f"{k} = {v}" for k, v in limits.items()]
    if listeners is None:
        listeners = {"a": {"address": "127.0.0.1:{port}"}}
    for name, opts in listeners.items():
        lines += ["", f"[listen {name}]"]
        lines += [f"{k} = {v}" for k, v in opts.items()]
    return "\n".join(lines) + "\n"


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def connect(port, host="127.0.0.1", timeout=10.0):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout * SLOW)
    s.connect((host, port))
    return s


def recv_exact(sock, n, timeout=10.0):
    """n bytes from sock, or what arrived before EOF or the deadline."""
    deadline = time.monotonic() + timeout * SLOW
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            b = sock.recv(min(n - len(buf), 1 << 20))
        except socket.timeout:
            break
        if not b:
            break
        buf += b
    return bytes(buf)


def roundtrip(sock, payload=b"ping", timeout=10.0):
    """Send payload on an open connection; True when it comes back whole."""
    sock.sendall(payload)
    return recv_exact(sock, len(payload), timeout) == payload


def nothing_arrives(sock, wait=0.5):
    """True when no byte (and no EOF) arrives within wait seconds."""
    r, _, _ = select.select([sock], [], [], wait)
    return not r


def read_to_eof(sock, timeout=10.0, limit=64 << 20):
    """Everything until EOF; raises on timeout so a missing EOF fails."""
    deadline = time.monotonic() + timeout * SLOW
    buf = bytearray()
    while len(buf) <= limit:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no EOF after {len(buf)} bytes")
        sock.settimeout(left)
        b = sock.recv(1 << 20)
        if not b:
            return bytes(buf)
        buf += b
    raise AssertionError(f"more than {limit} bytes before EOF")


def echo_many(port, payloads, host="127.0.0.1", timeout=60.0):
    """Echo each payload on its own connection, all connections open and
    in flight at once, driven by one selector. Returns the bytes each
    connection got back (stops reading a connection once it has as many as
    it sent, or at EOF)."""
    sel = selectors.DefaultSelector()
    conns = []
    try:
        for p in payloads:
            s = connect(port, host)
            s.setblocking(False)
            c = {"sock": s, "out": memoryview(p), "sent": 0,
                 "got": bytearray(), "done": False}
            conns.append(c)
            sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        left = len(conns)
        deadline = time.monotonic() + timeout * SLOW
        while left and time.monotonic() < deadline:
            for key, ev in sel.select(1.0):
                c = key.data
                s = c["sock"]
                if ev & selectors.EVENT_WRITE and c["sent"] < len(c["out"]):
                    try:
                        c["sent"] += s.send(c["out"][c["sent"]:c["sent"] + (256 << 10)])
                    except BlockingIOError:
                        pass
                    if c["sent"] == len(c["out"]):
                        sel.modify(s, selectors.EVENT_READ, c)
                if ev & selectors.EVENT_READ:
                    try:
                        b = s.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    c["got"] += b
                    if not b or len(c["got"]) >= len(c["out"]):
                        c["done"] = True
                        sel.unregister(s)
                        left -= 1
        return [bytes(c["got"]) for c in conns]
    finally:
        sel.close()
        for c in conns:
            c["sock"].close()


def send_until_stall(sock, limit, stall=1.0, timeout=30.0):
    """Send from a connection that never reads until the peer has taken no
    byte for stall seconds, limit bytes are sent, the connection fails, or
    timeout passes. Byte i of the stream is i % 256 (see pattern_ok).
    Returns the number of bytes sent."""
    sock.setblocking(False)
    chunk = bytes(range(256)) * 1025
    sent = 0
    deadline = time.monotonic() + timeout * SLOW
    while sent < limit and time.monotonic() < deadline:
        _, w, _ = select.select([], [sock], [], stall)
        if not w:
            break
        off = sent % 256
        try:
            sent += sock.send(chunk[off:off + min(256 << 10, limit - sent)])
        except BlockingIOError:
            pass
        except OSError:
            break
    return sent


def pattern_ok(data, start=0):
    """data is bytes start.. of the send_until_stall stream."""
    off = start % 256
    want = (bytes(range(256)) * (len(data) // 256 + 2))[off:off + len(data)]
    return data == want


def check_chargen(data):
    """Complete lines of an RFC 864 stream: printable ASCII, CRLF-ended, all
    of one length, and not all the same line (the pattern moves)."""
    lines = data.split(b"\r\n")[:-1]
    assert len(lines) >= 10, f"only {len(lines)} CRLF-ended lines in {len(data)} bytes"
    for ln in lines:
        assert ln, "empty line"
        bad = [c for c in ln if not 0x20 <= c <= 0x7e]
        assert not bad, f"unprintable bytes {bad[:5]} in {ln[:80]!r}"
    assert len({len(ln) for ln in lines}) == 1, \
        f"line lengths vary: {sorted({len(ln) for ln in lines})}"
    assert len(set(lines)) > 1, "every line is the same"


def run_echod(*args, timeout=10.0):
    """Run echod to completion (for -t, -V, -h and usage errors)."""
    return subprocess.run([ECHOD, *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True,
                          timeout=timeout * SLOW)


def project_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        m = re.search(r"version:\s*'([^']+)'", f.read())
    return m.group(1)


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))
