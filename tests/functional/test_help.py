"""-h lists every option the man page documents, and the man page every
option -h lists: the two must not drift apart."""
import os
import re
import subprocess

import pytest

from conftest import ECHOD, ECHOLOAD, ROOT


def man_flags(page):
    """Flags of the man page's option list: .It Fl x [, Fl -long]."""
    flags = set()
    with open(os.path.join(ROOT, "doc", page)) as f:
        for line in f:
            if line.startswith(".It Fl "):
                flags.update("-" + m for m in re.findall(r"Fl (\S+)", line))
    return flags


def help_flags(prog):
    r = subprocess.run([prog, "-h"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0
    # The indented option lines, not the usage synopsis.
    body = "\n".join(l for l in r.stdout.splitlines() if l.startswith(" "))
    return r.stdout, set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", body))


@pytest.mark.parametrize("prog,page", [(ECHOD, "echod.8"),
                                       (ECHOLOAD, "echoload.1")],
                         ids=["echod", "echoload"])
def test_help_matches_man_page(prog, page):
    out, listed = help_flags(prog)
    documented = man_flags(page)
    assert documented - listed == set(), f"-h misses {documented - listed}"
    assert listed - documented == set(), f"man misses {listed - documented}"
    for flag in ("-h", "-V"):
        assert flag in listed


def test_echod_help_shows_listener_forms():
    out, _ = help_flags(ECHOD)
    assert "-l [mode@]address" in out
    assert "bare port" in out
