"""test_admin.py: the admin endpoint (issue 6): /metrics parses with the
Prometheus client library's own text parser, follows the naming
conventions, and its counters match the traffic sent; /stats is JSON that
agrees with it; /healthz; errors for other paths and methods; the bare
port form and a taken admin port. Loopback only; bounded."""

import json
import os
import random
import socket

import pytest

from conftest import ECHOD, Echod, free_port
from conftest import wait_for
from daemon_util import Setup, http_get, listening_socket, run
from echod_util import connect, read_to_eof, roundtrip

prom = pytest.importorskip("prometheus_client.parser")

pytestmark = pytest.mark.skipif(not os.access(ECHOD, os.X_OK),
                                reason=f"{ECHOD} is not built")


@pytest.fixture
def procs():
    started = []
    yield started
    for d in started:
        d.kill()


def start(procs, workers=2, limits=None):
    """echod with an echo listener a, a discard listener b and the admin
    endpoint on a bare port; returns (echod, setup, port of b, admin port)."""
    st = Setup()
    pb, admin = free_port(), free_port()
    sections = {"admin": {"address": str(admin)}}
    if limits:
        sections["limits"] = limits
    st.write(server={"workers": str(workers)},
             listeners={"a": {"address": f"127.0.0.1:{st.port}"},
                        "b": {"address": f"127.0.0.1:{pb}",
                              "mode": "discard"}},
             sections=sections)
    d = Echod(args=["-c", st.conf], port=st.port, tmpdir=st.tmpdir)
    procs.append(d)
    assert wait_for(lambda: _up(admin)), d.stderr()
    return d, st, pb, admin


def _up(port):
    try:
        return http_get(port, "/healthz")[0] == 200
    except OSError:
        return False


def metrics(port):
    """{family name: {(sample name, frozenset of labels): value}} and the
    families' types, as the Prometheus parser sees them."""
    status, headers, body = http_get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    samples, types = {}, {}
    for fam in prom.text_string_to_metric_families(body):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def total(samples, name):
    """Sum of a sample over all its label sets."""
    return sum(v for (n, _), v in samples.items() if n == name)


def test_metrics_parse_and_follow_the_conventions(procs):
    _, _, pb, admin = start(procs)
    samples, types = metrics(admin)
    assert samples, "no samples"
    for (name, _), v in samples.items():
        assert name.startswith("echod_"), name
        assert v >= 0, name
    for fam, typ in types.items():
        assert typ in ("counter", "gauge"), (fam, typ)
    counters = {n for (n, _) in samples if types.get(n.removesuffix("_total"))
                == "counter"}
    assert counters and all(n.endswith("_total") for n in counters)
    # What the issue asks for, by name.
    for fam in ("echod_listener_connections_open",
                "echod_listener_connections", "echod_worker_connections",
                "echod_listener_connections_refused",
                "echod_worker_connections_timed_out",
                "echod_worker_received_bytes", "echod_worker_sent_bytes",
                "echod_listener_received_bytes", "echod_listener_sent_bytes",
                "echod_listener_accept_errors", "echod_worker_tls_handshakes",
                "echod_reloads", "echod_uptime_seconds",
                "echod_log_lines_written", "echod_log_lines_dropped"):
        assert fam in types, f"no {fam} in /metrics"
    assert value(samples, "echod_reloads_total", result="ok") == 0
    assert value(samples, "echod_reloads_total", result="failed") == 0
    assert value(samples, "echod_workers") == 2
    assert value(samples, "echod_uptime_seconds") > 0
    assert value(samples, "echod_listener_info", listener="b",
                 address=f"127.0.0.1:{pb}", mode="discard", tls="no") == 1
    assert {dict(k[1]).get("worker") for k in samples
            if k[0] == "echod_worker_connections_total"} == {"0", "1"}
    assert {dict(k[1]).get("listener") for k in samples
            if k[0] == "echod_listener_connections_total"} == {"a", "b"}


def quiet(admin):
    """Metrics once every connection so far has closed and been counted
    (conftest's start-up probe makes one on listener a)."""
    def settled():
        s, _ = metrics(admin)
        if total(s, "echod_listener_connections_closed_total") == \
                total(s, "echod_listener_connections_total") and \
                value(s, "echod_connections_open") == 0:
            return s
        return None
    samples = wait_for(settled)
    assert samples, "connections not all counted as closed"
    return samples


