"""``docker`` sandbox: each worker job in a fresh container of the image built from ``sandbox/``.

The container has no network, a read-only root, memory (no swap), CPU and process limits, no
capabilities, ``no-new-privileges``, a non-root user, and one writable mount: the job folder at
``/job``. GPUs are passed through with a device request when the host has NVIDIA devices and a
runtime for them. Containers are always removed: after the job, on timeout, on Ctrl-C
(:func:`~.sandbox.kill_all`), and, if the host process died, by the next sandbox that starts.

It uses the Docker SDK rather than the ``docker`` CLI: the outcome comes back as data (exit code
and the kernel's ``OOMKilled`` flag from the container's state), limits and GPU requests are
typed arguments, and the output is attached before the container starts, with no log driver
storing a flood on disk.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import threading
import time
from pathlib import Path

from ...errors import SandboxGone, SandboxUnavailable
from ..protocol import WARM_MODULE, guest_argv
from .base import (
    Limits,
    OutputCapture,
    Sandbox,
    SandboxResult,
    clean_environment,
    prepare_job_dir,
    register_killer,
    signal_from_status,
    unregister_killer,
)
from .image import connect, find_image

JOB = "/job"
LABEL = "rewardsmith.job"
CONTAINER_UID = 65532  # "nonroot", unlikely to be a real user on the host
STALE_AFTER_S = 600
STOP_SIGNALS = (-signal.SIGTERM, -signal.SIGKILL)  # how an engine shutting down ends containers
ENGINE_SHUTDOWN_GRACE_S = 5.0
WARM_OVERHEAD_MB = 1024  # a warm container's cap: its job's, plus the zygote's torch


class DockerSandbox(Sandbox):
    name = "docker"

    def __init__(self):
        self.client = connect()
        image = find_image(self.client)
        if image is None:
            raise SandboxUnavailable("the sandbox image for this version of rewardsmith is not built; run "
                                     "`rewardsmith sandbox build` (a few minutes, once per code change)")
        self.image, self.image_id = image.tags[0], image.id
        self.gpu = _has_nvidia(self.client)
        _remove_stale(self.client)

    def missing_hint(self) -> str:
        return ("its image lacks what the env needs: rebuild it with `rewardsmith sandbox build --task YOUR_TASK.yaml` "
                "(it carries the distributions the env imports here), or use --sandbox bwrap")

    def environment(self, job_dir: Path, limits: Limits) -> dict[str, str]:
        env = clean_environment(Path(JOB), limits)
        env["PATH"] = "/opt/venv/bin:" + env["PATH"]
        return env

    def _user(self, job_dir: Path) -> str:
        """Run as the host user; if that is root, as uid 65532 owning the job folder."""
        if os.geteuid() != 0:
            return f"{os.geteuid()}:{os.getegid()}"
        for root, dirs, files in os.walk(job_dir):
            for name in (*dirs, *files):
                os.lchown(os.path.join(root, name), CONTAINER_UID, CONTAINER_UID)
        os.chown(job_dir, CONTAINER_UID, CONTAINER_UID)
        return f"{CONTAINER_UID}:{CONTAINER_UID}"

    def run_worker(self, kind: str, job_dir: Path, limits: Limits, on_line=None) -> SandboxResult:
        import docker

        job_dir = prepare_job_dir(job_dir)
        # the container ends itself a little after the host's limit, should the host be gone
        command = ["timeout", "-s", "KILL", str(int(limits.timeout_s) + 30), *guest_argv("python", kind, JOB)]
        start = time.perf_counter()
        try:
            container = self._create(command, job_dir, limits)
        except Exception as exc:  # noqa: BLE001 - the engine's API or the connection to it
            self._raise_if_engine_gone(exc)
            raise
        key, killed = id(container), []
        def kill() -> None:
            killed.append(True)
            container.kill()

        register_killer(key, kill)
        capture = OutputCapture(limits.output_bytes, on_line)
        timed_out, state, trouble = False, {}, None
        try:
            stream = container.attach(stdout=True, stderr=True, stream=True, logs=False)
            reader = threading.Thread(target=_pump, args=(stream, capture), daemon=True)
            reader.start()
            container.start()
            try:
                container.wait(timeout=limits.timeout_s)
            except Exception as exc:  # noqa: BLE001 - requests' ReadTimeout (still running) or a lost engine
                trouble = exc
                timed_out = True
                _quietly(container.kill)
                _quietly(lambda: container.wait(timeout=30))
            reader.join(timeout=5)
            container.reload()
            state = container.attrs.get("State", {})
        except docker.errors.DockerException as exc:
            trouble = exc
            capture.feed(f"\n[docker: {exc}]\n".encode())
        except Exception as exc:  # noqa: BLE001 - requests' ConnectionError when the engine is gone
            trouble = exc
        finally:
            unregister_killer(key)
            _quietly(lambda: container.remove(force=True))
        capture.close()
        code = state.get("ExitCode")
        if trouble is not None or not state:
            self._raise_if_engine_gone(trouble)
        elif signal_from_status(code) in STOP_SIGNALS and not (timed_out or killed or state.get("OOMKilled")):
            # a shutting-down engine stops its containers first and answers a moment longer
            self._raise_if_engine_gone(None, watch_s=ENGINE_SHUTDOWN_GRACE_S)
        return capture.result(signal_from_status(code) if state else -9, time.perf_counter() - start,
                              timed_out=timed_out, oom_killed=bool(state.get("OOMKilled")))

    def warm_lost(self) -> None:
        """A warm container ended during a job, not killed by the host: raise
        :class:`SandboxGone` if the engine is stopping (it stops its containers first)."""
        self._raise_if_engine_gone(None, watch_s=ENGINE_SHUTDOWN_GRACE_S)

    def warm_hand_over(self, slot: Path) -> None:
        """A warm container's user owns the job's files in its slot (see :meth:`_user`)."""
        self._user(slot)

    def warm_start(self, slot: Path, control: Path, env_spec: str, limits: Limits) -> DockerWarm:
        """A warm worker (:mod:`.warm`): one long-lived container running the zygote, with ``slot``
        at ``/job`` and the control socket's folder read-only at ``/control``. Its root is
        read-only, it has no /tmp and no /dev/shm (``ipc_mode="none"``: a private IPC namespace
        without it), so only ``/job`` (emptied by the host after every job) is writable. Memory and
        processes are capped for the container as a whole (each job also has its own cap)."""
        from docker.types import DeviceRequest, LogConfig, Ulimit

        user = self._user(slot)
        if os.geteuid() == 0:
            os.chmod(control.parent, 0o755)
            os.chmod(control, 0o666)  # the container's user connects; the host stops listening after it
        env = {**self.environment(slot, limits), "TMPDIR": f"{JOB}/tmp"}
        mb = 1024 * 1024
        memory = (limits.memory_mb + WARM_OVERHEAD_MB) * mb
        container = self.client.containers.create(
            self.image, command=["python", "-I", "-m", WARM_MODULE, f"/control/{control.name}", env_spec], user=user,
            working_dir=JOB, environment=env, labels={LABEL: str(slot)},
            network_mode="none", read_only=True, init=True, ipc_mode="none",
            cap_drop=["ALL"], security_opt=["no-new-privileges"], mem_limit=memory, memswap_limit=memory,
            pids_limit=limits.processes + 64,
            ulimits=[Ulimit(name="core", soft=0, hard=0),
                     Ulimit(name="fsize", soft=limits.file_mb * mb, hard=limits.file_mb * mb)],
            volumes={str(slot): {"bind": JOB, "mode": "rw"}, str(control.parent): {"bind": "/control", "mode": "ro"}},
            log_config=LogConfig(type="none"), stdin_open=False, tty=False,
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if self.gpu else None,
        )
        warm = DockerWarm(container, self)
        container.start()
        return warm

    def _raise_if_engine_gone(self, cause: BaseException | None, watch_s: float = 0.0) -> None:
        """A job that went wrong because the Docker engine stopped (or is stopping) is not the
        reward's fault: raise :class:`SandboxGone` if the engine does not answer within ``watch_s``."""
        deadline = time.monotonic() + watch_s
        while True:
            try:
                self.client.ping()
            except Exception:  # noqa: BLE001
                why = type(cause).__name__ if cause else "its containers were stopped"
                raise SandboxGone(f"the Docker engine stopped answering ({why}); start it again "
                                  "(or choose another --sandbox)") from None
            if time.monotonic() >= deadline:
                return
            time.sleep(0.5)

    def _create(self, command: list[str], job_dir: Path, limits: Limits):
        from docker.types import DeviceRequest, LogConfig, Ulimit

        mb = 1024 * 1024
        return self.client.containers.create(
            self.image, command=command, user=self._user(job_dir), working_dir=JOB,
            environment=self.environment(job_dir, limits), labels={LABEL: str(job_dir)},
            network_mode="none", read_only=True, init=True, ipc_mode="private",
            cap_drop=["ALL"], security_opt=["no-new-privileges"],
            mem_limit=limits.memory_mb * mb, memswap_limit=limits.memory_mb * mb,
            pids_limit=limits.processes, nano_cpus=int(max(1, limits.threads) * 1e9), shm_size=64 * mb,
            ulimits=[Ulimit(name="core", soft=0, hard=0),
                     Ulimit(name="fsize", soft=limits.file_mb * mb, hard=limits.file_mb * mb)],
            volumes={str(job_dir): {"bind": JOB, "mode": "rw"}},
            log_config=LogConfig(type="none"), stdin_open=False, tty=False,
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if self.gpu else None,
        )


