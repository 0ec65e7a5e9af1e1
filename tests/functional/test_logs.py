"""echod's log sinks as a user sees them: one access-log line per closed
connection in both formats, rotation (rename + SIGUSR1) under load that
loses no line, SIGTERM that writes everything out, and a stalled log (a FIFO
nobody reads) that neither stalls echoing nor drops lines silently."""

import json
import os
import re
import signal
import threading
import time

import pytest

from conftest import ECHOD, SLOW, echo_roundtrip, wait_for

pytestmark = pytest.mark.skipif(not os.path.exists(ECHOD),
                                reason="echod is not built")

CONFIG = """
[server]
workers = {workers}
shutdown_timeout = {shutdown}

[listen main]
address = 127.0.0.1:{{port}}

[log]
error_log = {error_log}
level = info
access_log = {access_log}
access_format = {fmt}
buffer = {buffer}
"""

# Echod's readiness check (wait_port) is one connection that closes at once.
PROBES = 1

TEXT_RE = re.compile(
    r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z listener=main '
    r'peer=127\.0\.0\.1:(\d+) duration=\d+\.\d{6} bytes_in=(\d+) '
    r'bytes_out=(\d+) reason="([a-z ]+)"$')


def config(tmp, access_log, fmt="text", error_log=None, buffer="4m",
           workers=2, shutdown="5s"):
    return CONFIG.format(workers=workers, shutdown=shutdown,
                         error_log=error_log or os.path.join(tmp, "error.log"),
                         access_log=access_log, fmt=fmt, buffer=buffer)


def roundtrip(port, payload):
    assert echo_roundtrip(port, payload) == payload


