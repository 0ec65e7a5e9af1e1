"""test_admin_abuse.py: the admin endpoint against hostile and unlucky
clients. A client that pipelines requests and never reads keeps echod's
memory bounded; connections beyond the cap wait in the backlog instead of
taking descriptors; a client that trickles bytes is closed at the deadline;
HEAD sends headers only, so a keep-alive client's next reply is intact;
and out of descriptors, an admin connection neither spins the main thread
nor floods the event log. Loopback only; bounded in count and time."""

import os
import resource
import socket
import time

import pytest

from conftest import ECHOD, SLOW, Echod, free_port, wait_for
from daemon_util import Setup, http_get
from echod_util import connect, fd_count, roundtrip

pytestmark = pytest.mark.skipif(not os.access(ECHOD, os.X_OK),
                                reason=f"{ECHOD} is not built")

# What echod promises (echod(8), ADMIN ENDPOINT).
ADMIN_MAX_CONNS = 16
ADMIN_DEADLINE_S = 5


@pytest.fixture
def procs():
    started = []
    yield started
    for d in started:
        d.kill()


def start(procs, preexec_fn=None):
    """echod with one worker, an echo listener and the admin endpoint;
    returns (echod, admin port)."""
    st = Setup()
    admin = free_port()
    st.write(sections={"admin": {"address": str(admin)}})
    d = Echod(args=["-c", st.conf], port=st.port, tmpdir=st.tmpdir,
              preexec_fn=preexec_fn)
    procs.append(d)
    assert wait_for(lambda: healthy(admin)), d.stderr()
    return d, admin


def healthy(port):
    try:
        return http_get(port, "/healthz", timeout=2.0)[0] == 200
    except OSError:
        return False


def read_replies(sock, timeout=10.0):
    """Everything until EOF."""
    sock.settimeout(timeout * SLOW)
    chunks = []
    while True:
        b = sock.recv(65536)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def split_reply(data):
    """(status line, {lower-case header: value}, rest) of one reply."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    assert sep, data[:200]
    lines = head.decode().split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, rest


def closed(sock):
    """True once the peer has closed (EOF or reset), False on a timeout."""
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_pipelined_requests_never_read_keep_memory_bounded(procs):
    d, admin = start(procs)
    with connect(d.port) as s:
        assert roundtrip(s)
    rss0 = d.rss_kib()
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 2000
    sent = 0
    with socket.create_connection(("127.0.0.1", admin)) as s:
        s.setblocking(False)
        # Well within the deadline, however slow the build: the bound
        # must hold while the connection lives, not because it closed.
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            try:
                sent += s.send(request)
            except BlockingIOError:
                time.sleep(0.01)
        rss = d.rss_kib()
        # The endpoint and the echo service still answer meanwhile.
        assert healthy(admin)
        with connect(d.port) as e:
            assert roundtrip(e)
    growth = (rss - rss0) / 1024
    # Without a bound echod read all of it (hundreds of MB a second).
    assert growth < 16, f"RSS grew {growth:.1f} MB ({sent >> 20} MB sent)"
    # What the client could send is what the kernel buffers hold, plus
    # echod's bounded input: a few MB, not the link's speed.
    assert sent < 64 << 20, f"{sent >> 20} MB accepted from one client"
    assert d.stop() == 0


def test_connections_beyond_the_cap_wait_in_the_backlog(procs):
    d, admin = start(procs)
    assert wait_for(lambda: healthy(admin))
    fds0 = fd_count(d.pid)
    held = [socket.create_connection(("127.0.0.1", admin))
            for _ in range(ADMIN_MAX_CONNS * 3)]
    try:
        time.sleep(0.3 * SLOW)
        grown = fd_count(d.pid) - fds0
        assert grown <= ADMIN_MAX_CONNS, f"{grown} descriptors for admin"
        # One more client waits: no reply while the cap is reached.
        with socket.create_connection(("127.0.0.1", admin)) as late:
            late.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                         b"Connection: close\r\n\r\n")
            late.settimeout(0.5)
            with pytest.raises(socket.timeout):
                late.recv(1)
            # The echo service is not starved meanwhile.
            with connect(d.port) as e:
                assert roundtrip(e)
            for s in held:
                s.close()
            held = []
            status, _, rest = split_reply(read_replies(late))
            assert status == "HTTP/1.1 200 OK" and rest == b"ok\n"
    finally:
        for s in held:
            s.close()
    assert wait_for(lambda: healthy(admin))
    assert "admin: 16 connections open: not accepting" in d.stderr()
    assert d.stop() == 0


def test_a_client_trickling_bytes_is_closed_at_the_deadline(procs):
    d, admin = start(procs)
    with socket.create_connection(("127.0.0.1", admin)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        limit = (ADMIN_DEADLINE_S + 3) * SLOW
        s.settimeout(0.25)
        gone = False
        while time.monotonic() - t0 < limit and not gone:
            try:
                s.send(b"X")            # one byte of a header, never ends
            except (BrokenPipeError, ConnectionResetError):
                gone = True
                break
            gone = closed(s)
        assert gone, f"still open after {limit:.0f} s of trickling"
        assert time.monotonic() - t0 >= ADMIN_DEADLINE_S - 1
    assert healthy(admin)
    assert d.stop() == 0


def test_head_sends_headers_only(procs):
    d, admin = start(procs)
    for path, body_start in (("/healthz", b"ok\n"), ("/metrics", b"# HELP"),
                             ("/stats", b"{"), ("/nosuch", b"not found")):
        with socket.create_connection(("127.0.0.1", admin)) as s:
            # HEAD then GET on one keep-alive connection.
            s.sendall(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"
                      f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\n\r\n".encode())
            data = read_replies(s)
        status, headers, rest = split_reply(data)
        assert status.startswith("HTTP/1.1 "), status
        # Right after the HEAD reply's headers comes the GET reply.
        assert rest.startswith(b"HTTP/1.1 "), (path, rest[:60])
        status2, headers2, body = split_reply(rest)
        assert status2 == status
        assert body.startswith(body_start), (path, body[:60])
        # HEAD says how long the GET body is; /metrics and /stats change
        # between the two (uptime), so only their size is close.
        assert int(headers["content-length"]) > 0
        if path in ("/healthz", "/nosuch"):
            assert int(headers["content-length"]) == len(body)
    assert d.stop() == 0


def settle_fds(pid):
    """Wait until echod's descriptor count holds still for 250 ms."""
    prev, deadline = None, time.monotonic() + 5 * SLOW
    while time.monotonic() < deadline:
        n = len(os.listdir(f"/proc/{pid}/fd"))
        if n == prev:
            return
        prev = n
        time.sleep(0.25)