class DockerWarm:
    """A warm sandbox that is a container (see :class:`~.warm.WarmProcess`)."""

    def __init__(self, container, sandbox: DockerSandbox):
        self.container, self.sandbox = container, sandbox
        self.was_killed = False

        def kill() -> None:  # by kill_all (Ctrl-C)
            self.was_killed = True
            container.kill()

        register_killer(id(self), kill)

    def killed(self) -> bool:
        return self.was_killed

    def root_pid(self) -> int | None:
        try:
            self.container.reload()
            return int(self.container.attrs["State"]["Pid"]) or None
        except Exception:  # noqa: BLE001 - the engine's API
            return None

    def alive(self) -> bool:
        try:
            self.container.reload()
            return self.container.status == "running"
        except Exception:  # noqa: BLE001
            return False

    def output(self) -> str:
        return ""  # no log driver: what the zygote says comes over its control socket

    def kill(self) -> None:
        self.was_killed = True
        unregister_killer(id(self))
        _quietly(lambda: self.container.remove(force=True))


def _pump(stream, capture: OutputCapture) -> None:
    try:
        for chunk in stream:
            capture.feed(chunk)
    except Exception:  # noqa: BLE001 - the connection closes when the container is removed
        pass


def _quietly(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - cleanup of something that may already be gone
        pass


def _has_nvidia(client) -> bool:
    if not Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi") is None:
        return False
    try:
        return "nvidia" in (client.info().get("Runtimes") or {})
    except Exception:  # noqa: BLE001
        return False


def _remove_stale(client) -> None:
    """Containers of jobs whose host process died (exited long ago, never removed)."""
    now = dt.datetime.now(dt.timezone.utc)
    try:
        stale = client.containers.list(all=True, filters={"label": LABEL, "status": "exited"})
    except Exception:  # noqa: BLE001
        return
    for container in stale:
        finished = str(container.attrs.get("State", {}).get("FinishedAt", ""))[:19]
        try:
            age = (now - dt.datetime.fromisoformat(finished).replace(tzinfo=dt.timezone.utc)).total_seconds()
        except ValueError:
            continue
        if age > STALE_AFTER_S:
            _quietly(lambda c=container: c.remove(force=True))
