"""Functional tests of echoload over TLS (issue 4): the real binary against
the real echod's TLS listeners, with a throwaway PKI made at test time
(tls_util.Pki). Every run is bounded in requests or time, on loopback."""

import json
import signal
import subprocess

import pytest

from conftest import ECHOLOAD, SLOW, Echod
from tls_util import Pki, tls_conf, tls_stats


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(str(tmp_path_factory.mktemp("pki")))


def start(conf):
    d = Echod(config=conf)
    d.target = f"127.0.0.1:{d.port}"
    return d


@pytest.fixture(scope="module")
def server(pki):
    """A TLS echo listener, 1.2 or later."""
    d = start(tls_conf(pki))
    yield d
    d.kill()


@pytest.fixture(scope="module")
def mtls(pki):
    """A TLS echo listener that wants a client certificate from the CA."""
    d = start(tls_conf(pki, tls={"ca": pki.path("ca.pem")}))
    yield d
    d.kill()


PLAIN_CONF = "[listen p]\naddress = 127.0.0.1:{port}\n"


def run(*args, timeout=60):
    return subprocess.run([ECHOLOAD, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout * SLOW)


def run_json(*args, timeout=60):
    p = run("-q", "--json", "-", *args, timeout=timeout)
    assert p.stdout.strip(), p.stderr
    return p, json.loads(p.stdout)


def tls_args(pki, *more):
    return ["--tls", "--ca", pki.path("ca.pem"), *more]


def assert_clean(p, res):
    assert p.returncode == 0, p.stderr
    assert res["errors"] == 0, res["error_counts"]


def assert_tls_consistent(res):
    t = res["tls"]
    assert t["handshakes"] == t["full"] + t["resumed"]
    assert t["handshake_latency_us"]["count"] == t["handshakes"]
    assert t["full_handshake_latency_us"]["count"] == t["full"]
    assert t["resumed_handshake_latency_us"]["count"] == t["resumed"]
    lat = t["handshake_latency_us"]
    if t["handshakes"]:
        order = [lat[k] for k in ("min", "p50", "p90", "p99", "p99_9",
                                  "max")]
        assert order == sorted(order) and lat["min"] >= 1


# --- echo over TLS

@pytest.mark.parametrize("size,depth,n", [
    (1, 1, 3000), (1000, 1, 2000), (16385, 1, 400), (100000, 1, 100),
    (64, 16, 20000), (5000, 8, 2000), (1 << 20, 2, 16)])
def test_echo_verified_across_sizes(server, pki, size, depth, n):
    p, res = run_json(*tls_args(pki), "-c", 4, "-t", 2, "-s", size, "-P",
                      depth, "-n", n, "--verify", server.target)
    assert_clean(p, res)
    assert res["requests"] == n
    assert res["bytes_sent"] == res["bytes_received"] == n * size
    t = res["tls"]
    assert t["version"] == "TLSv1.3" and t["cipher"]
    # Echo mode: one handshake per connection, no rate.
    assert t["handshakes"] == 4 and t["failed"] == 0
    assert t["handshakes_per_s"] is None
    assert_tls_consistent(res)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_version_forced(server, pki, version):
    p, res = run_json(*tls_args(pki, "--tls-version", version), "-c", 2,
                      "-n", 2000, "--verify", server.target)
    assert_clean(p, res)
    assert res["tls"]["version"] == "TLSv" + version


def test_summary_has_tls_lines(server, pki):
    p = run(*tls_args(pki), "-q", "-m", "connect", "-c", 2, "-n", 200,
            server.target)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "tls        TLSv1.3, " in out and "resumption on" in out
    assert "handshakes 200 (" in out and " resumed, 0 failed), " in out
    assert "/s\n" in out.split("handshakes ")[1]
    assert "  full " in out and "  resumed " in out


def test_plain_run_has_no_tls_object(server):
    p = run("-q", "--json", "-", "-n", 1, "127.0.0.1:1")
    assert p.returncode == 1        # nothing listens there: no result
    plain = Echod(config=PLAIN_CONF)
    try:
        p, res = run_json("-c", 1, "-n", 10, f"127.0.0.1:{plain.port}")
        assert_clean(p, res)
        assert res["tls"] is None
        assert "tls " not in run("-q", "-c", 1, "-n", 10,
                                 f"127.0.0.1:{plain.port}").stdout
    finally:
        plain.kill()


# --- verification

def test_wrong_ca_fails_plainly(server, pki):
    p = run("--tls", "--ca", pki.path("other-ca.pem"), "-n", 100,
            server.target)
    assert p.returncode == 1
    assert "certificate verify failed" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_system_store_does_not_know_the_test_ca(server):
    p = run("--tls", "-n", 10, server.target)
    assert p.returncode == 1
    assert "certificate verify failed" in p.stderr, p.stderr


def test_insecure_skips_verification(server):
    p, res = run_json("--tls", "--insecure", "-c", 2, "-n", 500, "--verify",
                      server.target)
    assert_clean(p, res)
    assert res["tls"]["handshakes"] == 2


def test_sni_name_is_verified(server, pki):
    p, res = run_json(*tls_args(pki, "--sni", "localhost"), "-c", 1, "-n",
                      10, server.target)
    assert_clean(p, res)
    p = run(*tls_args(pki, "--sni", "elsewhere.example"), "-n", 10,
            server.target)
    assert p.returncode == 1
    assert "hostname mismatch" in p.stderr, p.stderr


def test_version_the_server_refuses(pki):
    d = start(tls_conf(pki, tls={"min_version": "1.3"}))
    try:
        p = run(*tls_args(pki, "--tls-version", "1.2"), "-n", 10, d.target)
        assert p.returncode == 1
        assert "TLS handshake" in p.stderr and "version" in p.stderr, \
            p.stderr
    finally:
        d.kill()


def test_tls_against_a_plain_server():
    plain = Echod(config=PLAIN_CONF)
    try:
        p = run("--tls", "--insecure", "-n", 10, f"127.0.0.1:{plain.port}")
        assert p.returncode == 1
        assert "TLS handshake" in p.stderr, p.stderr
    finally:
        plain.kill()


def test_unreadable_files(server, pki, tmp_path):
    missing = str(tmp_path / "missing.pem")
    p = run("--tls", "--ca", missing, "-n", 1, server.target)
    assert p.returncode == 1 and "--ca " + missing in p.stderr, p.stderr
    p = run(*tls_args(pki, "--cert", pki.path("client.pem"), "--key",
                      pki.path("stray.key")), "-n", 1, server.target)
    assert p.returncode == 1 and "--key" in p.stderr, p.stderr


# --- mutual TLS

def test_mutual_tls_with_certificate(mtls, pki):
    p, res = run_json(*tls_args(pki, "--cert", pki.path("client.pem"),
                                "--key", pki.path("client.key")),
                      "-c", 2, "-n", 1000, "--verify", mtls.target)
    assert_clean(p, res)


def test_mutual_tls_without_certificate_is_an_error(mtls, pki):
    # TLS 1.3: the client's handshake ends before the server has checked
    # it; the refusal arrives as an alert on the first read.
    p, res = run_json(*tls_args(pki), "-c", 2, "-d", "500ms", mtls.target)
    assert p.returncode == 1
    assert res["requests"] == 0
    assert res["error_counts"]["tls"] > 0
    assert res["errors"] == res["error_counts"]["tls"]
    assert "certificate required" in p.stderr, p.stderr


def test_mutual_tls_wrong_certificate_tls12(mtls, pki):
    p = run(*tls_args(pki, "--tls-version", "1.2", "--cert",
                      pki.path("other-client.pem"), "--key",
                      pki.path("other-client.key")), "-n", 10, mtls.target)
    assert p.returncode == 1
    assert "TLS handshake" in p.stderr, p.stderr


# --- connect mode: handshake figures and resumption

@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_connect_mode_resumes_by_default(server, pki, version):
    p, res = run_json(*tls_args(pki, "--tls-version", version), "-m",
                      "connect", "-c", 4, "-t", 2, "-n", 600, "--verify",
                      server.target)
    assert_clean(p, res)
    t = res["tls"]
    assert t["version"] == "TLSv" + version
    assert t["resumption"] is True
    # One handshake per request, all counted; only the first connections
    # of each thread start without a session.
    assert t["handshakes"] == res["requests"] == 600
    assert 1 <= t["full"] <= 8, t
    assert t["resumed"] > 0
    assert t["failed"] == 0
    assert t["handshakes_per_s"] > 0
    assert_tls_consistent(res)


def test_connect_mode_no_resume(server, pki):
    p, res = run_json(*tls_args(pki, "--no-resume"), "-m", "connect", "-c",
                      4, "-t", 2, "-n", 300, server.target)
    assert_clean(p, res)
    t = res["tls"]
    assert t["resumption"] is False
    assert t["resumed"] == 0 and t["full"] == t["handshakes"] == 300
    assert_tls_consistent(res)


def test_connect_mode_warmup_not_counted(server, pki):
    p, res = run_json(*tls_args(pki), "-m", "connect", "-c", 2, "-w",
                      "300ms", "-d", "700ms", "-R", 400, server.target)
    assert_clean(p, res)
    t = res["tls"]
    # Sessions from the warm-up carry over: every counted one resumes.
    assert t["handshakes"] == res["requests"] > 0
    assert t["full"] == 0 and t["resumed"] == t["handshakes"]


def test_resumption_counted_by_echod_too(pki):
    d = start(tls_conf(pki))
    try:
        p, res = run_json(*tls_args(pki), "-m", "connect", "-c", 2, "-t", 1,
                          "-n", 200, d.target)
        assert_clean(p, res)
        assert d.stop(signal.SIGTERM) == 0, d.stderr()
        st = tls_stats(d.stderr())
        # echod also saw the target check's handshake.
        assert st["handshakes"] == res["tls"]["handshakes"] + 1
        assert st["resumed"] == res["tls"]["resumed"]
        assert st["failed"] == 0
    finally:
        d.kill()


def test_handshake_errors_in_connect_mode(mtls, pki):
    p, res = run_json(*tls_args(pki), "-m", "connect", "-c", 2, "-d",
                      "500ms", mtls.target)
    assert p.returncode == 1
    assert res["requests"] == 0
    assert res["error_counts"]["tls"] > 0
    t = res["tls"]
    # Each counted request's connection got through the client's side of
    # the handshake, then the server's alert failed it.
    assert t["handshakes"] <= res["errors"] + 2
    assert_tls_consistent(res)


# --- usage

@pytest.mark.parametrize("args,word", [
    (["--ca", "x.pem"], "--ca needs --tls"),
    (["--no-resume"], "--no-resume needs --tls"),
    (["--tls", "--insecure", "--ca", "x.pem"], "exclude"),
    (["--tls", "--key", "k.pem"], "--key needs --cert"),
    (["--tls", "--tls-version", "1.0"], "--tls-version"),
])
def test_usage_errors(args, word):
    p = run(*args)
    assert p.returncode == 2
    first = p.stderr.splitlines()[0]
    assert first.startswith("echoload: ") and word in first, p.stderr
    assert "usage: echoload" in p.stderr
