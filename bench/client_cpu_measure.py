#!/usr/bin/env python3
"""client_cpu_measure.py: run one command pinned to a CPU with taskset and
print its CPU time in seconds (utime + stime of the whole process, from
/proc/PID/stat, read after it exits but before it is reaped), then its exit
status. The command's own output goes to /dev/null (or OUTFILE).

usage: client_cpu_measure.py CPU OUTFILE|- COMMAND [ARG...]"""

import os
import subprocess
import sys


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    cpu, outfile, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
    out = subprocess.DEVNULL if outfile == "-" else open(outfile, "w")
    # taskset execs the command: the PID we get is the client's own.
    proc = subprocess.Popen(["taskset", "-c", cpu, *cmd],
                            stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.DEVNULL)
    # Wait for the exit without reaping, so /proc/PID/stat still holds
    # the final times of all its threads.
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    rc = proc.wait()
    print(f"{ticks / os.sysconf('SC_CLK_TCK'):.3f} {rc}")


if __name__ == "__main__":
    main()
