"""``process`` sandbox: a child process with rlimits in its own session, killed as a group.

It is NOT isolation: the job can read host files and reach the network. It exists for machines
with neither Docker nor bubblewrap, and is marked unsafe wherever it is used.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from pathlib import Path

from ..protocol import guest_argv
from .base import Limits, Sandbox, host_python


def set_rlimits(limits: Limits, memory: bool = True, nproc: int | None = None) -> None:
    """Runs in the child before exec: memory (address space, per process), file size, core
    dumps and, if given, the number of processes of this user (not binding for root)."""
    mb = 1024 * 1024
    if memory:
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if nproc is not None:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def die_with_parent() -> None:
    """Runs in the child: the kernel kills it if the rewardsmith process that started it dies
    (``prctl(PR_SET_PDEATHSIG, SIGKILL)``), so a crashed solve leaves no workers running."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the process group is still killed after every job


def user_process_count() -> int:
    """Processes and threads this user runs now (RLIMIT_NPROC counts them all, not only the job's)."""
    uid, count = str(os.getuid()), 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [uid]:
            count += int(fields.get("Threads", "1").strip() or 1)
    return count


class ProcessSandbox(Sandbox):
    name = "process"
    safe = False

    def command(self, kind: str, job_dir: Path, limits: Limits) -> list[str]:
        return guest_argv(host_python(), kind, str(job_dir))

    def preexec(self, limits: Limits):
        def setup() -> None:
            set_rlimits(limits)
            die_with_parent()

        return setup
