"""Warm workers: sandboxes that imported torch and the env's packages once and then serve jobs,
each job in a fresh process forked inside the sandbox (:mod:`rewardsmith.runners.warm_guest`).

:class:`WarmSandbox` wraps a backend that can start them (``warm_command``) and keeps the seam:
``run_worker(kind, job_dir, limits, on_line) -> SandboxResult``, so the jobs layer does not
change. What a job gets, and why nothing one job does reaches the next:

- **One job at a time per warm sandbox.** Each sandbox has one writable folder, its *slot*,
  bound at ``/job``. For a job the host moves the entries of the job's folder into the slot and
  atomically swaps the folder for a symlink to the slot (``renameat2(RENAME_EXCHANGE)``), so the
  host's own reads and writes while the job runs (a saved policy, an evaluation's ``go``) work as
  with a cold sandbox. When the job has ended and every process of it is dead, the host swaps
  the folder back and moves every entry out of the slot: the slot is empty for the next job,
  which never sees another job's folder. Everything else in the sandbox is read-only (no
  writable ``/tmp``, ``/dev`` or ``/dev/shm``; ``TMPDIR`` is the job's ``tmp/``).
- **A fresh process per job.** The zygote forks; the child takes the job's clean environment,
  a new session, its rlimits (file size, no core dumps, no POSIX message queues; memory and
  processes by rlimit where no cgroup can be made) and, where the host may make cgroups (root),
  the job's own cgroup (memory of the job's whole tree, process count, OOM kills counted), which
  the host puts it into before it may start. Patched modules, threads, open files die with it.
- **Nothing is left behind.** After the child exits, the zygote SIGKILLs every other process in
  the sandbox's pid namespace (``kill(-1)`` until none is left) and removes every SysV IPC object
  of its IPC namespace; if that does not come clean, the host discards the sandbox.
- **The zygote protects itself.** ``PR_SET_DUMPABLE 0``: reward code of the same uid can neither
  ptrace it nor read its memory or descriptors. It holds no job's data (it forks before a job's
  files are read) and reads nothing a job wrote. A job can still kill it (as it could kill a cold
  guest): the job then ends as killed, and the sandbox is replaced.
- **Limits hold.** The wall-clock limit is the host's: a job still running at its deadline has
  its whole warm sandbox killed (a job that timed out, crashed its sandbox or left it unclean
  never shares it with another). Each warm container is also capped as a whole (its job's
  memory plus the zygote's, processes), and a bwrap one dies with the host.
- **When a warm worker dies.** During a job: the job ends as killed (SIGKILL), as a cold guest
  killed mid-job would, unless the backend says its engine is going away (Docker: the engine no
  longer answers), which stops the run instead (:class:`~rewardsmith.errors.SandboxGone`: not the
  reward's fault). The sandbox is replaced in the background. One that never gets ready (or a
  backend that cannot start one) sends the jobs cold, to a fresh sandbox of the backend as
  before, and each such job's log says so in its first line; a warm job's log names its worker.
- **An evaluation started ahead** (:class:`~rewardsmith.runners.jobs.PendingEvaluation`) waits
  for its ``go`` file on the host, not in a warm worker: a warm job starts in milliseconds, so
  holding a worker through the training would only take one from another job.

Warm sandboxes start in the background as soon as the pool exists (the solve builds it before
the designer works) and are killed with their process groups on close, on Ctrl-C
(:func:`~.base.kill_all`) and when the host dies (``--die-with-parent``; the zygote also exits
when its control socket closes).
"""

from __future__ import annotations

import ctypes
import errno
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Protocol

from ..protocol import GO_FILE, JOB_FILE, receive, send
from .base import Limits, OutputCapture, Sandbox, SandboxResult, _live_groups, _live_lock, prepare_job_dir
from .cgroups import JobCgroup
from .process import user_process_count

