"""Resident warm workers: a per-user service that keeps warm sandboxes (:mod:`.warm`) between
commands, so that a ``train`` or ``solve`` started later finds its workers ready and pays for no
sandbox start and no torch import (``rewardsmith workers start``). Opt-in: without the service a
command starts its own pool and leaves nothing behind when it ends. The service stops after
``--idle`` minutes without a job, or with ``rewardsmith workers stop``.

- **Where.** One service per user and backend, listening on a unix socket in a folder only the
  user may open (``$XDG_RUNTIME_DIR/rewardsmith``, else ``/tmp/rewardsmith-UID``, mode 0700); it
  also checks every peer's uid. It starts with a clean environment (no keys: it never sees one).
- **What a job gets.** The same :class:`~.warm.WarmSandbox` a command would start itself, one pool
  per env and memory limit, so the same isolation: a fresh process forked for every job, its own
  limits, the sandbox swept after it. A job's log says it ran there (``[warm worker 3 of the
  resident workers, its job 7]``).
- **The exchange.** One connection per job: the host sends ``{"op": "run", ...}`` (kind, job
  folder, limits, env), the service streams the job's output lines back as they come (progress,
  ``@@policy-saved``), then its :class:`~.base.SandboxResult`. A host that goes away (Ctrl-C,
  killed) closes its connection, and the service kills the worker running its job.
- **Which host may use it.** A host uses the service only if it runs the same code (a
  fingerprint of the package's files and the Python executable) with the same backend and, for
  Docker, the same image. Otherwise it starts its own pool, as without the service, and says why.
- **Stopping.** ``workers stop`` (and the idle timeout) take no new job, let running ones end
  (up to :data:`STOP_GRACE_S`), then close every pool. A job cut off by a stop is reported to its
  host as a lost sandbox (:class:`~rewardsmith.errors.SandboxGone`), never as the reward's fault.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, fields
from pathlib import Path

from ...errors import SandboxGone, SandboxUnavailable
from .base import Limits, Sandbox, SandboxResult, prepare_job_dir, register_killer, unregister_killer
from .warm import WarmSandbox

IDLE_S = 15 * 60.0  # a service with no job for this long stops
STOP_GRACE_S = 60.0  # how long a stop waits for running jobs
MAX_POOLS = 3  # pools (envs) kept at once; the least recently used idle one goes first
RESIDENT_NOTE = " of the resident workers"
KEPT_ENV = ("PATH", "HOME", "LANG", "XDG_RUNTIME_DIR", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
            "DOCKER_CONFIG", "DOCKER_CONTEXT", "PYTHONDONTWRITEBYTECODE", "CI")


# -- where the service is, and which code it runs ---------------------------------------------------
def state_folder(create: bool = True) -> Path:
    """The user's folder for the service's socket and log (made 0700 if ``create``), checked to be
    a private folder of the user's: nothing else may put a socket there."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "rewardsmith" if runtime and os.access(runtime, os.W_OK) else \
        Path(f"/tmp/rewardsmith-{os.getuid()}")
    if create:
        base.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = base.lstat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not base.is_dir() or base.is_symlink():
        raise SandboxUnavailable(f"{base} is not a private folder of this user: remove it, or set XDG_RUNTIME_DIR")
    return base


def socket_path(backend: str, create: bool = True) -> Path:
    return state_folder(create) / f"workers-{backend}.sock"


def log_path(backend: str) -> Path:
    return state_folder() / f"workers-{backend}.log"


