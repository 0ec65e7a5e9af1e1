"""The PROXY protocol in echod: real HAProxy 2.6 in front (send-proxy,
send-proxy-v2, with crc32c and unique-id TLVs, health checks that send
LOCAL, TLS terminated by HAProxy, TLS passed through to a tls = yes
listener), byte-exact echo checked with echoload --verify, the access log
naming the original client; and hostile headers sent by hand, each dropped
or served as the spec says, counted by reason, with echod serving everyone
else meanwhile. Loopback only; every wait bounded."""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import ECHOD, ECHOLOAD, SLOW, Echod, free_port, wait_for, \
    wait_port
from daemon_util import http_get
from echod_util import connect, recv_exact, roundtrip

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

pytestmark = pytest.mark.skipif(not os.access(ECHOD, os.X_OK),
                                reason=f"{ECHOD} is not built")
needs_haproxy = pytest.mark.skipif(not os.access(HAPROXY, os.X_OK),
                                   reason="haproxy is not installed")

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


# ---- helpers ----------------------------------------------------------------

def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff


def tlv(t, v):
    return bytes([t]) + struct.pack("!H", len(v)) + v


def v2_header(src=("192.0.2.7", 4711), dst=("127.0.0.1", 7007), cmd=0x21,
              tlvs=b"", crc=False):
    body = socket.inet_aton(src[0]) + socket.inet_aton(dst[0]) + \
        struct.pack("!HH", src[1], dst[1]) + tlvs
    if crc:
        body += tlv(0x03, b"\0\0\0\0")
    h = bytearray(V2_SIG + bytes([cmd, 0x11]) + struct.pack("!H", len(body))
                  + body)
    if crc:
        h[-4:] = struct.pack("!I", crc32c(bytes(h)))
    return bytes(h)


def v1_header(src=("192.0.2.7", 4711), dst=("127.0.0.1", 7007)):
    return (f"PROXY TCP4 {src[0]} {dst[0]} {src[1]} {dst[1]}\r\n").encode()


def stats(admin):
    status, _, body = http_get(admin, "/stats")
    assert status == 200
    return json.loads(body)["proxy"]


def rejected(admin, reason):
    return stats(admin)["rejected"][reason]


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        data = f.read()
    return [l.decode() for l in data.split(b"\n")[:-1]]


def wait_lines(path, pred, timeout=10.0):
    """Access-log lines, once one of them matches pred (written at close,
    through aio: not at once)."""
    def found():
        lines = read_lines(path)
        return lines if any(pred(l) for l in lines) else None
    return wait_for(found, timeout) or read_lines(path)


