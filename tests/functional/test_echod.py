"""test_echod.py: functional tests of echod as a user runs it (issue 2):
byte-exact echo from 1 B to 8 MiB on 100 concurrent connections, IPv6 and
wildcard listeners, the three modes, half-close, bounded memory against a
client that never reads, max_connections, idle_timeout, EMFILE recovery,
config errors with FILE:LINE, the command line, and signals. Nothing here
depends on epoll: the same file runs with EVENT_NOEPOLL=1 (poll) and with
EVENT_NOEPOLL=1 EVENT_NOPOLL=1 (select) exported. Loopback only; every load
is bounded in bytes and time."""

import fcntl
import os
import random
import re
import resource
import signal
import socket
import tempfile
import threading
import time

import pytest

from conftest import ECHOD, ROOT, SLOW, echo_roundtrip, free_port, wait_port
from echod_util import (check_chargen, connect, echo_many, fd_count,
                        have_ipv6, make_conf, nothing_arrives,
                        pattern_ok, project_version, read_to_eof,
                        recv_exact, roundtrip, run_echod, send_until_stall)

pytestmark = pytest.mark.skipif(not os.access(ECHOD, os.X_OK),
                                reason=f"{ECHOD} is not built")

MiB = 1 << 20
need_ipv6 = pytest.mark.skipif(not have_ipv6(), reason="no IPv6 loopback")


# --- echo ---------------------------------------------------------------

def test_echo_1b_to_8mib_on_100_concurrent_connections(echod_factory):
    d = echod_factory(make_conf(server={"workers": 2}))
    sizes = [1, 2, 3, 7, 100, 1000, 1460, 4095, 4096, 4097, 16383, 16384,
             65535, 65536, 65537, 100000, 262144, MiB - 1, MiB, MiB + 1,
             3 * MiB, 8 * MiB, 8 * MiB]
    rng = random.Random(2)
    sizes += [rng.randint(1, 65536) for _ in range(100 - len(sizes))]
    payloads = [rng.randbytes(n) for n in sizes]
    got = echo_many(d.port, payloads, timeout=60)
    bad = [(len(p), len(g)) for p, g in zip(payloads, got) if p != g]
    assert not bad, f"(sent, got back) that differ: {bad[:10]}"


def test_echo_with_small_max_buffer_is_byte_exact(echod_factory):
    # Backpressure engages and releases over and over.
    d = echod_factory(make_conf(limits={"max_buffer": "16k"}))
    rng = random.Random(3)
    payloads = [rng.randbytes(n) for n in (8 * MiB, 2 * MiB, 65537, 1)]
    got = echo_many(d.port, payloads, timeout=60)
    assert [len(g) for g in got] == [len(p) for p in payloads]
    assert got == payloads


def test_many_small_messages_on_one_connection(echod_factory):
    d = echod_factory(make_conf())
    with connect(d.port) as s:
        for i in range(200):
            msg = b"%d:" % i + b"m" * (i % 97)
            assert roundtrip(s, msg), f"message {i} not echoed"


@need_ipv6
def test_ipv6_listener(echod_factory):
    port = free_port(socket.AF_INET6)
    d = echod_factory(make_conf({"six": {"address": "[::1]:{port}"}}),
                      port=port, wait_host="::1")
    payload = random.Random(4).randbytes(MiB)
    assert echo_roundtrip(d.port, payload, host="::1") == payload


def test_several_listeners_and_wildcard(echod_factory):
    p2 = free_port()
    listeners = {
        "v4": {"address": "127.0.0.1:{port}"},
        "any": {"address": f"*:{p2}"},
    }
    p3 = None
    if have_ipv6():
        p3 = free_port(socket.AF_INET6)
        listeners["v6"] = {"address": f"[::1]:{p3}"}
    d = echod_factory(make_conf(listeners))
    assert wait_port("127.0.0.1", p2)
    assert echo_roundtrip(d.port, b"one") == b"one"
    assert echo_roundtrip(p2, b"two") == b"two"
    if p3 is not None:
        assert wait_port("::1", p3)
        assert echo_roundtrip(p3, b"three", host="::1") == b"three"


