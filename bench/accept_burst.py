#!/usr/bin/python3
"""accept_burst.py: does a burst of new connections stall echo on the
connections that are already up?

echod runs with one worker and its default max_connections and backlog.
A probe process keeps PROBES connections echoing 64-byte messages (closed
loop, one message per connection at most every INTERVAL_MS) and records
every round trip. After a quiet second, this process opens BURST
connections as fast as it can (non-blocking connects, spread over loopback
source addresses so that the client's port search is not what is
measured), and watches echod's descriptor count until echod has accepted
all of them. The report compares the probes' round trips during the burst
with those of the quiet second: the median, p99, p99.9 and the worst one
(the longest any existing connection waited for its echo), plus how many
burst connections were established and how long echod took to accept
them.

Several echod binaries may be given (e.g. a build before and after a
change): they run alternately, RUNS times each, and the medians are shown.

usage: bench/accept_burst.py [ECHOD ...]      (build/server/echod)
environment: BURST (the hard RLIMIT_NOFILE minus 400, at most 19000),
PROBES (10), INTERVAL_MS (2), RUNS (3), WORKERS (1), BACKLOG and
MAX_CONNECTIONS (unset: echod's defaults), SOURCES (8 loopback source
addresses).
"""

import errno
import os
import resource
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

IP_BIND_ADDRESS_NO_PORT = 24
MSG = b"p" * 64


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default


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


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def pct(v, p):
    if not v:
        return float("nan")
    v = sorted(v)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


# --- the probe process -----------------------------------------------------

def probe_main(port, nprobes, interval, ctl_fd, out_path):
    """Echo on nprobes connections until ctl_fd becomes readable; write
    (send time, round trip) pairs, in seconds, to out_path."""
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(nprobes):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        st = {"sock": s, "sent": 0.0, "got": 0, "next": 0.0}
        conns.append(st)
        sel.register(s, selectors.EVENT_READ, st)
    sel.register(ctl_fd, selectors.EVENT_READ, None)
    samples = []
    now = time.monotonic()
    for st in conns:
        st["sent"] = now
        st["sock"].send(MSG)
    running = True
    while running:
        now = time.monotonic()
        wait = min((st["next"] for st in conns if st["next"]), default=None)
        timeout = None if wait is None else max(0.0, wait - now)
        for key, _ in sel.select(timeout if timeout is not None else 0.05):
            st = key.data
            if st is None:
                running = False
                continue
            data = st["sock"].recv(65536)
            if not data:
                raise RuntimeError("probe connection closed by echod")
            st["got"] += len(data)
            if st["got"] >= len(MSG):
                t = time.monotonic()
                samples.append((st["sent"], t - st["sent"]))
                st["got"] -= len(MSG)
                st["next"] = st["sent"] + interval
        now = time.monotonic()
        for st in conns:
            if st["next"] and st["next"] <= now:
                st["next"] = 0.0
                st["sent"] = now
                st["sock"].send(MSG)
    with open(out_path, "wb") as f:
        for s, lat in samples:
            f.write(struct.pack("dd", s, lat))
    os._exit(0)


def start_probe(port, nprobes, interval, out_path):
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(wr)
        try:
            probe_main(port, nprobes, interval, rd, out_path)
        finally:
            os._exit(1)
    os.close(rd)
    return pid, wr


def read_samples(path):
    with open(path, "rb") as f:
        data = f.read()
    return [struct.unpack_from("dd", data, i) for i in range(0, len(data), 16)]


# --- the burst ---------------------------------------------------------------

def burst(port, count, nsources, deadline_s=20.0):
    """Open count connections; returns (sockets, established, failed by
    errno name, seconds until all connects finished)."""
    sel = selectors.DefaultSelector()
    socks, failed, pending = [], {}, 0
    t0 = time.monotonic()
    for i in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        try:
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        except OSError:
            pass
        try:
            s.bind((f"127.0.0.{2 + i % nsources}", 0))
            rc = s.connect_ex(("127.0.0.1", port))
        except OSError as e:
            rc = e.errno
        if rc in (0, errno.EINPROGRESS):
            socks.append(s)
            sel.register(s, selectors.EVENT_WRITE)
            pending += 1
        else:
            failed[errno.errorcode.get(rc, str(rc))] = \
                failed.get(errno.errorcode.get(rc, str(rc)), 0) + 1
            s.close()
    established = 0
    end = t0 + deadline_s
    while pending and time.monotonic() < end:
        for key, _ in sel.select(0.1):
            s = key.fileobj
            sel.unregister(s)
            pending -= 1
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                established += 1
            else:
                name = errno.errorcode.get(err, str(err))
                failed[name] = failed.get(name, 0) + 1
    if pending:
        failed["still connecting"] = pending
    return socks, established, failed, time.monotonic() - t0


# --- one run -------------------------------------------------------------------

