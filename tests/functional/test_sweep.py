"""Rate sweeps and SLO searches (echoload -R FROM:TO..., --slo) against a
server of known capacity (capacity_server.py): it echoes at most CAPACITY
messages a second and queues the rest, so the knee sits at CAPACITY. Steps
are short so that the whole file stays quick. A stall of the machine
during a step below capacity can make that step miss (the 1% bound on the
achieved rate is 10ms of a 1s step), so the checks that need a quiet step
get up to five runs, and the ones that no stall can break hold on every
run: nothing above the capacity ever holds or meets the SLO."""

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ECHOLOAD, SLOW, free_port, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "capacity_server.py")

CAPACITY = 1000
SIZE = 16
CONNS = 64
# Short steps: 300ms warm-up and 1s measured.
STEP = ["-q", "-t", "2", "-c", str(CONNS), "-s", str(SIZE), "-w", "0.3s",
        "-d", "1s"]


class CapacityServer:
    def __init__(self, tmp_path, rate=CAPACITY, delay=0.0):
        self.port = free_port()
        self.stats = os.path.join(str(tmp_path), "accepted")
        self.proc = subprocess.Popen(
            [sys.executable, SERVER, str(self.port), "--rate", str(rate),
             "--size", str(SIZE), "--delay", str(delay),
             "--stats", self.stats], stdin=subprocess.DEVNULL)
        if not wait_port("127.0.0.1", self.port) or \
                not self._counted(1):
            self.stop()
            raise RuntimeError("capacity server did not start")
        self.target = f"127.0.0.1:{self.port}"

    def _counted(self, n):
        """Has the server counted wait_port's connection?"""
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            try:
                if self.accepted() >= n:
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        return False

    def accepted(self):
        with open(self.stats) as f:
            return int(f.read())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def server(tmp_path):
    started = []

    def make(**kw):
        s = CapacityServer(tmp_path, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def sweep(target, *args, timeout=120):
    """Run echoload with the JSON on stdout; (process, document)."""
    p = subprocess.run([ECHOLOAD, *STEP, "--json", "-", *map(str, args),
                        target], capture_output=True, text=True,
                       timeout=timeout * SLOW)
    assert p.stdout.strip(), p.stderr
    return p, json.loads(p.stdout)


def quiet_run(run, check, tries=5):
    """run() -> doc, asserting what every run must show; check(doc)
    asserts what a quiet run shows. Passes when one of tries runs does."""
    failures = []
    for _ in range(tries):
        doc = run()
        try:
            check(doc)
            return doc
        except AssertionError as e:
            failures.append(str(e))
    raise AssertionError("\n---\n".join(failures))


def probes(doc):
    """The steps as lines, for assertion messages."""
    return "\n".join(f"{s['target_per_s']} {s['achieved_per_s']} "
                     f"p99={s['latency_us']['p99']} {s.get('why')}"
                     for s in doc["steps"])


def test_sweep_stops_past_saturation_on_the_same_connections(server):
    srv = server()

    def run():
        before = srv.accepted()
        p, doc = sweep(srv.target, "-R", "250:2250:500", "--verify")
        assert p.returncode == 0, p.stderr
        # Every step ran on the connections of the first: one per -c, and
        # the one that checked the target before the load.
        assert srv.accepted() - before == CONNS + 1
        # The sweep stops at its first saturated step: 1250/s at the
        # latest, which cannot be served (at most 80% of it), so 1750 and
        # 2250 never run.
        targets = [s["target_per_s"] for s in doc["steps"]]
        assert targets == [250, 750, 1250][:len(targets)], probes(doc)
        assert [s["saturated"] for s in doc["steps"]].index(True) == \
            len(targets) - 1, probes(doc)
        last = doc["steps"][-1]
        assert not last["held"]
        v = doc["verdict"]
        assert v["saturated_step"] == len(targets)
        assert v["saturated_per_s"] == targets[-1]
        held = [s["target_per_s"] for s in doc["steps"] if s["held"]]
        assert v["last_held_per_s"] == (max(held) if held else None)
        for s in doc["steps"]:
            assert s["latency_us"]["count"] == s["requests"] > 0
            assert s["errors"] == 0
        return doc

    def check(doc):
        # 250 and 750 are well below the capacity: both hold, and 750 is
        # the last step that did; 1250 is past saturation.
        assert [s["held"] for s in doc["steps"]] == [True, True, False], \
            probes(doc)
        assert doc["steps"][2]["achieved_per_s"] < 0.9 * 1250
        v = doc["verdict"]
        assert v["last_held_step"] == 2 and v["last_held_per_s"] == 750

    doc = quiet_run(run, check)
    assert doc["sweep"]["kind"] == "linear"
    assert doc["sweep"]["step_per_s"] == 500
    # The table says the same.
    p2 = subprocess.run([ECHOLOAD, *STEP, "-R", "250:2250:500", srv.target],
                        capture_output=True, text=True, timeout=120 * SLOW)
    rows = [l.split() for l in p2.stdout.splitlines()
            if l.split()[:1] in (["1"], ["2"], ["3"])]
    assert rows and rows[-1][-1] == "saturated", p2.stdout
    assert f"stopped at step {len(rows)} ({rows[-1][1]}/s): past " \
        "saturation" in p2.stdout, p2.stdout
    assert "last step that held: " in p2.stdout or \
        "no step held" in p2.stdout


def test_sweep_geometric_steps(server):
    srv = server()

    def run():
        p, doc = sweep(srv.target, "-R", "100:400", "--steps", "3")
        assert p.returncode == 0, p.stderr
        assert doc["sweep"]["kind"] == "geometric"
        assert doc["sweep"]["steps"] == 3
        held = [s["target_per_s"] for s in doc["steps"] if s["held"]]
        assert doc["verdict"]["last_held_per_s"] == \
            (max(held) if held else None)
        return doc

    def check(doc):
        # Each rate the same factor (2) above the last, 400 included.
        targets = [s["target_per_s"] for s in doc["steps"]]
        assert targets == pytest.approx([100, 200, 400]), probes(doc)
        assert doc["verdict"]["saturated_step"] is None

    quiet_run(run, check)


def test_slo_search_finds_the_capacity(server):
    srv = server()
    precision = 0.05

    def run():
        before = srv.accepted()
        # A latency bound that queueing below the capacity does not break:
        # above it, the achieved rate is what fails.
        p, doc = sweep(srv.target, "-R", "200:4000", "--slo",
                       f"p99<{int(200 * SLOW)}ms", "--slo-precision", "5%")
        assert p.returncode in (0, 1), p.stderr
        assert srv.accepted() - before == CONNS + 1
        v = doc["verdict"]
        table = probes(doc)
        assert doc["steps"][0]["target_per_s"] == 200
        for s in doc["steps"]:
            assert s["meets_slo"] == (s["why"] is None)
            assert s["duration_s"] > 0.9
            # No rate above what the server can serve meets the SLO (the
            # achieved rate within 1%), whatever the machine does.
            if s["target_per_s"] > CAPACITY / 0.99:
                assert not s["meets_slo"], table
        if v["met"]:
            lo, hi = v["bracket_low_per_s"], v["bracket_high_per_s"]
            assert v["answer_per_s"] == lo
            met = [s["target_per_s"] for s in doc["steps"]
                   if s["meets_slo"]]
            assert max(met) == lo
            # The search stops once the bracket is as narrow as it
            # promised.
            assert (hi - lo) / lo <= precision + 1e-9, table
        return doc

    def check(doc):
        # On a quiet run: met at FROM, doubling until a probe fails, and
        # the capacity inside the bracket.
        v = doc["verdict"]
        table = probes(doc)
        assert v["met"] and v["met_at_from"], table
        assert [s["target_per_s"] for s in doc["steps"]][:2] == [200, 400]
        assert v["bracket_high_per_s"] >= CAPACITY * (1 - precision), table

    quiet_run(run, check)


def test_slo_not_met_even_at_from(server):
    # Every reply takes 30ms: p99 < 10ms is out of reach at any rate.
    srv = server(delay=0.03)
    p, doc = sweep(srv.target, "-R", "100:1000", "--slo", "p99<10ms")
    assert p.returncode == 1
    v = doc["verdict"]
    assert not v["met"] and v["met_at_from"] is False
    assert v["answer_per_s"] is None
    assert len(doc["steps"]) == 1
    assert doc["steps"][0]["target_per_s"] == 100
    assert "p99" in doc["steps"][0]["why"]
    p2 = subprocess.run([ECHOLOAD, *STEP, "-R", "100:1000", "--slo",
                         "p99<10ms", srv.target], capture_output=True,
                        text=True, timeout=60 * SLOW)
    assert p2.returncode == 1
    assert "SLO p99<10ms: not met even at FROM 100.0/s" in p2.stdout, \
        p2.stdout


def test_slo_met_at_the_top_of_the_range(server):
    srv = server()

    def run():
        p, doc = sweep(srv.target, "-R", "100:300", "--slo", "p99<2s")
        assert doc["steps"][0]["target_per_s"] == 100
        assert p.returncode == (0 if doc["verdict"]["met"] else 1)
        return doc

    def check(doc):
        v = doc["verdict"]
        assert v["met"] and v["top_of_range"], probes(doc)
        assert v["answer_per_s"] == 300 and v["bracket_high_per_s"] is None
        assert [s["target_per_s"] for s in doc["steps"]] == [100, 200, 300]

    quiet_run(run, check)