def test_metrics_counters_match_the_traffic(procs):
    d, st, pb, admin = start(procs)
    before = quiet(admin)
    rng = random.Random(6)
    sizes = [1, 100, 4096, 65537, 300000, 1 << 20, 7, 12345]
    sent_a = 0
    for n in sizes:
        payload = rng.randbytes(n)
        with connect(d.port) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            assert read_to_eof(s) == payload
        sent_a += n
    sent_b = 0
    for n in (10, 20000, 500000):
        with connect(pb) as s:
            s.sendall(rng.randbytes(n))
            s.shutdown(socket.SHUT_WR)
            assert read_to_eof(s) == b""
        sent_b += n
    conns = len(sizes) + 3

    # Listener counters are added when a connection closes: wait for that.
    after = quiet(admin)
    samples = {k: after[k] - before.get(k, 0) for k in after}
    assert total(samples, "echod_listener_connections_closed_total") == conns
    v = lambda name, **kw: value(samples, name, **kw)  # noqa: E731
    assert v("echod_listener_connections_total", listener="a") == len(sizes)
    assert v("echod_listener_connections_total", listener="b") == 3
    assert v("echod_listener_connections_open", listener="a") == 0
    assert v("echod_listener_connections_refused_total", listener="a") == 0
    assert v("echod_listener_accept_errors_total", listener="a") == 0
    assert v("echod_listener_received_bytes_total", listener="a") == sent_a
    assert v("echod_listener_sent_bytes_total", listener="a") == sent_a
    assert v("echod_listener_received_bytes_total", listener="b") == sent_b
    assert v("echod_listener_sent_bytes_total", listener="b") == 0
    assert total(samples, "echod_worker_received_bytes_total") == sent_a + sent_b
    assert total(samples, "echod_worker_sent_bytes_total") == sent_a
    assert total(samples, "echod_worker_connections_total") == conns
    assert total(samples, "echod_worker_connections_open") == 0
    assert total(samples, "echod_worker_connections_timed_out_total") == 0
    assert total(samples, "echod_worker_tls_handshakes_total") == 0

    # /stats says the same, as JSON.
    status, headers, body = http_get(admin, "/stats")
    assert status == 200 and headers["content-type"] == "application/json"
    st_json = json.loads(body)
    tot = st_json["total"]
    assert tot["connections_total"] == \
        total(after, "echod_worker_connections_total")
    assert tot["received_bytes"] == \
        total(after, "echod_worker_received_bytes_total")
    assert tot["sent_bytes"] == total(after, "echod_worker_sent_bytes_total")
    assert tot["connections_open"] == 0
    by_name = {l["name"]: l for l in st_json["listeners"]}
    assert by_name["a"]["received_bytes"] == value(
        after, "echod_listener_received_bytes_total", listener="a")
    assert by_name["b"]["received_bytes"] == sent_b
    assert by_name["b"]["mode"] == "discard"
    assert by_name["a"]["address"] == f"127.0.0.1:{d.port}"
    assert len(st_json["workers"]) == 2
    assert sum(w["connections"] for w in st_json["workers"]) == \
        tot["connections_total"]
    assert st_json["reloads"] == {"ok": 0, "failed": 0}
    assert st_json["pid"] == d.pid
    assert d.stop() == 0


def test_metrics_open_and_timed_out(procs):
    d, st, pb, admin = start(procs, workers=1,
                             limits={"idle_timeout": "1s"})
    quiet(admin)
    held = [connect(d.port) for _ in range(3)]
    try:
        for s in held:
            assert roundtrip(s)
        samples, _ = metrics(admin)
        assert value(samples, "echod_connections_open") == 3
        assert value(samples, "echod_listener_connections_open",
                     listener="a") == 3
        assert value(samples, "echod_worker_connections_open", worker="0") == 3
        # Left idle, they time out.
        for s in held:
            assert read_to_eof(s) == b""
        assert wait_for(lambda: value(metrics(admin)[0],
                        "echod_worker_connections_timed_out_total",
                        worker="0") == 3)
    finally:
        for s in held:
            s.close()
    assert d.stop() == 0


def test_log_sink_counters(procs):
    st = Setup()
    admin = free_port()
    st.write(sections={"admin": {"address": f"127.0.0.1:{admin}"},
                       "log": {"access_log": f"{st.tmpdir}/access.log"}})
    d = Echod(args=["-c", st.conf], port=st.port, tmpdir=st.tmpdir)
    procs.append(d)
    assert wait_for(lambda: _up(admin))
    # One line per closed connection, conftest's start-up probe included.
    base = quiet(admin)
    n0 = value(base, "echod_listener_connections_closed_total", listener="a")
    assert wait_for(lambda: value(metrics(admin)[0],
                    "echod_log_lines_written_total", sink="access_log") == n0)
    for _ in range(5):
        with connect(d.port) as s:
            assert roundtrip(s)
    assert wait_for(lambda: value(metrics(admin)[0],
                    "echod_log_lines_written_total",
                    sink="access_log") == n0 + 5)
    with open(os.path.join(st.tmpdir, "access.log")) as f:
        assert len(f.readlines()) == n0 + 5
    samples, _ = metrics(admin)
    assert value(samples, "echod_log_lines_dropped_total",
                 sink="access_log") == 0
    assert d.stop() == 0