def limit_descriptors(n):
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return apply


def test_admin_at_the_descriptor_limit(procs):
    nofile = 64
    d, admin = start(procs, preexec_fn=limit_descriptors(nofile))
    # The readiness probe's admin connection is let go on the endpoint's
    # next tick; until then its descriptor would free up in the middle of
    # the test and let one more connection in.
    settle_fds(d.pid)
    held = []
    try:
        # Fill echod's descriptor table with echo connections; the
        # rest wait in the backlog.
        for _ in range(nofile + 8):
            held.append(connect(d.port))
        assert wait_for(lambda: "Too many open files" in d.stderr()), \
            d.stderr()
        # One admin request now: it cannot be accepted.
        a = socket.create_connection(("127.0.0.1", admin))
        a.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                  b"Connection: close\r\n\r\n")
        time.sleep(0.3)
        t0, cpu0 = time.monotonic(), d.cpu_ticks()
        time.sleep(2.0)
        wall = time.monotonic() - t0
        cpu = (d.cpu_ticks() - cpu0) / os.sysconf("SC_CLK_TCK")
        log = d.stderr()
        # Without a pause it spun at full speed, logging each failure.
        assert cpu < 0.25 * wall, f"{cpu:.2f} CPU-s in {wall:.1f} s"
        assert "Error from accept" not in log
        assert log.count("admin: accept: Too many open files") == 1, log
        # The echo listener's pause is one line too, not ten a second.
        assert log.count("listener a: accept: Too many open files") == 1, log
        # Descriptors back: the waiting admin client is served.
        for s in held:
            s.close()
        held = []
        status, _, rest = split_reply(read_replies(a))
        assert status == "HTTP/1.1 200 OK" and rest == b"ok\n"
        a.close()
        assert wait_for(lambda: "accepting again after" in d.stderr()), \
            d.stderr()
    finally:
        for s in held:
            s.close()
    assert d.stop() == 0
