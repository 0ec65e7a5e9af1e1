"""test_multihost.py: runs on many hosts (issue 13): --start-at and --tag,
the HdrHistogram interval log (.hlog) and the JSON histograms, read back by
an independent HdrHistogram implementation (HdrHistogram.js, the npm
package pinned in tests/package.json), `echoload merge` (exact sums, one
file given back, bad input refused with nothing written), the Kubernetes
example's YAML, and three echoload processes in three network namespaces
started together through pdsh, checked against echod's own counters.
Everything runs on this machine: loopback, or namespaces the test makes."""

import calendar
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import ECHOD, ECHOLOAD, ROOT, SLOW, Echod, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
HDR_CHECK = os.path.join(HERE, "hdr_check.js")
NODE_MODULES = os.path.join(ROOT, "tests", "node_modules", "hdr-histogram-js")
PCTS = {"p50": "50", "p90": "90", "p99": "99", "p99_9": "99.9",
        "p99_99": "99.99"}

pytestmark = pytest.mark.skipif(not os.access(ECHOLOAD, os.X_OK),
                                reason=f"{ECHOLOAD} is not built")


def run(*args, timeout=60, check=True):
    p = subprocess.run([ECHOLOAD, *map(str, args)], capture_output=True,
                       text=True, timeout=timeout * SLOW,
                       stdin=subprocess.DEVNULL)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def load(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def echod():
    d = Echod(config="[listen a]\naddress = 127.0.0.1:{port}\nmode = echo\n")
    yield f"127.0.0.1:{d.port}"
    d.kill()


def need_hdr_js():
    """HdrHistogram.js comes from .ci/deps.sh's test set; in CI its absence
    is a failure, elsewhere a skip that says how to get it."""
    why = None
    if shutil.which("node") is None:
        why = "no node (sh .ci/deps.sh test installs it)"
    elif not os.path.isdir(NODE_MODULES):
        why = "hdr-histogram-js not installed (sh .ci/deps.sh test)"
    if why and os.environ.get("CI"):
        pytest.fail(why)
    if why:
        pytest.skip(why)


def hdr_js(kind, path):
    p = subprocess.run(["node", HDR_CHECK, kind, str(path)],
                       capture_output=True, text=True, timeout=60 * SLOW)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def assert_same_percentiles(js, summary):
    """HdrHistogram reports the top of a value's range; echoload caps that
    at the exact maximum it recorded. Counts must agree exactly."""
    assert js["count"] == summary["count"]
    for ours, theirs in PCTS.items():
        assert min(js["percentiles"][theirs], summary["max"]) == \
            summary[ours], (ours, js, summary)
    # The exact max lies in the range HdrHistogram reports for it.
    assert summary["max"] <= js["max"] <= summary["max"] * 1.001 + 1


# --- the formats, read by HdrHistogram.js --------------------------------

@pytest.mark.parametrize("loop", ["closed", "open"])
def test_hlog_and_json_decode_with_hdrhistogram_js(echod, tmp_path, loop):
    need_hdr_js()
    js_path, hlog = tmp_path / "r.json", tmp_path / "r.hlog"
    extra = ["-R", 3000] if loop == "open" else []
    run("-q", "-c", 4, "-t", 2, "-d", "2500ms", *extra, "--tag", "t1",
        "--json", js_path, "--hlog", hlog, echod)
    res = load(js_path)
    series = {"response": res["latency_us"]}
    if loop == "open":
        series["service"] = res["service_latency_us"]
    # The connection phase's connect times: one line in the log.
    once = {"connect": res["connection_phase"]["latency_us"]}
    assert set(res["histograms"]) == set(series) | set(once) | {"reconnect"}

    from_json = hdr_js("json", js_path)
    from_log = hdr_js("hlog", hlog)
    assert set(from_log) == set(series) | set(once)
    assert_same_percentiles(from_json["reconnect"],
                            res["reconnects"]["latency_us"])
    for name, summary in once.items():
        assert summary["count"] == 4
        assert_same_percentiles(from_json[name], summary)
        assert_same_percentiles(from_log[name], summary)
        ivs = from_log[name]["intervals"]
        assert len(ivs) == 1
        assert ivs[0]["start_ms"] < res["start_unix_s"] * 1000
    for name, summary in series.items():
        assert summary["count"] > 0
        assert_same_percentiles(from_json[name], summary)
        assert_same_percentiles(from_log[name], summary)
        # One line per second per series, 2.5 s: three intervals, timed
        # from the measured start that the JSON names.
        ivs = from_log[name]["intervals"]
        assert len(ivs) == 3
        assert ivs[0]["start_ms"] == pytest.approx(
            res["start_unix_s"] * 1000, abs=1)
        assert [round((i["end_ms"] - i["start_ms"]) / 1000, 3)
                for i in ivs] == [1.0, 1.0, 0.5]
        assert sum(i["count"] for i in ivs) == summary["count"]
    assert res["tag"] == "t1"
    assert res["requests"] == res["latency_us"]["count"]


def test_hlog_header_and_intervals(echod, tmp_path):
    hlog = tmp_path / "r.hlog"
    run("-q", "-c", 2, "-t", 1, "-d", "3s", "--hlog", hlog,
        "--hlog-interval", "2s", "--tag", "x", echod)
    lines = hlog.read_text().splitlines()
    assert "#[Histogram log format version 1.3]" in lines
    start = [l for l in lines if l.startswith("#[StartTime: ")]
    base = [l for l in lines if l.startswith("#[BaseTime: ")]
    assert len(start) == 1 and len(base) == 1
    assert any("microseconds" in l and "divisor 1000" in l for l in lines)
    legend = lines.index('"StartTimestamp","Interval_Length","Interval_Max",'
                         '"Interval_Compressed_Histogram"')
    data = [l.split(",") for l in lines[legend + 1:] if not l.startswith("#")]
    # BaseTime is the connection phase's start; its connect times come
    # first, then 3 s in 2 s intervals: one of 2 s and the last second.
    assert data[0][0] == "Tag=connect" and float(data[0][1]) < 0.002
    assert [(d[0], d[2]) for d in data[1:]] == [
        ("Tag=response", "2.000"), ("Tag=response", "1.000")]
    assert float(data[2][1]) - float(data[1][1]) == pytest.approx(2.0)
    assert all(d[4].startswith("HISTFAAA") for d in data)
    assert lines[-1].startswith("#[echoload totals: ")


def test_tag_in_every_output(echod, tmp_path):
    csv, js = tmp_path / "r.csv", tmp_path / "r.json"
    p = run("-q", "-c", 2, "-t", 1, "-d", "1s", "--tag", "rack7-host3",
            "--csv", csv, "--json", js, echod)
    assert "rack7-host3" in p.stdout
    assert load(js)["tag"] == "rack7-host3"
    rows = csv.read_text().splitlines()
    assert rows[0].split(",")[-1] == "tag"
    assert all(r.split(",")[-1] == "rack7-host3" for r in rows[1:])
    # Without --tag the host name labels the run.
    p = run("-q", "-c", 1, "-t", 1, "-n", 10, "--json", "-", echod)
    assert json.loads(p.stdout)["tag"] == os.uname().nodename


# --- --start-at -----------------------------------------------------------

def test_start_at_in_the_past_is_an_error(echod, tmp_path):
    out = tmp_path / "r.json"
    p = run("-q", "--start-at", int(time.time()) - 5, "--json", out, echod,
            check=False)
    assert p.returncode == 2
    assert "past" in p.stderr
    p = run("-q", "--start-at", "2001-01-01T00:00:00Z", echod, check=False)
    assert p.returncode == 2


def test_start_at_starts_together(echod, tmp_path):
    at = time.time() + 1.5 * SLOW
    procs = [subprocess.Popen(
        [ECHOLOAD, "-q", "-c", "2", "-t", "1", "-w", "300ms", "-d", "1s",
         "--start-at", f"{at:.3f}", "--tag", f"p{i}",
         "--json", str(tmp_path / f"p{i}.json"), echod],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for i in range(3)]
    for p in procs:
        assert p.wait(timeout=30 * SLOW) == 0, p.stderr.read()
    res = [load(tmp_path / f"p{i}.json") for i in range(3)]
    for r in res:
        # Measurement begins after the warm-up that began at --start-at.
        assert r["start_at"] == pytest.approx(at, abs=1e-3)
        assert r["start_unix_s"] == pytest.approx(at + 0.3, abs=0.01)
        assert r["start_delay_s"] < 0.05 * SLOW
    starts = [r["start_unix_s"] + r["start_delay_s"] for r in res]
    assert max(starts) - min(starts) < 0.05 * SLOW


def test_start_at_rfc3339(echod):
    t = time.gmtime(time.time() + 2)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", t)
    p = run("-q", "-c", 1, "-t", 1, "-d", "200ms", "--start-at", stamp,
            "--json", "-", echod)
    res = json.loads(p.stdout)
    assert res["start_at"] == pytest.approx(calendar.timegm(t), abs=1e-6)
    assert res["start_time"] == stamp.replace("Z", ".000Z")


# --- merge ---------------------------------------------------------------

def runs(echod, tmp_path, n, *extra):
    """n echoload processes at once; their JSON and .hlog paths."""
    at = time.time() + 1.0 * SLOW
    procs, files = [], []
    for i in range(n):
        js, hl = tmp_path / f"h{i}.json", tmp_path / f"h{i}.hlog"
        files.append((js, hl))
        procs.append(subprocess.Popen(
            [ECHOLOAD, "-q", "-c", "2", "-t", "1", "-d", "2s",
             *map(str, extra),
             "--start-at", f"{at:.3f}", "--tag", f"h{i}", "--json", str(js),
             "--hlog", str(hl), echod],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        assert p.wait(timeout=30 * SLOW) == 0, p.stderr.read()
    return files


def test_merge_sums_exactly(echod, tmp_path):
    need_hdr_js()
    files = runs(echod, tmp_path, 3)
    res = [load(js) for js, _ in files]
    out = tmp_path / "all.json"
    # Two JSON results and one interval log, mixed.
    p = run("merge", "--json", out, files[0][0], files[1][0], files[2][1])
    m = load(out)
    for k in ("requests", "bytes_sent", "bytes_received", "errors"):
        assert m[k] == sum(r[k] for r in res), k
    assert m["connections"] == 6 and m["tag"] == "h0+h1+h2"
    assert m["latency_us"]["count"] == m["requests"]
    assert m["latency_us"]["max"] == max(r["latency_us"]["max"] for r in res)
    assert m["latency_us"]["min"] <= min(r["latency_us"]["min"] for r in res)
    # An independent reader, adding the three runs' histograms, finds the
    # percentiles the merge reports.
    joined = tmp_path / "joined.hlog"
    text = "".join(open(hl).read() for _, hl in files)
    joined.write_text(text)
    theirs = hdr_js("hlog", joined)["response"]
    assert_same_percentiles(theirs, m["latency_us"])
    # Every second added across the runs.
    for k, iv in enumerate(m["intervals"]):
        assert iv["requests"] == sum(r["intervals"][k]["requests"]
                                     for r in res)
    assert "requests" in p.stdout and "h0+h1+h2" in p.stdout


def test_merge_outputs_every_format(echod, tmp_path):
    need_hdr_js()
    files = runs(echod, tmp_path, 2, "-R", 2000)
    out = {k: tmp_path / f"all.{k}" for k in ("json", "hlog", "hgrm", "csv")}
    run("merge", "-q", *sum(([f"--{k}", v] for k, v in out.items()), []),
        *(js for js, _ in files))
    m = load(out["json"])
    from_log = hdr_js("hlog", out["hlog"])
    assert set(from_log) == {"response", "service", "connect"}
    assert_same_percentiles(from_log["response"], m["latency_us"])
    assert_same_percentiles(from_log["connect"],
                            m["connection_phase"]["latency_us"])
    assert m["connection_phase"]["established"] == 4
    assert_same_percentiles(from_log["service"], m["service_latency_us"])
    rows = out["csv"].read_text().splitlines()
    assert rows[0].startswith("second,length_s,requests")
    assert sum(int(r.split(",")[2]) for r in rows[1:]) == m["requests"]
    hgrm = out["hgrm"].read_text()
    assert f"Total count    = {m['requests']:12d}" in hgrm
    assert m["rate"]["target_per_s"] == pytest.approx(4000)


def test_merge_one_file_gives_it_back(echod, tmp_path):
    js, hl = tmp_path / "r.json", tmp_path / "r.hlog"
    run("-q", "-c", 3, "-t", 1, "-d", "2s", "--tag", "solo", "--json", js,
        "--hlog", hl, echod)
    out_js, out_hl = tmp_path / "m.json", tmp_path / "m.hlog"
    run("merge", "-q", "--json", out_js, "--hlog", out_hl, js)
    back, orig = load(out_js), load(js)
    # The phase's rate comes from its duration, which the JSON has to the
    # microsecond (a phase of 3 connects lasts some 500 us): the same
    # duration, the rate recomputed from it.
    assert back["connection_phase"].pop("connects_per_s") == pytest.approx(
        orig["connection_phase"].pop("connects_per_s"), rel=1e-2)
    assert back == orig
    run("merge", "-q", "--json", out_js, hl)
    back = load(out_js)
    orig = load(js)
    for k in ("requests", "bytes_sent", "bytes_received", "tag",
              "connections", "mode", "message_size"):
        assert back[k] == orig[k], k
    # A log carries each interval's latencies; its bytes are in the totals.
    for a, b in zip(back["intervals"], orig["intervals"], strict=True):
        for k in ("start_s", "length_s", "requests", "max_us", "histograms"):
            assert a[k] == b[k], k
    assert back["latency_us"]["count"] == orig["latency_us"]["count"]
    for k in list(PCTS) + ["max"]:
        assert back["latency_us"][k] == orig["latency_us"][k], k
    assert out_hl.read_text().splitlines()[1:] == \
        hl.read_text().splitlines()[1:]


def merge_refused(tmp_path, *files):
    out = tmp_path / "never.json"
    p = run("merge", "-q", "--json", out, *files, check=False)
    assert p.returncode == 2, p.stderr
    assert not out.exists()
    assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    return lines[0]


def test_merge_bad_input(echod, tmp_path):
    js, hl = tmp_path / "r.json", tmp_path / "r.hlog"
    run("-q", "-c", 2, "-t", 1, "-d", "2s", "--json", js, "--hlog", hl,
        echod)
    lines = hl.read_text().splitlines(keepends=True)
    first = next(i for i, l in enumerate(lines) if l.startswith("Tag="))

    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert f"{empty}: empty file" in merge_refused(tmp_path, js, empty)

    cut = tmp_path / "cut.hlog"
    cut.write_text("".join(lines[:first]) + lines[first][:60])
    msg = merge_refused(tmp_path, cut)
    assert msg.startswith(f"echoload merge: {cut}:{first + 1}:"), msg

    cut.write_text("".join(lines[:first]) + lines[first][:60] + "\n")
    msg = merge_refused(tmp_path, cut)
    assert f"{cut}:{first + 1}:" in msg and "histogram" in msg, msg

    bad = tmp_path / "bad.hlog"
    line = lines[first]
    k = line.index("HISTFAAA") + 20
    flipped = line[:k] + ("A" if line[k] != "A" else "B") + line[k + 1:]
    bad.write_text("".join(lines[:first]) + flipped + "".join(
        lines[first + 1:]))
    msg = merge_refused(tmp_path, js, bad)
    assert f"{bad}:{first + 1}:" in msg, msg

    other = tmp_path / "connect.json"
    run("-q", "-m", "connect", "-c", 2, "-t", 1, "-n", 20, "--json", other,
        echod)
    msg = merge_refused(tmp_path, js, other)
    assert str(other) in msg and "mode" in msg, msg

    broken = tmp_path / "broken.json"
    broken.write_text(js.read_text()[:200])
    assert f"{broken}:" in merge_refused(tmp_path, broken)

    # A good merge still works after all that, and usage errors are 2.
    run("merge", "-q", js, hl)
    assert run("merge", check=False).returncode == 2


# --- Kubernetes example ---------------------------------------------------

def test_kubernetes_example_is_valid_yaml():
    yaml = pytest.importorskip("yaml")
    with open(os.path.join(ROOT, "deploy", "echoload-job.yaml")) as f:
        docs = list(yaml.safe_load_all(f))
    kinds = [d["kind"] for d in docs]
    assert kinds == ["PersistentVolumeClaim", "Job", "Job"]
    load_job, merge_job = docs[1], docs[2]
    spec = load_job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 2
    c = spec["template"]["spec"]["containers"][0]
    script = " ".join(c["args"])
    assert "--start-at \"$START_AT\"" in script
    assert "--tag \"load-$i\"" in script and "JOB_COMPLETION_INDEX" in script
    assert any(e["name"] == "START_AT" for e in c["env"])
    m = merge_job["spec"]["template"]["spec"]["containers"][0]
    assert "echoload merge" in " ".join(m["args"])
    assert int(next(e["value"] for e in m["env"] if e["name"] == "LOADERS")) \
        == spec["completions"]
    for d in (load_job, merge_job):
        vols = d["spec"]["template"]["spec"]["volumes"]
        assert vols[0]["persistentVolumeClaim"]["claimName"] == \
            docs[0]["metadata"]["name"]
    # The shell scripts parse.
    for s in (script, " ".join(m["args"])):
        assert subprocess.run(["sh", "-n", "-c", s]).returncode == 0


# --- three hosts in network namespaces, through pdsh ----------------------

def sh(*cmd, check=True):
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True,
                       timeout=60)
    if check:
        assert p.returncode == 0, (cmd, p.stderr)
    return p


class Namespaces:
    """A server namespace and n client namespaces on one bridge, in the
    private test subnet 10.213.X.0/24; everything made is undone."""

    def __init__(self, n):
        tag = f"mh{os.getpid() % 100000}"
        self.net = f"10.213.{os.getpid() % 250 + 1}"
        self.server = f"{tag}s"
        self.clients = [f"{tag}n{i}" for i in range(1, n + 1)]
        self.hostlist = f"{tag}n[1-{n}]"
        self.made = []
        try:
            self._build(tag)
        except BaseException:
            self.close()
            raise

    def _build(self, tag):
        sh("ip", "netns", "add", self.server)
        self.made.append(self.server)
        s = ["ip", "-n", self.server]
        sh(*s, "link", "add", "br0", "type", "bridge")
        sh(*s, "addr", "add", f"{self.net}.1/24", "dev", "br0")
        sh(*s, "link", "set", "br0", "up")
        sh(*s, "link", "set", "lo", "up")
        for i, ns in enumerate(self.clients, 1):
            sh("ip", "netns", "add", ns)
            self.made.append(ns)
            a, b = f"{tag}v{i}a", f"{tag}v{i}b"
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            sh("ip", "link", "set", a, "netns", self.server)
            sh("ip", "link", "set", b, "netns", ns)
            sh(*s, "link", "set", a, "master", "br0", "up")
            c = ["ip", "-n", ns]
            sh(*c, "addr", "add", f"{self.net}.{10 + i}/24", "dev", b)
            sh(*c, "link", "set", b, "up")
            sh(*c, "link", "set", "lo", "up")

    def close(self):
        # Deleting a namespace deletes the interfaces in it, and a veth's
        # peer with it.
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True,
                           timeout=30)
        self.made = []


@pytest.fixture
def namespaces():
    if os.geteuid() != 0:
        pytest.skip("needs root to make network namespaces")
    for tool in ("ip", "pdsh"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool} (sh .ci/deps.sh test installs it)")
    ns = Namespaces(3)
    yield ns
    ns.close()


def in_ns(ns, *cmd):
    return ["ip", "netns", "exec", ns, *map(str, cmd)]


def metrics_in(ns, port):
    code = ("import sys, urllib.request; sys.stdout.write(urllib.request."
            "urlopen(sys.argv[1], timeout=10).read().decode())")
    p = sh(*in_ns(ns, "/usr/bin/python3", "-c", code,
                  f"http://127.0.0.1:{port}/metrics"))
    total = {}
    for line in p.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{")[0].split()[0]
        total[name] = total.get(name, 0) + float(line.split()[-1])
    return total


def test_three_hosts_through_pdsh(namespaces, tmp_path):
    ns = namespaces
    port, admin = 7007, 9100
    conf = tmp_path / "echod.conf"
    conf.write_text(f"[listen a]\naddress = {ns.net}.1:{port}\nmode = echo\n"
                    f"[admin]\naddress = 127.0.0.1:{admin}\n")
    err = open(tmp_path / "echod.err", "wb")
    server = subprocess.Popen(in_ns(ns.server, ECHOD, "-f", "-c", conf),
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 10 * SLOW
        while True:
            try:
                before = metrics_in(ns.server, admin)
                break
            except AssertionError:
                assert server.poll() is None, open(err.name).read()
                assert time.monotonic() < deadline, "echod did not start"
                time.sleep(0.1)
        at = time.time() + 2.0 * SLOW
        out = str(tmp_path / "%h")
        p = subprocess.run(
            ["pdsh", "-S", "-R", "exec", "-w", ns.hostlist, "ip", "netns",
             "exec", "%h", ECHOLOAD, "-q", "-c", "4", "-t", "1", "-n", "20000",
             "--start-at", f"{at:.3f}", "--tag", "%h",
             "--json", out + ".json", "--hlog", out + ".hlog",
             f"{ns.net}.1:{port}"],
            capture_output=True, text=True, timeout=60 * SLOW)
        assert p.returncode == 0, p.stdout + p.stderr
        files = [tmp_path / f"{c}.json" for c in ns.clients]
        res = [load(f) for f in files]
        assert sorted(r["tag"] for r in res) == sorted(ns.clients)
        # They started within 50 ms of each other, as their JSON says.
        starts = [r["start_unix_s"] + r["start_delay_s"] for r in res]
        assert max(starts) - min(starts) < 0.05 * SLOW, starts
        assert all(r["errors"] == 0 and r["requests"] == 20000 for r in res)

        merged = tmp_path / "all.json"
        run("merge", "-q", "--json", merged, *files)
        m = load(merged)
        assert m["requests"] == sum(r["requests"] for r in res)
        assert m["bytes_sent"] == sum(r["bytes_sent"] for r in res)
        assert m["bytes_received"] == sum(r["bytes_received"] for r in res)

        # echod's own counters: every byte sent was a measured request's
        # (-n: no warm-up, no request after the window; nothing else talks
        # to it), and all came back.
        after = metrics_in(ns.server, admin)

        def grew(name):
            return after.get(name, 0) - before.get(name, 0)

        size = m["message_size"]
        assert grew("echod_worker_received_bytes_total") == \
            m["bytes_sent"] == m["requests"] * size
        assert grew("echod_worker_sent_bytes_total") == m["bytes_received"]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        err.close()