def test_reuseport_with_two_workers(echod_factory):
    d = echod_factory(make_conf({"a": {"address": "127.0.0.1:{port}",
                                       "reuseport": "yes"}},
                                server={"workers": 2}))
    rng = random.Random(5)
    payloads = [rng.randbytes(rng.randint(1, 200000)) for _ in range(40)]
    assert echo_many(d.port, payloads) == payloads


def test_workers_auto(echod_factory):
    d = echod_factory(make_conf(server={"workers": "auto"}))
    payloads = [b"x" * n for n in (1, 1000, 100000)] * 5
    assert echo_many(d.port, payloads) == payloads


def test_listeners_from_command_line(echod_factory):
    port = free_port()
    p2 = free_port()
    d = echod_factory(args=["-l", f"127.0.0.1:{port}",
                            "-l", f"discard@127.0.0.1:{p2}"], port=port)
    assert wait_port("127.0.0.1", p2)
    assert echo_roundtrip(d.port, b"hello") == b"hello"
    with connect(p2) as s:
        s.sendall(b"gone")
        assert nothing_arrives(s)


def test_default_listener_is_127_0_0_1_7007(echod_factory):
    # The one test on a fixed port: suites that run side by side (tests/run.sh)
    # take turns with it.
    lock = open(os.path.join(tempfile.gettempdir(), "echoload-test-7007.lock"),
                "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", 7007))
            except OSError:
                pytest.skip("127.0.0.1:7007 is in use")
        d = echod_factory(port=7007)
        assert d.proc.poll() is None
        assert echo_roundtrip(7007, b"default") == b"default"
        d.stop()
    finally:
        lock.close()


# --- modes --------------------------------------------------------------

def test_modes_echo_discard_chargen(echod_factory):
    pd, pc = free_port(), free_port()
    d = echod_factory(make_conf({
        "e": {"address": "127.0.0.1:{port}", "mode": "echo"},
        "d": {"address": f"127.0.0.1:{pd}", "mode": "discard"},
        "c": {"address": f"127.0.0.1:{pc}", "mode": "chargen"},
    }))
    assert wait_port("127.0.0.1", pd) and wait_port("127.0.0.1", pc)
    assert echo_roundtrip(d.port, b"echo me") == b"echo me"

    # discard: echod keeps reading (sendall would stall otherwise), nothing
    # comes back, the connection stays usable, and EOF closes it.
    with connect(pd) as s:
        chunk = b"d" * MiB
        for _ in range(16):
            s.sendall(chunk)
        assert nothing_arrives(s), "discard sent something back"
        s.sendall(b"still there")
        assert nothing_arrives(s, 0.2)
        s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b""

    # chargen: a stream of printable lines, whatever the client sends.
    with connect(pc) as s:
        s.sendall(b"ignored\r\n")
        check_chargen(recv_exact(s, 64 << 10))
    assert d.proc.poll() is None


def test_chargen_client_that_never_reads_stays_bounded(echod_factory):
    d = echod_factory(make_conf({"c": {"address": "127.0.0.1:{port}",
                                       "mode": "chargen"}},
                                limits={"max_buffer": "1m",
                                        "idle_timeout": 0}))
    with connect(d.port) as warm:
        check_chargen(recv_exact(warm, 1 << 20))
    time.sleep(0.2)
    rss0 = d.rss_kib()
    with connect(d.port) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        time.sleep(0.5)
        ticks0 = d.cpu_ticks()
        time.sleep(1.5)
        ticks = d.cpu_ticks() - ticks0
        grown = (d.rss_kib() - rss0) * 1024
        assert grown <= 1 * MiB + 8 * MiB, f"RSS grew {grown} bytes"
        hz = os.sysconf("SC_CLK_TCK")
        assert ticks < 0.15 * hz * 1.5, f"{ticks} ticks in 1.5 s: spinning"
        check_chargen(recv_exact(s, 64 << 10))


