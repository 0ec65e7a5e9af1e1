"""test_log_faults.py: the log sinks under injected faults, as an operator
meets them: a full file system (a small tmpfs, mounted when the test runs as
root), a FIFO with a reader and one whose reader stops or goes away, a log
file deleted under echod, and storms of reopens. Every test checks the
three promises of echod(8): files hold whole lines only (each line in one
file), the access lines written plus those dropped equal the lines produced
(one per echo connection), and descriptors and threads stay bounded however
often the sink is reopened. tests/run.sh runs it in each of its five
functional suites (release, poll, select, portable, ASan)."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

import pytest

from conftest import ECHOD, SLOW, echo_roundtrip, free_port, wait_for
from daemon_util import http_get

pytestmark = pytest.mark.skipif(not os.path.exists(ECHOD),
                                reason="echod is not built")

need_root = pytest.mark.skipif(os.geteuid() != 0,
                               reason="mounting a small tmpfs needs root")

CONFIG = """
[server]
workers = 2
shutdown_timeout = 1s

[listen main]
address = 127.0.0.1:{{port}}

[log]
error_log = {error_log}
level = info
access_log = {access_log}
buffer = {buffer}

[admin]
address = 127.0.0.1:{admin}
"""

# The fixture's readiness probe is one connection: one access line.
PROBES = 1

LINE_RE = re.compile(
    rb'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z listener=main '
    rb'peer=127\.0\.0\.1:\d+ duration=\d+\.\d{6} bytes_in=\d+ '
    rb'bytes_out=\d+ reason="[a-z ]+"$')
NOTICE_RE = re.compile(rb'^\d+ lines dropped$')


class Logged:
    """echod with an access log, an event log and the admin endpoint."""

    def __init__(self, factory, tmp, access_log, error_log=None,
                 buffer="64k"):
        self.admin = free_port()
        self.error_log = error_log or os.path.join(tmp, "error.log")
        self.d = factory(CONFIG.format(error_log=self.error_log,
                                       access_log=access_log, buffer=buffer,
                                       admin=self.admin), tmpdir=tmp)
        self.produced = PROBES

    def connections(self, n, threads=4):
        """n echo connections, one access line each."""
        errors = []

        def run(k):
            try:
                for i in range(k):
                    assert echo_roundtrip(self.d.port, b"x%d\n" % i) == \
                        b"x%d\n" % i
            except Exception as e:  # reported below
                errors.append(e)

        ts = [threading.Thread(target=run, args=(n // threads +
                                                 (i < n % threads),))
              for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        self.produced += n

    def metrics(self, sink="access_log"):
        status, _, body = http_get(self.admin, "/metrics")
        assert status == 200
        out = {}
        for m in re.finditer(r'^echod_log_(\w+?)(?:_total)?\{sink="%s"\} '
                             r'(\d+)$' % sink, body, re.M):
            out[m.group(1)] = int(m.group(2))
        return out

    def settled(self, sink="access_log"):
        """Wait until every line produced is accounted for (written or
        dropped); returns the metrics then."""
        def done():
            m = self.metrics(sink)
            return m if m["lines_written"] + m["lines_dropped"] >= \
                self.produced and m["queued_bytes"] == 0 else None
        m = wait_for(done, timeout=20)
        assert m, (self.metrics(sink), self.produced, self.d.stderr())
        assert m["lines_written"] + m["lines_dropped"] == self.produced, m
        return m

    def fds(self):
        return len(os.listdir(f"/proc/{self.d.pid}/fd"))

    def fd_targets(self):
        """What each descriptor is, for a failure's message."""
        out = []
        for f in sorted(os.listdir(f"/proc/{self.d.pid}/fd"), key=int):
            try:
                out.append(f + " " + os.readlink(f"/proc/{self.d.pid}/fd/{f}"))
            except FileNotFoundError:   # closed meanwhile
                pass
        return out

    def deleted_fds(self):
        """The descriptors echod holds on unlinked files."""
        out = []
        for f in os.listdir(f"/proc/{self.d.pid}/fd"):
            try:
                target = os.readlink(f"/proc/{self.d.pid}/fd/{f}")
            except FileNotFoundError:   # closed meanwhile
                continue
            if target.endswith(" (deleted)"):
                out.append(target)
        return out

    def threads(self):
        return len(os.listdir(f"/proc/{self.d.pid}/task"))


def whole_lines(data, where):
    """The access lines in data; every line whole and well formed."""
    assert data == b"" or data.endswith(b"\n"), \
        f"{where} ends in part of a line: {data[-80:]!r}"
    lines = []
    for l in data.split(b"\n")[:-1]:
        if NOTICE_RE.match(l):
            continue
        assert LINE_RE.match(l), f"{where}: a torn or broken line: {l!r}"
        lines.append(l)
    return lines


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def small_fs():
    """A 64 KiB tmpfs, unmounted at the end."""
    if shutil.which("mount") is None:
        pytest.skip("mount(8) is not installed")
    mnt = tempfile.mkdtemp(prefix="echod-fullfs-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755",
                        "tmpfs", mnt], capture_output=True, text=True)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", mnt], capture_output=True)
    os.rmdir(mnt)


