"""Functional tests of echoload (issue 3): the real binary against the real
echod and against small helper servers (echoload_servers.py). Every run is
bounded in requests or time, on loopback only."""

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import ECHOLOAD, SLOW, Echod, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
SERVERS = os.path.join(HERE, "echoload_servers.py")

MODES_CONF = """
[listen echo]
address = 127.0.0.1:{port}
mode = echo
[listen discard]
address = 127.0.0.1:{discard}
mode = discard
[listen chargen]
address = 127.0.0.1:{chargen}
mode = chargen
"""


def run(*args, timeout=60):
    """Run echoload with args; returns the CompletedProcess."""
    return subprocess.run([ECHOLOAD, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout * SLOW)


def run_json(*args, timeout=60):
    p = run("-q", "--json", "-", *args, timeout=timeout)
    assert p.stdout.strip(), p.stderr
    return p, json.loads(p.stdout)


class Helper:
    """One echoload_servers.py process."""

    def __init__(self, mode, arg="0", ipv6=False):
        self.port = free_port()
        cmd = [sys.executable, SERVERS, mode, str(self.port), str(arg)]
        if ipv6:
            cmd.append("--ipv6")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        if not wait_port("::1" if ipv6 else "127.0.0.1", self.port):
            self.stop()
            raise RuntimeError(f"{mode} server did not start")
        self.target = f"127.0.0.1:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def helper():
    started = []

    def make(*a, **kw):
        h = Helper(*a, **kw)
        started.append(h)
        return h

    yield make
    for h in started:
        h.stop()


@pytest.fixture(scope="module")
def echod_modes():
    """One echod with an echo, a discard and a chargen listener."""
    discard, chargen = free_port(), free_port()
    conf = MODES_CONF.replace("{discard}", str(discard)) \
                     .replace("{chargen}", str(chargen))
    d = Echod(config=conf)
    assert wait_port("127.0.0.1", discard) and wait_port("127.0.0.1", chargen)
    d.echo = f"127.0.0.1:{d.port}"
    d.discard = f"127.0.0.1:{discard}"
    d.chargen = f"127.0.0.1:{chargen}"
    yield d
    d.kill()


def assert_clean(p, res):
    assert p.returncode == 0, p.stderr
    assert res["errors"] == 0
    assert all(v == 0 for v in res["error_counts"].values())


# --- echo mode and the result's consistency

def test_echo_json_fields_consistent(echod_modes):
    p, res = run_json("-c", 8, "-t", 2, "-n", 20000, "--verify",
                      echod_modes.echo)
    assert_clean(p, res)
    for key in ("target", "mode", "connections", "threads", "duration_s",
                "requests", "errors", "bytes_sent", "bytes_received"):
        assert key in res, key
    assert res["target"] == echod_modes.echo
    assert res["mode"] == "echo"
    assert res["connections"] == 8 and res["threads"] == 2
    assert res["requests"] == 20000
    # Every request was answered, and its latency recorded once.
    assert res["latency_us"]["count"] == res["requests"]
    assert res["bytes_sent"] == res["bytes_received"] == 20000 * 64
    lat = res["latency_us"]
    order = [lat[k] for k in ("min", "p50", "p90", "p99", "p99_9",
                              "p99_99", "max")]
    assert order == sorted(order) and lat["min"] >= 1
    assert lat["min"] <= lat["mean"] <= lat["max"]
    assert set(res["service_latency_us"]) >= set(lat)
    t = res["throughput"]
    assert t["requests_per_s"] == pytest.approx(
        res["requests"] / res["duration_s"], rel=1e-3)
    assert t["bytes_per_s"] == pytest.approx(
        (res["bytes_sent"] + res["bytes_received"]) / res["duration_s"],
        rel=1e-3)
    assert res["rate"]["target_per_s"] is None
    assert res["rate"]["achieved_per_s"] == pytest.approx(
        t["requests_per_s"], rel=1e-3)


def test_human_summary(echod_modes):
    p = run("-c", 4, "-t", 1, "-n", 2000, echod_modes.echo)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    for word in ("target", echod_modes.echo, "echo mode", "4 connections",
                 "1 thread\n", "duration", "requests   2000", "errors     0",
                 "MiB/s", "min", "mean", "p50", "p90", "p99", "p99.9",
                 "p99.99", "max"):
        assert word in out, (word, out)
    # Not a terminal: no progress line.
    assert "req/s" not in p.stderr and "\r" not in p.stderr


def test_duration_bounds_run(echod_modes):
    start = time.monotonic()
    p, res = run_json("-c", 4, "-t", 1, "-d", "1500ms", echod_modes.echo)
    elapsed = time.monotonic() - start
    assert_clean(p, res)
    assert res["duration_s"] == pytest.approx(1.5, abs=0.01)
    assert res["requests"] > 0
    assert elapsed < 10 * SLOW


def test_pipelining(echod_modes):
    p, res = run_json("-c", 4, "-t", 2, "-P", 16, "-s", 100, "-n", 40000,
                      "--verify", echod_modes.echo)
    assert_clean(p, res)
    assert res["pipeline"] == 16
    assert res["requests"] == 40000
    assert res["bytes_received"] == 40000 * 100


def test_large_messages_verified(echod_modes):
    p, res = run_json("-c", 2, "-t", 1, "-s", "200k", "-P", 2, "-n", 200,
                      "--verify", echod_modes.echo)
    assert_clean(p, res)
    assert res["requests"] == 200
    assert res["bytes_received"] == 200 * 200 * 1024


def test_warmup_not_counted(echod_modes, tmp_path):
    csv = tmp_path / "run.csv"
    p, res = run_json("-c", 2, "-t", 1, "-w", "500ms", "-d", "1s",
                      "--csv", csv, echod_modes.echo)
    assert_clean(p, res)
    assert res["warmup_s"] == pytest.approx(0.5)
    assert res["duration_s"] == pytest.approx(1.0, abs=0.01)
    rows = csv.read_text().splitlines()
    # One row for the one measured second, none for the warm-up.
    assert len(rows) == 2
    assert int(rows[1].split(",")[2]) == res["requests"]


def test_csv_one_row_per_second(echod_modes, tmp_path):
    csv = tmp_path / "run.csv"
    p, res = run_json("-c", 2, "-t", 2, "-d", "2500ms", "--csv", csv,
                      echod_modes.echo)
    assert_clean(p, res)
    lines = csv.read_text().splitlines()
    head = lines[0].split(",")
    assert head[:4] == ["second", "length_s", "requests", "requests_per_s"]
    rows = [dict(zip(head, l.split(","))) for l in lines[1:]]
    assert [int(r["second"]) for r in rows] == [1, 2, 3]
    assert float(rows[2]["length_s"]) == pytest.approx(0.5, abs=0.01)
    assert sum(int(r["requests"]) for r in rows) == res["requests"]
    assert sum(int(r["bytes_sent"]) for r in rows) == res["bytes_sent"]


def test_hgrm_output(echod_modes, tmp_path):
    hgrm = tmp_path / "lat.hgrm"
    p, res = run_json("-c", 4, "-t", 1, "-n", 5000, "--hgrm", hgrm,
                      echod_modes.echo)
    assert_clean(p, res)
    text = hgrm.read_text()
    lines = text.splitlines()
    assert lines[0].split() == ["Value", "Percentile", "TotalCount",
                                "1/(1-Percentile)"]
    rows = [l.split() for l in lines[2:] if l and not l.startswith("#")]
    assert float(rows[0][1]) == 0.0 and float(rows[-1][1]) == 1.0
    assert int(rows[-1][2]) == res["requests"]
    pcts = [float(r[1]) for r in rows]
    assert pcts == sorted(pcts)
    footer = [l for l in lines if l.startswith("#[")]
    assert len(footer) == 3
    assert footer[1].startswith("#[Max")
    assert int(footer[1].split("=")[-1].rstrip("]")) == res["requests"]
    # Values are milliseconds: the max matches the JSON's microseconds.
    assert float(footer[1].split("=")[1].split(",")[0]) == pytest.approx(
        res["latency_us"]["max"] / 1000.0, abs=0.001)


def test_ipv6_target(echod_factory):
    port = free_port()
    try:
        d = echod_factory(config=f"[listen v6]\naddress = [::1]:{port}\n"
                          "mode = echo\n", port=port, wait_host="::1")
    except (RuntimeError, OSError) as e:
        pytest.skip(f"no IPv6 loopback: {e}")
    p, res = run_json("-c", 2, "-t", 1, "-n", 1000, "--verify",
                      f"[::1]:{d.port}")
    assert_clean(p, res)
    assert res["requests"] == 1000
    assert res["address"] == f"[::1]:{d.port}"


# --- the other modes

def test_connect_mode(echod_modes):
    p, res = run_json("-m", "connect", "-c", 4, "-t", 2, "-n", 400,
                      "--verify", echod_modes.echo)
    assert_clean(p, res)
    assert res["mode"] == "connect"
    assert res["requests"] == 400
    assert res["latency_us"]["count"] == 400
    assert res["bytes_received"] == 400 * 64


def test_upload_mode(echod_modes):
    p, res = run_json("-m", "upload", "-c", 2, "-t", 1, "-s", "16k",
                      "-d", 1, echod_modes.discard)
    assert_clean(p, res)
    assert res["mode"] == "upload"
    assert res["bytes_sent"] > 1024 * 1024
    assert res["bytes_received"] == 0
    assert res["requests"] == pytest.approx(res["bytes_sent"] / 16384, abs=2)
    assert res["throughput"]["bytes_per_s"] > 0


def test_download_mode(echod_modes):
    p, res = run_json("-m", "download", "-c", 2, "-t", 1, "-s", "1k",
                      "-d", 1, echod_modes.chargen)
    assert_clean(p, res)
    assert res["mode"] == "download"
    assert res["bytes_received"] > 1024 * 1024
    assert res["bytes_sent"] == 0
    # Each connection's last partial message is not a request.
    assert 0 <= res["bytes_received"] // 1024 - res["requests"] < 2


def test_download_bounded_by_requests(echod_modes):
    p, res = run_json("-m", "download", "-c", 2, "-t", 1, "-n", 1000,
                      echod_modes.chargen)
    assert_clean(p, res)
    assert res["requests"] == 1000


# --- open loop and accuracy

def test_open_loop_achieved_rate(echod_modes):
    p, res = run_json("-c", 10, "-t", 2, "-R", 4000, "-d", 2,
                      echod_modes.echo)
    assert_clean(p, res)
    rate = res["rate"]
    assert rate["target_per_s"] == 4000
    # The accuracy target: within 1% when the server keeps up.
    assert rate["achieved_per_s"] == pytest.approx(4000, rel=0.01)
    assert rate["reached"] is True
    assert res["latency_us"]["count"] == res["requests"]


def test_open_loop_unreachable_target_said_plainly(helper):
    # 2 connections, 50 ms per reply: at most 40 replies a second.
    h = helper("delay", 0.05)
    p, res = run_json("-c", 2, "-t", 1, "-R", 400, "-d", 1, h.target)
    assert p.returncode == 0, p.stderr
    assert res["rate"]["reached"] is False
    assert res["rate"]["achieved_per_s"] < 100
    assert "TARGET NOT REACHED" in p.stderr
    # Coordinated omission corrected: the queueing shows in the latency,
    # not only in the service time.
    assert res["latency_us"]["p99"] > 4 * res["service_latency_us"]["p99"]


def accurate_p50(run, keys, delay, tries=3):
    """The accuracy target: p50 within 10% above the delay. No p50 may be
    below the delay in any run (that would be a wrong measure, not noise);
    a loaded machine only adds latency (the delay server's own wake-ups
    and echoload's), so the upper bound needs one of tries runs."""
    seen = []
    for _ in range(tries):
        res = run()
        p50s = [res[k]["p50"] for k in keys]
        for k, p50 in zip(keys, p50s):
            assert p50 >= delay * 1e6, (k, p50)
        if all(p50 <= delay * 1e6 * 1.10 for p50 in p50s):
            return
        seen.append(dict(zip(keys, p50s)))
    raise AssertionError(f"p50 more than 10% above {delay * 1e6:.0f} us in "
                         f"every run: {seen}")


def test_delay_server_p50_accuracy(helper):
    delay = 0.025
    h = helper("delay", delay)

    def run():
        p, res = run_json("-c", 10, "-t", 1, "-d", "1500ms", h.target)
        assert_clean(p, res)
        return res
    accurate_p50(run, ["latency_us"], delay)


def test_delay_server_open_loop_accuracy(helper):
    delay = 0.025
    h = helper("delay", delay)

    def run():
        p, res = run_json("-c", 10, "-t", 1, "-R", 200, "-d", "1500ms",
                          h.target)
        assert_clean(p, res)
        assert res["rate"]["reached"] is True
        return res
    accurate_p50(run, ["latency_us", "service_latency_us"], delay)


# --- errors

def test_verify_finds_corruption(helper):
    h = helper("flip", 1000)
    p, res = run_json("-c", 2, "-t", 1, "-n", 2000, "--verify", h.target)
    assert p.returncode == 1
    # 128000 bytes echoed, one flipped bit per 1000: 128 corrupt replies.
    assert res["error_counts"]["mismatch"] == 128
    assert res["errors"] == 128
    assert res["requests"] == 2000 - 128
    assert "differs" in p.stderr


def test_without_verify_corruption_passes(helper):
    h = helper("flip", 1000)
    p, res = run_json("-c", 2, "-t", 1, "-n", 2000, h.target)
    assert_clean(p, res)
    assert res["requests"] == 2000


def test_connect_refused():
    port = free_port()
    p = run("-c", 2, "-d", 1, f"127.0.0.1:{port}")
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1
    assert f"127.0.0.1:{port}" in lines[0]
    assert "refused" in lines[0].lower()
    assert p.stdout == ""


def test_timeout_counted(helper):
    h = helper("silent")
    p, res = run_json("-c", 2, "-t", 1, "-d", 1, "--timeout", "200ms",
                      h.target)
    assert p.returncode == 1
    assert res["error_counts"]["timeout"] >= 2
    assert res["requests"] == 0
    assert "no reply within 200ms" in p.stderr


def test_server_dies_mid_run(echod_factory):
    d = echod_factory(config="[listen e]\naddress = 127.0.0.1:{port}\n")
    proc = subprocess.Popen([ECHOLOAD, "-q", "--json", "-", "-c", "4",
                             "-t", "1", "-d", "3", f"127.0.0.1:{d.port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.0)
    d.kill()
    out, err = proc.communicate(timeout=20 * SLOW)
    res = json.loads(out)
    assert proc.returncode == 1
    assert res["requests"] > 0
    assert res["errors"] > 0
    assert res["error_counts"]["connect"] > 0


@pytest.mark.parametrize("args,word", [
    (["-c", "0"], "-c 0"),
    (["-m", "ping"], "-m ping"),
    (["-s", "lots"], "-s lots"),
    (["--frobnicate"], "--frobnicate"),
    (["-m", "upload", "--verify"], "--verify"),
])
def test_usage_errors(args, word):
    p = run(*args)
    assert p.returncode == 2
    lines = p.stderr.splitlines()
    assert lines[0].startswith("echoload: ") and word in lines[0]
    assert lines[1].startswith("usage: echoload")
    assert p.stdout == ""


def test_help_and_version():
    p = run("-h")
    assert p.returncode == 0 and p.stdout.startswith("usage: echoload")
    p = run("-V")
    assert p.returncode == 0 and p.stdout.startswith("echoload ")


# --- terminal behaviour and signals

def run_on_tty(args, timeout=30):
    """Run echoload with stderr on a pseudo-terminal; returns (rc, text)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([ECHOLOAD, *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                b = os.read(master, 4096)
            except OSError:
                break
            if not b:
                break
            chunks.append(b)
        elif proc.poll() is not None:
            break
    os.close(master)
    rc = proc.wait(timeout=10 * SLOW)
    return rc, b"".join(chunks).decode(errors="replace")


def test_progress_on_tty(echod_modes):
    rc, text = run_on_tty(["-c", 2, "-t", 1, "-d", "2200ms",
                           echod_modes.echo])
    assert rc == 0
    assert text.count("req/s") >= 2
    assert "p99" in text and "errors 0" in text


def test_quiet_on_tty(echod_modes):
    rc, text = run_on_tty(["-q", "-c", 2, "-t", 1, "-d", "1200ms",
                           echod_modes.echo])
    assert rc == 0
    assert "req/s" not in text


def test_sigint_stops_and_reports(echod_modes):
    proc = subprocess.Popen([ECHOLOAD, "-q", "--json", "-", "-c", "2",
                             "-t", "1", "-d", "60", echod_modes.echo],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10 * SLOW)
    assert proc.returncode == 0, err
    res = json.loads(out)
    assert res["requests"] > 0
    assert 0.5 < res["duration_s"] < 5 * SLOW
