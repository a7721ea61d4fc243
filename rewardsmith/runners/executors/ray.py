"""``ray`` executor: each candidate is a Ray task with its own CPU (and GPU) request.

The task runs on whichever node Ray picks, in a temporary folder there, inside the sandbox named
by the host (each node needs that backend: bubblewrap, or Docker with the image built). It sends
progress back through a Ray queue and returns its outcome with the files the host keeps
(``policy.pt``, the logs), so nodes need no shared filesystem. Without ``--ray-address`` a local
cluster is started for the run and stopped at the end.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ...errors import RewardsmithError
from ..jobs import MAX_LOG_BYTES, MAX_POLICY_BYTES, CandidateJob, JobOutcome, ProgressFn, read_untrusted
from ..sandboxes.base import Sandbox

ARTIFACTS = {"policy.pt": MAX_POLICY_BYTES, "train.log": 2 * MAX_LOG_BYTES, "eval.log": 2 * MAX_LOG_BYTES}
LOCAL_OBJECT_STORE = 200 * 1024 * 1024


def run_on_node(job: CandidateJob, sandbox_name: str, threads: int, queue, key: int
                ) -> tuple[JobOutcome, dict[str, bytes]]:
    """The Ray task: train and evaluate in a node-local folder, return the outcome and files."""
    from dataclasses import replace

    from ..jobs import train_and_evaluate
    from ..sandboxes import make_sandbox

    folder = Path(tempfile.mkdtemp(prefix="rewardsmith-ray-"))
    try:
        def progress(payload: dict) -> None:
            try:
                queue.put_nowait((key, payload))
            except Exception:  # noqa: BLE001 - progress is best effort (a full queue drops it)
                pass

        local = replace(job, folder=folder, on_progress=progress if queue is not None else None)
        outcome = train_and_evaluate(local, make_sandbox(sandbox_name), threads=threads)
        files = {name: data for name, cap in ARTIFACTS.items()
                 if (data := read_untrusted(folder / name, cap)) is not None}
        return outcome, files
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_reachable(address: str) -> None:
    """Fail fast: ray.init retries an address with nothing behind it for minutes."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError):
        raise RewardsmithError(f"no Ray cluster answers at {address} (start one with `ray start --head`)") from None


class RayExecutor:
    """Submits each job to a Ray cluster; at most ``parallel`` in flight (default: what fits)."""

    name = "ray"

    def __init__(self, sandbox: Sandbox, parallel: int | None = None, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise RewardsmithError("the ray executor needs Ray: pip install 'rewardsmith[ray]'") from None
        self.ray = ray
        self.sandbox = sandbox
        self.started_here = not ray.is_initialized()
        if self.started_here:
            if address and address != "auto" and not address.startswith("ray://"):
                _check_reachable(address)
            try:
                local: dict[str, Any] = {} if address else {"object_store_memory": LOCAL_OBJECT_STORE,
                                            "_node_ip_address": "127.0.0.1"}
                ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise RewardsmithError(f"cannot reach the Ray cluster at {address}: {exc}") from None
        resources = ray.cluster_resources()
        self.cpus = max(1, int(resources.get("CPU", 1)))
        self.gpus = float(resources.get("GPU", 0))
        node_cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
        self.node_cpus = max(1, int(max(node_cpus, default=1)))
        self.parallel = max(1, parallel or self.cpus)
        self._remote = ray.remote(run_on_node)
        self._queue: Any = None
        self._listeners: dict[int, ProgressFn] = {}
        self._lock = threading.Lock()
        self._next_key = 0

    def threads_per_job(self, jobs: int) -> int:
        return max(1, min(self.node_cpus, self.cpus // max(1, min(self.parallel, jobs))))

    def run(self, jobs: Iterable[CandidateJob]) -> Iterator[tuple[CandidateJob, JobOutcome]]:
        """Submit each job as a Ray task (at most ``parallel`` in flight); a host thread per job
        waits for its task. Yields ``(job, outcome)`` as each finishes."""
        jobs = list(jobs)
        if not jobs:
            return
        threads = self.threads_per_job(len(jobs))
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(jobs))) as pool:
            pending: dict[Future, CandidateJob] = {pool.submit(self._run_one, job, threads): job for job in jobs}
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield pending.pop(future), future.result()

    def _run_one(self, job: CandidateJob, threads: int) -> JobOutcome:
        if job.on_start is not None:
            job.on_start()
        queue, key = self._listen(job.on_progress)
        gpus = min(1.0, self.gpus / self.parallel) if self.gpus and job.device != "cpu" else 0
        task = self._remote.options(num_cpus=threads, num_gpus=gpus, max_retries=0)
        try:
            # the node gets the job without the host's folder and callbacks
            outcome, files = self.ray.get(task.remote(job.portable(job.folder), self.sandbox.name, threads, queue, key))
        except self.ray.exceptions.RayError as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            return JobOutcome("failed", f"the Ray task failed: {first}", None, None, 0.0, self.sandbox.name)
        finally:
            with self._lock:
                self._listeners.pop(key, None)
        job.folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (job.folder / name).write_bytes(data)
        return outcome

    def _listen(self, on_progress: ProgressFn | None):
        with self._lock:
            self._next_key += 1
            key = self._next_key
            if on_progress is None:
                return None, key
            if self._queue is None:
                from ray.util.queue import Queue

                self._queue = Queue(maxsize=1000, actor_options={"num_cpus": 0})
                threading.Thread(target=self._drain, daemon=True).start()
            self._listeners[key] = on_progress
            return self._queue, key

    def _drain(self) -> None:
        from ray.util.queue import Empty

        while self._queue is not None:
            try:
                key, payload = self._queue.get(timeout=1)
            except Empty:
                continue
            except Exception:  # noqa: BLE001 - the cluster is going away
                return
            listener = self._listeners.get(key)
            if listener is not None:
                listener(payload)

    def close(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            try:
                queue.shutdown()
            except Exception:  # noqa: BLE001
                pass
        if self.started_here:
            self.ray.shutdown()
