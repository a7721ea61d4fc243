"""The warm worker's side: a zygote inside a sandbox that imported torch and the env's packages
once and forks a fresh child for every job (``python -I -m rewardsmith.runners.warm_guest SOCKET ENV``).

It connects to the host's control socket ``SOCKET`` (a unix ``SOCK_SEQPACKET`` socket, one JSON
message per packet, in a folder the sandbox sees read-only; :mod:`.sandboxes.warm` stops
listening once the zygote is connected, so nothing else in the sandbox can connect). The zygote
says ``{"ready": ...}`` once it has imported everything, then serves one job at a time:

1. the host sends ``{"kind", "job", "env", "limits"}`` with the write end of a fresh pipe (the
   job's stdout and stderr, read by the host exactly like a cold guest's output);
2. the zygote forks; the child closes the control socket and every other inherited descriptor,
   starts a new session, takes the job's clean environment, its rlimits, an OOM score that makes
   the kernel pick it (not the zygote) when memory runs out, waits for the host's ``go`` (sent once
   the host has put it into the job's cgroup), and runs the same code a cold guest runs
   (:func:`rewardsmith.runners.guest.main`), then leaves with ``os._exit``;
3. when the child has exited, the zygote sweeps the sandbox: it SIGKILLs every other process
   there (``kill(-1)`` reaches everything in the sandbox's pid namespace but init and itself,
   repeated until none is left), removes every SysV IPC object (shared memory, semaphores,
   message queues), and reports ``{"exited": STATUS, "clean": BOOL}``. A sweep that did not come
   clean makes the host discard this sandbox.

The zygote holds no job's data: it forks before a job's files are read, and the child reads its
own. It calls ``prctl(PR_SET_DUMPABLE, 0)`` first, so no process of the same uid (a job's reward
code) can ptrace it or open its ``/proc/PID/mem`` or ``fd/`` (the control socket). It never
reads anything a job wrote. It exits when the host's end of the socket closes.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

from .protocol import receive, send

PR_SET_PDEATHSIG, PR_SET_DUMPABLE = 1, 4
SWEEP_TRIES = 500


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def warm_up(env_spec: dict | None) -> None:
    """Import what every job needs, and the env's own packages (by building a one-env copy of
    it once). A failure here is the job's to report: its child builds the env again."""
    import torch

    torch.set_num_threads(1)  # no OpenMP pool in the zygote: a forked child could not use it
    from .. import expressions, reward  # noqa: F401
    from ..train import evaluate, policy, ppo, rollout  # noqa: F401
    from . import guest  # noqa: F401

    if env_spec:
        try:
            from ..task import EnvSpec

            env = EnvSpec.model_validate(env_spec)
            env.make(1, "cpu", seed=0)
            env.describe()
        except Exception:  # noqa: BLE001 - the job's child reports it, before any reward code
            pass


def _other_processes(me: int) -> list[int]:
    """Processes in this pid namespace other than init and me, not yet dead (zombies are)."""
    alive = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in (1, me):
            continue
        try:
            state = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            alive.append(int(entry.name))
    return alive


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def remove_ipc() -> bool:
    """Remove every SysV IPC object in this IPC namespace; ``True`` if none is left."""
    libc = _libc()
    removers = {"shm": lambda i: libc.shmctl(i, 0, None), "sem": lambda i: libc.semctl(i, 0, 0),
                "msg": lambda i: libc.msgctl(i, 0, None)}  # 0 = IPC_RMID
    for kind, remove in removers.items():
        for ident in _ipc_ids(kind):
            remove(ident)
    return not any(_ipc_ids(kind) for kind in removers)


def _ipc_ids(kind: str) -> list[int]:
    try:
        lines = Path(f"/proc/sysvipc/{kind}").read_text().splitlines()[1:]
    except OSError:
        return []
    return [int(line.split()[1]) for line in lines if len(line.split()) > 1]


def sweep() -> bool:
    """Kill every process the last job left and remove its IPC objects; ``True`` if all is gone."""
    me = os.getpid()
    for _ in range(SWEEP_TRIES):
        _reap()
        if not _other_processes(me):
            break
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        time.sleep(0.002)
    _reap()
    return not _other_processes(me) and remove_ipc()


def set_limits(limits: dict) -> None:
    mb = 1024 * 1024
    if limits.get("memory_mb"):
        resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))  # no POSIX message queue can outlive the job
    if limits.get("nproc"):
        resource.setrlimit(resource.RLIMIT_NPROC, (limits["nproc"],) * 2)


def run_child(request: dict, out_fd: int, go_fd: int) -> None:
    """In the forked child: become a clean, limited process for this one job and run it."""
    code = 1
    try:
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.closerange(3, go_fd)
        os.closerange(go_fd + 1, 1 << 16)
        os.setsid()
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        _libc().prctl(PR_SET_DUMPABLE, 1)  # as a cold guest is (it holds nothing but its own job)
        try:
            Path("/proc/self/oom_score_adj").write_text("1000")
        except OSError:
            pass  # the sandbox's own cap still holds
        os.environ.clear()
        os.environ.update(request["env"])
        import tempfile

        tempfile.tempdir = None  # found again from the job's TMPDIR
        os.chdir(request["job"])
        set_limits(request["limits"])
        if not os.read(go_fd, 1):  # the host puts this process into the job's cgroup first
            os._exit(1)
        os.close(go_fd)
        from . import guest

        sys.modules["__main__"] = guest  # what a cold guest's code finds there
        sys.argv = [guest.__file__, request["kind"], request["job"]]
        code = guest.main([request["kind"], request["job"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - the job's own failure, on its own output
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(sock: socket.socket) -> None:
    while True:
        request, fds = receive(sock)
        if request is None:
            return
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            send(sock, {"error": "a job needs its output and go descriptors"})
            continue
        out_fd, go_fd = fds
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            sock.close()
            run_child(request, out_fd, go_fd)
        os.close(out_fd)
        os.close(go_fd)
        send(sock, {"started": pid})
        _, status = os.waitpid(pid, 0)
        clean = sweep()
        send(sock, {"exited": os.waitstatus_to_exitcode(status), "clean": clean})


def main(argv: list[str]) -> int:
    _libc().prctl(PR_SET_DUMPABLE, 0)
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.connect(argv[0])  # the host stops listening once it has this connection
    try:
        warm_up(json.loads(argv[1]) if len(argv) > 1 and argv[1] else None)
        send(sock, {"ready": True, "pid": os.getpid()})
    except Exception as exc:  # noqa: BLE001 - the host runs its jobs cold then, and says why
        send(sock, {"error": f"{type(exc).__name__}: {exc}"[:1000]})
        return 1
    serve(sock)
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)
