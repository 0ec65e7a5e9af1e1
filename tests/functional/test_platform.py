"""The build's platform choices (common/platform.h, written by meson): a
-Dportable=true build must really take every POSIX fallback, and a system
without a balancing SO_REUSEPORT must say that reuseport is off."""
import json
import os
import random
import resource
import re
import shutil
import socket
import subprocess

import pytest

from conftest import BUILD, ECHOD, ECHOLOAD, SLOW
from echod_util import echo_many, make_conf

# The one-call forms a portable build must not use.
LINUX_CALLS = ("accept4", "eventfd", "pipe2", "memrchr")


def platform():
    with open(os.path.join(BUILD, "common", "platform.h")) as f:
        return {m[0]: int(m[1]) for m in
                re.findall(r"^#define (HAVE_\w+)\s+([01])\b", f.read(), re.M)}


def portable_build():
    r = subprocess.run(["meson", "introspect", "--buildoptions", BUILD],
                       capture_output=True, text=True, check=True)
    return next(o["value"] for o in json.loads(r.stdout)
                if o["name"] == "portable")


def imported(path):
    r = subprocess.run(["nm", "-u", path], capture_output=True, text=True,
                       check=True)
    return {line.split()[-1].split("@")[0] for line in r.stdout.splitlines()
            if line.strip()}


def test_portable_build_takes_every_fallback():
    have = platform()
    assert have, "no HAVE_ in platform.h"
    if not portable_build():
        pytest.skip("not a -Dportable=true build")
    # TCP_NODELAY is POSIX; everything else has a fallback and is off.
    assert {k for k, v in have.items() if v} == {"HAVE_TCP_NODELAY"}


@pytest.mark.skipif(shutil.which("nm") is None, reason="needs nm")
@pytest.mark.parametrize("prog", [ECHOD, ECHOLOAD], ids=["echod", "echoload"])
def test_linux_calls_only_where_detected(prog):
    have = platform()
    used = imported(prog) & set(LINUX_CALLS)
    expect = {c for c in LINUX_CALLS if have.get("HAVE_" + c.upper(), 0)}
    assert used <= expect, f"{os.path.basename(prog)} calls {used - expect}"


def test_reuseport_where_unavailable_warns_and_serves(echod_factory):
    have_reuseport = platform()["HAVE_SO_REUSEPORT"] or \
        platform()["HAVE_SO_REUSEPORT_LB"]
    d = echod_factory(make_conf({"a": {"address": "127.0.0.1:{port}",
                                       "reuseport": "yes"}},
                                server={"workers": 2}))
    rng = random.Random(7)
    payloads = [rng.randbytes(rng.randint(1, 50000)) for _ in range(10)]
    assert echo_many(d.port, payloads) == payloads
    warned = "reuseport is not available" in d.stderr()
    assert warned == (not have_reuseport), d.stderr()


def test_select_back_end_caps_descriptors(echod_factory):
    # libevent's select back end cannot watch a descriptor of FD_SETSIZE
    # (1024) or more: glibc aborted echod at the first one ("bit out of
    # range 0 - FD_SETSIZE on fd_set"). echod lowers its descriptor limit
    # to FD_SETSIZE there and says so; connections past it wait, unserved,
    # as at any descriptor limit, and nothing dies.
    want = 1200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want + 64:
        pytest.skip(f"the hard descriptor limit ({hard}) is below {want}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want + 64), hard))
    d = echod_factory("""
[server]
workers = 2
[limits]
max_connections = 5000
[listen main]
address = 127.0.0.1:{port}
backlog = 4096
""", env={"EVENT_NOEPOLL": "1", "EVENT_NOPOLL": "1"})
    socks = []
    try:
        assert "(select)" in d.stderr(), d.stderr()
        assert re.search(r"select back end .*FD_SETSIZE \(1024\).* lowered "
                         r"to 1024, which allows about \d+ connections",
                         d.stderr()), d.stderr()
        with open(f"/proc/{d.pid}/limits") as f:
            nofile = next(l for l in f if l.startswith("Max open files"))
        assert nofile.split()[3] == "1024", nofile
        for _ in range(want):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            s.sendall(b"x")
            socks.append(s)
        served = 0
        for s in socks:
            s.settimeout(0.5 * SLOW if served < 800 else 0.05)
            try:
                if s.recv(1) == b"x":
                    served += 1
            except socket.timeout:
                pass
        assert 800 <= served < want, served
        assert d.proc.poll() is None, d.stderr()
        for s in socks:
            s.close()
        socks = []
        assert echo_many(d.port, [b"after"]) == [b"after"]
        assert "FD_SETSIZE on fd_set" not in d.stderr()
        assert d.stop() == 0, d.stderr()
    finally:
        for s in socks:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