# --- half-close ---------------------------------------------------------

def test_half_close_mid_stream_returns_everything(echod_factory):
    d = echod_factory(make_conf(limits={"max_buffer": "64k"}))
    payload = random.Random(6).randbytes(4 * MiB)
    with connect(d.port, timeout=30) as s:
        def send():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send)
        t.start()
        try:
            got = read_to_eof(s, timeout=30)
        finally:
            t.join(30 * SLOW)
    assert len(got) == len(payload)
    assert got == payload


def test_half_close_then_read_later(echod_factory):
    # The client shuts its write side and reads only later, so at EOF echod
    # still holds echoed bytes in its own buffer and the kernel's.
    d = echod_factory(make_conf(limits={"max_buffer": "1m"}))
    payload = random.Random(7).randbytes(3 * MiB)
    with connect(d.port, timeout=30) as s:
        def send():
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send)
        t.start()
        try:
            time.sleep(0.5)
            got = read_to_eof(s, timeout=30)
        finally:
            t.join(30 * SLOW)
    assert len(got) == len(payload)
    assert got == payload
    small = random.Random(11).randbytes(100000)
    with connect(d.port) as s:
        s.sendall(small)
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        assert read_to_eof(s) == small


def test_half_close_with_nothing_sent(echod_factory):
    d = echod_factory(make_conf())
    with connect(d.port) as s:
        s.shutdown(socket.SHUT_WR)
        assert read_to_eof(s) == b""


# --- bounded memory -----------------------------------------------------

def test_never_reading_client_stays_bounded(echod_factory):
    max_buffer = MiB
    d = echod_factory(make_conf(limits={"max_buffer": "1m",
                                        "idle_timeout": 0}))
    warm = random.Random(8).randbytes(2 * MiB)
    assert echo_roundtrip(d.port, warm) == warm
    time.sleep(0.2)
    rss0 = d.rss_kib()
    limit = 128 * MiB
    with connect(d.port) as s:
        sent = send_until_stall(s, limit)
        grown = (d.rss_kib() - rss0) * 1024
        # Without backpressure echod would have taken all of it.
        assert sent < limit, "echod kept reading from a client that never reads"
        assert grown <= max_buffer + 8 * MiB, \
            f"RSS grew {grown} bytes with {sent} bytes sent, max_buffer {max_buffer}"
        # The same worker keeps serving everyone else.
        other = random.Random(9).randbytes(MiB)
        assert echo_roundtrip(d.port, other) == other
        with connect(d.port) as s2:
            assert roundtrip(s2, b"still serving")
        assert (d.rss_kib() - rss0) * 1024 <= max_buffer + 8 * MiB
        # The stalled connection is intact: its echo starts arriving.
        s.setblocking(True)
        assert pattern_ok(recv_exact(s, MiB)), "stalled connection's echo is wrong"
    assert d.proc.poll() is None


# --- limits -------------------------------------------------------------

def test_max_connections_pauses_and_resumes(echod_factory):
    d = echod_factory(make_conf(limits={"max_connections": 3,
                                        "idle_timeout": 0}))
    held = [connect(d.port) for _ in range(3)]
    try:
        for i, s in enumerate(held):
            assert roundtrip(s, b"%d" % i), f"connection {i} not served"
        extra = connect(d.port)  # completes in the kernel's backlog
        try:
            extra.sendall(b"wait")
            assert nothing_arrives(extra, 1.0), "served beyond max_connections"
            for s in held[1:]:
                assert roundtrip(s, b"others")
            held[0].close()
            assert recv_exact(extra, 4, timeout=10) == b"wait", \
                "not served after a connection closed"
            assert roundtrip(extra, b"more")
        finally:
            extra.close()
    finally:
        for s in held:
            s.close()


