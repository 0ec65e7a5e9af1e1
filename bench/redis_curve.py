#!/usr/bin/python3
"""redis_curve.py: Redis's latency against throughput, closed loop.

echoload sends bytes and expects the same bytes back; Redis answers RESP,
so echoload cannot load it. redis-benchmark can, but only closed loop (no
target rate): this runs ECHO with 1, 2, 4, ... 64 clients and turns each
run's requests per second and latency percentiles (redis-benchmark's own,
not corrected for coordinated omission) into one step of a document in
echoload's sweep JSON shape, so that echoload-plot draws it beside the
open-loop sweeps. The document says what it is: "tool" and "closed_loop".

usage: bench/redis_curve.py PORT CLIENT_CPU SCALE PAYLOAD > sweep-redis.json
       bench/redis_curve.py --summary sweep-redis.json   (one line)
"""

import csv
import io
import json
import subprocess
import sys

CLIENTS = [1, 2, 4, 8, 16, 32, 64]
REQUESTS = 200000


def run(port, cpu, n, clients, payload):
    p = subprocess.run(["taskset", "-c", cpu, "redis-benchmark", "-h",
                        "127.0.0.1", "-p", str(port), "-n", str(n), "-c",
                        str(clients), "--csv", "ECHO", payload],
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        sys.exit(f"redis-benchmark failed: {p.stderr}")
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    return rows[-1]


def us(row, key):
    return round(float(row[key]) * 1000)


def summary(path):
    with open(path) as f:
        doc = json.load(f)
    best = max(doc["steps"], key=lambda s: s["achieved_per_s"])
    print(f"closed loop (redis-benchmark): at most "
          f"{best['achieved_per_s']:.0f}/s, with {best['clients']} clients, "
          f"p99 {best['latency_us']['p99'] / 1000:.2f}ms there")


def main():
    if sys.argv[1] == "--summary":
        summary(sys.argv[2])
        return
    port, cpu, scale, payload = sys.argv[1:5]
    n = max(1000, int(REQUESTS * float(scale)))
    steps = []
    for i, c in enumerate(CLIENTS, 1):
        row = run(port, cpu, n, c, payload)
        rps = float(row["rps"])
        lat = {"count": n, "min": us(row, "min_latency_ms"),
               "mean": float(row["avg_latency_ms"]) * 1000,
               "p50": us(row, "p50_latency_ms"),
               "p95": us(row, "p95_latency_ms"),
               "p99": us(row, "p99_latency_ms"), "p99_9": None,
               "max": us(row, "max_latency_ms")}
        steps.append({"step": i, "clients": c, "target_per_s": rps,
                      "achieved_per_s": rps, "requests": n, "errors": 0,
                      "held": True, "saturated": False,
                      "latency_us": lat, "service_latency_us": lat})
    json.dump({"tool": "redis-benchmark", "closed_loop": True,
               "target": f"127.0.0.1:{port}", "mode": "ECHO (RESP)",
               "connections": None, "message_size": len(payload),
               "sweep": {"kind": "clients", "clients": CLIENTS},
               "steps": steps, "verdict": {}}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