def closed_within(sock, seconds):
    """True when the peer closes (EOF or reset) within seconds; bytes
    that arrive first are read and dropped."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def echoload(*args, timeout=60):
    p = subprocess.run([ECHOLOAD, "-q", "--json", "-", *map(str, args)],
                       capture_output=True, text=True, timeout=timeout * SLOW)
    assert p.stdout.strip(), p.stderr
    return p, json.loads(p.stdout)


def assert_clean(p, res):
    assert p.returncode == 0, p.stderr
    assert res["errors"] == 0, res
    assert all(v == 0 for v in res["error_counts"].values()), res


def conf_text(tmp, listeners, tls=None, fmt="text"):
    lines = ["[server]", "workers = 2", "", "[log]",
             f"access_log = {tmp}/access.log", f"access_format = {fmt}", "",
             "[admin]", "address = 127.0.0.1:{admin}", ""]
    if tls:
        lines += ["[tls]", f"certificate = {tls.path('server.pem')}",
                  f"key = {tls.path('server.key')}", ""]
    for name, keys in listeners.items():
        lines += [f"[listen {name}]"] + [f"{k} = {v}" for k, v in
                                         keys.items()] + [""]
    return "\n".join(lines)


class Server:
    """echod with the given listeners ({NAME: {key: value}}, "{pN}" in a
    value is replaced by a free port kept as self.ports[N]) and the admin
    endpoint."""

    def __init__(self, tmp, listeners, tls=None, fmt="text"):
        self.tmp = str(tmp)
        self.ports = {}
        self.admin = free_port()
        text = conf_text(self.tmp, listeners, tls, fmt)
        for n in range(8):
            key = "{p%d}" % n
            if key in text:
                self.ports[n] = free_port()
                text = text.replace(key, str(self.ports[n]))
        text = text.replace("{admin}", str(self.admin))
        self.access = os.path.join(self.tmp, "access.log")
        # Waiting on a PROXY listener would cost a rejected header: wait on
        # the admin port, which opens once the listeners are bound.
        self.d = Echod(config=text, port=self.admin, tmpdir=self.tmp)

    def stop(self):
        """SIGTERM: echod must exit 0, with nothing from the sanitizers
        (leaks included) on stderr."""
        rc = self.d.stop()
        err = self.d.stderr()
        assert rc == 0 and "Sanitizer" not in err and \
            "runtime error" not in err, err[-3000:]


@pytest.fixture
def servers():
    started = []
    yield started
    for s in started:
        s.stop()


class Haproxy:
    """haproxy -db with a config the test writes; stopped at the end."""

    def __init__(self, tmp, body):
        self.path = os.path.join(str(tmp), "haproxy.cfg")
        with open(self.path, "w") as f:
            f.write("global\n    maxconn 2000\n\n"
                    "defaults\n    mode tcp\n    timeout connect 5s\n"
                    "    timeout client 30s\n    timeout server 30s\n\n"
                    + body)
        self.err = open(os.path.join(str(tmp), "haproxy.err"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-f", self.path, "-db"],
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err)

    def wait(self, *ports):
        for p in ports:
            if not wait_port("127.0.0.1", p):
                self.stop()
                with open(self.err.name) as f:
                    raise RuntimeError("haproxy did not start:\n" + f.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()


@pytest.fixture
def haproxies():
    started = []
    yield started
    for h in started:
        h.stop()


def client_from(addr, port, src="127.0.0.2"):
    """A connection from a second loopback address, so that the client and
    the balancer (127.0.0.1) differ in the access log."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10 * SLOW)
    s.bind((src, 0))
    s.connect((addr, port))
    return s


# ---- real HAProxy in front ---------------------------------------------------

HAPROXY_VARIANTS = {
    "v1": "send-proxy",
    "v2": "send-proxy-v2",
    "v2crc": "send-proxy-v2 proxy-v2-options crc32c,unique-id",
}


@needs_haproxy
@pytest.mark.parametrize("variant", sorted(HAPROXY_VARIANTS))
def test_haproxy_sends_proxy(tmp_path, servers, haproxies, variant):
    mode = "v1" if variant == "v1" else "v2"
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}",
                                "proxy_protocol": mode,
                                "proxy_from": "127.0.0.1/32"}})
    servers.append(s)
    front = free_port()
    uid = ("    unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt\n"
           if variant == "v2crc" else "")
    h = Haproxy(tmp_path, f"frontend f\n    bind 127.0.0.1:{front}\n{uid}"
                f"    default_backend b\n\nbackend b\n"
                f"    server e 127.0.0.1:{s.ports[0]} "
                f"{HAPROXY_VARIANTS[variant]}\n")
    haproxies.append(h)
    h.wait(front)

    # Byte-exact echo through the balancer, many connections.
    p, res = echoload("-c", 4, "-t", 1, "-n", 2000, "-s", 1000, "--verify",
                      f"127.0.0.1:{front}")
    assert_clean(p, res)
    assert res["requests"] == 2000

    # One client whose address and port we know.
    c = client_from("127.0.0.1", front)
    cport = c.getsockname()[1]
    assert roundtrip(c, b"x" * 5000)
    c.close()
    pat = f"peer=127.0.0.2:{cport} via=127.0.0.1:"
    lines = wait_lines(s.access, lambda l: pat in l)
    mine = [l for l in lines if pat in l]
    assert len(mine) == 1, lines[-5:]
    assert "bytes_in=5000 bytes_out=5000" in mine[0]
    # Every connection came through HAProxy on 127.0.0.1: via is there.
    assert all(" via=127.0.0.1:" in l for l in lines), lines[:3]

    st = stats(s.admin)
    assert st["headers"]["v1" if mode == "v1" else "v2"] >= 5
    assert sum(st["rejected"].values()) == 0, st


