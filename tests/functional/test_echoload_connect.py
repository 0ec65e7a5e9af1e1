"""Functional tests of echoload's connection phase, source addresses and
limits: the counts by outcome against a server that cannot take every
connection, --source, --connect-rate, the descriptor limit, and no request
timed before the phase is over. Counts stay small; the large ones are in
bench/scale.sh."""

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time

import pytest

from conftest import ECHOLOAD, SLOW, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "echoload_servers.py")


# EVENT_NOEPOLL and EVENT_NOPOLL leave libevent only its select back end.
SELECT_ONLY = ("EVENT_NOEPOLL" in os.environ and
               "EVENT_NOPOLL" in os.environ)


def run(*args, timeout=60, preexec_fn=None):
    return subprocess.run([ECHOLOAD, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout * SLOW,
                          preexec_fn=preexec_fn)


def run_json(*args, **kw):
    p = run("-q", "--json", "-", *args, **kw)
    assert p.stdout.strip(), p.stderr
    return p, json.loads(p.stdout)


PLAIN = """
[listen main]
address = 127.0.0.1:{port}
"""


def phase(res):
    ph = res["connection_phase"]
    done = ph["established"] + ph["failed"] + ph["unfinished"]
    assert done == ph["asked"], ph
    assert sum(ph["failed_by_reason"].values()) == ph["failed"], ph
    return ph


def test_phase_reported_when_all_up(echod_factory):
    d = echod_factory(PLAIN)
    p, res = run_json("-c", 30, "-t", 2, "-n", 3000, f"127.0.0.1:{d.port}")
    assert p.returncode == 0, p.stderr
    ph = phase(res)
    assert ph["asked"] == 30 and ph["established"] == 30
    assert ph["failed"] == 0 and ph["load_ran"] is True
    # One connect latency per connection, apart from the requests.
    assert ph["latency_us"]["count"] == 30
    assert ph["duration_s"] > 0
    assert res["requests"] == 3000
    assert res["latency_us"]["count"] == 3000
    assert res["reconnects"]["established"] == 0
    p = run("-c", 30, "-t", 2, "-n", 3000, f"127.0.0.1:{d.port}")
    assert p.returncode == 0, p.stderr
    assert re.search(r"connected +30 of 30 in [\d.]+(us|ms|s) "
                     r"\([\d.]+/s\), none failed", p.stdout), p.stdout


def test_echod_backlog_is_the_configured_one(echod_factory):
    """The listen(2) backlog that the connection phase runs into is the
    one echod.conf sets, not a library default."""
    d = echod_factory(LIMITED)
    out = subprocess.run(["ss", "-Hltn", f"sport = :{d.port}"],
                         capture_output=True, text=True).stdout.split()
    assert out[0] == "LISTEN" and out[2] == "2", out


LIMITED = """
[limits]
max_connections = 8
[listen main]
address = 127.0.0.1:{port}
backlog = 2
"""


def test_phase_counts_against_small_backlog(echod_factory):
    """max_connections 8 and a backlog of 2: echod takes 8, the kernel
    queues a few more, the rest of -c 40 time out; each is counted."""
    d = echod_factory(LIMITED)
    p, res = run_json("-c", 40, "-t", 1, "-d", "500ms", "--timeout", "300ms",
                      "--connect-timeout", "1s", f"127.0.0.1:{d.port}")
    assert p.returncode == 1
    ph = phase(res)
    assert ph["asked"] == 40
    # 8 accepted, and the accept queue's few (backlog + 1, per socket).
    assert 8 <= ph["established"] <= 8 + 3 * 2 + 2, ph
    assert ph["failed_by_reason"]["timed_out"] == 40 - ph["established"]
    assert ph["load_ran"] is True
    assert "connections established (timed out" in p.stderr, p.stderr
    assert "running the load on those" in p.stderr
    # The connections that echod took did answer.
    assert res["requests"] > 0


def test_require_all_does_not_run_the_load(echod_factory):
    d = echod_factory(LIMITED)
    p, res = run_json("-c", 30, "-t", 1, "-d", "5s", "--require-all",
                      "--connect-timeout", "500ms", f"127.0.0.1:{d.port}")
    assert p.returncode == 1
    ph = phase(res)
    assert ph["established"] < 30 and ph["load_ran"] is False
    assert ph["require_all"] is True
    assert res["requests"] == 0
    assert "not running the load (--require-all)" in p.stderr, p.stderr
    p = run("-c", 30, "-t", 1, "-d", "5s", "--require-all",
            "--connect-timeout", "500ms", f"127.0.0.1:{d.port}")
    assert "FAILED (timed out" in p.stdout and "did not run" in p.stdout, \
        p.stdout
    assert "requests" not in p.stdout


def test_refused_during_phase_counted(echod_factory):
    """The target answers the first check, then goes away: every
    connection of the phase is refused, and said so."""
    d = echod_factory(PLAIN)
    # A huge connect-rate pause gives time to stop echod between the
    # target check and the connects: 1 connection per second.
    proc = subprocess.Popen([ECHOLOAD, "-q", "--json", "-", "-c", "3", "-t",
                             "1", "-n", "30", "--connect-rate", "1",
                             f"127.0.0.1:{d.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(0.3)
    d.kill()
    out, err = proc.communicate(timeout=30 * SLOW)
    res = json.loads(out)
    ph = phase(res)
    assert proc.returncode == 1
    assert ph["failed_by_reason"]["refused"] >= 2, ph
    assert "Connection refused" in err or "refused" in err, err


def access_peers(path):
    """Peers of the connections that carried requests (not the probes
    that only check a port is open)."""
    peers = []
    with open(path) as f:
        for line in f:
            m = re.search(r"peer=([\d.]+):\d+ .*bytes_in=(\d+)", line)
            if m and int(m.group(2)) > 0:
                peers.append(m.group(1))
    return peers


def test_source_addresses_used_round_robin(echod_factory, tmp_path):
    log = tmp_path / "access.log"
    d = echod_factory(f"""
[log]
access_log = {log}
[listen main]
address = 127.0.0.1:{{port}}
""")
    p, res = run_json("-c", 6, "-t", 2, "-n", 600, "--source",
                      "127.0.0.2,127.0.0.3", f"127.0.0.1:{d.port}")
    assert p.returncode == 0, p.stderr
    assert res["connection_phase"]["source_addresses"] == 2
    assert d.stop() == 0
    peers = access_peers(log)
    assert sorted(peers) == ["127.0.0.2"] * 3 + ["127.0.0.3"] * 3, peers


def test_source_cidr_and_summary(echod_factory, tmp_path):
    log = tmp_path / "access.log"
    d = echod_factory(f"""
[log]
access_log = {log}
[listen main]
address = 127.0.0.1:{{port}}
""")
    p = run("-c", 8, "-t", 1, "-n", 80, "--source", "127.0.9.0/30",
            f"127.0.0.1:{d.port}")
    assert p.returncode == 0, p.stderr
    assert "sources    2 addresses, 127.0.9.1 to 127.0.9.2" in p.stdout, \
        p.stdout
    assert d.stop() == 0
    assert sorted(set(access_peers(log))) == ["127.0.9.1", "127.0.9.2"]


def test_source_not_local_refused_up_front(echod_factory):
    d = echod_factory(PLAIN)
    p = run("-c", 4, "-n", 10, "--source", "192.0.2.7", f"127.0.0.1:{d.port}")
    assert p.returncode == 1
    assert "--source 192.0.2.7: not an address of this host" in p.stderr, \
        p.stderr
    p = run("-c", 4, "-n", 10, "--source", "::1", f"127.0.0.1:{d.port}")
    assert p.returncode == 1
    assert "IPv6" in p.stderr and "IPv4" in p.stderr, p.stderr


def test_loopback_spread_by_default(echod_factory, tmp_path):
    """Without --source, a large loopback run spreads over 127.0.0.0/8;
    a small one stays on 127.0.0.1."""
    log = tmp_path / "access.log"
    d = echod_factory(f"""
[log]
access_log = {log}
[limits]
max_connections = 5000
[listen main]
address = 127.0.0.1:{{port}}
backlog = 4096
""")
    if SELECT_ONLY:
        # libevent's select back end watches descriptors below FD_SETSIZE
        # only: such a run is refused with the reason, not aborted by glibc.
        p = run("-q", "-c", 1500, "-t", 1, "-n", 1500, f"127.0.0.1:{d.port}")
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert "select back end" in p.stderr and "FD_SETSIZE" in p.stderr, \
            p.stderr
        assert d.stop() == 0
        pytest.skip("1500 connections need more descriptors than the "
                    "select back end can watch (FD_SETSIZE)")
    p, res = run_json("-c", 1500, "-t", 1, "-n", 1500, f"127.0.0.1:{d.port}",
                      timeout=120)
    assert p.returncode == 0, p.stderr
    assert res["connection_phase"]["source_addresses"] == 2
    p, res = run_json("-c", 5, "-t", 1, "-n", 50, f"127.0.0.1:{d.port}")
    assert res["connection_phase"]["source_addresses"] == 0
    assert d.stop() == 0
    peers = access_peers(log)
    big, small = peers[:-5], peers[-5:]
    assert len(set(big)) == 2 and "127.0.0.1" not in big, set(big)
    assert set(small) == {"127.0.0.1"}


def test_connect_rate_respected(echod_factory):
    d = echod_factory(PLAIN)
    rate, n = 200, 100
    p, res = run_json("-c", n, "-t", 2, "-n", n, "--connect-rate", rate,
                      f"127.0.0.1:{d.port}")
    assert p.returncode == 0, p.stderr
    ph = phase(res)
    assert ph["connect_rate_per_s"] == rate
    # Never faster than asked; slower only by a loaded machine's delays.
    assert ph["connects_per_s"] <= rate * 1.10, ph
    assert ph["connects_per_s"] >= rate * 0.90 / SLOW, ph


def limit_fds(n):
    def set_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return set_limit


def test_more_connections_than_descriptors(echod_factory):
    d = echod_factory(PLAIN)
    p, res = run_json("-c", 300, "-t", 1, "-n", 300, f"127.0.0.1:{d.port}",
                      preexec_fn=limit_fds(128))
    assert p.returncode == 1
    assert "300 connections need about" in p.stderr, p.stderr
    assert "the limit is 128 (hard limit 128" in p.stderr
    assert "ulimit -Hn" in p.stderr and "limits.conf" in p.stderr
    ph = phase(res)
    assert ph["failed_by_reason"]["too_many_open_files"] > 0, ph
    assert ph["established"] > 0 and ph["established"] < 128
    assert "out of file descriptors" in p.stderr
    # --require-all refuses before any connect.
    p = run("-c", 300, "-t", 1, "-n", 300, "--require-all",
            f"127.0.0.1:{d.port}", preexec_fn=limit_fds(128))
    assert p.returncode == 1
    assert "not starting (--require-all)" in p.stderr, p.stderr
    assert p.stdout == ""


def test_soft_fd_limit_raised(echod_factory):
    """A low soft limit under a high enough hard one is raised quietly."""
    d = echod_factory(PLAIN)

    def soft_low():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    p, res = run_json("-c", 200, "-t", 1, "-n", 400, f"127.0.0.1:{d.port}",
                      preexec_fn=soft_low)
    assert p.returncode == 0, p.stderr
    assert phase(res)["established"] == 200
    assert "descriptors" not in p.stderr


def test_no_request_timed_before_phase_ends():
    """A server that takes no connection for a second: in open loop the
    schedule starts only when every connection is up, so that second is
    in the connect latency, not in the requests' percentiles."""
    wait = 2.0
    port = free_port()
    proc = subprocess.Popen([sys.executable, SERVERS, "late", str(port),
                             str(wait)], stdin=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: subprocess.run(
            ["ss", "-Htln", f"sport = :{port}"], capture_output=True,
            text=True).stdout.strip(), timeout=10)
        p, res = run_json("-c", 20, "-t", 1, "-R", 200, "-d", "1s",
                          f"127.0.0.1:{port}")
    finally:
        proc.kill()
        proc.wait()
    assert p.returncode == 0, p.stderr
    ph = phase(res)
    assert ph["established"] == 20
    # The phase waited for the server...
    assert ph["latency_us"]["max"] >= 0.8e6, ph
    # ...and no request did (timed from the start, the first requests
    # would have waited most of those two seconds).
    assert res["requests"] > 0
    assert res["latency_us"]["p50"] < 0.1e6 * SLOW, res["latency_us"]
    assert res["latency_us"]["p99"] < 0.5e6 * SLOW, res["latency_us"]


def test_sigint_during_phase_reports_it(echod_factory):
    d = echod_factory(PLAIN)
    proc = subprocess.Popen([ECHOLOAD, "-q", "--json", "-", "-c", "100", "-t",
                             "1", "-d", "5s", "--connect-rate", "20",
                             f"127.0.0.1:{d.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30 * SLOW)
    assert proc.returncode == 1, err
    ph = phase(json.loads(out))
    assert ph["load_ran"] is False
    assert 0 < ph["established"] < 100 and ph["unfinished"] > 0, ph
    assert "unfinished (stopped): the load did not run" in err, err


def test_connect_mode_has_no_phase(echod_factory):
    d = echod_factory(PLAIN)
    p, res = run_json("-m", "connect", "-c", 4, "-t", 1, "-n", 40,
                      f"127.0.0.1:{d.port}")
    assert p.returncode == 0, p.stderr
    assert res["connection_phase"] is None
    assert res["requests"] == 40


def established_to(port):
    out = subprocess.run(["ss", "-Htn", "state", "established",
                          f"( dport = :{port} )"], capture_output=True,
                         text=True).stdout
    return len(out.splitlines())


def test_open_loop_keeps_its_connections_to_the_end(echod_factory):
    """At 5 requests/s over 20 connections most have nothing more to send
    well before the end: they stay open all the same, so that the run
    holds the connections it was asked for."""
    d = echod_factory(PLAIN)
    proc = subprocess.Popen([ECHOLOAD, "-q", "-c", "20", "-t", "1", "-R", "5",
                             "-d", "3s", f"127.0.0.1:{d.port}"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: established_to(d.port) == 20, timeout=10)
        time.sleep(2)
        assert established_to(d.port) == 20
        assert proc.wait(timeout=30 * SLOW) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