READY_TIMEOUT_S = 300.0
EXTRA_AFTER_S = 10.0  # a job waiting this long for a worker, with every one busy, starts one more
STARTING = max(1, min(4, len(os.sched_getaffinity(0))))  # warm workers started at once
WARM_NOTE = "[warm worker"  # a job's log starts with how it ran: "[warm worker 3, its job 2]"
COLD_NOTE = "no warm worker: this job ran in a fresh sandbox"  # or "[no warm worker ... (why)]"
RENAME_EXCHANGE = 2
AT_FDCWD = -100
_ids = itertools.count()


class WarmUnavailable(Exception):
    """This warm worker cannot serve a job (not ready, dead); the job runs cold."""


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (``renameat2(RENAME_EXCHANGE)``)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"cannot swap {a} and {b}: {os.strerror(err)}")


def move_entries(src: Path, dst: Path) -> None:
    """Move every entry of ``src`` into ``dst`` (renamed; copied across filesystems: regular
    files, folders and symlinks, never following one; anything else is dropped)."""
    for entry in os.scandir(src):
        target = dst / entry.name
        try:
            os.rename(entry.path, target)
            continue
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
            os.unlink(entry.path)
        elif entry.is_dir(follow_symlinks=False):
            target.mkdir()
            while True:  # until it is empty: the host may add a file meanwhile (live-shared experience)
                move_entries(Path(entry.path), target)
                try:
                    os.rmdir(entry.path)
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOTEMPTY:
                        raise
        else:
            if entry.is_file(follow_symlinks=False):
                shutil.copyfile(entry.path, target, follow_symlinks=False)
            os.unlink(entry.path)


def _status_fields(pid: int | str) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _status_fields(entry.name).get("PPid") == str(pid):
            found.append(int(entry.name))
    return found


def descendants(root: int) -> list[int]:
    """Every process below ``root``."""
    parents: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            ppid = _status_fields(entry.name).get("PPid")
            if ppid and ppid.isdigit():
                parents.setdefault(int(ppid), []).append(int(entry.name))
    found, level = [], [root]
    while level:
        level = [child for pid in level for child in parents.get(pid, [])]
        found += level
    return found


def host_pid(root: int, ns_pid: int, depth: int = 3) -> int | None:
    """The host's pid of the process below ``root`` that is ``ns_pid`` in its own namespace."""
    level = [root]
    for _ in range(depth):
        level = [child for pid in level for child in _children(pid)]
        for pid in level:
            if _status_fields(pid).get("NSpid", "").split()[-1:] == [str(ns_pid)]:
                return pid
    return None


def control_folder(folder: Path, worker: int) -> Path:
    """A new folder for a worker's control socket: in the pool's folder, or in /tmp where that
    path would be too long for a unix socket (108 bytes)."""
    if len(os.fsencode(folder)) < 80:
        path = folder / f"c{worker}"
        path.mkdir()
        return path
    return Path(tempfile.mkdtemp(prefix="rsw-", dir="/tmp"))


class WarmProcess(Protocol):
    """A running warm sandbox, as its backend started it."""

    def root_pid(self) -> int | None:
        """The host's pid of a process the zygote runs below (``None``: unknown)."""

    def alive(self) -> bool: ...

    def output(self) -> str:
        """What the sandbox printed itself (for a message when it never got ready)."""

    def kill(self) -> None:
        """Kill it and everything in it; return once it is gone."""

    def killed(self) -> bool:
        """Whether the host killed it (on purpose, or everything on Ctrl-C)."""


