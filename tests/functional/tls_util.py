"""tls_util.py: helpers for the TLS functional tests: a throwaway PKI made
with the openssl CLI in a temp dir (a CA, a server and a client certificate
it signed, and a second CA with its own client certificate, plus broken
files for the config checks), config text with [tls], Python ssl clients
(blocking, and a MemoryBIO one that can half-close the TCP stream under
TLS), and parsing of echod's TLS stats line. Every loop is bounded by a
byte count and a deadline."""

import os
import re
import select
import socket
import ssl
import subprocess
import time

from conftest import SLOW


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True,
                   stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=60)


class Pki:
    """Certificates under dir: ca.pem, server.pem/server.key (CN and SAN
    localhost, 127.0.0.1), client.pem/client.key (signed by ca), and
    other-ca.pem with other-client.pem/.key (signed by the other CA). EC
    P-256 keys: quick to make."""

    def __init__(self, d):
        self.dir = d
        self._ca("ca")
        self._ca("other-ca")
        self._leaf("server", "ca", "localhost",
                   "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                   "extendedKeyUsage=serverAuth\n")
        self._leaf("client", "ca", "client",
                   "extendedKeyUsage=clientAuth\n")
        self._leaf("other-client", "other-ca", "other",
                   "extendedKeyUsage=clientAuth\n")
        # A key that belongs to no certificate here, and files that are
        # not PEM at all.
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-out", "stray.key", cwd=d)
        with open(self.path("garbage.pem"), "w") as f:
            f.write("this is not a PEM file\n")
        with open(self.path("truncated.pem"), "w") as f:
            with open(self.path("server.pem")) as src:
                text = src.read()
            f.write(text[:len(text) // 2])

    def path(self, name):
        return os.path.join(self.dir, name)

    def _ca(self, name):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 name + ".key", "-out", name + ".pem", "-days", "2",
                 "-subj", "/CN=echod test " + name, cwd=self.dir)

    def _leaf(self, name, ca, cn, ext):
        with open(self.path(name + ".ext"), "w") as f:
            f.write(ext)
        _openssl("req", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                 name + ".key", "-out", name + ".csr", "-subj", "/CN=" + cn,
                 cwd=self.dir)
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                 "-CAkey", ca + ".key", "-CAcreateserial", "-out",
                 name + ".pem", "-days", "2", "-extfile", name + ".ext",
                 cwd=self.dir)


def tls_conf(pki, tls=None, limits=None, server=None, log=None,
             listener=None):
    """Config text: one TLS echo listener t on 127.0.0.1:{port}, [tls] with
    the PKI's server certificate and key plus tls (None values drop a
    key), and the other sections when given. workers = 2 unless given, so
    that resumption crosses workers."""
    sections = [("server", {"workers": "2", **(server or {})})]
    if limits:
        sections.append(("limits", limits))
    t = {"certificate": pki.path("server.pem"), "key": pki.path("server.key")}
    t.update(tls or {})
    sections.append(("tls", {k: v for k, v in t.items() if v is not None}))
    if log:
        sections.append(("log", log))
    sections.append(("listen t", {"address": "127.0.0.1:{port}",
                                  "tls": "yes", **(listener or {})}))
    lines = []
    for name, keys in sections:
        lines += [f"[{name}]"] + [f"{k} = {v}" for k, v in keys.items()] + [""]
    return "\n".join(lines)


def client_ctx(pki, version=None, max_version=None, cert=None,
               tickets=True):
    """A client context that verifies echod against the test CA. version
    pins the TLS version ("1.2"/"1.3"); max_version caps it; cert is None,
    "client" or "other-client"."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.path("ca.pem"))
    versions = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}
    if version:
        ctx.minimum_version = ctx.maximum_version = versions[version]
    if max_version:
        ctx.maximum_version = versions[max_version]
    if cert:
        ctx.load_cert_chain(pki.path(cert + ".pem"), pki.path(cert + ".key"))
    if not tickets:
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


def tls_connect(port, ctx, session=None, timeout=10.0):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout * SLOW)
    try:
        return ctx.wrap_socket(raw, server_hostname="localhost",
                               session=session)
    except BaseException:
        raw.close()
        raise


def echo(sock, payload, timeout=30.0):
    """Send payload while reading it back, in one thread (an SSL object
    must not be used by two threads at once), with a non-blocking socket;
    returns what came back (less on EOF or at the deadline)."""
    deadline = time.monotonic() + timeout * SLOW
    view = memoryview(payload)
    sent = 0
    got = bytearray()
    sock.setblocking(False)
    try:
        while len(got) < len(payload) and time.monotonic() < deadline:
            want_w = sent < len(payload)
            r, w, _ = select.select([sock], [sock] if want_w else [], [],
                                    0.2)
            if sock.pending():
                r = [sock]
            if w:
                try:
                    sent += sock.send(view[sent:sent + 65536])
                except (ssl.SSLWantWriteError, ssl.SSLWantReadError,
                        BlockingIOError):
                    pass
            if r:
                try:
                    b = sock.recv(1 << 20)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError,
                        BlockingIOError):
                    continue
                if not b:
                    break
                got += b
    finally:
        sock.setblocking(True)
        sock.settimeout(timeout * SLOW)
    return bytes(got)


def closed_by_peer(sock, timeout=10.0):
    """True when the peer ends the connection (EOF, reset, or a TLS alert)
    within timeout; application data before that is an error."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            b = sock.recv(65536)
        except socket.timeout:
            return False
        except (ssl.SSLError, ConnectionError):
            return True
        if not b:
            return True
        if not isinstance(sock, ssl.SSLSocket):
            continue            # a plaintext alert record: keep reading
        raise AssertionError(f"unexpected data {b[:40]!r}")


class BioClient:
    """A TLS client on a MemoryBIO over a raw socket: the test sees every
    TLS record and may shut the TCP write side (EOF without close_notify)
    or send close_notify, and still read what comes back."""

    def __init__(self, port, ctx, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port),
                                             timeout=timeout * SLOW)
        self.inc = ssl.MemoryBIO()
        self.outg = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.outg,
                                server_hostname="localhost")
        self.eof = False
        self.timeout = timeout * SLOW
        self._step(self.obj.do_handshake)

    def _flush(self):
        data = self.outg.read()
        if data:
            self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("TLS peer is silent")
        self.sock.settimeout(left)
        b = self.sock.recv(1 << 16)
        if b:
            self.inc.write(b)
        else:
            self.inc.write_eof()
        return b

    def _step(self, fn, *args):
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                r = fn(*args)
                self._flush()
                return r
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill(deadline):
                    raise ConnectionError("EOF during TLS operation")

    def send(self, data):
        self._step(self.obj.write, data)

    def close_notify(self):
        """Send close_notify; the read side stays open."""
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def shutdown_tcp(self):
        """FIN without close_notify."""
        self.sock.shutdown(socket.SHUT_WR)

    def read_to_close(self, limit=64 << 20):
        """Application data until the peer's close_notify. Returns (data,
        how): how is "close_notify", or "eof" when the TCP stream ended
        without one."""
        deadline = time.monotonic() + self.timeout
        buf = bytearray()
        while len(buf) <= limit:
            try:
                b = self.obj.read(1 << 16)
            except ssl.SSLWantReadError:
                if not self._fill(deadline):
                    try:
                        self.obj.read(1)
                    except ssl.SSLZeroReturnError:
                        return bytes(buf), "close_notify"
                    except ssl.SSLError:
                        pass
                    return bytes(buf), "eof"
                continue
            except ssl.SSLZeroReturnError:
                return bytes(buf), "close_notify"
            if not b:
                return bytes(buf), "close_notify"
            buf += b
        raise AssertionError("too much data")

    def close(self):
        self.sock.close()


def client_hello(pki):
    """The bytes of a real TLS ClientHello, as a client would send first."""
    inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = client_ctx(pki).wrap_bio(inc, outg, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outg.read()


def tls_stats(stderr):
    """echod's exit line "echod: tls stats: handshakes N, failed N (timed
    out N), resumed N, open N, NAME N, ..." as a dict."""
    m = re.search(r"^echod: tls stats: (.*)$", stderr, re.M)
    assert m, "no tls stats line in:\n" + stderr
    line = m.group(1)
    out = {}
    m2 = re.match(r"handshakes (\d+), failed (\d+) \(timed out (\d+)\), "
                  r"resumed (\d+), open (\d+)(.*)", line)
    assert m2, line
    out["handshakes"], out["failed"], out["timed_out"], out["resumed"], \
        out["open"] = (int(x) for x in m2.groups()[:5])
    for part in m2.group(6).split(", "):
        if part:
            name, n = part.rsplit(" ", 1)
            out[name] = int(n)
    return out


def readable_within(sock, wait):
    r, _, _ = select.select([sock], [], [], wait)
    return bool(r)