def test_healthz_and_errors(procs):
    d, st, pb, admin = start(procs, workers=1)
    status, headers, body = http_get(admin, "/healthz")
    assert (status, body) == (200, "ok\n")
    status, _, body = http_get(admin, "/healthz", method="HEAD")
    assert status == 200 and body == ""
    status, _, _ = http_get(admin, "/nosuch")
    assert status == 404
    status, _, _ = http_get(admin, "/metrics", method="POST")
    assert status >= 400
    # The echo path is unaffected.
    with connect(d.port) as s:
        assert roundtrip(s)
    assert d.stop() == 0


def test_admin_port_taken_fails_the_start():
    st = Setup()
    with listening_socket() as taken:
        port = taken.getsockname()[1]
        st.write(sections={"admin": {"address": f"127.0.0.1:{port}"}})
        r = run("-f", "-c", st.conf)
    assert r.returncode == 1
    assert "admin" in r.stderr and "Address already in use" in r.stderr
    # A start that fails releases what it built (sanitizer builds say).
    assert "Sanitizer" not in r.stderr


def test_tls_metrics(procs, tmp_path):
    import ssl
    from tls_util import Pki
    pki = Pki(str(tmp_path))
    st = Setup()
    admin = free_port()
    st.write(listeners={"t": {"address": f"127.0.0.1:{st.port}",
                              "tls": "yes"}},
             sections={"tls": {"certificate": pki.path("server.pem"),
                               "key": pki.path("server.key")},
                        "admin": {"address": str(admin)}})
    d = Echod(args=["-c", st.conf], port=st.port, tmpdir=st.tmpdir)
    procs.append(d)
    assert wait_for(lambda: _up(admin)), d.stderr()
    base = quiet(admin)
    ctx = ssl.create_default_context(cafile=pki.path("ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for _ in range(3):
        with ctx.wrap_socket(connect(d.port), server_hostname="localhost") as s:
            assert roundtrip(s, b"over tls")
    with connect(d.port) as s:          # not TLS at all
        s.sendall(b"GET / HTTP/1.0\r\n\r\n" * 4)
        s.shutdown(socket.SHUT_WR)
        read_to_eof(s)
    after = quiet(admin)
    delta = lambda name, **kw: (value(after, name, **kw)  # noqa: E731
                                - base.get((name, frozenset(kw.items())), 0))
    assert total(after, "echod_worker_tls_handshakes_total") - \
        total(base, "echod_worker_tls_handshakes_total") == 3
    assert delta("echod_tls_version_handshakes_total", version="TLSv1.3") == 3
    assert total(after, "echod_worker_tls_handshake_failures_total") - \
        total(base, "echod_worker_tls_handshake_failures_total") >= 1
    assert value(after, "echod_tls_connections_open") == 0
    assert any(n == "echod_tls_cipher_handshakes_total" and v >= 3
               for (n, _), v in after.items())
    tls = json.loads(http_get(admin, "/stats")[2])["tls"]
    assert tls["versions"]["TLSv1.3"]["total"] == \
        value(after, "echod_tls_version_handshakes_total", version="TLSv1.3")
    assert d.stop() == 0


def test_handshake_timeouts_count_as_timed_out(procs, tmp_path):
    from tls_util import Pki
    pki = Pki(str(tmp_path))
    st = Setup()
    admin = free_port()
    st.write(listeners={"t": {"address": f"127.0.0.1:{st.port}",
                              "tls": "yes"}},
             sections={"tls": {"certificate": pki.path("server.pem"),
                               "key": pki.path("server.key"),
                               "handshake_timeout": "300ms"},
                       "admin": {"address": str(admin)}})
    d = Echod(args=["-c", st.conf], port=st.port, tmpdir=st.tmpdir)
    procs.append(d)
    assert wait_for(lambda: _up(admin)), d.stderr()
    base = quiet(admin)
    held = [connect(d.port) for _ in range(3)]
    try:
        # No ClientHello: each is closed at handshake_timeout.
        for s in held:
            assert read_to_eof(s) == b""
    finally:
        for s in held:
            s.close()
    after = quiet(admin)
    grew = lambda n: total(after, n) - total(base, n)  # noqa: E731
    assert grew("echod_tls_handshake_timeouts_total") == 3
    # The help text says this counts handshake_timeout too.
    assert grew("echod_worker_connections_timed_out_total") == 3
    assert json.loads(http_get(admin, "/stats")[2])["total"][
        "connections_timed_out"] == total(
            after, "echod_worker_connections_timed_out_total")
    assert d.stop() == 0
