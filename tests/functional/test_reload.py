"""Reload (SIGHUP): listeners added, changed and removed under load without
dropping a connection; a broken file keeps the old configuration serving
and its FILE:LINE error reaches the event log; limits apply to new
connections."""

import os
import re
import signal
import socket
import threading
import time

from conftest import BUILD, SLOW, echo_roundtrip, free_port, wait_for, wait_port


def roundtrip(port, data=b"reload" * 100):
    return echo_roundtrip(port, data)

def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True
    except OSError:     # caught in the middle of the removal: try again
        return False


def write_conf(d, text):
    tmp = d.conf_path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, d.conf_path)


class Loader:
    """Connections that keep echoing through a reload and check every byte."""

    def __init__(self, port, conns=8):
        self.port = port
        self.stop = threading.Event()
        self.errors = []
        self.rounds = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(i,))
                        for i in range(conns)]
        for t in self.threads:
            t.start()

    def run(self, i):
        try:
            with socket.create_connection(("127.0.0.1", self.port),
                                          timeout=5 * SLOW) as s:
                n = 0
                while not self.stop.is_set() and n < 100000:
                    msg = (b"%d:%d;" % (i, n)) * 20
                    s.sendall(msg)
                    got = b""
                    while len(got) < len(msg):
                        b = s.recv(len(msg) - len(got))
                        if not b:
                            raise ConnectionError("closed by echod")
                        got += b
                    if got != msg:
                        raise AssertionError("corrupt echo")
                    n += 1
                    with self.lock:
                        self.rounds += 1
        except Exception as e:  # recorded for the test to assert on
            self.errors.append(repr(e))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10 * SLOW)
        return self.errors


BASE = """
[server]
workers = 2
[listen a]
address = 127.0.0.1:{port}
"""


def test_add_and_remove_listener_under_load(echod_factory):
    d = echod_factory(BASE)
    port_b = free_port()
    load = Loader(d.port)
    try:
        wait_for(lambda: load.rounds > 50)
        write_conf(d, BASE.replace("{port}", str(d.port)) +
                   f"[listen b]\naddress = 127.0.0.1:{port_b}\nmode = echo\n")
        d.signal(signal.SIGHUP)
        assert wait_port("127.0.0.1", port_b), d.stderr()
        assert roundtrip(port_b) == b"reload" * 100
        before = load.rounds
        assert wait_for(lambda: load.rounds > before + 50)

        # Remove a: new connections to it are refused, the open ones go on.
        write_conf(d, f"[server]\nworkers = 2\n[listen b]\n"
                      f"address = 127.0.0.1:{port_b}\n")
        d.signal(signal.SIGHUP)
        assert wait_for(lambda: refused(d.port)), d.stderr()
        before = load.rounds
        assert wait_for(lambda: load.rounds > before + 50)
        assert roundtrip(port_b) == b"reload" * 100
    finally:
        errors = load.finish()
    assert errors == []
    assert "reload done" in d.stderr()
    assert d.stop() == 0


def test_broken_reload_keeps_serving(echod_factory):
    d = echod_factory(BASE)
    load = Loader(d.port, conns=4)
    try:
        write_conf(d, BASE.replace("{port}", str(d.port)) +
                   "[limits]\nmax_buffer = lots\n")
        d.signal(signal.SIGHUP)
        assert wait_for(lambda: "reload failed" in d.stderr()), d.stderr()
        err = d.stderr()
        assert f"{d.conf_path}:7: max_buffer:" in err
        assert roundtrip(d.port) == b"reload" * 100
        # A port already taken by someone else: bind fails, old config stays.
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        tport = taken.getsockname()[1]
        write_conf(d, BASE.replace("{port}", str(d.port)) +
                   f"[listen c]\naddress = 127.0.0.1:{tport}\n")
        d.signal(signal.SIGHUP)
        assert wait_for(lambda: d.stderr().count("reload failed") == 2)
        assert f"{d.conf_path}:7: address:" in d.stderr()
        taken.close()
        assert roundtrip(d.port) == b"reload" * 100
    finally:
        errors = load.finish()
    assert errors == []
    assert d.stop() == 0


def test_mode_change_keeps_socket_and_old_connections(echod_factory):
    d = echod_factory(BASE)
    held = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
    held.sendall(b"before")
    assert held.recv(6) == b"before"
    write_conf(d, BASE.replace("{port}", str(d.port)) + "mode = discard\n")
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: "now discard" in d.stderr()), d.stderr()
    # New connections are discarded: nothing comes back.
    assert roundtrip(d.port) == b""
    # The connection accepted before keeps its echo mode.
    held.sendall(b"after")
    assert held.recv(5) == b"after"
    held.close()
    assert d.stop() == 0


def test_limits_apply_to_new_connections(echod_factory):
    d = echod_factory(BASE + "[limits]\nidle_timeout = 0\n")
    write_conf(d, BASE.replace("{port}", str(d.port)) +
               "[limits]\nidle_timeout = 300ms\n")
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload done" in d.stderr())
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
    s.settimeout(5 * SLOW)
    t0 = time.monotonic()
    assert s.recv(1) == b""   # closed by the new idle timeout
    assert time.monotonic() - t0 >= 0.25
    s.close()
    assert d.stop() == 0


def test_reload_on_defaults_is_harmless(echod_factory):
    port = free_port()
    d = echod_factory(args=["-l", f"127.0.0.1:{port}"], port=port)
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: "built-in defaults" in d.stderr())
    assert roundtrip(port) == b"reload" * 100
    assert d.stop() == 0