def fingerprint(box: Sandbox) -> str:
    """Which code a worker would run: the package's files (path, size, modification time), the
    Python executable, the backend and its image."""
    from .image import _code_files, package_dir

    digest = hashlib.sha256(f"{sys.executable}\0{box.name}\0{getattr(box, 'image_id', '')}".encode())
    root = package_dir()
    for path in _code_files():
        info = path.stat()
        digest.update(f"{path.relative_to(root)}\0{info.st_size}\0{info.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:16]


# -- messages: one JSON object per line ----------------------------------------------------------------
def _send(conn: socket.socket, message: dict) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _messages(conn: socket.socket):
    buffer = b""
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield json.loads(line)


def ask(backend: str, message: dict, timeout: float = 5.0) -> dict | None:
    """One question to the service of ``backend`` and its answer (``None``: no service answers)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(str(socket_path(backend, create=False)))
            _send(conn, message)
            return next(_messages(conn), None)
    except (OSError, ValueError, SandboxUnavailable):
        return None


# -- the service ------------------------------------------------------------------------------------------
class Service:
    """The resident process: warm pools of one backend, one per env and memory limit."""

    def __init__(self, backend: str, idle_s: float):
        from .. import sandboxes

        self.base = sandboxes.make_sandbox(backend)
        self.backend, self.idle_s = backend, idle_s
        self.fingerprint = fingerprint(self.base)
        self.pools: dict[str, WarmSandbox] = {}
        self.used: dict[str, float] = {}
        self.running: dict[int, tuple[WarmSandbox, Path]] = {}  # connection id -> (pool, job folder)
        self.lock = threading.Condition()
        self.last_job = time.monotonic()
        self.stopping = False
        self.jobs = 0
        self.started = time.time()

    def pool(self, env_spec: dict, limits: Limits, keep: int) -> WarmSandbox:
        key = json.dumps([env_spec, limits.memory_mb, limits.processes, limits.file_mb], sort_keys=True)
        with self.lock:
            pool = self.pools.get(key)
            if pool is None:
                self._evict()
                pool = WarmSandbox(self.base, env_spec, keep=keep, limits=limits, note=RESIDENT_NOTE)
                self.pools[key] = pool
            elif keep > pool.keep:
                pool.keep = keep
                pool.start(keep)
            self.used[key] = time.monotonic()
        return pool

    def _evict(self) -> None:
        busy = {id(pool) for pool, _ in self.running.values()}
        while len(self.pools) >= MAX_POOLS:
            idle = [key for key, pool in self.pools.items() if id(pool) not in busy]
            if not idle:
                return
            oldest = min(idle, key=lambda key: self.used.get(key, 0.0))
            self.pools.pop(oldest).close()
            self.used.pop(oldest, None)

    def status(self) -> dict:
        with self.lock:
            pools = [{"env": json.loads(key)[0].get("id") or json.loads(key)[0].get("name"),
                      "workers": len(pool.idle) + len(pool.busy),
                      "ready": sum(w.ready.is_set() and w.broken is None for w in pool.idle),
                      "busy": len(pool.busy)}
                     for key, pool in self.pools.items()]
            return {"backend": self.backend, "pid": os.getpid(), "fingerprint": self.fingerprint,
                    "image": getattr(self.base, "image_id", None), "pools": pools, "jobs": self.jobs,
                    "running": len(self.running), "started": self.started, "stopping": self.stopping,
                    "idle_s": round(time.monotonic() - self.last_job, 1) if not self.running else 0.0,
                    "stops_after_s": self.idle_s}

    # -- one connection ----------------------------------------------------------------------------
    def handle(self, conn: socket.socket) -> None:
        try:
            with conn:
                request = next(_messages(conn), None)
                if request is None:
                    return
                op = request.get("op")
                if op == "status":
                    _send(conn, self.status())
                elif op == "warm":
                    pool = self.pool(request["env_spec"], Limits(**request["limits"]), int(request.get("keep", 1)))
                    pool.wait_ready(float(request.get("timeout", 300)))
                    _send(conn, self.status())
                elif op == "stop":
                    self.stop()
                    _send(conn, {"stopping": True, "pid": os.getpid()})
                elif op == "run":
                    self.run(conn, request)
                else:
                    _send(conn, {"error": f"unknown op {op!r}"})
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a host that went away, or a malformed request: nothing to answer

    def run(self, conn: socket.socket, request: dict) -> None:
        with self.lock:
            if self.stopping:
                _send(conn, {"gone": "the resident workers are stopping"})
                return
        limits = Limits(**request["limits"])
        pool = self.pool(request["env_spec"], limits, int(request.get("keep", 1)))
        job_dir = Path(request["job_dir"])
        key = id(conn)
        with self.lock:
            self.running[key] = (pool, job_dir)
            self.jobs += 1
        send_lock = threading.Lock()
        host_gone = threading.Event()

        def on_line(line: str) -> None:
            if host_gone.is_set():
                return
            try:
                with send_lock:
                    _send(conn, {"line": line})
            except OSError:
                host_gone.set()

        watcher = threading.Thread(target=self._watch, args=(conn, pool, job_dir, host_gone), daemon=True)
        watcher.start()
        try:
            result = pool.run_worker(request["kind"], job_dir, limits, on_line,
                                     cancelled=host_gone.is_set)
            with send_lock:
                if self.stopping and result.returncode != 0 and not result.timed_out:
                    _send(conn, {"gone": "the resident workers were stopped during this job"})
                else:
                    _send(conn, {"result": asdict(result)})
        except SandboxGone as exc:
            with send_lock:
                _send(conn, {"gone": str(exc)})
        finally:
            with self.lock:
                self.running.pop(key, None)
                self.last_job = time.monotonic()
                self.lock.notify_all()

    @staticmethod
    def _watch(conn: socket.socket, pool, job_dir: Path, host_gone: threading.Event) -> None:
        """The host sends nothing after its request: an end of file means it went away."""
        try:
            while conn.recv(1024):
                pass
        except OSError:
            pass
        if not host_gone.is_set():
            host_gone.set()
            pool.kill_job(job_dir)

    # -- the whole service -------------------------------------------------------------------------
    def serve(self, path: Path) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(64)
        listener.settimeout(1.0)
        print(f"resident {self.backend} workers: pid {os.getpid()}, socket {path}", flush=True)
        try:
            while not self.stopping:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    with self.lock:
                        idle = not self.running and time.monotonic() - self.last_job > self.idle_s
                    if idle:
                        print(f"no job for {self.idle_s:g} s: stopping", flush=True)
                        self.stop()
                    continue
                if not _same_user(conn):
                    conn.close()
                    continue
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()
        finally:
            # no new host finds it; running jobs end (or are cut off); then every worker goes
            listener.close()
            path.unlink(missing_ok=True)
            with self.lock:
                self.stopping = True
                deadline = time.monotonic() + STOP_GRACE_S
                while self.running and time.monotonic() < deadline:
                    self.lock.wait(timeout=0.5)
                pools, self.pools = list(self.pools.values()), {}
            for pool in pools:
                pool.close()
            print("stopped", flush=True)

    def stop(self) -> None:
        """Take no new job; :meth:`serve` then lets running ones end and closes the pools."""
        with self.lock:
            self.stopping = True
            self.lock.notify_all()


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return uid == os.getuid()


# -- the host's side ------------------------------------------------------------------------------------------
class ResidentSandbox(Sandbox):
    """``base`` whose jobs run on the resident service's warm workers (see the module's docstring)."""

    def __init__(self, base: Sandbox, env_spec: dict, keep: int, limits: Limits, status: dict):
        self.base, self.env_spec, self.keep, self.limits = base, env_spec, keep, limits
        self.name, self.safe, self.skipped = base.name, base.safe, base.skipped
        self.service_pid = status["pid"]
        self.path = socket_path(base.name)

    def __getattr__(self, name: str):  # image_id, client, ...: the backend's
        return getattr(self.__dict__["base"], name)

    def missing_hint(self) -> str:
        return self.base.missing_hint()

    def _limits(self, limits: Limits) -> dict:
        return {field.name: getattr(limits, field.name) for field in fields(Limits)}

    def run_worker(self, kind: str, job_dir: Path, limits: Limits, on_line=None) -> SandboxResult:
        job_dir = prepare_job_dir(job_dir)
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        killed = threading.Event()

        def kill() -> None:  # kill_all (Ctrl-C): the service kills the job when its host goes
            killed.set()
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        start = time.perf_counter()
        register_killer(id(conn), kill)
        try:
            try:
                conn.connect(str(self.path))
                _send(conn, {"op": "run", "kind": kind, "job_dir": str(job_dir), "env_spec": self.env_spec,
                             "keep": self.keep, "limits": self._limits(limits)})
                for message in _messages(conn):
                    if "line" in message:
                        if on_line is not None:
                            on_line(message["line"])
                    elif "result" in message:
                        return SandboxResult(**message["result"])
                    elif "gone" in message:
                        raise SandboxGone(f"{message['gone']}; resume once they run again, or stop them "
                                          f"(`rewardsmith workers stop`) to use a pool of this command's own")
            except OSError as exc:
                if not killed.is_set():
                    raise SandboxGone(f"the resident warm workers (pid {self.service_pid}) cannot be reached: {exc}") from None
            if killed.is_set():
                return SandboxResult(returncode=-9, output="", wall_s=time.perf_counter() - start)
            raise SandboxGone(f"the resident warm workers (pid {self.service_pid}) ended during a job; "
                              f"see {log_path(self.name)}")
        finally:
            unregister_killer(id(conn))
            conn.close()

    def close(self) -> None:
        pass  # the service keeps its workers for the next command


def connect(box: Sandbox, env_spec: dict, keep: int, limits: Limits) -> tuple[ResidentSandbox | None, str | None]:
    """``box`` on the resident workers if a service of its backend runs this code, else
    ``(None, why not)`` (``why`` is ``None`` when no service runs at all)."""
    status = ask(box.name, {"op": "status"})
    if status is None or "pid" not in status or status.get("stopping"):
        return None, None
    if status.get("fingerprint") != fingerprint(box):
        return None, (f"the resident {box.name} workers (pid {status['pid']}) run other code or another image: "
                      f"this command starts its own (restart them: `rewardsmith workers stop` and `start`)")
    return ResidentSandbox(box, env_spec, keep, limits, status), None


# -- starting and stopping it (the CLI's `workers` commands) ---------------------------------------------------
def start(backend: str, idle_s: float = IDLE_S, timeout: float = 60.0) -> dict:
    """Start the service of ``backend`` in the background (or find it running) and return its status."""
    status = ask(backend, {"op": "status"})
    if status is not None:
        return status
    env = {key: value for key, value in os.environ.items() if key in KEPT_ENV}
    with open(log_path(backend), "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", __name__, "--backend", backend, "--idle", str(idle_s)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, cwd="/")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ask(backend, {"op": "status"})
        if status is not None:
            return status
        if proc.poll() is not None:
            tail = log_path(backend).read_text(errors="replace").strip().splitlines()[-1:]
            raise SandboxUnavailable(f"the resident {backend} workers did not start: {' '.join(tail)[-300:]}")
        time.sleep(0.05)
    proc.kill()
    raise SandboxUnavailable(f"the resident {backend} workers did not answer within {timeout:g} s; "
                             f"see {log_path(backend)}")


def warm(backend: str, env_spec: dict, limits: Limits, keep: int, timeout: float = 300.0) -> dict | None:
    """Have the service start ``keep`` workers for this env now, and wait until they are ready."""
    return ask(backend, {"op": "warm", "env_spec": env_spec, "keep": keep, "timeout": timeout,
                         "limits": {field.name: getattr(limits, field.name) for field in fields(Limits)}},
               timeout=timeout + 5)


def stop(backend: str, timeout: float = STOP_GRACE_S + 30) -> bool:
    """Stop the service of ``backend``; ``True`` if one was running. Returns once it is gone
    (every worker with it)."""
    answer = ask(backend, {"op": "stop"})
    if answer is None or "pid" not in answer:
        return False
    deadline = time.monotonic() + timeout
    while _alive(int(answer["pid"])) and time.monotonic() < deadline:
        time.sleep(0.05)
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (its parent has not waited for it yet) is gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rewardsmith.runners.sandboxes.resident")
    parser.add_argument("--backend", required=True)
    parser.add_argument("--idle", type=float, default=IDLE_S, help="seconds without a job before it stops")
    args = parser.parse_args(argv)
    service = Service(args.backend, args.idle)
    service.serve(socket_path(args.backend))
    return 0


if __name__ == "__main__":
    sys.exit(main())