def test_idle_timeout_closes_idle_keeps_active(echod_factory):
    d = echod_factory(make_conf(limits={"idle_timeout": "1s"}))
    idle = connect(d.port)
    active = connect(d.port)
    try:
        assert roundtrip(idle, b"once")
        t0 = time.monotonic()
        closed_at = None
        idle.settimeout(0)
        # Keep one connection busy for 3 s while the other sits idle.
        while time.monotonic() - t0 < 3.0:
            assert roundtrip(active, b"tick"), \
                f"active connection lost after {time.monotonic() - t0:.1f} s"
            if closed_at is None and not nothing_arrives(idle, 0.1):
                try:
                    b = idle.recv(16)
                except ConnectionResetError:
                    b = b""
                assert b == b"", f"unexpected bytes {b!r}"
                closed_at = time.monotonic() - t0
        if closed_at is None:
            idle.settimeout(5 * SLOW)
            try:
                assert idle.recv(16) == b""
            except ConnectionResetError:
                pass
            closed_at = time.monotonic() - t0
        assert 0.5 <= closed_at <= 1.0 + 5 * SLOW, \
            f"idle connection closed after {closed_at:.2f} s"
        assert roundtrip(active, b"still here")
    finally:
        idle.close()
        active.close()


def test_idle_timeout_zero_is_off(echod_factory):
    d = echod_factory(make_conf(limits={"idle_timeout": 0}))
    with connect(d.port) as s:
        time.sleep(1.5)
        assert roundtrip(s, b"after a pause")


def test_idle_timeout_covers_a_client_that_stops_reading(echod_factory):
    d = echod_factory(make_conf(limits={"idle_timeout": "1s",
                                        "max_buffer": "256k"}))
    with connect(d.port) as s:
        sent = send_until_stall(s, 128 * MiB, stall=0.5)
        assert sent < 128 * MiB
        # echod cannot write and no longer reads: that is idle too, and
        # the connection goes (a reset, since unread bytes are dropped).
        deadline = time.monotonic() + (1.0 + 5 * SLOW)
        gone = False
        while time.monotonic() < deadline and not gone:
            time.sleep(0.1)
            try:
                s.send(b"x")
            except BlockingIOError:
                continue
            except OSError:
                gone = True
        assert gone, "a client that never reads was not timed out"


def test_emfile_pauses_without_spinning_and_recovers(echod_factory):
    nofile = 100

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    d = echod_factory(make_conf({"a": {"address": "127.0.0.1:{port}",
                                       "backlog": 128}},
                                limits={"idle_timeout": 0,
                                        "max_connections": 10000}),
                      preexec_fn=low_fd_limit)
    time.sleep(0.2)
    base = fd_count(d.pid)
    total = nofile - base + 20
    socks = []
    try:
        for _ in range(total):
            s = connect(d.port, timeout=2)
            socks.append(s)
        for s in socks:
            s.sendall(b"x")
        served = set()
        deadline = time.monotonic() + 3 * SLOW
        while time.monotonic() < deadline and len(served) < total:
            for i, s in enumerate(socks):
                if i not in served and not nothing_arrives(s, 0):
                    assert s.recv(1) == b"x"
                    served.add(i)
            time.sleep(0.05)
        assert served, "nothing served at all"
        assert len(served) < total, \
            f"all {total} served: the fd limit {nofile} was not reached"

        # Out of descriptors with connections waiting: no busy loop.
        hz = os.sysconf("SC_CLK_TCK")
        ticks0 = d.cpu_ticks()
        time.sleep(2.0)
        ticks = d.cpu_ticks() - ticks0
        assert d.proc.poll() is None, "echod died at the fd limit:\n" + d.stderr()
        assert ticks < 0.1 * hz * 2.0, f"{ticks} ticks in 2 s at EMFILE: spinning"

        # Free descriptors: the waiting connections are served.
        for i in served:
            socks[i].close()
        waiting = [s for i, s in enumerate(socks) if i not in served]
        for s in waiting:
            assert recv_exact(s, 1, timeout=10) == b"x", \
                "a waiting connection was not served after fds were freed"
        with connect(d.port) as s:
            assert roundtrip(s, b"recovered")
    finally:
        for s in socks:
            s.close()


