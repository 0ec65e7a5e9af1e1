"""echoload-plot on recorded outputs (tests/functional/data/plot): it
writes valid PNG, SVG and HTML files, the numbers it plots (--dump) are
those of its inputs, and bad input is one clear line with exit status 2.
interval.hlog was written by hdr-histogram-js (make-interval-hlog.js),
an independent HdrHistogram writer; interval-expect.json holds the
percentiles that library computed for each interval."""

import base64
import csv
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

PLOT = os.path.join(ROOT, "client", "echoload-plot")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data",
                    "plot")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def data(name):
    return os.path.join(DATA, name)


def plot(*args):
    return subprocess.run([sys.executable, PLOT, *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def dumped(*args):
    """--dump's lines as {(chart, tag, series): [(x, y)]}."""
    p = plot("--dump", *args)
    assert p.returncode == 0, p.stderr
    out = {}
    for line in p.stdout.splitlines():
        chart, tag, series, x, y = line.split("\t")
        out.setdefault((chart, tag, series), []).append((float(x), float(y)))
    return out


def close(a, b):
    """Equal to the 6 significant digits --dump prints."""
    return a == pytest.approx(b, rel=1e-5, abs=1e-9)


def load(name):
    with open(data(name)) as f:
        return json.load(f)


def assert_png(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC
    assert head[12:16] == b"IHDR"
    width, height = int.from_bytes(head[16:20], "big"), \
        int.from_bytes(head[20:24], "big")
    assert width >= 600 and height >= 400
    assert os.path.getsize(path) > 10000


@pytest.mark.parametrize("inputs,chart", [
    (["run.json"], "spectrum"),
    (["run.hgrm", "run.json"], "spectrum"),
    (["run.csv"], "time"),
    (["interval.hlog"], "time"),
    (["sweep.json"], "sweep"),
    (["sweep.json", "slo.json"], "sweep"),
])
def test_png_for_each_chart(tmp_path, inputs, chart):
    out = tmp_path / "chart.png"
    p = plot(*[data(i) for i in inputs], "-c", chart, "-o", out)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    assert_png(out)


def test_svg(tmp_path):
    out = tmp_path / "chart.svg"
    p = plot(data("sweep.json"), "-o", out, "--title", "knee")
    assert p.returncode == 0, p.stderr
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert text.rstrip().endswith("</svg>")
    # Labels with units.
    assert "requests/s" in text or "requests" in text


def test_html_is_self_contained(tmp_path):
    out = tmp_path / "report.html"
    p = plot(data("sweep.json"), data("run.json"), data("run.csv"),
             "--html", out)
    assert p.returncode == 0, p.stderr
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Nothing to fetch: every image is inline, no script, no link.
    assert not re.search(r"(src|href)=\"(https?:|//|[^d\"][^a])", page)
    images = re.findall(r"src=\"data:image/png;base64,([^\"]+)\"", page)
    assert len(images) == 3     # sweep, spectrum, time
    for img in images:
        assert base64.b64decode(img)[:8] == PNG_MAGIC
    # The summary table has the sweep's steps and verdict.
    doc = load("sweep.json")
    assert len(re.findall(r"<tr>", page)) >= len(doc["steps"]) + 1
    held = doc["verdict"]["last_held_per_s"]
    assert f"last step that held: {held:,.1f}/s" in page


def test_dump_spectrum_equals_the_json_and_hgrm():
    d = dumped("json=" + data("run.json"), "hgrm=" + data("run.hgrm"),
               "-c", "spectrum")
    run = load("run.json")["latency_us"]
    pts = dict(d[("spectrum", "json", "response")])
    want = {0: run["min"], 50: run["p50"], 90: run["p90"], 99: run["p99"],
            99.9: run["p99_9"], 99.99: run["p99_99"], 100: run["max"]}
    assert sorted(pts) == sorted(want)
    for p, us in want.items():
        assert close(pts[p], us / 1000.0), (p, pts[p], us)
    # The .hgrm points, as the file has them (ms; percentile as 0..1).
    rows = []
    with open(data("run.hgrm")) as f:
        for line in f:
            m = re.match(r"^\s*([0-9.]+)\s+([0-9.]+)\s+[0-9]+", line)
            if m:
                rows.append((float(m.group(2)) * 100, float(m.group(1))))
    hgrm = d[("spectrum", "hgrm", "response")]
    assert len(hgrm) == len(rows) > 10
    for (p, v), (wp, wv) in zip(hgrm, rows):
        assert close(p, wp) and close(v, wv)


def test_dump_time_equals_the_csv():
    d = dumped(data("run.csv"))
    with open(data("run.csv")) as f:
        rows = list(csv.DictReader(f))
    cols = {"p50": "latency_p50_us", "p99": "latency_p99_us",
            "max": "latency_max_us"}
    for series, col in cols.items():
        got = d[("time", "run", series)]
        assert [x for x, _ in got] == [float(r["second"]) for r in rows]
        for (_, y), r in zip(got, rows):
            assert close(y, float(r[col]) / 1000.0)
    got = d[("time", "run", "rate")]
    for (_, y), r in zip(got, rows):
        assert close(y, float(r["requests_per_s"]))


def test_dump_hlog_decodes_as_hdrhistogram_does():
    d = dumped(data("interval.hlog"))
    want = load("interval-expect.json")
    for series in ("p50", "p99", "max"):
        got = d[("time", "interval", series)]
        assert [x for x, _ in got] == [w["end_s"] for w in want]
        for (_, y), w in zip(got, want):
            assert close(y, w[series] / 1000.0), (series, y, w)
    for (_, y), w in zip(d[("time", "interval", "rate")], want):
        assert close(y, w["count"])  # 1-second intervals


def test_dump_sweep_equals_the_steps():
    d = dumped("echod=" + data("sweep.json"))
    steps = sorted(load("sweep.json")["steps"],
                   key=lambda s: s["target_per_s"])
    for series, key in (("p50", "p50"), ("p99", "p99"),
                        ("p99.9", "p99_9")):
        got = d[("sweep", "echod", series)]
        assert len(got) == len(steps)
        for (x, y), s in zip(got, steps):
            assert close(x, s["achieved_per_s"])
            assert close(y, s["latency_us"][key] / 1000.0)


def test_dump_step_spectrum_from_the_whole_histogram():
    # A sweep's steps carry their histograms: the spectrum's standard
    # percentiles are decoded from them and equal echoload's own.
    d = dumped(data("sweep.json"), "-c", "spectrum")
    doc = load("sweep.json")
    for s in doc["steps"]:
        assert "response" in s["histograms"]
        pts = dict(d[("spectrum", f"sweep {s['target_per_s']:,.0f}/s",
                      "response")])
        lat = s["latency_us"]
        for p, key in ((50, "p50"), (90, "p90"), (99, "p99"),
                       (99.9, "p99_9"), (99.99, "p99_99"), (100, "max")):
            assert close(pts[p], lat[key] / 1000.0), (s["step"], p)


@pytest.mark.parametrize("args,words", [
    (["/nonexistent/x.json", "-o", "x.png"],
     "/nonexistent/x.json: No such file or directory"),
    ([data("other-tool.json"), "-o", "x.png"],
     "other-tool.json: not an echoload result"),
    ([data("empty.csv"), "-o", "x.png"], "empty.csv: no rows"),
    ([data("run.csv"), "-c", "sweep", "-o", "x.png"],
     "run.csv: has no data for the sweep chart"),
    ([data("run.json"), "-o", "x.gif"], "must end in .png or .svg"),
    ([data("run.json")], "nothing to do"),
])
def test_bad_input_one_line_exit_2(tmp_path, args, words):
    p = subprocess.run([sys.executable, PLOT, *args], capture_output=True,
                       text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stdout == ""
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("echoload-plot: ") and words in lines[0], \
        p.stderr
    assert not (tmp_path / "x.png").exists()


def test_empty_sweep_and_no_replies(tmp_path):
    doc = load("sweep.json")
    doc["steps"] = []
    (tmp_path / "s.json").write_text(json.dumps(doc))
    run = load("run.json")
    run["latency_us"]["count"] = 0
    (tmp_path / "r.json").write_text(json.dumps(run))
    for name, words in (("s.json", "no steps"), ("r.json", "no replies")):
        p = plot(tmp_path / name, "-o", tmp_path / "x.png")
        assert p.returncode == 2 and words in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("man") is None, reason="no man(1)")
@pytest.mark.parametrize("page", ["echoload.1", "echoload-plot.1"])
def test_man_page_renders_without_warnings(page):
    path = os.path.join(ROOT, "doc", page)
    r = subprocess.run(["man", "--warnings", "-l", path],
                       env={**os.environ, "MANWIDTH": "80",
                            "MAN_KEEP_FORMATTING": "0"},
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", r.stderr
    assert len(r.stdout.splitlines()) > 50
