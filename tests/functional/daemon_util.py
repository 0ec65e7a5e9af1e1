"""daemon_util.py: helpers for the daemon and admin tests: config files with
a pid file, `echod -d` and `echod -s` runs, waiting for a process to go
away, a socket-activation launcher, a systemd-style notify socket, and a
small HTTP GET for the admin endpoint. Every wait here has a deadline."""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time

from conftest import ECHOD, SLOW, free_port


def conf_text(tmpdir, port, server=None, listeners=None, sections=None):
    """Config text with a pid file in tmpdir, one worker, and one echo
    listener a on 127.0.0.1:port unless listeners ({NAME: {key: value}})
    says otherwise. sections adds more ({"admin": {"address": ...}})."""
    server = {"workers": "1", "pid_file": os.path.join(tmpdir, "echod.pid"),
              **(server or {})}
    lines = ["[server]"] + [f"{k} = {v}" for k, v in server.items()]
    if listeners is None:
        listeners = {"a": {"address": f"127.0.0.1:{port}"}}
    for name, opts in listeners.items():
        lines += ["", f"[listen {name}]"] + [f"{k} = {v}" for k, v in opts.items()]
    for name, opts in (sections or {}).items():
        lines += ["", f"[{name}]"] + [f"{k} = {v}" for k, v in opts.items()]
    return "\n".join(lines) + "\n"


class Setup:
    """A temporary directory holding echod.conf and the pid file."""

    def __init__(self, port=None, **kw):
        self.tmpdir = tempfile.mkdtemp(prefix="echod-daemon-")
        self.port = port or free_port()
        self.pid_file = os.path.join(self.tmpdir, "echod.pid")
        self.conf = os.path.join(self.tmpdir, "echod.conf")
        self.write(**kw)

    def write(self, **kw):
        with open(self.conf, "w") as f:
            f.write(conf_text(self.tmpdir, self.port, **kw))

    def pid(self):
        return read_pid(self.pid_file)


def run(*args, env=None, cwd=None, timeout=20.0):
    """Run echod with args to completion; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run([ECHOD, *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout * SLOW)


def read_pid(path):
    """The pid in a pid file, or None when there is none."""
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return None


def alive(pid):
    """True while pid is a process that has not exited (zombies have)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def comm(pid):
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def wait_gone(pid, timeout=15.0):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return False


def kill_pid(pid):
    """Best effort: SIGKILL a daemon left behind by a failing test."""
    if pid and alive(pid):
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        wait_gone(pid, 5)


def dead_pid():
    """The pid of a process that has exited and been reaped."""
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# A launcher for socket activation: puts the inherited sockets at fd 3, 4,
# ... as systemd does, sets LISTEN_PID to its own pid and execs echod, so
# that LISTEN_PID is echod's pid (exec keeps it).
_ACTIVATE = r"""
import fcntl, os, sys
n = int(sys.argv[1])
fds = [int(x) for x in sys.argv[2:2 + n]]
# Move them out of the way first, then into place, so none is clobbered.
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
for fd in fds:
    os.close(fd)
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = str(n)
argv = sys.argv[2 + n:]
os.execv(argv[0], argv)
"""


def activation_cmd(socks, args):
    """argv that runs echod with args and socks inherited as fds 3, 4..."""
    fds = [str(s.fileno()) for s in socks]
    return [sys.executable, "-c", _ACTIVATE, str(len(fds)), *fds, ECHOD, *args]


def listening_socket(port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    return s


class NotifySocket:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET. abstract
    makes it an abstract-namespace socket ("@name")."""

    def __init__(self, tmpdir, abstract=False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"echod-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            path = os.path.join(tmpdir, "notify.sock")
            self.sock.bind(path)
            self.env = path
        self.messages = []

    def wait(self, want, timeout=15.0):
        """Collect datagrams until one has the line want; returns it."""
        deadline = time.monotonic() + timeout * SLOW
        for m in self.messages:
            if want in m.split("\n"):
                return m
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(m)
            if want in m.split("\n"):
                return m
        return None

    def close(self):
        self.sock.close()


def http_get(port, path, host="127.0.0.1", method="GET", timeout=10.0):
    """(status, headers dict with lower-case names, body text)."""
    c = http.client.HTTPConnection(host, port, timeout=timeout * SLOW)
    try:
        c.request(method, path)
        r = c.getresponse()
        body = r.read().decode()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()