class PopenWarm:
    """A warm sandbox that is a local process tree (bwrap): killed as its process group, and the
    processes inside (in a session of their own) one by one."""

    def __init__(self, argv: list[str], cwd: Path):
        self.log = OutputCapture(64 * 1024, None)
        self.proc = subprocess.Popen(argv, cwd=cwd, env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        with _live_lock:
            _live_groups.add(self.proc.pid)
        threading.Thread(target=_pump_log, args=(self.proc.stdout, self.log), daemon=True).start()

    def root_pid(self) -> int | None:
        return self.proc.pid

    def killed(self) -> bool:
        return False  # nothing to tell apart: a lost bwrap sandbox is not an engine gone

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.text()

    def kill(self) -> None:
        inside = descendants(self.proc.pid)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in inside:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.wait()
        with _live_lock:
            _live_groups.discard(self.proc.pid)
        deadline = time.monotonic() + 5
        while any(_status_fields(pid).get("State", "Z")[:1] != "Z" for pid in inside) and time.monotonic() < deadline:
            time.sleep(0.01)


class WarmWorker:
    """One warm sandbox: a zygote serving jobs one at a time through its slot."""

    def __init__(self, base: Sandbox, folder: Path, env_spec: str, limits: Limits):
        self.base, self.id = base, next(_ids)
        self.slot = folder / f"slot-{self.id}"
        self.slot.mkdir(parents=True)
        self.control_dir = control_folder(folder, self.id)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(str(self.control_dir / "s"))
        self.listener.listen(1)
        self.control: socket.socket | None = None
        self.sandbox: WarmProcess = base.warm_start(  # type: ignore[attr-defined]
            self.slot, self.control_dir / "s", env_spec, limits)
        self.ready = threading.Event()
        self.zygote: int | None = None  # the zygote's pid on the host
        self.broken: str | None = None
        self.jobs = 0
        self.current: Path | None = None  # the job folder it serves now
        threading.Thread(target=self._wait_ready, daemon=True).start()

    def _wait_ready(self) -> None:
        """Take the zygote's connection (and stop listening: nothing else may connect), then wait
        for it to say it is ready."""
        try:
            self.listener.settimeout(READY_TIMEOUT_S)
            self.control, _ = self.listener.accept()
            self.control.settimeout(READY_TIMEOUT_S)
            message, _ = receive(self.control)
        except OSError as exc:
            message = {"error": f"no answer: {exc}"}
        finally:
            self.listener.close()
            Path(self.listener_path).unlink(missing_ok=True)
        if message is None or "ready" not in message:
            self.broken = (message or {}).get("error") or f"it ended: {self.sandbox.output()[-300:]}"
        else:
            root = self.sandbox.root_pid()
            self.zygote = host_pid(root, int(message["pid"])) if root else None
        self.ready.set()

    @property
    def listener_path(self) -> str:
        return str(self.control_dir / "s")

    def wait_ready(self, timeout: float) -> bool:
        return self.ready.wait(timeout) and self.broken is None

    # -- one job ---------------------------------------------------------------------------------
    def run(self, kind: str, job_dir: Path, limits: Limits, env: dict[str, str],
            on_line=None) -> SandboxResult:
        if not self.ready.is_set() or self.broken or self.control is None or not self.sandbox.alive():
            raise WarmUnavailable(self.broken or "not ready")
        control = self.control
        start = time.perf_counter()
        self.jobs += 1
        self.current = job_dir
        group = JobCgroup.create(limits.memory_mb, limits.processes) if self.zygote else None
        nproc = None if group is not None or os.geteuid() == 0 else user_process_count() + limits.processes
        capture = OutputCapture(limits.output_bytes, on_line)
        out_r, out_w = os.pipe()
        go_r, go_w = os.pipe()
        attached = self._attach(job_dir)
        reader = threading.Thread(target=_pump_fd, args=(out_r, capture), daemon=True)
        timed_out, code, lost = False, -signal.SIGKILL, False
        started = ended = None
        try:
            request = {"kind": kind, "job": "/job", "env": env,
                       "limits": {"memory_mb": None if group else limits.memory_mb, "file_mb": limits.file_mb,
                                  "nproc": nproc}}
            try:
                send(control, request, [out_w, go_r])
            finally:
                os.close(out_w)
                os.close(go_r)
            reader.start()
            deadline = start + limits.timeout_s
            started = self._receive(deadline)
            if started is not None and "started" in started:
                if group is not None:
                    child = host_pid(self.zygote, int(started["started"]), depth=1) if self.zygote else None
                    if child is None:
                        raise WarmUnavailable("cannot find the job's process")
                    group.add(child)
                os.write(go_w, b"g")
                ended = self._receive(deadline)
                if ended is not None and "exited" in ended:
                    code = int(ended["exited"])
                    if not ended.get("clean"):
                        self.broken = "the last job left something behind"
                elif ended is None and self.sandbox.alive() and time.perf_counter() >= deadline:
                    timed_out = True
            elif started is None and time.perf_counter() >= deadline:
                timed_out = True
            lost = not timed_out and not (started and "started" in started and ended and "exited" in ended)
            lost = lost and not self.sandbox.killed()  # not by the host (Ctrl-C)
            if lost:
                self.broken = "it ended during a job"
        except BaseException:
            self.broken = self.broken or "a job could not be handed over"
            raise
        finally:
            os.close(go_w)
            if self.broken or timed_out or not self.sandbox.alive():
                self.broken = self.broken or "timed out"
                self.kill()
            reader.join(timeout=5)
            oom = group is not None and group.oom_kills() > 0
            if group is not None:
                group.remove()
            self._detach(job_dir, attached)
            self.current = None
        capture.close()
        if lost:
            warm_lost = getattr(self.base, "warm_lost", None)
            if warm_lost is not None:  # the sandbox's engine may be gone: not the reward's doing
                warm_lost()
        return capture.result(code, time.perf_counter() - start, timed_out=timed_out, oom_killed=oom)

    def _receive(self, deadline: float) -> dict | None:
        """The zygote's next message, or ``None`` if it is gone or the deadline passed."""
        assert self.control is not None
        self.control.settimeout(max(0.001, deadline - time.perf_counter()))
        try:
            message, fds = receive(self.control)
        except (TimeoutError, OSError, ValueError):
            return None
        for fd in fds:
            os.close(fd)
        return message

    def _attach(self, job_dir: Path) -> Path:
        """Put the job's files into the slot and the folder's path onto the slot."""
        move_entries(job_dir, self.slot)
        link = job_dir.parent / f".{job_dir.name}.warm-{self.id}"
        link.unlink(missing_ok=True)
        os.symlink(self.slot, link)
        exchange(link, job_dir)  # the folder's path now leads into the slot; link is the old folder
        move_entries(link, self.slot)  # whatever the host wrote in between
        hand_over = getattr(self.base, "warm_hand_over", None)
        if hand_over is not None:  # files the sandbox's user must own (Docker's non-root user)
            hand_over(self.slot)
        return link

    def _detach(self, job_dir: Path, link: Path) -> None:
        """Give the folder its own files back and leave the slot empty."""
        exchange(link, job_dir)
        link.unlink()
        move_entries(self.slot, job_dir)

    def kill(self) -> None:
        self.sandbox.kill()

    def close(self) -> None:
        if self.control is not None:
            self.control.close()  # the zygote exits when it reads the end of its socket
        self.listener.close()
        self.kill()
        shutil.rmtree(self.slot, ignore_errors=True)
        shutil.rmtree(self.control_dir, ignore_errors=True)


def _pump_fd(fd: int, capture: OutputCapture) -> None:
    try:
        while chunk := os.read(fd, 65536):
            capture.feed(chunk)
    except OSError:
        pass
    finally:
        os.close(fd)


def _pump_log(stream, capture: OutputCapture) -> None:
    _pump_fd(os.dup(stream.fileno()), capture)
    stream.close()


def _started_ahead(kind: str, job_dir: Path) -> bool:
    """Whether the job waits for the host's ``go``: every evaluation, and a job that says so (a
    ``score`` job started ahead of the training whose episodes it scores)."""
    if kind == "evaluate":
        return True
    try:
        return bool(json.loads((job_dir / JOB_FILE).read_text()).get("wait"))
    except (OSError, ValueError, AttributeError):
        return False


def wait_for_go(job_dir: Path, timeout_s: float, cancelled=lambda: False) -> bool:
    """An evaluation started ahead waits for its policy (the host's ``go`` file) here, on the
    host, rather than holding a warm worker: a warm job starts at once. ``False``: its time ran
    out, or ``cancelled()`` (its host went away). A cancelled one (its ``job.json`` removed) goes
    on, to say so."""
    deadline = time.monotonic() + timeout_s
    while not (job_dir / GO_FILE).exists() and (job_dir / JOB_FILE).exists():
        if time.monotonic() > deadline or cancelled():
            return False
        time.sleep(0.01)
    return True


class WarmSandbox(Sandbox):
    """A backend with a pool of warm workers in front (see the module's docstring).

    Workers start one after another in the background, up to ``keep`` (on a few cores the first
    is ready soonest that way: several importing torch at once would all be ready late). A job
    takes a ready idle worker, or waits for one (one being started, or one coming back from its
    job: with more candidates than workers their jobs take turns). Jobs started ahead (an
    evaluation, a score job) wait for their inputs on the host, not in a worker, so no job holds
    a worker while it waits for another; still, after :data:`EXTRA_AFTER_S` with every worker
    busy (a reward that sleeps until its timeout, say) a job starts one more of its own. A worker
    back from a healthy job is kept; one that misbehaved is killed.
    """

    def __init__(self, base: Sandbox, env_spec: dict | None = None, keep: int = 2, limits: Limits | None = None,
                 note: str = ""):
        self.base, self.keep, self.limits, self.note = base, keep, limits or Limits(), note
        self.name, self.safe, self.skipped = base.name, base.safe, base.skipped
        self.env_spec = json.dumps(env_spec or {})
        self.folder = Path(tempfile.mkdtemp(prefix="rewardsmith-warm-"))
        self.idle: list[WarmWorker] = []  # ready, or starting
        self.busy: set[WarmWorker] = set()
        self.cond = threading.Condition()
        self.closed = False
        self.target = 0  # how many workers the starting thread makes the pool hold
        self.cold_reason: str | None = None  # why a job ran cold (a warm worker's problem)
        self.spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warm-spawner")
        threading.Thread(target=self._grow, daemon=True, name="warm-start").start()
        self.start(keep)

    def __getattr__(self, name: str):  # image_id, client, ...: the backend's
        return getattr(self.__dict__["base"], name)

    def missing_hint(self) -> str:
        return self.base.missing_hint()

    def start(self, count: int) -> None:
        """Have ``count`` workers (at most ``keep``) in the pool soon, started in the background."""
        with self.cond:
            self.target = max(self.target, min(count, self.keep))
            self.cond.notify_all()

    def _spawn(self) -> WarmWorker:
        """A new warm worker, started from the pool's own thread: ``bwrap --die-with-parent``
        (and the zygote) end when the *thread* that started them ends."""
        worker = self.spawner.submit(WarmWorker, self.base, self.folder, self.env_spec, self.limits).result()
        threading.Thread(target=self._when_ready, args=(worker,), daemon=True).start()
        return worker

    def _when_ready(self, worker: WarmWorker) -> None:
        worker.ready.wait()
        with self.cond:
            if worker.broken is not None and worker in self.idle:
                self.idle.remove(worker)
                self.cold_reason = worker.broken
                self.target = 0  # the backend cannot start warm workers now: jobs run cold
                worker.close()
            self.cond.notify_all()

    def _grow(self) -> None:
        """The starting thread: up to :data:`STARTING` workers at once (one per core: each is busy
        importing torch), until the pool holds ``target``."""
        while True:
            with self.cond:
                while not self.closed and (len(self.idle) + len(self.busy) >= self.target
                                           or sum(not w.ready.is_set() for w in self.idle) >= STARTING):
                    self.cond.wait()
                if self.closed:
                    return
                try:
                    self.idle.append(self._spawn())
                except Exception as exc:  # noqa: BLE001 - the backend cannot start one: jobs run cold
                    self.cold_reason = f"{type(exc).__name__}: {exc}"[:300]
                    self.target = 0
                    self.cond.notify_all()

    def _acquire(self, cancelled=lambda: False) -> WarmWorker | None:
        """A ready worker for a job (``None``: none can be had; the job runs cold)."""
        waited_from = time.monotonic()
        with self.cond:
            while not self.closed and not cancelled():
                ready = [w for w in self.idle if w.ready.is_set() and w.broken is None]
                if ready:
                    worker = ready[0]
                    self.idle.remove(worker)
                    self.busy.add(worker)
                    return worker
                if self.target == 0 and self.cold_reason is not None:
                    return None  # warm workers do not start here
                if len(self.idle) + len(self.busy) < self.keep:
                    self.target = max(self.target, len(self.idle) + len(self.busy) + 1)
                    self.cond.notify_all()
                elif not self.idle and time.monotonic() - waited_from > EXTRA_AFTER_S:
                    try:
                        worker = self._spawn()  # every worker is busy: one more, for this job only
                    except Exception as exc:  # noqa: BLE001 - the job runs cold (and says why)
                        self.cold_reason = f"{type(exc).__name__}: {exc}"[:300]
                        return None
                    self.busy.add(worker)
                    return worker
                self.cond.wait(timeout=0.25)
        return None

    def _release(self, worker: WarmWorker) -> None:
        """A worker back from a job: kept if healthy while the pool holds no more than ``keep``."""
        with self.cond:
            self.busy.discard(worker)
            keep = not self.closed and worker.broken is None and len(self.idle) + len(self.busy) < self.keep
            if keep:
                self.idle.insert(0, worker)
            self.cond.notify_all()
        if not keep:
            worker.close()

    def run_worker(self, kind: str, job_dir: Path, limits: Limits, on_line=None,
                   cancelled=lambda: False) -> SandboxResult:
        """The seam's method; ``cancelled()`` (the resident service's: the job's host went away)
        ends a job that still waits for its ``go`` or a worker."""
        job_dir = prepare_job_dir(job_dir)
        start = time.perf_counter()
        if _started_ahead(kind, job_dir) and not wait_for_go(job_dir, limits.timeout_s, cancelled):
            return SandboxResult(returncode=None, output="", wall_s=time.perf_counter() - start, timed_out=True)
        limits = replace(limits, timeout_s=max(1.0, limits.timeout_s - (time.perf_counter() - start)))
        worker = self._acquire(cancelled)
        if cancelled():
            if worker is not None:
                self._release(worker)
            return SandboxResult(returncode=-signal.SIGKILL, output="", wall_s=time.perf_counter() - start)
        if worker is not None:
            try:
                if worker.wait_ready(READY_TIMEOUT_S):
                    env = {**self.base.environment(Path("/job"), limits), "TMPDIR": "/job/tmp"}
                    result = worker.run(kind, job_dir, limits, env, on_line)
                    result.output = f"{WARM_NOTE} {worker.id}{self.note}, its job {worker.jobs}]\n" + result.output
                    return result
                self.cold_reason = worker.broken
            except WarmUnavailable as exc:
                self.cold_reason = str(exc)
            finally:
                self._release(worker)
        result = self.base.run_worker(kind, job_dir, limits, on_line)
        result.output = f"[{COLD_NOTE} ({self.cold_reason})]\n" + result.output
        return result

    def kill_job(self, job_dir: Path) -> None:
        """Kill the worker serving the job in ``job_dir`` (its host went away); it is replaced.
        ``job_dir`` as the job was given (not resolved: during the job it leads into the slot)."""
        job_dir = Path(job_dir)
        with self.cond:
            workers = [w for w in self.busy if w.current == job_dir]
        for worker in workers:
            worker.broken = "its host went away during a job"
            worker.kill()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the pool holds ``keep`` ready workers (``False``: not in time, or they cannot start)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while sum(w.ready.is_set() and w.broken is None for w in [*self.idle, *self.busy]) < self.keep:
                if self.closed or (self.target == 0 and self.cold_reason) or time.monotonic() > deadline:
                    return False
                self.start(self.keep)
                self.cond.wait(timeout=0.25)
        return True

    def close(self) -> None:
        with self.cond:
            self.closed = True
            workers = [*self.idle, *self.busy]
            self.idle.clear()
            self.cond.notify_all()
        for worker in workers:
            worker.close()
        self.spawner.shutdown(wait=True)
        shutil.rmtree(self.folder, ignore_errors=True)