@need_root
def test_full_file_system_never_tears_a_line(echod_factory, tmp_path,
                                             small_fs):
    # Fill the 64 KiB file system: short writes stop mid-line and ENOSPC
    # follows. Then rotate as logrotate does (rename, reopen) and free the
    # space. The old file must end on a whole line and the new one must
    # start with one: the rest of a torn line used to open the new file.
    access = os.path.join(small_fs, "access.log")
    e = Logged(echod_factory, str(tmp_path), access)
    # About 90 KB of lines: the file system takes some 64 KB of them, the
    # rest wait in the 64 KB buffer.
    e.connections(700)
    assert wait_for(lambda: e.metrics()["write_errors"] > 0), e.metrics()
    os.rename(access, access + ".1")
    e.d.signal(signal.SIGUSR1)
    assert wait_for(lambda: os.path.exists(access))
    assert wait_for(lambda: e.metrics()["reopens"] >= 1)
    old = read(access + ".1")
    os.unlink(access + ".1")                # the space comes back
    e.connections(100)
    m = e.settled()
    new = read(access)
    got = len(whole_lines(old, "the rotated file")) + \
        len(whole_lines(new, "the new file"))
    assert got == m["lines_written"], (got, m)
    assert e.d.stop() == 0


def test_fifo_with_a_reader_gets_every_line(echod_factory, tmp_path):
    fifo = str(tmp_path / "access.fifo")
    os.mkfifo(fifo)
    rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    got = bytearray()
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            try:
                b = os.read(rd, 1 << 16)
                got.extend(b)
                if not b:
                    time.sleep(0.01)
            except BlockingIOError:
                time.sleep(0.005)

    t = threading.Thread(target=drain)
    t.start()
    try:
        e = Logged(echod_factory, str(tmp_path), fifo, buffer="1m")
        e.connections(2000)
        m = e.settled()
        time.sleep(0.2)
        assert m["lines_dropped"] == 0
        assert len(whole_lines(bytes(got), "the FIFO")) == e.produced
        assert e.d.stop() == 0
    finally:
        stop.set()
        t.join()
        os.close(rd)


def drain_fifo(fd):
    """Everything readable from fd now."""
    got = b""
    while True:
        try:
            b = os.read(fd, 1 << 16)
        except BlockingIOError:
            break
        if not b:
            break
        got += b
    return got


def test_fifo_whose_reader_goes_away(echod_factory, tmp_path):
    # The reader reads a little, then goes away: writes fail (EPIPE), a
    # reopen finds no reader (ENXIO) and keeps retrying. When a new reader
    # comes and echod is told to reopen, what was kept reaches it, starting
    # on a whole line (never the rest of a line the old reader got part
    # of), and every line is accounted for.
    fifo = str(tmp_path / "access.fifo")
    os.mkfifo(fifo)
    rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    e = Logged(echod_factory, str(tmp_path), fifo, error_log="stderr",
               buffer="1m")
    e.connections(100)
    time.sleep(0.3)
    first = drain_fifo(rd)
    os.close(rd)
    e.connections(700)          # more than the pipe: writes fail now
    assert wait_for(lambda: e.metrics()["write_errors"] > 0), e.metrics()
    # A failed write waits for its retry time without spinning, with far
    # more than a batch queued behind it.
    e.connections(200)
    t0, cpu0 = time.monotonic(), e.d.cpu_ticks()
    time.sleep(1.0)
    cpu = (e.d.cpu_ticks() - cpu0) / os.sysconf("SC_CLK_TCK")
    wall = time.monotonic() - t0
    assert cpu < 0.25 * wall, f"{cpu:.2f} CPU-s in {wall:.1f} s"
    e.d.signal(signal.SIGUSR1)
    assert wait_for(lambda: "log reopen" in e.d.stderr()), e.d.stderr()
    assert echo_roundtrip(e.d.port, b"still echoing") == b"still echoing"
    e.produced += 1
    rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    got = bytearray()
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            got.extend(drain_fifo(rd))
            time.sleep(0.005)

    t = threading.Thread(target=drain)
    t.start()
    try:
        e.d.signal(signal.SIGUSR1)
        assert wait_for(lambda: e.metrics()["reopens"] >= 1), e.metrics()
        m = e.settled()
        time.sleep(0.2)
    finally:
        stop.set()
        t.join()
        os.close(rd)
    got = bytes(got) + b""
    # The first reader may have left in the middle of a write: its last
    # line may be cut, the others are whole.
    head = first[:first.rfind(b"\n") + 1]
    n1 = len(whole_lines(head, "what the first reader got"))
    n2 = len(whole_lines(got, "what the second reader got"))
    assert n1 + n2 + (head != first) >= m["lines_written"], (n1, n2, m)
    assert e.d.stop() == 0


