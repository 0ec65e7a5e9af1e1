#!/usr/bin/python3
"""tls_idle_mem.py: server memory per established idle TLS connection,
measured as the growth of the resident set (VmRSS) while COUNT TLS
connections are opened (handshake done, one request answered each) and
left idle, divided by COUNT. echod and redis-server --tls-port are
measured the same way, with the same throwaway EC P-256 certificate, TLS
1.3 and session tickets on. Target: echod <= 12 KiB per connection.

usage: bench/tls_idle_mem.py [BUILD_DIR] [COUNT]   (build, 2000)
"""

import os
import resource
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

TARGET = 12 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def settle(pid):
    last = rss(pid)
    for _ in range(30):
        time.sleep(0.1)
        now = rss(pid)
        if now == last:
            break
        last = now
    return last


def make_pki(d):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True,
                       capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
        "-subj", "/CN=bench-ca")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost")
    with open(os.path.join(d, "server.ext"), "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey",
        "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "1",
        "-extfile", "server.ext")


def measure(cmd, port, count, ctx, request, reply, errlog):
    with open(errlog, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    socks = []

    def one():
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(request)
        got = b""
        while len(got) < len(reply):
            b = s.recv(64)
            if not b:
                raise RuntimeError("closed")
            got += b
        if got != reply:
            raise RuntimeError(f"bad reply {got!r}")
        return s

    try:
        wait_port(port)
        warm = [one() for _ in range(50)]
        for s in warm:
            s.close()
        time.sleep(0.5)
        before = settle(proc.pid)
        for _ in range(count):
            socks.append(one())
        after = settle(proc.pid)
        return (after - before) / count
    finally:
        for s in socks:
            s.close()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    echod = os.path.join(build, "server", "echod")
    if not os.access(echod, os.X_OK):
        sys.exit(f"{sys.argv[0]}: {echod} not built (ninja -C {build})")
    need = count + 300
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    tmp = tempfile.mkdtemp(prefix="tls-idle-mem-")
    try:
        make_pki(tmp)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(os.path.join(tmp, "ca.pem"))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        cert = os.path.join(tmp, "server.pem")
        key = os.path.join(tmp, "server.key")
        errlog = os.path.join(tmp, "stderr")

        port = free_port()
        conf = os.path.join(tmp, "echod.conf")
        with open(conf, "w") as f:
            f.write("[server]\nworkers = 1\n\n"
                    f"[limits]\nmax_connections = {count + 100}\n"
                    "idle_timeout = 0\n\n"
                    f"[tls]\ncertificate = {cert}\nkey = {key}\n\n"
                    f"[listen t]\naddress = 127.0.0.1:{port}\ntls = yes\n")
        e = measure([echod, "-f", "-c", conf], port, count, ctx, b"x", b"x",
                    errlog)
        r = None
        redis = shutil.which("redis-server")
        if redis:
            port = free_port()
            r = measure([redis, "--port", "0", "--tls-port", str(port),
                         "--bind", "127.0.0.1", "--tls-cert-file", cert,
                         "--tls-key-file", key, "--tls-ca-cert-file",
                         os.path.join(tmp, "ca.pem"), "--tls-auth-clients",
                         "no", "--save", "", "--appendonly", "no",
                         "--maxclients", str(count + 100), "--dir", tmp,
                         "--logfile", os.path.join(tmp, "redis.log")],
                        port, count, ctx, b"PING\r\n", b"+PONG\r\n", errlog)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"tls_idle_mem: RSS growth over {count} idle TLS 1.3 connections "
          "(handshake done, one request answered), bytes per connection")
    if r is not None:
        print(f"{'redis-server':<14} {r:>8.0f}")
    verdict = "ok" if e <= TARGET else "MISS"
    print(f"{'echod':<14} {e:>8.0f}   target <= {TARGET}: {verdict}")
    if r is not None:
        print(f"ratio echod/redis {e / r:.3f}")


if __name__ == "__main__":
    main()
