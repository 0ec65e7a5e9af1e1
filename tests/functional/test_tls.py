"""Functional tests of echod's TLS listeners: echo over TLS 1.2 and 1.3,
min_version, mutual TLS, session resumption, half-close, hostile clients,
openssl s_client as a third-party client, and [tls] config errors. The
certificates are made at test time (tls_util.Pki)."""

import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest

from conftest import ECHOD, SLOW, wait_for
from echod_util import check_chargen, run_echod
from echod_util import recv_exact as recv_n
from tls_util import (BioClient, Pki, client_ctx, client_hello,
                      closed_by_peer, echo, tls_conf, tls_connect, tls_stats)

MiB = 1 << 20


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


def stop_stats(d):
    assert d.stop(signal.SIGTERM) == 0, d.stderr()
    return tls_stats(d.stderr())


# ---- echo -----------------------------------------------------------------

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_echo_is_byte_exact_across_sizes(echod_factory, pki, version):
    d = echod_factory(tls_conf(pki))
    ctx = client_ctx(pki, version=version)
    for size in (1, 100, 16383, 16384, 16385, 100000, 3 * MiB + 7):
        payload = os.urandom(size)
        with tls_connect(d.port, ctx) as s:
            assert s.version() == "TLSv" + version
            assert echo(s, payload) == payload, size
    st = stop_stats(d)
    assert st["handshakes"] == 7
    assert st["TLSv" + version] == 7
    assert st["failed"] == 0


def test_pipelined_messages_come_back_in_order(echod_factory, pki):
    d = echod_factory(tls_conf(pki))
    msgs = [b"%05d:" % i + os.urandom(i % 200) for i in range(1000)]
    with tls_connect(d.port, client_ctx(pki)) as s:
        for m in msgs:              # one TLS record each, nothing read yet
            s.sendall(m)
        want = b"".join(msgs)
        assert recv_n(s, len(want)) == want


def test_small_max_buffer_is_byte_exact(echod_factory, pki):
    d = echod_factory(tls_conf(pki, limits={"max_buffer": "16k"}))
    payload = os.urandom(2 * MiB)
    with tls_connect(d.port, client_ctx(pki)) as s:
        assert echo(s, payload) == payload


def test_chargen_over_tls(echod_factory, pki):
    d = echod_factory(tls_conf(pki, listener={"mode": "chargen"}))
    with tls_connect(d.port, client_ctx(pki)) as s:
        data = recv_n(s, 200000)
    check_chargen(data)
    # The same stream as plain chargen: line n starts n characters in.
    first = data.split(b"\r\n")[0]
    assert first == bytes(range(0x20, 0x20 + 72))


def test_concurrent_connections(echod_factory, pki):
    d = echod_factory(tls_conf(pki))
    ctx = client_ctx(pki)
    results = [None] * 20

    def one(i):
        payload = os.urandom(1000 * (i + 1))
        with tls_connect(d.port, ctx) as s:
            results[i] = echo(s, payload) == payload

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60 * SLOW)
    assert all(results), results


def test_never_reading_client_stays_bounded(echod_factory, pki):
    """Backpressure: echod stops reading once max_buffer is owed."""
    d = echod_factory(tls_conf(pki, limits={"max_buffer": "256k"}))
    s = tls_connect(d.port, client_ctx(pki))
    rss0 = d.rss_kib()
    s.setblocking(False)
    chunk = os.urandom(16384)
    sent = 0
    deadline = time.monotonic() + 20 * SLOW
    stalled_since = None
    while sent < 256 * MiB and time.monotonic() < deadline:
        try:
            sent += s.send(chunk)
            stalled_since = None
        except (ssl.SSLWantWriteError, BlockingIOError):
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                break
            time.sleep(0.01)
    assert sent < 64 * MiB, f"echod kept reading: {sent} bytes taken"
    assert (d.rss_kib() - rss0) * 1024 <= 256 * 1024 + 16 * MiB
    s.close()


# ---- versions, mutual TLS --------------------------------------------------