# --- config check and command line --------------------------------------

BAD_CONFIGS = [
    # id, text, lines the error may name, word the message must contain
    ("unknown-key", "[server]\nworkers = 1\nbogus_key = 3\n", (3,), "bogus_key"),
    ("unknown-section", "[server]\nworkers = 1\n\n[nonsense]\nfoo = 1\n",
     (4, 5), "nonsense"),
    ("bad-size", "[limits]\nmax_buffer = 12q\n", (2,), "max_buffer"),
    ("negative-size", "[limits]\n\nmax_buffer = -1k\n", (3,), "max_buffer"),
    ("bad-duration", "[limits]\nidle_timeout = 5 fortnights\n", (2,),
     "idle_timeout"),
    ("bad-shutdown-timeout", "[server]\nshutdown_timeout = soon\n", (2,),
     "shutdown_timeout"),
    ("bad-port", "[listen a]\naddress = 127.0.0.1:99999\n", (2,), "address"),
    ("bad-address", "[listen a]\naddress = [::1:7007\n", (2,), "address"),
    ("bad-mode", "[listen a]\naddress = 127.0.0.1:7007\nmode = reverse\n",
     (3,), "mode"),
    ("duplicate-listener",
     "[listen a]\naddress = 127.0.0.1:7007\n\n[listen a]\naddress = 127.0.0.1:7008\n",
     (4, 5), "a"),
    ("bad-workers", "[server]\nworkers = many\n", (2,), "workers"),
    ("bad-max-connections", "[limits]\nmax_connections = lots\n", (2,),
     "max_connections"),
    ("bad-backlog", "[listen a]\naddress = 127.0.0.1:7007\nbacklog = -4\n",
     (3,), "backlog"),
    ("bad-reuseport",
     "[listen a]\naddress = 127.0.0.1:7007\nreuseport = perhaps\n", (3,),
     "reuseport"),
    ("unknown-listener-key",
     "[listen a]\naddress = 127.0.0.1:7007\ncolour = blue\n", (3,), "colour"),
]


@pytest.mark.parametrize("name,text,lines,word", BAD_CONFIGS,
                         ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_names_file_and_line(tmp_path, name, text, lines, word):
    path = tmp_path / f"{name}.conf"
    path.write_text(text)
    r = run_echod("-t", "-c", str(path))
    assert r.returncode != 0, f"accepted:\n{text}"
    where = "|".join(str(n) for n in lines)
    assert re.search(rf"{re.escape(str(path))}:({where}):", r.stderr), \
        f"no {path}:{where}: in stderr:\n{r.stderr}"
    assert word in r.stderr, f"{word!r} not in stderr:\n{r.stderr}"


GOOD_CONFIG = """\
# every issue-2 key, with units
[server]
workers = 2
shutdown_timeout = 500ms

[limits]
max_connections = 1000
idle_timeout = 5m
max_buffer = 256k

[listen plain]
address = 127.0.0.1:7007
mode = echo
backlog = 128
reuseport = no

[listen sink]
address = [::1]:7009
mode = discard
reuseport = yes

[listen gen]
address = *:7019
mode = chargen
"""


@pytest.mark.parametrize("text", [
    GOOD_CONFIG,
    "[server]\nworkers = auto\nshutdown_timeout = 2\n",
    "[limits]\nidle_timeout = 0\nmax_buffer = 1m\n",
    "[limits]\nidle_timeout = 1h\nmax_buffer = 1g\n",
    "",
], ids=["every-key", "workers-auto", "idle-off", "big-units", "empty"])
def test_check_valid_config_exits_0(tmp_path, text):
    path = tmp_path / "good.conf"
    path.write_text(text)
    r = run_echod("-t", "-c", str(path))
    assert r.returncode == 0, f"rejected:\n{text}\nstderr:\n{r.stderr}"


def test_shipped_config_is_valid():
    path = os.path.join(ROOT, "conf", "echod.conf")
    if not os.path.exists(path):
        pytest.skip("conf/echod.conf not there")
    r = run_echod("-t", "-c", path)
    assert r.returncode == 0, r.stderr


def test_missing_config_file(tmp_path):
    path = str(tmp_path / "absent.conf")
    r = run_echod("-t", "-c", path)
    assert r.returncode != 0
    assert path in r.stderr


@pytest.mark.parametrize("args", [["-x"], ["-c"], ["-l"], ["stray"]],
                         ids=["unknown-flag", "c-without-file",
                              "l-without-address", "stray-argument"])
def test_usage_errors_exit_2(args):
    r = run_echod(*args)
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stderr}"
    assert r.stderr.strip(), "no message for a usage error"