def load(port, n, threads=4, stop=None):
    """n echo round trips spread over threads (or until stop is set).
    Returns the payload sizes sent, one per connection completed."""
    sizes = []
    lock = threading.Lock()
    errors = []

    def run(k):
        mine = []
        try:
            for i in range(k):
                if stop is not None and stop.is_set():
                    break
                size = 1 + (i * 7919) % 300
                roundtrip(port, b"%d " % i + b"x" * size)
                mine.append(len(b"%d " % i) + size)
        except Exception as e:  # reported below
            errors.append(e)
        with lock:
            sizes.extend(mine)

    ts = [threading.Thread(target=run, args=(n // threads + (i < n % threads),))
          for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors
    return sizes


def read_lines(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data == b"" or data.endswith(b"\n"), "a partial line in " + path
    return [l.decode() for l in data.split(b"\n")[:-1]]


def check_access(lines, fmt):
    """Parse every line; returns the (bytes_in, bytes_out) pairs."""
    out = []
    for l in lines:
        if fmt == "json":
            r = json.loads(l)
            assert r["listener"] == "main"
            assert r["peer"] == "127.0.0.1"
            assert 0 < r["port"] < 65536
            assert r["duration_us"] >= 0
            assert r["reason"] == "client closed"
            assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$",
                            r["time"])
            assert "tls_version" not in r
            out.append((r["bytes_in"], r["bytes_out"]))
        else:
            m = TEXT_RE.match(l)
            assert m, l
            assert m.group(4) == "client closed"
            out.append((int(m.group(2)), int(m.group(3))))
    return out


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_one_line_per_connection(echod_factory, tmp_path, fmt):
    access = str(tmp_path / "access.log")
    d = echod_factory(config(str(tmp_path), access, fmt=fmt),
                      tmpdir=str(tmp_path))
    sizes = load(d.port, 300)
    assert d.stop() == 0
    lines = read_lines(access)
    # One more than the load: the fixture's readiness probe connects once.
    assert len(lines) == 300 + PROBES
    pairs = check_access(lines, fmt)
    assert sorted(p[0] for p in pairs if p[0] > 0) == sorted(sizes)
    assert all(a == b for a, b in pairs)
    # The event log went to its file, through its own sink.
    ev = read_lines(str(tmp_path / "error.log"))
    assert any("notice: stopping" in l or "stopped" in l for l in ev)


def test_rotation_under_load_loses_no_line(echod_factory, tmp_path):
    access = str(tmp_path / "access.log")
    d = echod_factory(config(str(tmp_path), access), tmpdir=str(tmp_path))
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.update(
        sizes=load(d.port, 100000, threads=4, stop=stop)))
    t.start()
    rotated = []
    try:
        for i in range(1, 6):
            # Wait until this file has seen traffic, then rotate it.
            deadline = time.monotonic() + 10 * SLOW
            while (not os.path.exists(access) or
                   os.path.getsize(access) == 0) and \
                    time.monotonic() < deadline:
                time.sleep(0.01)
            old = "%s.%d" % (access, i)
            os.rename(access, old)
            rotated.append(old)
            d.signal(signal.SIGUSR1)
            time.sleep(0.05)
    finally:
        time.sleep(0.1)
        stop.set()
        t.join()
    assert d.stop() == 0
    total = 0
    for path in rotated + [access]:
        if not os.path.exists(path):
            continue
        lines = read_lines(path)
        check_access(lines, "text")
        total += len(lines)
    assert total == len(result["sizes"]) + PROBES
    # Every rotated file holds lines: they were split between files.
    for path in rotated:
        assert len(read_lines(path)) > 0, path


def test_sigterm_writes_everything(echod_factory, tmp_path):
    access = str(tmp_path / "access.log")
    d = echod_factory(config(str(tmp_path), access, fmt="json",
                             workers=4), tmpdir=str(tmp_path))
    sizes = load(d.port, 2000, threads=8)
    # Straight away: lines still in worker buffers and the sink must land.
    assert d.stop() == 0
    lines = read_lines(access)
    assert len(sizes) == 2000
    assert len(lines) == 2000 + PROBES
    check_access(lines, "json")


def test_stalled_fifo_does_not_stall_echo(echod_factory, tmp_path):
    fifo = str(tmp_path / "access.fifo")
    os.mkfifo(fifo)
    # A reader that never reads: echod's open succeeds, its writes stall
    # once the pipe is full.
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        d = echod_factory(config(str(tmp_path), fifo, buffer="64k",
                                 error_log="stderr", shutdown="1s"),
                          tmpdir=str(tmp_path))
        # Far more than the pipe (64k) and the buffer (64k) can hold.
        n = 3000
        sizes = load(d.port, n, threads=4)
        assert len(sizes) == n
        # Still echoing after the log stalled.
        roundtrip(d.port, b"still here")
        assert d.stop() == 0
        err = d.stderr()
        dropped = [int(x) for x in
                   re.findall(r"(\d+) lines dropped \(buffer full\), "
                              r"(?:\d+) in all", err)]
        assert dropped, err
        in_all = [int(x) for x in re.findall(r"(\d+) in all", err)]
        assert 0 < max(in_all) <= n + PROBES
        # What reached the pipe is whole lines, none of them duplicated.
        data = b""
        while True:
            try:
                b = os.read(reader, 1 << 20)
            except BlockingIOError:
                break
            if not b:
                break
            data += b
        written = [l for l in data.split(b"\n")[:-1]
                   if b"lines dropped" not in l]
        assert len(set(written)) == len(written)
        assert len(written) + max(in_all) <= n + PROBES
    finally:
        os.close(reader)


def test_error_log_off(echod_factory, tmp_path):
    d = echod_factory(config(str(tmp_path), "off", error_log="off"),
                      tmpdir=str(tmp_path))
    load(d.port, 10)
    assert d.stop() == 0
    assert not os.path.exists(str(tmp_path / "error.log"))


@pytest.mark.parametrize("key", ["error_log", "access_log"])
def test_unopenable_log_is_a_startup_error(echod_factory, tmp_path, key):
    bad = str(tmp_path / "missing" / "x.log")
    kw = {"error_log": bad} if key == "error_log" else {"access_log": bad}
    kw.setdefault("access_log", "off")
    d = echod_factory(config(str(tmp_path), **kw), tmpdir=str(tmp_path),
                      wait=False)
    assert d.proc.wait(timeout=10 * SLOW) != 0
    assert key in d.stderr() and "x.log" in d.stderr()


def count_lines(path):
    if not os.path.exists(path):
        return 0
    with open(path, "rb") as f:
        return f.read().count(b"\n")


@pytest.mark.parametrize("how", ["reload", "reopen"])
def test_stalled_fifo_log_can_be_moved(echod_factory, tmp_path, how):
    """access_log on a FIFO whose reader stopped reading: a reload to a new
    path, or a rename plus SIGUSR1, moves the log anyway. The write stuck in
    the FIFO is left behind and said so; new lines reach the new file."""
    fifo = str(tmp_path / "access.fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        d = echod_factory(config(str(tmp_path), fifo, buffer="64k",
                                 error_log="stderr", shutdown="1s"),
                          tmpdir=str(tmp_path))
        # More than the pipe holds: a write is stuck in it for good.
        load(d.port, 1500, threads=4)
        if how == "reload":
            new = str(tmp_path / "new.log")
            with open(d.conf_path, "w") as f:
                f.write(config(str(tmp_path), new, buffer="64k",
                               error_log="stderr", shutdown="1s")
                        .replace("{port}", str(d.port)))
            d.signal(signal.SIGHUP)
            assert wait_for(lambda: "reload done" in d.stderr()), d.stderr()
        else:
            # The file takes the FIFO's name; the reopen finds it there.
            new = fifo
            tmp = str(tmp_path / "access.tmp")
            open(tmp, "w").close()
            os.rename(tmp, fifo)
            d.signal(signal.SIGUSR1)
        assert wait_for(lambda: "left with the stalled write" in d.stderr(),
                        timeout=10), d.stderr()
        # New connections' lines land in the new file within a few seconds,
        # and echoing never stopped.
        for _ in range(3):
            roundtrip(d.port, b"after the move")
        assert wait_for(lambda: count_lines(new) >= 3), d.stderr()
        lines = [l for l in read_lines(new) if "lines dropped" not in l]
        assert len(lines) >= 3
        check_access(lines, "text")
        before = count_lines(new)
        load(d.port, 50, threads=2)
        assert wait_for(lambda: count_lines(new) >= before + 50), d.stderr()
        assert d.stop() == 0
        # The stalled write's lines are counted, in the new file too.
        lines = read_lines(new)
        assert any("lines dropped" in l for l in lines)
        check_access([l for l in lines if "lines dropped" not in l], "text")
    finally:
        os.close(reader)


def test_turning_off_a_stalled_log(echod_factory, tmp_path):
    """A reload that turns off an access log stuck on a FIFO neither blocks
    nor loses count: echod keeps echoing and accepting, reports what it
    left behind, and exits cleanly."""
    fifo = str(tmp_path / "access.fifo")
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        d = echod_factory(config(str(tmp_path), fifo, buffer="64k",
                                 error_log="stderr", shutdown="1s"),
                          tmpdir=str(tmp_path))
        load(d.port, 1500, threads=4)
        with open(d.conf_path, "w") as f:
            f.write(config(str(tmp_path), "off", error_log="stderr",
                           shutdown="1s").replace("{port}", str(d.port)))
        d.signal(signal.SIGHUP)
        assert wait_for(lambda: "reload done" in d.stderr()), d.stderr()
        load(d.port, 50, threads=2)
        assert wait_for(lambda: "lines not written (log turned off)" in
                        d.stderr(), timeout=10), d.stderr()
        assert d.stop() == 0
    finally:
        os.close(reader)