def test_min_version_1_3_rejects_a_1_2_client(echod_factory, pki):
    d = echod_factory(tls_conf(pki, tls={"min_version": "1.3"}))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_connect(d.port, client_ctx(pki, version="1.2")).close()
    with tls_connect(d.port, client_ctx(pki)) as s:
        assert s.version() == "TLSv1.3"
        assert echo(s, b"ok") == b"ok"
    st = stop_stats(d)
    assert st["failed"] == 1 and st["handshakes"] == 1


def test_ciphers_and_ciphersuites_are_applied(echod_factory, pki):
    d = echod_factory(tls_conf(pki, tls={
        "ciphers": "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ciphersuites": "TLS_CHACHA20_POLY1305_SHA256"}))
    with tls_connect(d.port, client_ctx(pki, version="1.2")) as s:
        assert s.cipher()[0] == "ECDHE-ECDSA-CHACHA20-POLY1305"
        assert echo(s, b"x" * 5000) == b"x" * 5000
    with tls_connect(d.port, client_ctx(pki, version="1.3")) as s:
        assert s.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"
        assert echo(s, b"y") == b"y"
    st = stop_stats(d)
    assert st["ECDHE-ECDSA-CHACHA20-POLY1305"] == 1
    assert st["TLS_CHACHA20_POLY1305_SHA256"] == 1


def mtls_rejected(port, ctx):
    """Rejected at the handshake (1.2) or at the first read (1.3, where
    the client finishes before the server has checked its certificate)."""
    try:
        s = tls_connect(port, ctx)
    except (ssl.SSLError, ConnectionError):
        return True
    with s:
        try:
            s.sendall(b"hello")
        except (ssl.SSLError, ConnectionError):
            return True
        return closed_by_peer(s)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_mutual_tls(echod_factory, pki, version):
    d = echod_factory(tls_conf(pki, tls={"ca": pki.path("ca.pem")}))
    with tls_connect(d.port, client_ctx(pki, version=version,
                                        cert="client")) as s:
        assert echo(s, b"with a good certificate") == b"with a good certificate"
    assert mtls_rejected(d.port, client_ctx(pki, version=version))
    assert mtls_rejected(d.port, client_ctx(pki, version=version,
                                            cert="other-client"))
    st = stop_stats(d)
    assert st["handshakes"] == 1 and st["failed"] == 2


# ---- resumption -----------------------------------------------------------

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_session_resumption_across_workers_is_counted(echod_factory, pki,
                                                      version, tmp_path):
    log = tmp_path / "access.log"
    d = echod_factory(tls_conf(pki, server={"workers": "2"},
                               log={"access_log": str(log)}))
    ctx = client_ctx(pki, version=version)
    with tls_connect(d.port, ctx) as s:
        assert echo(s, b"first") == b"first"    # 1.3: tickets come with data
        assert not s.session_reused
        session = s.session
    reused = 0
    for _ in range(4):                  # round robin: both workers
        with tls_connect(d.port, ctx, session=session) as s:
            assert echo(s, b"again") == b"again"
            reused += s.session_reused
            session = s.session
    assert reused == 4
    st = stop_stats(d)
    assert st["handshakes"] == 5 and st["resumed"] == 4
    assert wait_for(lambda: log.exists() and
                    log.read_text().count(f"tls=TLSv{version}") == 5)


def test_session_tickets_off_means_no_resumption(echod_factory, pki):
    d = echod_factory(tls_conf(pki, tls={"session_tickets": "no"}))
    for version in ("1.2", "1.3"):
        ctx = client_ctx(pki, version=version)
        with tls_connect(d.port, ctx) as s:
            assert echo(s, b"a") == b"a"
            session = s.session
        with tls_connect(d.port, ctx, session=session) as s:
            assert echo(s, b"b") == b"b"
            assert not s.session_reused
    st = stop_stats(d)
    assert st["handshakes"] == 4 and st["resumed"] == 0


# ---- closing ----------------------------------------------------------------

def test_close_notify_half_close_returns_everything(echod_factory, pki):
    d = echod_factory(tls_conf(pki, limits={"max_buffer": "64k"}))
    c = BioClient(d.port, client_ctx(pki))
    payload = os.urandom(300000)
    c.send(payload)
    c.close_notify()
    data, how = c.read_to_close()
    c.close()
    assert data == payload and how == "close_notify"


