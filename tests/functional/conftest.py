"""Shared fixtures for the functional suite: locate the built binaries, pick
free loopback ports, and run echod as a user would (a config file, a real
process, signals), always bounded in time."""

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


def free_port(family=socket.AF_INET):
    """A port that was free a moment ago on loopback."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


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