@needs_haproxy
@pytest.mark.parametrize("mode,opt", [("v2", "send-proxy-v2"),
                                      ("v1", "send-proxy")])
def test_haproxy_health_checks(tmp_path, servers, haproxies, mode, opt):
    """check-send-proxy: checks carry a header (v2: the LOCAL command) and
    echod takes them; the server stays up and serves."""
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}",
                                "proxy_protocol": mode}})
    servers.append(s)
    front = free_port()
    h = Haproxy(tmp_path, f"frontend f\n    bind 127.0.0.1:{front}\n"
                f"    default_backend b\n\nbackend b\n"
                f"    server e 127.0.0.1:{s.ports[0]} {opt} check "
                f"check-send-proxy inter 100ms rise 1 fall 1\n")
    haproxies.append(h)
    h.wait(front)
    key = "local" if mode == "v2" else "v1"
    assert wait_for(lambda: stats(s.admin)["headers"][key] >= 3), \
        stats(s.admin)
    st = stats(s.admin)
    assert sum(st["rejected"].values()) == 0, st
    p, res = echoload("-c", 2, "-t", 1, "-n", 200, "--verify",
                      f"127.0.0.1:{front}")
    assert_clean(p, res)
    if mode == "v2":
        # LOCAL: the check's real endpoints, no via.
        lines = wait_lines(s.access, lambda l: " via=" not in l)
        assert any(" via=" not in l and "peer=127.0.0.1:" in l
                   for l in lines)


@needs_haproxy
def test_haproxy_terminates_tls(tmp_path, servers, haproxies):
    from tls_util import Pki
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    pki = Pki(str(pki_dir))
    combined = str(pki_dir / "combined.pem")
    with open(combined, "w") as f:
        for n in ("server.pem", "server.key"):
            with open(pki.path(n)) as src:
                f.write(src.read())
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}",
                                "proxy_protocol": "v2"}}, fmt="json")
    servers.append(s)
    front = free_port()
    h = Haproxy(tmp_path, f"frontend f\n    bind 127.0.0.1:{front} ssl crt "
                f"{combined}\n    default_backend b\n\nbackend b\n"
                f"    server e 127.0.0.1:{s.ports[0]} send-proxy-v2 "
                f"send-proxy-v2-ssl-cn\n")
    haproxies.append(h)
    h.wait(front)
    p, res = echoload("-c", 2, "-t", 1, "-n", 500, "-s", 300, "--verify",
                      "--tls", "--ca", pki.path("ca.pem"), "--sni",
                      "localhost", f"127.0.0.1:{front}")
    assert_clean(p, res)
    lines = wait_lines(s.access, lambda l: '"via":"127.0.0.1"' in l)
    recs = [json.loads(l) for l in lines]
    assert recs and all(r["via"] == "127.0.0.1" and r["via_port"] > 0
                        for r in recs), recs[:2]
    assert all(r["peer"] == "127.0.0.1" and r["port"] != r["via_port"]
               for r in recs)
    assert stats(s.admin)["headers"]["v2"] >= 2


