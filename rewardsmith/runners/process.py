"""``process`` sandbox: a child process with rlimits in its own session, killed as a group.

It is NOT isolation: the job can read host files and reach the network. It exists for machines
with neither Docker nor bubblewrap, and is marked unsafe wherever it is used.
"""

from __future__ import annotations

import resource
from pathlib import Path

from .sandbox import Limits, Sandbox, host_python, worker_argv


def set_rlimits(limits: Limits) -> None:
    """Runs in the child before exec: memory, file size and core dump limits."""
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb, limits.memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb, limits.file_mb * mb))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


class ProcessSandbox(Sandbox):
    name = "process"
    safe = False

    def command(self, kind: str, job_dir: Path, limits: Limits) -> list[str]:
        return worker_argv(host_python(), kind, str(job_dir))

    def preexec(self, limits: Limits):
        return lambda: set_rlimits(limits)