def test_quit_serves_connections_already_queued(echod_factory):
    """Connections the kernel completed before a graceful stop are served,
    not reset when the listening socket closes."""
    d = echod_factory(BASE)
    # Open connections, then stop: every one gets its echo. (The short
    # pause lets the kernel finish each handshake on the server side too: a
    # connection still half-open when the listening socket closes is reset
    # by the kernel, whatever echod does.)
    socks = [socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
             for _ in range(20)]
    time.sleep(0.2)
    d.signal(signal.SIGQUIT)
    for i, s in enumerate(socks):
        msg = b"queued %d" % i
        s.sendall(msg)
        s.shutdown(socket.SHUT_WR)
        got = b""
        while True:
            b = s.recv(100)
            if not b:
                break
            got += b
        assert got == msg
        s.close()
    assert d.stop() == 0


def test_reloads_free_what_they_replace(echod_factory, tmp_path):
    """Every reload replaces the TLS context and a listener; once the
    workers have moved past it the old ones are freed, so memory stays flat
    over many reloads, and resumption with a ticket from before still works
    (the ticket keys are handed on)."""
    from tls_util import Pki, client_ctx, echo, tls_conf, tls_connect

    pki = Pki(str(tmp_path))
    d = echod_factory(tls_conf(pki))
    ctx = client_ctx(pki, version="1.3")
    s = tls_connect(d.port, ctx)
    assert echo(s, b"before") == b"before"
    session = s.session
    s.close()

    def reload_and_wait(n):
        target = d.stderr().count("reload done") + n
        for i in range(n):
            # Alternate the mode so that the listener object is replaced.
            mode = "echo" if i % 2 else "discard"
            write_conf(d, tls_conf(pki).replace("{port}", str(d.port)) +
                       f"mode = {mode}\n")
            d.signal(signal.SIGHUP)
            assert wait_for(lambda: d.stderr().count("reload done") >=
                            target - n + i + 1)
        assert wait_for(lambda: d.stderr().count("reload done") == target)

    reload_and_wait(20)            # reach a steady state
    rss0 = d.rss_kib()
    reload_and_wait(200)
    grown = d.rss_kib() - rss0
    # A context kept per reload costs ~20 KiB: 200 of them would be ~4 MiB.
    # (Not under AddressSanitizer, whose quarantine holds freed memory; that
    # run checks instead that nothing is used after it is freed.)
    with open(f"/proc/{d.pid}/maps") as f:
        sanitized = "libasan" in f.read()
    if not sanitized:
        assert grown < 1024, f"RSS grew {grown} KiB over 200 reloads"
    write_conf(d, tls_conf(pki).replace("{port}", str(d.port)))
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: d.stderr().count("reload done") == 221)
    s = tls_connect(d.port, ctx, session=session)
    assert s.session_reused
    assert echo(s, b"after") == b"after"
    s.close()
    assert d.stop() == 0


def reload_with(d, text, n):
    """Write text, SIGHUP, and wait for the n-th "reload done"."""
    write_conf(d, text)
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: d.stderr().count("reload done") >= n,
                    timeout=10 * SLOW, step=0.005), d.stderr()[-2000:]


def test_idle_timeout_changes_past_libevents_common_timeouts(echod_factory):
    # A base holds at most 256 common timeouts: 270 distinct values, all
    # long, then a short one, which must apply to the next connection.
    d = echod_factory(BASE + "[limits]\nidle_timeout = 0\n")
    base = BASE.replace("{port}", str(d.port))
    n = 0
    for i in range(270):
        n += 1
        reload_with(d, base + f"[limits]\nidle_timeout = {3600000 - i}ms\n",
                    n)
    reload_with(d, base + "[limits]\nidle_timeout = 300ms\n", n + 1)
    s = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
    s.settimeout(5 * SLOW)
    try:
        assert s.recv(1) == b""   # closed by the last idle timeout
    except socket.timeout:
        raise AssertionError("the last idle_timeout was not applied")
    finally:
        s.close()
    assert d.stop() == 0


def listen_backlog(port):
    """The listen queue size of the sockets on port, as ss(8) shows it
    (Send-Q of a listening socket)."""
    import subprocess
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"],
                         capture_output=True, text=True, check=True).stdout
    return {int(line.split()[2]) for line in out.splitlines() if line}


def have_reuseport():
    """Whether this build balances a listener over SO_REUSEPORT sockets."""
    with open(os.path.join(BUILD, "common", "platform.h")) as f:
        text = f.read()
    return bool(re.search(r"^#define HAVE_SO_REUSEPORT(_LB)?\s+1\b", text,
                          re.M))


def test_reload_keeps_the_socket_for_backlog_reuseport_and_address_text(
        echod_factory):
    d = echod_factory(BASE + "backlog = 100\n")
    base = BASE.replace("{port}", str(d.port))
    assert listen_backlog(d.port) == {100}
    held = socket.create_connection(("127.0.0.1", d.port), timeout=5 * SLOW)
    held.sendall(b"x")
    assert held.recv(1) == b"x"
    changes = [
        base + "backlog = 37\n",                        # backlog only
        base.replace("127.0.0.1:", "localhost:") + "backlog = 37\n",
        base + "backlog = 37\nreuseport = yes\n",       # needs a restart
    ]
    for n, text in enumerate(changes, 1):
        reload_with(d, text, n)
        assert roundtrip(d.port) == b"reload" * 100
    log = d.stderr()
    assert "reload failed" not in log and "Address already in use" not in log
    # The new backlog is the live socket's: listen(2) again, not a rebind.
    assert listen_backlog(d.port) == {37}
    if have_reuseport():
        assert "reuseport changed: needs a restart" in log
    else:   # a build without it (-Dportable=true): nothing to restart for
        assert "reuseport is not available" in log, log
    # The connection from before every reload still echoes.
    held.sendall(b"y")
    assert held.recv(1) == b"y"
    held.close()
    assert d.stop() == 0