@needs_haproxy
def test_haproxy_passes_tls_through(tmp_path, servers, haproxies):
    """TCP pass-through: the header, then the client's own ClientHello,
    on a tls = yes listener."""
    from tls_util import Pki
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    pki = Pki(str(pki_dir))
    s = Server(tmp_path, {"t": {"address": "127.0.0.1:{p0}", "tls": "yes",
                                "proxy_protocol": "any"}}, tls=pki)
    servers.append(s)
    front = free_port()
    h = Haproxy(tmp_path, f"frontend f\n    bind 127.0.0.1:{front}\n"
                f"    default_backend b\n\nbackend b\n"
                f"    server e 127.0.0.1:{s.ports[0]} send-proxy-v2\n")
    haproxies.append(h)
    h.wait(front)
    p, res = echoload("-c", 2, "-t", 1, "-n", 500, "-s", 300, "--verify",
                      "--tls", "--ca", pki.path("ca.pem"), "--sni",
                      "localhost", f"127.0.0.1:{front}")
    assert_clean(p, res)
    # echoload's connections (-c 2) ran TLS over the header: its 500
    # requests of 300 bytes (and any still in flight at the end) went
    # through them, both ways.
    def moved():
        n = 0
        for l in read_lines(s.access):
            m = re.search(r"bytes_in=(\d+) bytes_out=(\d+) .* tls=TLSv1", l)
            if m and m.group(1) == m.group(2):
                n += int(m.group(1))
        return n
    assert wait_for(lambda: moved() >= 150000), read_lines(s.access)
    assert moved() % 300 == 0
    assert all(" via=127.0.0.1:" in l for l in read_lines(s.access))


# ---- hostile headers ---------------------------------------------------------

@pytest.fixture
def hostile(tmp_path, servers):
    """A v1/v2 (any) listener with a short proxy_timeout, one that takes
    headers only from 10.0.0.0/8, and a plain one; plus a PROXY connection
    that stays open through the test and must keep being served."""
    s = Server(tmp_path, {
        "p": {"address": "127.0.0.1:{p0}", "proxy_protocol": "any",
              "proxy_timeout": "1s"},
        "f": {"address": "127.0.0.1:{p1}", "proxy_protocol": "v2",
              "proxy_from": "10.0.0.0/8, ::1"},
        "plain": {"address": "127.0.0.1:{p2}"},
    })
    servers.append(s)
    keep = connect(s.ports[0])
    keep.sendall(v1_header(src=("198.51.100.1", 1000)))
    assert roundtrip(keep, b"before")
    s.keep = keep
    yield s
    # Everyone else was served throughout.
    assert roundtrip(keep, b"after" * 1000)
    keep.close()
    for port in (s.ports[0], s.ports[2]):
        c = connect(port)
        if port == s.ports[0]:
            c.sendall(v2_header())
        assert roundtrip(c, b"still serving")
        c.close()