def one_run(echod, burst_n, nprobes, interval, nsources, tmp):
    port = free_port()
    conf = os.path.join(tmp, "echod.conf")
    lines = ["[server]", f"workers = {env_int('WORKERS', 1)}", "",
             "[limits]", "idle_timeout = 0"]
    if os.environ.get("MAX_CONNECTIONS"):
        lines.append(f"max_connections = {os.environ['MAX_CONNECTIONS']}")
    lines += ["", "[listen a]", f"address = 127.0.0.1:{port}"]
    if os.environ.get("BACKLOG"):
        lines.append(f"backlog = {os.environ['BACKLOG']}")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    err = open(os.path.join(tmp, "echod.err"), "w")
    srv = subprocess.Popen([echod, "-f", "-c", conf], stderr=err)
    try:
        wait_port(port)
        time.sleep(0.2)
        out = os.path.join(tmp, "probe.bin")
        ppid, ctl = start_probe(port, nprobes, interval, out)
        time.sleep(0.3)
        base_fds = nfds(srv.pid)
        time.sleep(1.0)
        t_burst = time.monotonic()
        socks, est, failed, t_conn = burst(port, burst_n, nsources)
        deadline = time.monotonic() + 30
        while nfds(srv.pid) - base_fds < est and time.monotonic() < deadline:
            time.sleep(0.002)
        t_acc = time.monotonic()
        accepted = nfds(srv.pid) - base_fds
        time.sleep(0.5)
        os.write(ctl, b"x")
        os.waitpid(ppid, 0)
        os.close(ctl)
        samples = read_samples(out)
        for s in socks:
            s.close()
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
        err.close()
    quiet = [lat for t, lat in samples if t_burst - 1.0 <= t < t_burst]
    during = [lat for t, lat in samples if t_burst <= t <= t_acc]
    # A round trip sent before the burst but answered during it counts too.
    during += [lat for t, lat in samples if t < t_burst and t + lat > t_burst]
    return {
        "established": est, "failed": failed, "accepted": accepted,
        "connect_s": t_conn, "accept_s": t_acc - t_burst,
        "quiet_p50": pct(quiet, 50), "quiet_p99": pct(quiet, 99),
        "quiet_n": len(quiet), "n": len(during),
        "p50": pct(during, 50), "p99": pct(during, 99),
        "p999": pct(during, 99.9), "max": max(during) if during else 0.0,
    }


def main():
    binaries = sys.argv[1:] or ["build/server/echod"]
    for b in binaries:
        if not os.access(b, os.X_OK):
            sys.exit(f"{sys.argv[0]}: {b} not built")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    burst_n = env_int("BURST", min(19000, hard - 400))
    if burst_n + 200 > hard:
        sys.exit(f"{sys.argv[0]}: BURST {burst_n} needs {burst_n + 200} "
                 f"descriptors; the hard limit is {hard}")
    nprobes = env_int("PROBES", 10)
    interval = env_int("INTERVAL_MS", 2) / 1000.0
    runs = env_int("RUNS", 3)
    nsources = env_int("SOURCES", 8)
    print(f"accept_burst: {burst_n} new connections while {nprobes} "
          f"connections echo 64 B every {interval * 1000:.0f} ms; echod "
          f"with {env_int('WORKERS', 1)} worker(s), median of {runs} runs")
    print(f"{os.uname().sysname} {os.uname().release}, {os.cpu_count()} cpus,"
          f" fd hard limit {hard}, somaxconn "
          + open("/proc/sys/net/core/somaxconn").read().strip())
    results = {b: [] for b in binaries}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(runs):
            order = binaries if r % 2 == 0 else list(reversed(binaries))
            for b in order:
                res = one_run(b, burst_n, nprobes, interval, nsources, tmp)
                results[b].append(res)
                print(f"  run {r + 1} {b}: established {res['established']}"
                      f" accepted {res['accepted']} in {res['accept_s']:.2f} s"
                      f", echo during burst p50 {res['p50'] * 1e3:.2f} ms "
                      f"p99 {res['p99'] * 1e3:.1f} ms max "
                      f"{res['max'] * 1e3:.1f} ms"
                      + (f", failed {res['failed']}" if res["failed"] else ""),
                      flush=True)
    print(f"{'echod':<34} {'estab':>6} {'accept s':>8} {'quiet p50':>9} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'p99.9':>7} {'max ms':>7}")
    for b in binaries:
        rs = results[b]

        def med(k):
            return statistics.median(x[k] for x in rs)
        print(f"{b[-34:]:<34} {med('established'):>6.0f} "
              f"{med('accept_s'):>8.2f} {med('quiet_p50') * 1e3:>9.2f} "
              f"{med('p50') * 1e3:>7.2f} {med('p99') * 1e3:>7.1f} "
              f"{med('p999') * 1e3:>7.1f} {med('max') * 1e3:>7.1f}")


if __name__ == "__main__":
    main()