def test_tcp_half_close_without_close_notify(echod_factory, pki):
    """An EOF without close_notify ends the client's stream (no error);
    what is owed still comes back, then echod's close_notify."""
    d = echod_factory(tls_conf(pki))
    c = BioClient(d.port, client_ctx(pki))
    payload = os.urandom(100000)
    c.send(payload)
    c.shutdown_tcp()
    data, how = c.read_to_close()
    c.close()
    assert data == payload and how == "close_notify"
    st = stop_stats(d)
    assert st["handshakes"] == 1 and st["failed"] == 0
    assert "errors 0" in d.stderr()


def test_idle_timeout_closes_with_close_notify(echod_factory, pki):
    d = echod_factory(tls_conf(pki, limits={"idle_timeout": "1s"}))
    c = BioClient(d.port, client_ctx(pki))
    c.send(b"ping")
    t0 = time.monotonic()
    data, how = c.read_to_close()
    c.close()
    assert data == b"ping" and how == "close_notify"
    assert time.monotonic() - t0 >= 0.9
    st = stop_stats(d)
    assert "timed out 1," in d.stderr()
    assert st["handshakes"] == 1 and st["failed"] == 0


def test_sigterm_with_open_tls_connections_exits_0(echod_factory, pki):
    d = echod_factory(tls_conf(pki))
    socks = [tls_connect(d.port, client_ctx(pki)) for _ in range(5)]
    for s in socks:
        assert echo(s, b"x") == b"x"
    raw = socket.create_connection(("127.0.0.1", d.port))  # mid-handshake
    raw.sendall(client_hello(pki)[:20])
    big = tls_connect(d.port, client_ctx(pki))
    big.sendall(os.urandom(200000))     # output owed at exit
    time.sleep(0.2)
    st = stop_stats(d)
    assert st["handshakes"] == 6
    for s in socks + [big, raw]:
        s.close()


def test_sigquit_lets_a_tls_connection_finish(echod_factory, pki):
    d = echod_factory(tls_conf(pki))
    c = BioClient(d.port, client_ctx(pki))
    c.send(b"before")
    d.signal(signal.SIGQUIT)
    time.sleep(0.3)
    assert d.proc.poll() is None
    c.send(b"after")
    c.close_notify()
    data, how = c.read_to_close()
    c.close()
    assert data == b"beforeafter" and how == "close_notify"
    assert d.proc.wait(10 * SLOW) == 0


# ---- hostile clients ----------------------------------------------------------