@pytest.mark.parametrize("name,data,reason", [
    ("wrong signature", b"GET / HTTP/1.0\r\n\r\n", "signature"),
    ("v2 typo signature", V2_SIG + b"\x02\x11\x00\x0c" + b"\0" * 12,
     "signature"),
    ("v1 without CRLF in 107 bytes", b"PROXY UNKNOWN " + b"a" * 120,
     "oversized"),
    ("v1 lone LF", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\nhello", "malformed"),
    ("v2 bad CRC32C", v2_header(tlvs=tlv(0x03, b"\x01\x02\x03\x04")), "crc"),
    ("v2 unassigned command", V2_SIG + b"\x23\x11\x00\x0c" + b"\0" * 12,
     "malformed"),
])
def test_hostile_header_dropped(hostile, name, data, reason):
    c = connect(hostile.ports[0])
    c.sendall(data)
    # Dropped at once, not at the timeout.
    assert closed_within(c, 0.9 * SLOW), name
    c.close()
    assert wait_for(lambda: rejected(hostile.admin, reason) == 1), \
        stats(hostile.admin)
    assert sum(stats(hostile.admin)["rejected"].values()) == 1
    lines = wait_lines(hostile.access,
                       lambda l: f'reason="proxy header {reason}"' in l)
    assert any(f'reason="proxy header {reason}"' in l for l in lines)


def test_v2_length_larger_than_sent(hostile):
    h = v2_header()
    # It says 12 address bytes; 6 come, then the peer waits: timeout.
    c = connect(hostile.ports[0])
    c.sendall(h[:22])
    t0 = time.monotonic()
    assert closed_within(c, 5 * SLOW)
    assert time.monotonic() - t0 >= 0.8
    c.close()
    assert wait_for(lambda: rejected(hostile.admin, "timeout") == 1)
    # The same, and the peer closes its side: truncated.
    c = connect(hostile.ports[0])
    c.sendall(h[:22])
    c.shutdown(socket.SHUT_WR)
    assert closed_within(c, 0.9 * SLOW)
    c.close()
    assert wait_for(lambda: rejected(hostile.admin, "truncated") == 1)


def test_header_trickled_past_the_timeout(hostile):
    """One byte per 100 ms: the deadline holds however often bytes come."""
    h = v1_header()
    c = connect(hostile.ports[0])
    t0 = time.monotonic()
    sent = 0
    closed = False
    for b in h:
        try:
            c.sendall(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        sent += 1
        time.sleep(0.1)
        if time.monotonic() - t0 > 1.5 * SLOW + 1:
            break
    if not closed:
        closed = closed_within(c, 3 * SLOW)
    elapsed = time.monotonic() - t0
    c.close()
    assert closed
    assert sent < len(h)
    assert elapsed >= 0.9
    assert wait_for(lambda: rejected(hostile.admin, "timeout") == 1), \
        stats(hostile.admin)


def test_header_from_untrusted_peer(hostile):
    """proxy_from = 10.0.0.0/8: a header from 127.0.0.1 is refused before
    it is read; a plain client on that listener is refused the same."""
    c = connect(hostile.ports[1])
    c.sendall(v2_header())
    assert closed_within(c, 0.9 * SLOW)
    c.close()
    c = connect(hostile.ports[1])
    assert closed_within(c, 0.9 * SLOW)
    c.close()
    assert wait_for(lambda: rejected(hostile.admin, "untrusted") == 2)
    assert stats(hostile.admin)["headers"]["v2"] == 0


def test_header_then_a_mebibyte(hostile):
    """The header and 1 MiB at once, in one send: every payload byte is
    echoed (none taken with the header), in order."""
    payload = os.urandom(1 << 20)
    c = connect(hostile.ports[0])
    got = bytearray()

    def reader():
        got.extend(recv_exact(c, len(payload), timeout=30))
    t = threading.Thread(target=reader)
    t.start()
    c.sendall(v2_header(src=("203.0.113.5", 5555), crc=True) + payload)
    t.join(40 * SLOW)
    c.close()
    assert len(got) == len(payload)
    assert bytes(got) == payload
    lines = wait_lines(hostile.access, lambda l: "203.0.113.5:5555" in l)
    mine = [l for l in lines if "peer=203.0.113.5:5555 via=127.0.0.1:" in l]
    assert len(mine) == 1
    assert f"bytes_in={1 << 20} bytes_out={1 << 20}" in mine[0]


def test_header_split_across_segments(hostile):
    """A valid header in pieces (within the timeout) is read whole, and the
    payload sent with its last piece is echoed."""
    for h in (v1_header(src=("192.0.2.9", 999)),
              v2_header(src=("192.0.2.9", 999),
                        tlvs=tlv(0x02, b"echo.example"), crc=True)):
        c = connect(hostile.ports[0])
        cut = len(h) - 3
        for i in range(0, cut, 7):
            c.sendall(h[i:min(i + 7, cut)])
            time.sleep(0.02)
        c.sendall(h[cut:] + b"hello")
        assert recv_exact(c, 5) == b"hello"
        assert roundtrip(c, b"and more")
        c.close()
    st = stats(hostile.admin)
    assert st["headers"]["v1"] == 2 and st["headers"]["v2"] == 1, st
    assert sum(st["rejected"].values()) == 0, st


# ---- echoload --proxy ---------------------------------------------------------

@pytest.mark.parametrize("version,fmt", [("v1", "text"), ("v2", "json"),
                                         ("v2", "text")])
def test_echoload_proxy_source(tmp_path, servers, version, fmt):
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}",
                                "proxy_protocol": version}}, fmt=fmt)
    servers.append(s)
    p, res = echoload("-c", 3, "-t", 1, "-n", 600, "--verify", "--proxy",
                      version, "--proxy-source", "203.0.113.77:4321",
                      f"127.0.0.1:{s.ports[0]}")
    assert_clean(p, res)

    def done():
        lines = read_lines(s.access)
        return lines if len(lines) >= 4 else None    # 3 and the probe
    lines = wait_for(done)
    assert lines and len(lines) == 4, read_lines(s.access)
    for l in lines:
        if fmt == "json":
            r = json.loads(l)
            assert (r["peer"], r["port"]) == ("203.0.113.77", 4321), r
            assert r["via"] == "127.0.0.1" and r["via_port"] > 0
        else:
            assert " peer=203.0.113.77:4321 via=127.0.0.1:" in l, l
    st = stats(s.admin)
    assert st["headers"]["v1" if version == "v1" else "v2"] == 4
    assert sum(st["rejected"].values()) == 0, st


