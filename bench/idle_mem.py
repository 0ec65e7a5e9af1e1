#!/usr/bin/python3
"""idle_mem.py: echod's memory per open idle plain connection, measured as
the growth of its resident set (VmRSS) while COUNT connections are opened
and left idle, divided by COUNT. Two figures: connections that only
connected, and the same connections after each has echoed one byte (buffers
a connection keeps after use show up there). The raw-epoll baseline is
measured the same way for comparison. Target: echod <= 300 bytes per
connection.

usage: bench/idle_mem.py [BUILD_DIR] [COUNT]   (build, 5000)
"""

import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

TARGET = 300


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


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def roundtrip(sock):
    sock.sendall(b"x")
    if sock.recv(1) != b"x":
        raise RuntimeError("no echo")


def settle(pid, want_fds, timeout=30.0):
    """Wait until the server holds want_fds descriptors and its RSS stops
    moving, then return the RSS."""
    deadline = time.monotonic() + timeout
    while nfds(pid) < want_fds:
        if time.monotonic() > deadline:
            raise RuntimeError(f"server holds {nfds(pid)} fds, want {want_fds}")
        time.sleep(0.05)
    last = rss(pid)
    for _ in range(20):
        time.sleep(0.1)
        now = rss(pid)
        if now == last:
            break
        last = now
    return last


def echo_all(socks):
    """One byte echoed on every connection, all in flight at once."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        s.send(b"x")
        sel.register(s, selectors.EVENT_READ)
    left = len(socks)
    deadline = time.monotonic() + 60
    while left:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} connections got no echo")
        for key, _ in sel.select(1.0):
            if key.fileobj.recv(16) != b"x":
                raise RuntimeError("bad echo")
            sel.unregister(key.fileobj)
            left -= 1
    sel.close()


def measure(cmd, port, count, errlog):
    """(bytes per connection once connected, and after one echo each)."""
    with open(errlog, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    socks = []
    try:
        wait_port(port)
        # Warm up the paths every connection takes (first accept, first
        # dispatch, first echo), then let those connections go.
        warm = [socket.create_connection(("127.0.0.1", port))
                for _ in range(20)]
        for s in warm:
            roundtrip(s)
        for s in warm:
            s.close()
        time.sleep(0.3)
        base_fds = nfds(proc.pid)
        before = settle(proc.pid, base_fds)
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        # A last connection behind the others: once it echoes, every
        # connection before it has been accepted and handed to a worker.
        probe = socket.create_connection(("127.0.0.1", port), timeout=10)
        roundtrip(probe)
        connected = settle(proc.pid, base_fds + count + 1)
        echo_all(socks)
        used = settle(proc.pid, base_fds + count + 1)
        probe.close()
        return ((connected - before) / count, (used - before) / count)
    except Exception:
        with open(errlog, errors="replace") as f:
            sys.stderr.write(f.read())
        raise
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
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    echod = os.path.join(build, "server", "echod")
    baseline = os.path.join(build, "bench", "epoll_echo")
    for f in (echod, baseline):
        if not os.access(f, os.X_OK):
            sys.exit(f"{sys.argv[0]}: {f} not built (ninja -C {build})")

    # Both ends of count connections live in this machine's fd tables: the
    # client's here, the server's in the child, which inherits the limit.
    need = count + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"{sys.argv[0]}: need {need} open files, hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))

    tmp = tempfile.mkdtemp(prefix="idle-mem-")
    port = free_port()
    conf = os.path.join(tmp, "echod.conf")
    with open(conf, "w") as f:
        f.write("[server]\nworkers = 1\n\n"
                f"[limits]\nmax_connections = {count + 100}\n"
                "idle_timeout = 0\n\n"
                f"[listen a]\naddress = 127.0.0.1:{port}\n")
    errlog = os.path.join(tmp, "stderr")
    e_conn, e_used = measure([echod, "-f", "-c", conf], port, count, errlog)
    port = free_port()
    b_conn, b_used = measure([baseline, str(port)], port, count, errlog)
    for f in (conf, errlog):
        os.unlink(f)
    os.rmdir(tmp)

    print(f"idle_mem: RSS growth over {count} idle plain connections, "
          "bytes per connection")
    print(f"{'server':<12} {'connected':>10} {'after echo':>11} {'<=' + str(TARGET):>6}")
    for name, c, u, check in (("epoll_echo", b_conn, b_used, False),
                              ("echod", e_conn, e_used, True)):
        verdict = ("ok" if max(c, u) <= TARGET else "MISS") if check else ""
        print(f"{name:<12} {c:>10.0f} {u:>11.0f} {verdict:>6}")


if __name__ == "__main__":
    main()
