"""test_limits_reuseport.py: with reuseport, connections over
max_connections wait as they do on a shared socket (echod.conf(5)): none is
accepted and closed, and each is served as a place frees. Loopback only;
bounded."""

import os
import select
import socket

import pytest

from conftest import ECHOD, SLOW, Echod, wait_for
from daemon_util import Setup
from echod_util import connect, roundtrip

pytestmark = pytest.mark.skipif(not os.access(ECHOD, os.X_OK),
                                reason=f"{ECHOD} is not built")


def answered(socks, timeout):
    """The sockets that have something to read (an echo or an EOF)."""
    r, _, _ = select.select(socks, [], [], timeout)
    return r


@pytest.mark.parametrize("reuseport", ["no", "yes"])
def test_connections_over_the_limit_wait(reuseport):
    limit, workers, extra = 4, 4, 8
    st = Setup()
    st.write(server={"workers": str(workers)},
             listeners={"a": {"address": f"127.0.0.1:{st.port}",
                              "reuseport": reuseport}},
             sections={"limits": {"max_connections": str(limit)}})
    d = Echod(args=["-c", st.conf], port=st.port, tmpdir=st.tmpdir)
    first, waiting = [], []
    try:
        for _ in range(limit):
            s = connect(d.port)
            assert roundtrip(s)
            first.append(s)
        for _ in range(extra):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(b"w")
            waiting.append(s)
        # None is served, and none is closed: they wait.
        assert answered(waiting, 0.5 * SLOW) == []
        # Each place that frees serves one of them.
        served = []
        for s in first:
            s.close()
            r = []
            assert wait_for(lambda: r.extend(answered(
                [w for w in waiting if w not in served], 0.05)) or r)
            for w in r:
                assert w.recv(1) == b"w", "closed instead of served"
                served.append(w)
        assert len(served) == limit
        for s in served:
            s.close()
        rest = [w for w in waiting if w not in served]
        for w in rest:
            w.settimeout(5 * SLOW)
            assert w.recv(1) == b"w", "closed instead of served"
        assert d.stop() == 0
    finally:
        for s in first + waiting:
            s.close()
        d.kill()
