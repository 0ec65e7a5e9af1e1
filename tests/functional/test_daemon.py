"""test_daemon.py: echod as a daemon (issue 6): `echod -d` returns only once
the daemon serves and fails with the daemon's own message otherwise; the
pid file's life cycle (written, second instance refused, stale file
replaced, removed at exit); `echod -s reopen|stop|quit|reload`; the
privilege drop to nobody (as root) with reopen still working; systemd's
notify protocol and socket activation; the man pages render cleanly.
Loopback only; every wait has a deadline."""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import ECHOD, ROOT, SLOW, Echod, free_port, wait_for
from daemon_util import (NotifySocket, Setup, activation_cmd, alive, comm,
                         dead_pid, kill_pid, listening_socket, read_pid,
                         run, wait_gone)
from echod_util import connect, read_to_eof, roundtrip

pytestmark = pytest.mark.skipif(not os.access(ECHOD, os.X_OK),
                                reason=f"{ECHOD} is not built")

need_root = pytest.mark.skipif(os.geteuid() != 0,
                               reason="privilege drop needs root")


@pytest.fixture
def daemons():
    """Pid files whose daemons are killed at teardown if still running."""
    files = []
    yield files
    for path in files:
        kill_pid(read_pid(path))


@pytest.fixture
def procs():
    """Foreground echods (conftest.Echod) killed at teardown."""
    started = []
    yield started
    for d in started:
        d.kill()


def start_fg(procs, setup, env=None, args=()):
    """echod -f on setup's config, waiting until it listens."""
    d = Echod(args=["-c", setup.conf, *args], env=env, port=setup.port,
              tmpdir=setup.tmpdir)
    procs.append(d)
    return d


# --- detaching ------------------------------------------------------------

