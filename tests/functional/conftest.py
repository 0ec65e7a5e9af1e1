"""Shared fixtures for the functional suite: locate the built binaries, pick
free loopback ports, and run echod as a user would (a config file, a real
process, signals), always bounded in time."""

import errno
import os
import signal
import signal as signal_mod
import socket
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("ECHOLOAD_BUILD", os.path.join(ROOT, "build"))
ECHOD = os.path.join(BUILD, "server", "echod")
ECHOLOAD = os.path.join(BUILD, "client", "echoload")
# Sanitizer builds run slower; tests scale their own time limits by this.
SLOW = float(os.environ.get("ECHOLOAD_SLOW", "1"))


def _port_range():
    """Listening ports for tests come from below the kernel's ephemeral
    range: a port taken from inside it (bind to 0) can be handed to any
    outgoing connection on the machine before the server under test binds
    it, and load tests make thousands of those."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    top = min(low, 65536) - 1
    return max(1024, top - 12000), top


PORT_LOW, PORT_HIGH = _port_range()
# One counter for every test process on the machine (suites run side by
# side): each port is handed out once per lap of the range, under a lock.
PORT_STATE = os.path.join(tempfile.gettempdir(), "echoload-test-ports")


def _next_port():
    import fcntl
    fd = os.open(PORT_STATE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        raw = os.read(fd, 32).decode(errors="replace").strip()
        try:
            last = int(raw)
        except ValueError:
            last = PORT_LOW + os.getpid() % (PORT_HIGH - PORT_LOW)
        port = last + 1 if PORT_LOW <= last < PORT_HIGH else PORT_LOW
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, str(port).encode())
        return port
    finally:
        os.close(fd)


def _bindable(port):
    for family, host in ((socket.AF_INET, "127.0.0.1"),
                         (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as e:
                # No IPv6 on this host is not a port in use.
                if family == socket.AF_INET6 and e.errno in (
                        errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    continue
                return False
    return True


def free_port(family=socket.AF_INET):
    """A loopback port that no other test has been given and nothing
    listens on, free on both 127.0.0.1 and ::1."""
    for _ in range(PORT_HIGH - PORT_LOW):
        port = _next_port()
        if _bindable(port):
            return port
    raise RuntimeError("no free port in %d-%d" % (PORT_LOW, PORT_HIGH))


def wait_port(host, port, timeout=10.0):
    deadline = time.monotonic() + timeout * SLOW
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Echod:
    """One echod process in the foreground. config is the text of a config
    file; {port} in it is replaced by a free port (self.port)."""

    def __init__(self, config=None, args=(), env=None, port=None, wait=True,
                 wait_host="127.0.0.1", preexec_fn=None, tmpdir=None):
        self.port = port or free_port()
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix="echod-test-")
        cmd = [ECHOD, "-f"]
        self.conf_path = None
        if config is not None:
            self.conf_path = os.path.join(self.tmpdir, "echod.conf")
            with open(self.conf_path, "w") as f:
                f.write(config.replace("{port}", str(self.port))
                        .replace("{tmp}", self.tmpdir))
            cmd += ["-c", self.conf_path]
        cmd += list(args)
        self.stderr_path = os.path.join(self.tmpdir, "stderr")
        self._stderr = open(self.stderr_path, "wb")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=self._stderr, env=full_env,
                                     preexec_fn=preexec_fn)
        if wait and not wait_port(wait_host, self.port):
            self.kill()
            raise RuntimeError("echod did not start listening:\n" + self.stderr())

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        self._stderr.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal_mod.SIGTERM, timeout=15.0):
        """Signal echod and wait; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])


@pytest.fixture
def echod_factory():
    started = []

    def make(*a, **kw):
        d = Echod(*a, **kw)
        started.append(d)
        return d

    yield make
    for d in started:
        d.kill()


def wait_for(pred, timeout=10.0, step=0.02):
    """Poll pred until it returns something true, and return that; at the
    deadline (scaled by SLOW), return its last value."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def echo_roundtrip(port, payload, host="127.0.0.1", timeout=10.0):
    """Send payload, shut the write side, read until EOF; returns the bytes."""
    with socket.create_connection((host, port), timeout=timeout * SLOW) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)