def test_deleted_log_file(echod_factory, tmp_path):
    # Deleted under echod: lines go on into the deleted inode (counted as
    # written) until a reopen makes a new file, which starts on a line.
    access = str(tmp_path / "access.log")
    e = Logged(echod_factory, str(tmp_path), access)
    e.connections(200)
    e.settled()
    os.unlink(access)
    e.connections(200)
    e.settled()
    fd_before = e.fds()
    assert e.deleted_fds()             # still writing the deleted inode
    e.d.signal(signal.SIGUSR1)
    assert wait_for(lambda: os.path.exists(access))
    e.connections(200)
    m = e.settled()
    assert m["lines_dropped"] == 0
    lines = whole_lines(read(access), "the new file")
    assert 200 <= len(lines) <= 200 + 2
    # The deleted file's fd is closed. The admin connections settled()
    # polled with are released on the endpoint's next tick (100 ms), so a
    # count taken at once may still hold one: wait for it.
    assert not e.deleted_fds(), e.deleted_fds()
    assert wait_for(lambda: e.fds() <= fd_before, timeout=2 * SLOW), \
        (fd_before, e.fds())
    assert e.d.stop() == 0


def test_reopen_storm_on_a_regular_file(echod_factory, tmp_path):
    # A hundred rotations under load: every line in exactly one file,
    # whole, and descriptors back where they were.
    access = str(tmp_path / "access.log")
    e = Logged(echod_factory, str(tmp_path), access, buffer="1m")
    fd0, th0 = e.fds(), e.threads()
    stop = threading.Event()
    done = []

    def load():
        while not stop.is_set():
            e.connections(20, threads=2)
            done.append(20)

    t = threading.Thread(target=load)
    t.start()
    rotated = []
    try:
        for i in range(100):
            old = f"{access}.{i}"
            if os.path.exists(access):
                os.rename(access, old)
                rotated.append(old)
            e.d.signal(signal.SIGUSR1)
            time.sleep(0.02)
    finally:
        stop.set()
        t.join()
    m = e.settled()
    assert m["lines_dropped"] == 0
    total = sum(len(whole_lines(read(p), p)) for p in rotated + [access]
                if os.path.exists(p))
    assert total == m["lines_written"] == e.produced
    # The admin connections settled() polled with are released on the
    # endpoint's next tick (100 ms) once evhttp lets go, and by the
    # endpoint's 5 s deadline whatever happened to them.
    assert wait_for(lambda: e.fds() <= fd0 + 1, timeout=6), \
        (fd0, e.fds(), e.fd_targets())
    assert e.threads() <= th0 + 32      # glibc's aio pool, bounded
    assert e.d.stop() == 0


def test_reopen_storm_on_a_stalled_fifo(echod_factory, tmp_path):
    # A FIFO whose reader never reads: a write is stuck in it for good.
    # Thirty SIGUSR1 used to leave one more stuck write each (an fd and a
    # glibc aio helper thread): 25 -> 66 descriptors, 4 -> 23 threads, and
    # once the helpers were all blocked, the event log (a regular file)
    # stalled too. At most one write is left behind per sink now.
    fifo = str(tmp_path / "access.fifo")
    os.mkfifo(fifo)
    rd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        e = Logged(echod_factory, str(tmp_path), fifo)
        e.connections(1500)                 # more than the pipe holds
        time.sleep(0.5)
        fd0, th0 = e.fds(), e.threads()
        for i in range(30):
            e.d.signal(signal.SIGUSR1)
            time.sleep(0.25 * SLOW)         # past the 200 ms stall bound
            e.connections(10, threads=1)
        fds, ths = e.fds(), e.threads()
        assert fds <= fd0 + 2, (fd0, fds)
        assert ths <= th0 + 2, (th0, ths)
        # The event log was not held up: all 30 reopens are in it, and it
        # dropped nothing.
        ev = wait_for(lambda: read(e.error_log).count(
            b"reopening log files") >= 30 and read(e.error_log), timeout=10)
        assert ev, read(e.error_log)[-2000:]
        # Sink troubles go to standard error (the event log may be the
        # very sink in trouble).
        assert "reopen deferred" in e.d.stderr(), e.d.stderr()
        em = e.metrics("error_log")
        assert em["lines_dropped"] == 0, em
        assert ev.endswith(b"\n")
        # The reader reads at last: the stuck writes end, and every access
        # line is written or counted as dropped.
        stop = threading.Event()

        def drain():
            while not stop.is_set():
                try:
                    if not os.read(rd, 1 << 16):
                        time.sleep(0.01)
                except BlockingIOError:
                    time.sleep(0.005)

        t = threading.Thread(target=drain)
        t.start()
        try:
            e.settled()
            assert wait_for(lambda: e.fds() <= fd0), (fd0, e.fds())
        finally:
            stop.set()
            t.join()
        assert e.d.stop() == 0
    finally:
        os.close(rd)
