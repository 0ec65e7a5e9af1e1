"""The build's platform choices (common/platform.h, written by meson): a
-Dportable=true build must really take every POSIX fallback, and a system
without a balancing SO_REUSEPORT must say that reuseport is off."""
import json
import os
import random
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ECHOD, ECHOLOAD
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