def test_hostile_clients_are_dropped_and_counted(echod_factory, pki):
    d = echod_factory(tls_conf(pki, tls={"handshake_timeout": "1s"}))
    good = tls_connect(d.port, client_ctx(pki))
    assert echo(good, b"good") == b"good"
    hello = client_hello(pki)
    assert hello[0] == 0x16 and len(hello) > 100

    def hostile(first):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10 * SLOW)
        if first:
            s.sendall(first)
        return s

    plain = hostile(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    rand = hostile(b"\x16\x03\x01\x00\x50" + os.urandom(80))
    noise = hostile(os.urandom(4096))
    truncated = hostile(hello[:len(hello) // 2])
    silent = hostile(None)
    t0 = time.monotonic()
    # Errors are dropped at once (an alert may come first) ...
    for s in (plain, rand, noise):
        assert closed_by_peer(s, timeout=5)
    # ... while the good connection keeps echoing ...
    for i in range(20):
        msg = b"still here %d" % i
        assert echo(good, msg) == msg
    # ... and stalled handshakes at the deadline.
    for s in (truncated, silent):
        assert closed_by_peer(s, timeout=10)
    assert time.monotonic() - t0 >= 0.9
    assert echo(good, b"after") == b"after"
    for s in (plain, rand, noise, truncated, silent):
        s.close()
    good.close()
    st = stop_stats(d)
    assert st["failed"] == 5 and st["timed_out"] == 2
    assert st["handshakes"] == 1


def test_port_probe_is_not_a_failed_handshake(echod_factory, pki):
    d = echod_factory(tls_conf(pki))
    for _ in range(3):
        socket.create_connection(("127.0.0.1", d.port)).close()
    time.sleep(0.2)
    st = stop_stats(d)
    assert st["failed"] == 0


# ---- third-party client ---------------------------------------------------------

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_openssl_s_client_echoes(echod_factory, pki, version):
    d = echod_factory(tls_conf(pki))
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{d.port}", "-quiet",
         "-tls" + version.replace(".", "_"), "-CAfile", pki.path("ca.pem"),
         "-verify_return_error", "-servername", "localhost"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        lines = [b"line %d %s\n" % (i, b"z" * i) for i in range(50)]
        p.stdin.write(b"".join(lines))
        p.stdin.flush()
        want = b"".join(lines)
        got = b""
        deadline = time.monotonic() + 10 * SLOW
        while len(got) < len(want) and time.monotonic() < deadline:
            b = p.stdout.read1(65536)
            if not b:
                break
            got += b
        assert got == want, p.stderr.read1(4096) if p.poll() is not None else got[-80:]
    finally:
        p.kill()
        p.wait()
    st = stop_stats(d)
    assert st["handshakes"] == 1 and st["TLSv" + version] == 1


# ---- configuration ----------------------------------------------------------------

def conf_file(tmp_path, pki, tls):
    text = tls_conf(pki, tls=tls).replace("{port}", "7443")
    p = tmp_path / "echod.conf"
    p.write_text(text)
    lines = text.splitlines()
    return str(p), lines


def line_of(lines, key):
    for i, ln in enumerate(lines):
        if ln.startswith(key + " ="):
            return i + 1
    raise KeyError(key)


CONFIG_ERRORS = [
    ("mismatched-key", {"key": "stray.key"}, "key", "does not match"),
    ("missing-certificate", {"certificate": "nonexistent.pem"},
     "certificate", "No such file"),
    ("missing-key", {"key": "nonexistent.key"}, "key", "No such file"),
    ("garbage-certificate", {"certificate": "garbage.pem"}, "certificate",
     "PEM"),
    ("truncated-certificate", {"certificate": "truncated.pem"},
     "certificate", "PEM"),
    ("garbage-key", {"key": "garbage.pem"}, "key", "PEM"),
    ("certificate-as-key", {"key": "server.pem"}, "key", "PEM"),
    ("garbage-ca", {"ca": "garbage.pem"}, "ca", "ca"),
    ("missing-ca", {"ca": "nonexistent.pem"}, "ca", "No such file"),
    ("bad-ciphers", {"ciphers": "NOT-A-CIPHER"}, "ciphers", "cipher"),
    ("bad-ciphersuites", {"ciphersuites": "TLS_NOPE"}, "ciphersuites",
     "suite"),
]


@pytest.mark.parametrize("name,tls,key,word", CONFIG_ERRORS,
                         ids=[c[0] for c in CONFIG_ERRORS])
def test_config_errors_name_file_and_line(tmp_path, pki, name, tls, key,
                                          word):
    tls = {k: (pki.path(v) if k in ("certificate", "key", "ca") else v)
           for k, v in tls.items()}
    path, lines = conf_file(tmp_path, pki, tls)
    for args in (["-t", "-c", path], ["-f", "-c", path]):
        r = run_echod(*args)
        assert r.returncode == 1, r
        want = f"{path}:{line_of(lines, key)}: {key}: "
        assert want in r.stderr, r.stderr
        assert word in r.stderr, r.stderr


def test_valid_tls_config_checks_ok(tmp_path, pki):
    path, _ = conf_file(tmp_path, pki, {"ca": pki.path("ca.pem"),
                                        "min_version": "1.3",
                                        "session_tickets": "no"})
    r = run_echod("-t", "-c", path)
    assert r.returncode == 0, r.stderr
    assert "configuration OK" in r.stdout


def test_echod_binary_exists():
    assert os.access(ECHOD, os.X_OK)