def test_echoload_proxy_own_address_and_connect_mode(tmp_path, servers):
    """Without --proxy-source the header names the connection's own
    address: peer and via agree. -m connect sends one per connection."""
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}",
                                "proxy_protocol": "any"}})
    servers.append(s)
    p, res = echoload("-m", "connect", "-c", 2, "-t", 1, "-n", 300,
                      "--verify", "--proxy", "v2", f"127.0.0.1:{s.ports[0]}")
    assert_clean(p, res)
    assert wait_for(lambda: stats(s.admin)["headers"]["v2"] >= 301)
    st = stats(s.admin)
    assert sum(st["rejected"].values()) == 0, st
    lines = wait_for(lambda: read_lines(s.access)
                     if len(read_lines(s.access)) >= 301 else None)
    assert lines
    pairs = [re.search(r"peer=(\S+) via=(\S+) ", l) for l in lines]
    assert all(m and m.group(1) == m.group(2) for m in pairs), lines[:3]


def test_echoload_proxy_options():
    for args, msg in ((["--proxy", "v3"], "--proxy v3"),
                      (["--proxy-source", "1.2.3.4:5"], "needs --proxy"),
                      (["--proxy", "v2", "--proxy-source", "lb:5"],
                       "not an IPv4 or IPv6"),
                      (["--proxy", "v2", "--proxy-source", "1.2.3.4"],
                       "--proxy-source")):
        p = subprocess.run([ECHOLOAD, *args], capture_output=True,
                           text=True, timeout=30 * SLOW)
        assert p.returncode != 0 and msg in p.stderr, (args, p.stderr)


def test_echoload_proxy_over_tls(tmp_path, servers):
    """The header, then TLS, as a TCP balancer would pass it on."""
    from tls_util import Pki
    pki_dir = tmp_path / "pki"
    pki_dir.mkdir()
    pki = Pki(str(pki_dir))
    s = Server(tmp_path, {"t": {"address": "127.0.0.1:{p0}", "tls": "yes",
                                "proxy_protocol": "v1"}}, tls=pki)
    servers.append(s)
    # An IPv6 source for an IPv4 target: refused before the load.
    p = subprocess.run([ECHOLOAD, "-q", "-n", "10", "--proxy", "v1",
                        "--proxy-source", "[2001:db8::9]:80",
                        f"127.0.0.1:{s.ports[0]}"], capture_output=True,
                       text=True, timeout=60 * SLOW)
    assert p.returncode != 0
    assert "address family" in p.stderr
    p, res = echoload("-c", 2, "-t", 1, "-n", 200, "--verify", "--tls",
                      "--ca", pki.path("ca.pem"), "--sni", "localhost",
                      "--proxy", "v1", "--proxy-source", "198.51.100.3:80",
                      f"127.0.0.1:{s.ports[0]}")
    assert_clean(p, res)
    lines = wait_lines(s.access, lambda l: " tls=TLSv1.3" in l)
    assert any("peer=198.51.100.3:80 via=127.0.0.1:" in l and
               " tls=TLSv1.3" in l for l in lines), lines


