"""The sandbox seam: run a worker job on a job folder, with limits, and report how it ended.

Backends build the command line (``bwrap ...``, ``docker run ...``, or the bare worker); this
module starts it in its own session, streams its output through a size cap, enforces the
wall-clock limit, and always kills the whole process group at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..protocol import ENV_ERROR, RESULT, REWARD_LOADING

_live_groups: set[int] = set()  # process groups of running jobs, for kill_all()
_live_killers: dict[int, Callable[[], None]] = {}  # other running jobs (containers), for kill_all()
_live_lock = threading.Lock()

MEMORY_ERROR_MARKERS = ("MemoryError", "can't allocate memory", "Cannot allocate memory",
                        "std::bad_alloc", "out of memory")


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 900.0
    memory_mb: int = 4096
    threads: int = 1
    processes: int = 512
    file_mb: int = 2048
    output_bytes: int = 256 * 1024  # how much of the output tail is kept


@dataclass
class SandboxResult:
    returncode: int | None
    output: str                     # tail of stdout+stderr, at most Limits.output_bytes
    wall_s: float
    timed_out: bool = False
    output_dropped: int = 0         # bytes of output not kept
    result_line: str | None = None  # the last "@@result" line, if any
    oom_killed: bool = False        # the backend saw the kernel's OOM killer end it
    reward_loaded: bool = False     # the guest got as far as loading the reward's code
    environment_error: str | None = None  # the guest could not build the env (said before the reward ran)

    @property
    def signal(self) -> int | None:
        return -self.returncode if self.returncode is not None and self.returncode < 0 else None

    def failure_reason(self, limits: Limits) -> str | None:
        """Why the job failed, in words, or ``None`` if it exited normally."""
        if self.timed_out:
            return f"timeout: still running after {limits.timeout_s:g} s"
        if self.oom_killed or any(m in self.output for m in MEMORY_ERROR_MARKERS):
            return f"out of memory (limit {limits.memory_mb} MB)"
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.valid_signals() else str(self.signal)
            return f"crashed with signal {name}"
        if self.returncode not in (0, None):
            tail = " | ".join(line for line in self.output.strip().splitlines()[-3:])
            return f"exited with code {self.returncode}: {tail[-500:]}"
        return None


class OutputCapture:
    """Split a byte stream into lines with bounded memory; keep the tail and the result line."""

    MAX_LINE = 1 << 20

    def __init__(self, keep_bytes: int, on_line: Callable[[str], None] | None):
        self.keep_bytes, self.on_line = keep_bytes, on_line
        self.lines: deque[str] = deque()
        self.kept = 0
        self.dropped = 0
        self.partial = bytearray()
        self.result_line: str | None = None
        self.reward_loaded = False
        self.environment_error: str | None = None

    def feed(self, chunk: bytes) -> None:
        self.partial += chunk
        while True:
            nl = self.partial.find(b"\n")
            if nl < 0:
                if len(self.partial) > self.MAX_LINE:  # an endless line: keep its start only
                    self.dropped += len(self.partial) - self.MAX_LINE
                    del self.partial[self.MAX_LINE:]
                return
            line = self.partial[:nl].decode("utf-8", "replace")
            del self.partial[:nl + 1]
            self._line(line)

    def close(self) -> None:
        if self.partial:
            self._line(self.partial.decode("utf-8", "replace"))
            self.partial.clear()

    def _line(self, line: str) -> None:
        if line.startswith(RESULT):
            self.result_line = line[len(RESULT):]
        elif line.startswith(REWARD_LOADING):
            self.reward_loaded = True
        elif line.startswith(ENV_ERROR) and not self.reward_loaded and self.environment_error is None:
            self.environment_error = _error_of(line[len(ENV_ERROR):])
        if self.on_line is not None:
            self.on_line(line)
        line = line[:4096]
        self.lines.append(line)
        self.kept += len(line) + 1
        while self.kept > self.keep_bytes and len(self.lines) > 1:
            self.kept -= len(self.lines[0]) + 1
            self.dropped += len(self.lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self.lines)

    def result(self, returncode: int | None, wall_s: float, timed_out: bool = False,
               oom_killed: bool = False) -> SandboxResult:
        """How the job ended, with what its output said."""
        return SandboxResult(returncode=returncode, output=self.text(), wall_s=wall_s, timed_out=timed_out,
                             output_dropped=self.dropped, result_line=self.result_line, oom_killed=oom_killed,
                             reward_loaded=self.reward_loaded, environment_error=self.environment_error)


def _error_of(payload: str) -> str:
    import json

    try:
        error = json.loads(payload).get("error")
    except (ValueError, AttributeError):
        error = None
    return str(error or payload)[:1000]


def clean_environment(job_dir: Path, limits: Limits) -> dict[str, str]:
    """The only environment variables a sandboxed worker sees: no keys, no host settings."""
    threads = str(max(1, limits.threads))
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(job_dir),
        "TMPDIR": str(job_dir / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        # idle OpenMP threads sleep instead of spinning: on a busy machine, spinning threads of
        # parallel jobs starve each other (measured: 10x slower training)
        "OMP_WAIT_POLICY": "PASSIVE",
        "MALLOC_ARENA_MAX": "2",
        "MUJOCO_GL": "osmesa",
        "PYOPENGL_PLATFORM": "osmesa",
    }


class Sandbox:
    """Base class. Subclasses implement ``command``; ``run_worker`` is the seam's one method."""

    name = "base"
    safe = True  # False: the job can reach the host (shown to the user)
    skipped: list[str] = []  # with --sandbox auto: why safer backends were not used

    def command(self, kind: str, job_dir: Path, limits: Limits) -> list[str]:
        raise NotImplementedError

    def preexec(self, limits: Limits) -> Callable[[], None] | None:
        return None

    def environment(self, job_dir: Path, limits: Limits) -> dict[str, str]:
        return clean_environment(job_dir, limits)

    def cleanup(self, job_dir: Path) -> None:
        """Remove anything the backend left (containers); called after every job."""

    def missing_hint(self) -> str:
        """What to do when the guest cannot build an env in this sandbox that the host builds."""
        return "install the env's packages into the Python environment rewardsmith runs in"

    def run_worker(self, kind: str, job_dir: Path, limits: Limits,
                   on_line: Callable[[str], None] | None = None) -> SandboxResult:
        """Run the guest's job ``KIND`` on ``job_dir`` and wait for it (or its time limit)."""
        job_dir = prepare_job_dir(job_dir)
        try:
            return run_process(self.command(kind, job_dir, limits), job_dir, self.environment(job_dir, limits),
                               limits, self.preexec(limits), on_line)
        finally:
            self.cleanup(job_dir)


