"""A cgroup per job: one memory cap for the job's whole process tree, a cap on its processes and
threads, and the kernel's count of OOM kills (so "out of memory" is known, not guessed).

rlimits cannot do this: ``RLIMIT_AS`` is per process (ten children may each take the limit) and
``RLIMIT_NPROC`` does not bind root. Creating cgroups needs root (or a delegated tree), so
:meth:`JobCgroup.create` returns ``None`` where it cannot, and callers fall back to rlimits.
Both layouts are handled: cgroup v2 (one unified tree) and v1 (one tree per controller).
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "rewardsmith"
_counter = itertools.count()


class JobCgroup:
    def __init__(self, dirs: list[Path], events: Path, oom_key: str):
        self.dirs = dirs          # one per hierarchy (v1: memory and pids; v2: one)
        self.events = events      # file with the OOM kill counter
        self.oom_key = oom_key

    @classmethod
    def create(cls, memory_mb: int, processes: int) -> JobCgroup | None:
        """A new cgroup with these caps, or ``None`` if this process may not make one."""
        if os.geteuid() != 0 or not ROOT.is_dir():
            return None
        name = f"job-{os.getpid()}-{next(_counter)}"
        try:
            if (ROOT / "cgroup.controllers").exists():
                return cls._create_v2(name, memory_mb * 1024 * 1024, processes)
            return cls._create_v1(name, memory_mb * 1024 * 1024, processes)
        except OSError:
            return None

    @classmethod
    def _create_v2(cls, name: str, memory: int, processes: int) -> JobCgroup | None:
        if not {"memory", "pids"} <= set((ROOT / "cgroup.controllers").read_text().split()):
            return None
        parent = ROOT / PARENT
        parent.mkdir(exist_ok=True)
        for folder in (ROOT, parent):
            (folder / "cgroup.subtree_control").write_text("+memory +pids")
        folder = parent / name
        folder.mkdir()
        group = cls([folder], folder / "memory.events", "oom_kill")
        try:
            (folder / "memory.max").write_text(str(memory))
            if (folder / "memory.swap.max").exists():
                (folder / "memory.swap.max").write_text("0")
            (folder / "pids.max").write_text(str(processes))
        except OSError:
            group.remove()
            raise
        return group

    @classmethod
    def _create_v1(cls, name: str, memory: int, processes: int) -> JobCgroup | None:
        mem_root, pids_root = ROOT / "memory", ROOT / "pids"
        if not (mem_root / "cgroup.procs").exists() or not (pids_root / "cgroup.procs").exists():
            return None
        mem, pids = mem_root / PARENT / name, pids_root / PARENT / name
        mem.mkdir(parents=True)
        pids.mkdir(parents=True)
        group = cls([mem, pids], mem / "memory.oom_control", "oom_kill")
        try:
            (mem / "memory.limit_in_bytes").write_text(str(memory))
            if (mem / "memory.memsw.limit_in_bytes").exists():  # no swapping past the cap
                (mem / "memory.memsw.limit_in_bytes").write_text(str(memory))
            (pids / "pids.max").write_text(str(processes))
        except OSError:
            group.remove()
            raise
        return group

    def enter(self) -> None:
        """Move the calling process into the cgroup (runs in the child before exec)."""
        for folder in self.dirs:
            with open(folder / "cgroup.procs", "w") as f:
                f.write("0")

    def oom_kills(self) -> int:
        try:
            for line in self.events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == self.oom_key:
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def remove(self) -> None:
        """Kill whatever is still inside, then delete the cgroup."""
        deadline = time.monotonic() + 5
        for folder in self.dirs:
            while folder.exists():
                try:
                    pids = [int(p) for p in (folder / "cgroup.procs").read_text().split()]
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    folder.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.02)