@pytest.mark.parametrize("sig", ["TERM", "QUIT"])
def test_stop_with_headers_pending(tmp_path, servers, sig):
    """Connections still in their header when echod stops are closed (TERM)
    or given their proxy_timeout (QUIT); echod exits 0, nothing leaked."""
    import signal as sigmod
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}",
                                "proxy_protocol": "v2",
                                "proxy_timeout": "1s"}})
    socks = []
    for _ in range(5):
        c = connect(s.ports[0])
        c.sendall(v2_header()[:20])
        socks.append(c)
    assert wait_for(lambda: stats(s.admin)["headers"]["v2"] == 0 and
                    json.loads(http_get(s.admin, "/stats")[2])
                    ["total"]["connections_open"] == 5)
    t0 = time.monotonic()
    assert s.d.stop(getattr(sigmod, "SIG" + sig)) == 0
    assert time.monotonic() - t0 < 10 * SLOW
    err = s.d.stderr()
    assert "Sanitizer" not in err and "runtime error" not in err, err
    for c in socks:
        assert closed_within(c, 2 * SLOW)
        c.close()


def test_reload_turns_the_protocol_on_and_off(tmp_path, servers):
    """proxy_protocol follows a reload on the same socket: off, then v1
    (a bare client is dropped, a header is read), then off again (the
    header would be echoed as data, as on any plain listener)."""
    import signal as sigmod
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}"}})
    servers.append(s)
    conf = s.d.conf_path
    with open(conf) as f:
        text = f.read()
    c = connect(s.ports[0])
    assert roundtrip(c, b"plain")
    c.close()

    def reload(new):
        n = s.d.stderr().count("reload done")
        with open(conf, "w") as f:
            f.write(new)
        s.d.signal(sigmod.SIGHUP)
        assert wait_for(lambda: s.d.stderr().count("reload done") > n), \
            s.d.stderr()
    addr = f"address = 127.0.0.1:{s.ports[0]}\n"
    reload(text.replace(addr, addr + "proxy_protocol = v1\n"))
    c = connect(s.ports[0])
    c.sendall(b"plain")
    assert closed_within(c, 2 * SLOW)
    c.close()
    c = connect(s.ports[0])
    c.sendall(v1_header(src=("192.0.2.55", 55)) + b"behind")
    assert recv_exact(c, 6) == b"behind"
    c.close()
    reload(text)
    h = v1_header()
    c = connect(s.ports[0])
    assert roundtrip(c, h)
    c.close()
    lines = wait_lines(s.access, lambda l: "peer=192.0.2.55:55 via=" in l)
    assert any("peer=192.0.2.55:55 via=" in l for l in lines)


def test_ipv6_headers(tmp_path, servers):
    """TCP6 in both versions, from echoload's own [::1] address; the
    access log brackets both addresses."""
    from echod_util import have_ipv6
    if not have_ipv6():
        pytest.skip("no IPv6 loopback")
    s = Server(tmp_path, {"p": {"address": "127.0.0.1:{p0}",
                                "proxy_protocol": "any"},
                          "q": {"address": "[::1]:{p1}",
                                "proxy_protocol": "any"}})
    servers.append(s)
    for v in ("v1", "v2"):
        p, res = echoload("-c", 1, "-t", 1, "-n", 50, "--verify", "--proxy",
                          v, f"[::1]:{s.ports[1]}")
        assert_clean(p, res)
    lines = wait_for(lambda: read_lines(s.access)
                     if len(read_lines(s.access)) >= 4 else None)
    assert lines and all(re.search(r"peer=\[::1\]:\d+ via=\[::1\]:\d+ ", l)
                         for l in lines), lines
    st = stats(s.admin)
    assert st["headers"]["v1"] == 2 and st["headers"]["v2"] == 2, st