def prepare_job_dir(job_dir: Path) -> Path:
    job_dir = Path(job_dir).resolve()
    (job_dir / "tmp").mkdir(exist_ok=True)
    return job_dir


def run_process(argv: list[str], cwd: Path, env: dict[str, str], limits: Limits,
                preexec: Callable[[], None] | None = None,
                on_line: Callable[[str], None] | None = None) -> SandboxResult:
    """Start ``argv`` in its own session, capture its output, and kill its group at the end."""
    start = time.perf_counter()
    capture = OutputCapture(limits.output_bytes, on_line)
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=preexec)
    with _live_lock:
        _live_groups.add(proc.pid)
    reader = threading.Thread(target=_pump, args=(proc.stdout, capture), daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        _kill_group(proc.pid)
        proc.wait()
        with _live_lock:
            _live_groups.discard(proc.pid)
        reader.join(timeout=5)
    capture.close()
    return capture.result(proc.returncode, time.perf_counter() - start, timed_out=timed_out)


def signal_from_status(code: int | None) -> int | None:
    """Turn a ``128 + N`` exit status (a shell, bwrap's init or Docker's init reporting that the
    job died of signal N) into the ``-N`` that :class:`SandboxResult` uses for signals."""
    if code is not None and 128 < code < 128 + 32:
        return -(code - 128)
    return code


def _pump(stream, capture: OutputCapture) -> None:
    fd = stream.fileno()
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        capture.feed(chunk)
    stream.close()


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def register_killer(key: int, kill: Callable[[], None]) -> None:
    """Let :func:`kill_all` stop a job that is not a local process group (a container)."""
    with _live_lock:
        _live_killers[key] = kill


def unregister_killer(key: int) -> None:
    with _live_lock:
        _live_killers.pop(key, None)


def kill_all() -> None:
    """Kill every running job (on Ctrl-C); their ``run_worker`` calls then return."""
    with _live_lock:
        groups = list(_live_groups)
        killers = list(_live_killers.values())
    for pgid in groups:
        _kill_group(pgid)
    for kill in killers:
        try:
            kill()
        except Exception:  # noqa: BLE001 - best effort while stopping
            pass


def host_python() -> str:
    return sys.executable
