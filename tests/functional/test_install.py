"""What meson install puts where: with prefix /usr the unit goes to
systemd's directory, the logrotate snippet to /etc/logrotate.d, and the
unit's user has a sysusers.d entry; other prefixes keep everything under
the prefix. Only meson setup runs (no build): the install plan and the
configured files are known then."""
import json
import os
import re
import shutil
import subprocess

import pytest

from conftest import ROOT


def configure(tmp_path, prefix):
    build = tmp_path / "b"
    subprocess.run(["meson", "setup", str(build), ROOT, "--prefix=" + prefix,
                    "-Dtests=false"], check=True, capture_output=True)
    r = subprocess.run(["meson", "introspect", "--installed", str(build)],
                       check=True, capture_output=True, text=True)
    return build, {os.path.relpath(k, build) if k.startswith(str(build))
                   else os.path.relpath(k, ROOT): v
                   for k, v in json.loads(r.stdout).items()}


def systemd_unitdir():
    if shutil.which("pkg-config") is None:
        return None
    r = subprocess.run(["pkg-config", "--variable=systemdsystemunitdir",
                        "systemd"], capture_output=True, text=True)
    return r.stdout.strip() or None


def test_install_prefix_usr(tmp_path):
    build, plan = configure(tmp_path, "/usr")
    unitdir = systemd_unitdir() or "/usr/lib/systemd/system"
    assert plan["server/echod"] == "/usr/sbin/echod"
    assert plan["client/echoload"] == "/usr/bin/echoload"
    assert plan["conf/echod.service"] == unitdir + "/echod.service"
    assert plan["conf/echod"] == "/etc/logrotate.d/echod"
    assert plan["conf/echod.sysusers"].endswith("/sysusers.d/echod.conf")
    unit = (build / "conf" / "echod.service").read_text()
    assert "ExecStart=/usr/sbin/echod -f -c /etc/echod/echod.conf" in unit
    assert "@" not in re.sub(r"(?m)^#.*$", "", unit)
    # The user the unit runs as is the one sysusers.d creates.
    user = re.search(r"(?m)^User=(\S+)", unit).group(1)
    sysusers = open(os.path.join(ROOT, "conf", "echod.sysusers")).read()
    assert re.search(r"(?m)^u\s+" + user + r"\s", sysusers)
    rotate = (build / "conf" / "echod").read_text()
    assert "/usr/sbin/echod -s reopen -c /etc/echod/echod.conf" in rotate


def test_install_other_prefix_stays_under_it(tmp_path):
    _, plan = configure(tmp_path, "/opt/echoload")
    for src, dst in plan.items():
        assert dst.startswith("/opt/echoload/"), (src, dst)
    assert plan["conf/echod.service"] == \
        "/opt/echoload/lib/systemd/system/echod.service"