def test_daemon_start_returns_only_when_serving(daemons):
    st = Setup()
    daemons.append(st.pid_file)
    r = run("-d", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    # No waiting: the parent exits only once the daemon serves.
    with connect(st.port) as s:
        assert roundtrip(s, b"right away")
    pid = st.pid()
    assert pid is not None and alive(pid)
    assert comm(pid).startswith("echod")
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[3]) == pid, "the daemon leads its own session"
    assert os.readlink(f"/proc/{pid}/cwd") == "/"
    for fd in (0, 1, 2):
        assert os.readlink(f"/proc/{pid}/fd/{fd}") == "/dev/null"
    r = run("-s", "stop", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    assert not alive(pid)
    assert not os.path.exists(st.pid_file), "pid file left behind"


def test_daemon_yes_in_the_file_and_f_overrides(daemons, procs):
    st = Setup(server={"daemon": "yes"})
    daemons.append(st.pid_file)
    r = run("-c", st.conf)
    assert r.returncode == 0, r.stderr
    with connect(st.port) as s:
        assert roundtrip(s)
    pid = st.pid()
    assert run("-s", "stop", "-c", st.conf).returncode == 0
    assert wait_gone(pid)
    # -f: the same file, but echod stays in the foreground.
    d = start_fg(procs, st)
    assert wait_for(st.pid) == d.pid
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_daemon_failed_start_port_taken():
    st = Setup()
    with listening_socket(st.port):
        r = run("-d", "-c", st.conf)
    assert r.returncode == 1
    assert "Address already in use" in r.stderr
    assert "Sanitizer" not in r.stderr
    assert f"127.0.0.1:{st.port}" in r.stderr
    assert not os.path.exists(st.pid_file)


def test_daemon_failure_after_detaching_reaches_the_caller():
    # The pid file is written by the detached child: its error must come
    # back through the parent, with a non-zero exit.
    st = Setup(server={"pid_file": "/nonexistent-dir/echod.pid"})
    r = run("-d", "-c", st.conf)
    assert r.returncode != 0
    assert "/nonexistent-dir/echod.pid" in r.stderr
    assert "No such file or directory" in r.stderr
    # Nothing is left serving.
    with pytest.raises(OSError):
        connect(st.port, timeout=1).close()


@need_root
def test_daemon_failed_privilege_drop_reaches_the_caller():
    st = Setup(server={"user": "no-such-user-echod"})
    r = run("-d", "-c", st.conf)
    assert r.returncode != 0
    assert "no-such-user-echod" in r.stderr and "no such user" in r.stderr
    assert not os.path.exists(st.pid_file)


# --- pid file ---------------------------------------------------------------

def test_second_instance_is_refused(daemons):
    st = Setup()
    daemons.append(st.pid_file)
    assert run("-d", "-c", st.conf).returncode == 0
    pid = st.pid()
    # Another port, the same pid file.
    other = Setup(server={"pid_file": st.pid_file})
    r = run("-d", "-c", other.conf)
    assert r.returncode != 0
    assert f"already running as pid {pid}" in r.stderr
    assert st.pid() == pid, "the pid file was overwritten"
    with connect(st.port) as s:
        assert roundtrip(s)
    with pytest.raises(OSError):
        connect(other.port, timeout=1).close()
    assert run("-s", "stop", "-c", st.conf).returncode == 0
    assert not os.path.exists(st.pid_file)


def echod_pids_using(port):
    """Pids of echod processes listening on 127.0.0.1:port (via /proc)."""
    want = f"0100007F:{port:04X}"
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == want and fields[3] == "0A":
                inodes.add(fields[9])
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if not comm(int(pid)).startswith("echod"):
                continue
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    pids.append(int(pid))
                    break
        except OSError:
            continue
    return pids


def test_parallel_starts_with_one_pid_file_run_one_daemon(daemons):
    # Six `echod -d` at once, each on its own port, one pid file: exactly
    # one may win, the others must say that echod is already running. The
    # check-then-write used to run 1 to 3 of them (the others unreachable
    # by -s). Five rounds, as the race needs a few tries to show.
    for rnd in range(5):
        setups = [Setup()]
        for _ in range(5):
            setups.append(Setup(server={"pid_file": setups[0].pid_file}))
        daemons.append(setups[0].pid_file)
        cmds = [[ECHOD, "-d", "-c", st.conf] for st in setups]
        ps = [subprocess.Popen(c, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for c in cmds]
        outs = [p.communicate(timeout=30 * SLOW) for p in ps]
        ok = [i for i, p in enumerate(ps) if p.returncode == 0]
        running = [pid for st in setups for pid in echod_pids_using(st.port)]
        pid = setups[0].pid()
        # Leave nothing running, whatever the outcome.
        for extra in running:
            if extra != pid:
                kill_pid(extra)
        assert len(ok) == 1, f"round {rnd}: {len(ok)} starts succeeded: {outs}"
        assert running == [pid], f"round {rnd}: daemons {running}, pid file {pid}"
        for i, (out, err) in enumerate(outs):
            if i not in ok:
                assert "already running" in err, err
        r = run("-s", "stop", "-c", setups[0].conf)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(setups[0].pid_file)
        assert not os.path.exists(setups[0].pid_file + ".lock")


@pytest.mark.parametrize("content", ["dead", "not echod", "garbage"])
def test_stale_pid_file_is_replaced(daemons, content):
    st = Setup()
    daemons.append(st.pid_file)
    if content == "dead":
        text = f"{dead_pid()}\n"
    elif content == "not echod":
        text = f"{os.getpid()}\n"       # alive, but this is pytest
    else:
        text = "not a pid\n"
    with open(st.pid_file, "w") as f:
        f.write(text)
    r = run("-d", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    pid = st.pid()
    assert pid not in (None, os.getpid()) and alive(pid)
    assert comm(pid).startswith("echod")
    assert run("-s", "stop", "-c", st.conf).returncode == 0
    assert not os.path.exists(st.pid_file)
    assert alive(os.getpid())


def test_relative_paths_are_taken_from_where_echod_started(daemons):
    # The daemon runs in /, but a relative pid_file and -c still mean what
    # they meant in the directory echod was started from.
    st = Setup(server={"pid_file": "echod.pid"})
    daemons.append(st.pid_file)
    r = run("-d", "-c", "echod.conf", cwd=st.tmpdir)
    assert r.returncode == 0, r.stderr
    pid = st.pid()
    assert pid is not None and alive(pid)
    assert run("-s", "reload", "-c", "echod.conf", cwd=st.tmpdir).returncode == 0
    with connect(st.port) as s:
        assert roundtrip(s)
    r = run("-s", "stop", "-c", "echod.conf", cwd=st.tmpdir)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(st.pid_file)


def test_pid_file_written_atomically_and_removed_at_exit(procs):
    st = Setup()
    d = start_fg(procs, st)
    assert wait_for(st.pid) == d.pid
    with open(st.pid_file) as f:
        assert f.read() == f"{d.pid}\n"
    assert [n for n in os.listdir(st.tmpdir) if n.endswith(".tmp")] == []
    assert d.stop(signal.SIGINT) == 0
    assert not os.path.exists(st.pid_file)


# --- echod -s ------------------------------------------------------------------

def test_s_stop_waits_until_gone(procs):
    st = Setup()
    d = start_fg(procs, st)
    wait_for(st.pid)
    s = connect(st.port)
    assert roundtrip(s)
    r = run("-s", "stop", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    assert f"pid {d.pid} stopped" in r.stdout
    # The process is gone when -s returns (here: a zombie until reaped).
    assert not alive(d.pid)
    assert d.proc.wait(timeout=5 * SLOW) == 0
    assert read_to_eof(s) == b""
    s.close()
    assert not os.path.exists(st.pid_file)


def test_s_quit_drains_then_reports(procs):
    st = Setup(server={"shutdown_timeout": "1s"})
    d = start_fg(procs, st)
    wait_for(st.pid)
    s = connect(st.port)
    assert roundtrip(s)
    t0 = time.monotonic()
    r = run("-s", "quit", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    assert f"pid {d.pid} stopped" in r.stdout
    # The idle connection was given shutdown_timeout before being closed.
    assert time.monotonic() - t0 >= 0.9
    assert read_to_eof(s) == b""
    s.close()
    assert d.proc.wait(timeout=5 * SLOW) == 0


def test_s_reopen_rotates_the_log(procs):
    st = Setup()
    st.write(sections={"log": {"error_log": f"{st.tmpdir}/error.log"}})
    log = os.path.join(st.tmpdir, "error.log")
    d = start_fg(procs, st)
    wait_for(st.pid)
    assert wait_for(lambda: os.path.exists(log))
    os.rename(log, log + ".1")
    r = run("-s", "reopen", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    assert f"reopen sent to pid {d.pid}" in r.stdout
    assert wait_for(lambda: os.path.exists(log)), "no new log after reopen"
    assert d.proc.poll() is None
    assert d.stop() == 0


def test_s_reload_delivers_hup(procs):
    st = Setup()
    d = start_fg(procs, st)
    wait_for(st.pid)
    r = run("-s", "reload", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    assert f"reload sent to pid {d.pid}" in r.stdout
    # HUP's default action would have killed it: it was handled.
    time.sleep(0.3)
    assert d.proc.poll() is None
    with connect(st.port) as s:
        assert roundtrip(s)
    assert d.stop() == 0


def test_s_without_a_running_echod():
    st = Setup()
    r = run("-s", "stop", "-c", st.conf)
    assert r.returncode != 0
    assert "does not exist" in r.stderr and st.pid_file in r.stderr
    with open(st.pid_file, "w") as f:
        f.write(f"{dead_pid()}\n")
    r = run("-s", "reopen", "-c", st.conf)
    assert r.returncode != 0 and "no process" in r.stderr
    r = run("-s", "bogus", "-c", st.conf)
    assert r.returncode != 0 and "unknown signal" in r.stderr
    nopid = os.path.join(st.tmpdir, "nopid.conf")
    with open(nopid, "w") as f:
        f.write(f"[listen a]\naddress = 127.0.0.1:{st.port}\n")
    r = run("-s", "stop", "-c", nopid)
    assert r.returncode != 0 and "pid_file" in r.stderr


def test_s_works_when_the_config_has_other_errors(procs):
    # logrotate's `echod -s reopen` must reach echod after someone added a
    # bad key to the file it runs from: -s needs only pid_file, and says
    # that the file has errors.
    st = Setup()
    log = os.path.join(st.tmpdir, "error.log")
    st.write(sections={"log": {"error_log": log}})
    d = start_fg(procs, st)
    assert wait_for(st.pid) == d.pid
    assert wait_for(lambda: os.path.exists(log))
    with open(st.conf, "a") as f:
        f.write("\n[limits]\nmax_connections = lots\n")
    os.rename(log, log + ".1")
    r = run("-s", "reopen", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    assert f"reopen sent to pid {d.pid}" in r.stdout
    assert "has errors" in r.stderr and "max_connections" in r.stderr
    assert wait_for(lambda: os.path.exists(log)), "no new log after reopen"
    # A file so broken that it has no pid_file: -p names it.
    broken = os.path.join(st.tmpdir, "broken.conf")
    with open(broken, "w") as f:
        f.write("[server\nmax_connections = lots\n")
    r = run("-s", "reload", "-c", broken)
    assert r.returncode != 0 and "pid_file" in r.stderr
    r = run("-s", "reload", "-c", broken, "-p", st.pid_file)
    assert r.returncode == 0, r.stderr
    r = run("-s", "stop", "-p", st.pid_file)
    assert r.returncode == 0, r.stderr
    assert f"pid {d.pid} stopped" in r.stdout
    r = run("-p", st.pid_file)
    assert r.returncode == 2 and "-p goes with -s" in r.stderr


def test_s_never_signals_a_process_that_is_not_echod():
    st = Setup()
    other = subprocess.Popen(["sleep", "30"])
    try:
        with open(st.pid_file, "w") as f:
            f.write(f"{other.pid}\n")
        r = run("-s", "stop", "-c", st.conf)
        assert r.returncode != 0 and "is not echod" in r.stderr
        time.sleep(0.1)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


# --- privilege drop ------------------------------------------------------------

def ids(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups"):
                out[k] = v.split()
    return out


@need_root
def test_privilege_drop_to_nobody_and_reopen_still_works(daemons):
    nobody = pwd.getpwnam("nobody")
    st = Setup()
    # What must be writable by the user: the log directory (reopen creates
    # the new files) and the pid file's directory (removed at exit), as
    # systemd's LogsDirectory= and RuntimeDirectory= provide.
    os.chmod(st.tmpdir, 0o755)
    logdir = os.path.join(st.tmpdir, "log")
    rundir = os.path.join(st.tmpdir, "run")
    for d in (logdir, rundir):
        os.mkdir(d)
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
    st.pid_file = os.path.join(rundir, "echod.pid")
    st.write(server={"user": "nobody", "pid_file": st.pid_file},
             sections={"log": {"error_log": f"{logdir}/error.log",
                               "access_log": f"{logdir}/access.log"}})
    daemons.append(st.pid_file)
    r = run("-d", "-c", st.conf)
    assert r.returncode == 0, r.stderr
    pid = st.pid()
    got = ids(pid)
    assert got["Uid"] == [str(nobody.pw_uid)] * 4
    assert got["Gid"] == [str(nobody.pw_gid)] * 4
    assert "0" not in got.get("Groups", [])
    with connect(st.port) as s:
        assert roundtrip(s)
    access = os.path.join(logdir, "access.log")
    error = os.path.join(logdir, "error.log")
    assert wait_for(lambda: os.path.exists(access) and os.path.getsize(access))
    os.rename(access, access + ".1")
    os.rename(error, error + ".1")
    assert run("-s", "reopen", "-c", st.conf).returncode == 0
    for path in (access, error):
        assert wait_for(lambda: os.path.exists(path)), \
            f"reopen of {path} failed as nobody"
        assert os.stat(path).st_uid == nobody.pw_uid
    with connect(st.port) as s:
        assert roundtrip(s)
    assert wait_for(lambda: os.path.getsize(access) > 0), \
        "no access line in the reopened log"
    assert run("-s", "stop", "-c", st.conf).returncode == 0
    assert wait_gone(pid)
    assert not os.path.exists(st.pid_file)


@need_root
def test_privilege_drop_numeric_user_and_group(procs):
    st = Setup(server={"user": "65534", "group": "65534"})
    d = start_fg(procs, st)
    with connect(st.port) as s:
        assert roundtrip(s)     # serving: the drop is done
    got = ids(d.pid)
    assert got["Uid"] == ["65534"] * 4 and got["Gid"] == ["65534"] * 4
    assert got.get("Groups", []) in ([], ["65534"])
    assert d.stop() == 0


# --- systemd -------------------------------------------------------------------

@pytest.mark.parametrize("abstract", [False, True], ids=["path", "abstract"])
def test_notify_ready_and_stopping(procs, abstract):
    st = Setup()
    ns = NotifySocket(st.tmpdir, abstract=abstract)
    try:
        d = start_fg(procs, st, env={"NOTIFY_SOCKET": ns.env})
        assert ns.wait("READY=1"), "no READY=1"
        with connect(st.port) as s:
            assert roundtrip(s)
        d.signal(signal.SIGTERM)
        assert ns.wait("STOPPING=1"), f"no STOPPING=1 in {ns.messages}"
        assert d.proc.wait(timeout=10 * SLOW) == 0
    finally:
        ns.close()


def test_notify_from_a_daemon_names_its_main_pid(daemons):
    st = Setup()
    daemons.append(st.pid_file)
    ns = NotifySocket(st.tmpdir)
    try:
        r = run("-d", "-c", st.conf, env={"NOTIFY_SOCKET": ns.env})
        assert r.returncode == 0, r.stderr
        m = ns.wait("READY=1")
        assert m and f"MAINPID={st.pid()}" in m.split("\n")
        assert run("-s", "quit", "-c", st.conf).returncode == 0
        assert ns.wait("STOPPING=1")
    finally:
        ns.close()


def start_activated(procs, setup, socks, env=None):
    full = dict(os.environ)
    full.update(env or {})
    stderr = open(os.path.join(setup.tmpdir, "stderr"), "wb")
    p = subprocess.Popen(activation_cmd(socks, ["-f", "-c", setup.conf]),
                         pass_fds=[s.fileno() for s in socks], env=full,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=stderr)
    stderr.close()

    class Proc:
        proc = p

        def kill(self):
            if p.poll() is None:
                p.kill()
                p.wait()
    procs.append(Proc())
    return p


def stderr_of(setup):
    with open(os.path.join(setup.tmpdir, "stderr")) as f:
        return f.read()


def test_socket_activation_by_name(procs):
    st = Setup()
    own_port = free_port()
    st.write(listeners={"a": {"address": f"127.0.0.1:{own_port}"},
                        "web": {"address": "127.0.0.1:1"}})
    with listening_socket() as ls:
        port = ls.getsockname()[1]
        p = start_activated(procs, st, [ls],
                            env={"LISTEN_FDNAMES": "web"})
        # The parent's copy stays open: if echod did not accept on it, the
        # connection would queue unanswered and the roundtrip time out.
        assert wait_for(st.pid) == p.pid, stderr_of(st)
        with connect(port) as s:
            assert roundtrip(s, b"activated")
        # [listen a] was not passed in: echod bound it itself.
        with connect(own_port) as s:
            assert roundtrip(s)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10 * SLOW) == 0, stderr_of(st)


def test_socket_activation_in_order_without_names(procs):
    st = Setup()
    st.write(listeners={"one": {"address": "127.0.0.1:1"},
                        "two": {"address": "127.0.0.1:2", "mode": "discard"}})
    with listening_socket() as l1, listening_socket() as l2:
        p = start_activated(procs, st, [l1, l2],
                            env={"LISTEN_FDNAMES": "echod.socket:echod.socket"})
        assert wait_for(st.pid) == p.pid, stderr_of(st)
        with connect(l1.getsockname()[1]) as s:
            assert roundtrip(s)
        with connect(l2.getsockname()[1]) as s:
            s.sendall(b"dropped")
            s.shutdown(socket.SHUT_WR)
            assert read_to_eof(s) == b""
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10 * SLOW) == 0


def test_socket_activation_unknown_name_is_an_error(procs):
    st = Setup()
    st.write(listeners={"a": {"address": "127.0.0.1:1"}})
    with listening_socket() as l1, listening_socket() as l2:
        p = start_activated(procs, st, [l1, l2],
                            env={"LISTEN_FDNAMES": "a:nosuch"})
        assert p.wait(timeout=10 * SLOW) != 0
    err = stderr_of(st)
    assert "nosuch" in err and "[listen nosuch]" in err


def test_listen_pid_of_another_process_is_ignored(procs):
    st = Setup()
    d = start_fg(procs, st, env={"LISTEN_PID": "1", "LISTEN_FDS": "1"})
    with connect(st.port) as s:
        assert roundtrip(s)
    assert d.stop() == 0


# --- man pages -------------------------------------------------------------------

@pytest.mark.skipif(shutil.which("man") is None, reason="no man(1)")
@pytest.mark.parametrize("page", ["echod.8", "echod.conf.5"])
def test_man_page_renders_without_warnings(page):
    path = os.path.join(ROOT, "doc", page)
    r = subprocess.run(["man", "--warnings", "-l", path],
                       env={**os.environ, "MANWIDTH": "80",
                            "MAN_KEEP_FORMATTING": "0"},
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    assert "echod" in r.stdout and len(r.stdout.splitlines()) > 50
