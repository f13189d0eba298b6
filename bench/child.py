"""What the benchmarks share: one child process run to completion and measured, and the machine.

`run_measured` runs a command in its own process with its output in temporary files, kills it
after `timeout` seconds, and measures it with `os.wait4` (the child's own rusage: wall time, CPU
time, peak RSS), so nothing of the benchmark script's own memory is counted. The 1-minute load
average when it ended is recorded too: on a shared machine, compare CPU.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


@dataclass
class ChildRun:
    wall: float  # seconds, start of the child to its exit
    cpu: float  # user + system seconds of the child
    rss_mib: float  # the child's peak resident set
    load: float  # 1-minute load average when the child ended: above nproc, others competed
    returncode: int
    timed_out: bool
    stdout: str
    stderr: str


def run_measured(argv: list[str], *, cwd: Path, env: Mapping[str, str], timeout: float) -> ChildRun:
    """Run one child to completion (killed after `timeout` s); measure it with os.wait4."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
        out.seek(0)
        err.seek(0)
        return ChildRun(wall=wall, cpu=usage.ru_utime + usage.ru_stime,
                        rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
                        load=os.getloadavg()[0],
                        returncode=proc.returncode, timed_out=killer.finished.is_set() and proc.returncode < 0,
                        stdout=out.read().decode(errors="replace"), stderr=err.read().decode(errors="replace"))


def machine() -> dict:
    """The CPUs, memory, Python and OS the numbers were measured on, for a result's header."""
    def first(path: str, key: str) -> str:
        try:
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return "?"

    mem_kib = first("/proc/meminfo", "MemTotal").split()[0]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory": f"{int(mem_kib) / 1024 / 1024:.1f} GiB" if mem_kib.isdigit() else "?",
        "cpu": first("/proc/cpuinfo", "model name"),
        "python": platform.python_version(),
        "os": platform.platform(),
    }
