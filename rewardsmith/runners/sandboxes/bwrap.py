"""``bwrap`` sandbox: the worker under bubblewrap, in new user, pid, network, ipc and uts
namespaces.

What the job sees: a read-only root with only the Python install, the environment's packages,
the host's rewardsmith package (at ``/opt/rewardsmith``, first on ``sys.path``) and ``/usr``;
a minimal ``/dev``; its own ``/proc``; a small private ``/tmp``; and its job folder, read-write,
at ``/job``. No network (not even the host's
loopback), no host processes, no host environment variables. It runs as uid 1000 without
capabilities and dies with its parent; when the job ends, the pid namespace ends with it, so
no process it started can outlive it.

Limits: a cgroup per job where this process may create one (memory for the whole process tree,
process count, OOM kills reported); otherwise rlimits (memory per process). Both: file size,
no core dumps, and the wall-clock limit of :func:`~.sandbox.run_process`.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ...errors import SandboxUnavailable
from ..protocol import GUEST_MODULE
from .base import (
    Limits,
    Sandbox,
    SandboxResult,
    clean_environment,
    prepare_job_dir,
    run_process,
    signal_from_status,
)
from .cgroups import JobCgroup
from .process import set_rlimits, user_process_count

JOB = "/job"               # where the job folder appears inside
CODE = "/opt/rewardsmith"  # the host's rewardsmith package appears as CODE/rewardsmith
# Run the worker from the very package the host runs (wherever the environment would look).
BOOT = (f"import runpy, sys; sys.path.insert(0, {CODE!r}); "
        f"runpy.run_module({GUEST_MODULE!r}, run_name='__main__', alter_sys=True)")
SANDBOX_UID = 1000
TMP_BYTES = 64 * 1024 * 1024


def package_dir() -> Path:
    spec = importlib.util.find_spec("rewardsmith")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))).resolve()


def python_paths() -> list[Path]:
    """Folders the worker's Python needs: the install and the environment's packages."""
    candidates = [sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix,
                  Path(sys.executable).resolve().parent.parent]
    paths: list[Path] = []
    for raw in candidates:
        path = Path(str(raw)).resolve()
        if path == Path("/") or path.is_relative_to("/usr"):
            continue
        if not any(path.is_relative_to(p) for p in paths):
            paths = [p for p in paths if not p.is_relative_to(path)] + [path]
    return sorted(paths)


def _system_binds() -> list[str]:
    """``/usr`` and the top-level links into it (``/lib -> usr/lib`` on merged-/usr systems)."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        top = Path("/") / name
        if top.is_symlink():
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives"):
        args += ["--ro-bind-try", name, name]
    # read-only CPU topology, so torch's thread pool sizes itself without warnings
    args += ["--ro-bind-try", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    return args


def _gpu_binds() -> list[str]:
    args: list[str] = []
    for dev in sorted(Path("/dev").glob("nvidia*")):
        args += ["--dev-bind", str(dev), str(dev)]
    return args


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[str, tuple[str, ...]]:
    """Path of a working bwrap and the optional flags it supports, or raise SandboxUnavailable."""
    exe = shutil.which("bwrap")
    if exe is None:
        raise SandboxUnavailable("bubblewrap is not installed (apt-get install bubblewrap)")
    help_text = subprocess.run([exe, "--help"], capture_output=True, text=True).stdout
    extra = tuple(flag for flag in ("--disable-userns",) if flag in help_text)
    test = [exe, "--unshare-all", "--unshare-user", "--die-with-parent", *extra, *_system_binds(), "--", "/bin/true"]
    run = subprocess.run(test, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    if run.returncode != 0:
        raise SandboxUnavailable(f"bubblewrap cannot create namespaces here: {run.stderr.strip()[:200]}")
    return exe, extra


class BwrapSandbox(Sandbox):
    name = "bwrap"

    def __init__(self):
        self.exe, self.extra_flags = _probe()
        self.binds = (_system_binds() + [a for p in python_paths() for a in ("--ro-bind", str(p), str(p))]
                      + ["--ro-bind", str(package_dir()), f"{CODE}/rewardsmith"])
        # the venv's python, not the file it links to (that would lose the venv's packages)
        self.python = os.path.normpath(os.path.abspath(sys.executable))

    def environment(self, job_dir: Path, limits: Limits) -> dict[str, str]:
        return {**clean_environment(Path(JOB), limits), "TMPDIR": "/tmp"}

    def missing_hint(self) -> str:
        shown = ", ".join(str(p) for p in python_paths())
        return (f"bwrap shows the job only {shown} and /usr: install the env's package into that Python environment "
                "(not from a folder elsewhere on the machine; pip install it, not only add it to sys.path)")

    def command(self, kind: str, job_dir: Path, limits: Limits) -> list[str]:
        env = self.environment(job_dir, limits)
        return [
            self.exe, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", *self.extra_flags,
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL",
            "--hostname", "sandbox",
            # the private /tmp first: a checkout or venv under the host's /tmp is bound on top of it
            "--dev", "/dev", "--proc", "/proc",
            "--size", str(TMP_BYTES), "--tmpfs", "/tmp", "--size", str(TMP_BYTES), "--tmpfs", "/dev/shm",
            *self.binds, *_gpu_binds(),
            "--bind", str(job_dir), JOB, "--chdir", JOB, "--remount-ro", "/",
            "--clearenv", *[a for k, v in env.items() for a in ("--setenv", k, v)],
            "--", self.python, "-I", "-c", BOOT, kind, JOB,
        ]

    def run_worker(self, kind: str, job_dir: Path, limits: Limits, on_line=None) -> SandboxResult:
        job_dir = prepare_job_dir(job_dir)
        group = JobCgroup.create(limits.memory_mb, limits.processes)
        nproc = None if group is not None or os.geteuid() == 0 else user_process_count() + limits.processes

        def preexec() -> None:
            if group is not None:
                group.enter()  # the cgroup caps memory (whole tree) and processes
            set_rlimits(limits, memory=group is None, nproc=nproc)

        try:
            result = run_process(self.command(kind, job_dir, limits), job_dir,
                                 self.environment(job_dir, limits), limits, preexec, on_line)
            result.returncode = signal_from_status(result.returncode)
            result.oom_killed = group is not None and group.oom_kills() > 0
            return result
        finally:
            if group is not None:
                group.remove()
