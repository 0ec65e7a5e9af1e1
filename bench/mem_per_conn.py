#!/usr/bin/python3
"""mem_per_conn.py: RSS growth per idle connection for several servers, the
way idle_mem.py measures echod: COUNT connections opened and left idle,
the server's VmRSS growth divided by COUNT, once connected and again after
one round trip on each. Echo servers echo one byte; Redis (proto resp)
answers an inline PING.

usage: bench/mem_per_conn.py COUNT NAME:PROTO:PORT:COMMAND...
       (COMMAND's words separated by \\037; PROTO echo or resp)
"""

import importlib.util
import os
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "idle_mem", os.path.join(HERE, "idle_mem.py"))
idle_mem = importlib.util.module_from_spec(spec)
spec.loader.exec_module(idle_mem)

# What each protocol sends for a round trip, and the reply it expects.
ROUNDTRIP = {"echo": (b"x", b"x"), "resp": (b"PING\r\n", b"+PONG\r\n")}


def roundtrip(sock, proto):
    ask, want = ROUNDTRIP[proto]
    sock.sendall(ask)
    got = b""
    while len(got) < len(want):
        chunk = sock.recv(len(want) - len(got))
        if not chunk:
            raise RuntimeError("connection closed")
        got += chunk
    if got != want:
        raise RuntimeError(f"unexpected reply {got!r}")


def roundtrip_all(socks, proto):
    """One round trip on every connection, all in flight at once."""
    ask, want = ROUNDTRIP[proto]
    sel = selectors.DefaultSelector()
    got = {}
    for s in socks:
        s.setblocking(False)
        s.send(ask)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    left = len(socks)
    deadline = time.monotonic() + 60
    while left:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{left} connections got no reply")
        for key, _ in sel.select(1.0):
            s = key.fileobj
            got[s] += s.recv(64)
            if len(got[s]) >= len(want):
                if got[s] != want:
                    raise RuntimeError(f"unexpected reply {got[s]!r}")
                sel.unregister(s)
                left -= 1
    sel.close()


def measure(cmd, port, proto, count, errlog):
    with open(errlog, "wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
    socks = []
    try:
        idle_mem.wait_port(port)
        warm = [socket.create_connection(("127.0.0.1", port))
                for _ in range(20)]
        for s in warm:
            roundtrip(s, proto)
        for s in warm:
            s.close()
        time.sleep(0.3)
        base_fds = idle_mem.nfds(proc.pid)
        before = idle_mem.settle(proc.pid, base_fds)
        for _ in range(count):
            socks.append(socket.create_connection(("127.0.0.1", port)))
        probe = socket.create_connection(("127.0.0.1", port), timeout=10)
        roundtrip(probe, proto)
        connected = idle_mem.settle(proc.pid, base_fds + count + 1)
        roundtrip_all(socks, proto)
        used = idle_mem.settle(proc.pid, base_fds + count + 1)
        probe.close()
        return ((connected - before) / count, (used - before) / count)
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
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    count = int(sys.argv[1])
    need = count + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"{sys.argv[0]}: need {need} open files, hard limit "
                     f"is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    tmp = tempfile.mkdtemp(prefix="mem-per-conn-")
    errlog = os.path.join(tmp, "stderr")
    rows = []
    for spec_ in sys.argv[2:]:
        name, proto, port, cmd = spec_.split(":", 3)
        conn, used = measure(cmd.split("\037"), int(port), proto, count,
                             errlog)
        rows.append((name, conn, used))
    os.unlink(errlog) if os.path.exists(errlog) else None
    os.rmdir(tmp)
    print(f"mem: RSS growth over {count} idle connections, bytes per "
          "connection")
    print(f"{'server':<14} {'connected':>10} {'after one':>10}")
    for name, conn, used in rows:
        print(f"{name:<14} {conn:>10.0f} {used:>10.0f}")


if __name__ == "__main__":
    main()