def test_version():
    r = run_echod("-V")
    assert r.returncode == 0
    assert project_version() in r.stdout + r.stderr


def test_help():
    r = run_echod("-h")
    assert r.returncode == 0
    out = r.stdout + r.stderr
    assert "usage" in out.lower() and "-c" in out


# --- signals ------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT],
                         ids=["SIGTERM", "SIGINT"])
def test_stop_signal_exits_0_with_stats(echod_factory, sig):
    d = echod_factory(make_conf(server={"shutdown_timeout": "2s"}))
    assert echo_roundtrip(d.port, b"some traffic") == b"some traffic"
    held = connect(d.port)
    try:
        assert roundtrip(held, b"open")
        t0 = time.monotonic()
        assert d.stop(sig, timeout=10) == 0, d.stderr()
        assert time.monotonic() - t0 <= 2.0 + 5 * SLOW
    finally:
        held.close()
    last = [ln for ln in d.stderr().splitlines() if ln.strip()]
    assert last and re.search(r"connections\D*\d", last[-1]), \
        f"no stats summary at exit:\n{d.stderr()}"
    with pytest.raises(OSError):
        connect(d.port, timeout=2).close()


def test_sigquit_drains_a_connection_still_sending(echod_factory):
    d = echod_factory(make_conf(server={"shutdown_timeout": "10s"}))
    rng = random.Random(10)
    chunks = [rng.randbytes(32 << 10) for _ in range(40)]
    payload = b"".join(chunks)
    s = connect(d.port, timeout=30)
    quit_sent = threading.Event()

    def send():
        for i, c in enumerate(chunks):
            if i == 5:
                d.signal(signal.SIGQUIT)
                quit_sent.set()
            s.sendall(c)
            time.sleep(0.025)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=send)
    t.start()
    try:
        got = read_to_eof(s, timeout=30)
    finally:
        t.join(30 * SLOW)
        s.close()
    assert quit_sent.is_set()
    assert len(got) == len(payload), \
        f"{len(got)} of {len(payload)} bytes echoed during the drain"
    assert got == payload
    assert d.proc.wait(timeout=15 * SLOW) == 0, d.stderr()


def test_sigquit_stops_accepting_and_gives_up_after_shutdown_timeout(echod_factory):
    d = echod_factory(make_conf(server={"shutdown_timeout": "1s"}))
    busy = connect(d.port)
    stop = threading.Event()
    errors = []

    def keep_talking():
        try:
            while not stop.is_set():
                if not roundtrip(busy, b"busy", timeout=2):
                    break
                time.sleep(0.05)
        except OSError as e:
            errors.append(e)

    t = threading.Thread(target=keep_talking)
    t.start()
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        d.signal(signal.SIGQUIT)
        time.sleep(0.3)
        if d.proc.poll() is None:
            # Draining: a new connection is refused or left unserved.
            try:
                with connect(d.port, timeout=1) as late:
                    late.sendall(b"late")
                    assert nothing_arrives(late, 0.3), \
                        "a new connection was served after SIGQUIT"
            except OSError:
                pass
        assert d.proc.wait(timeout=(1.0 + 10) * SLOW) == 0, d.stderr()
        assert time.monotonic() - t0 <= 1.0 + 10 * SLOW
    finally:
        stop.set()
        t.join(10)
        busy.close()
