"""``ray`` executor: each candidate is a Ray task with its own CPU (and GPU) request.

The task runs on whichever node Ray picks, in a folder of that node's temporary directory
(``TMPDIR`` of the node's ``ray start``), inside the sandbox the host named (each node needs
that backend: bubblewrap, or Docker with the image built there). It sends progress back through
a Ray queue and returns its outcome with every file the candidate left in that folder
(:mod:`.artifacts`), so nodes need no shared filesystem and a Ray run's candidate folders hold
what a local run's do.

Without an address a local cluster is started for the run and ended with it (``address="local"``:
never a cluster found in Ray's address file, which an earlier session may have left). With
``auto`` or ``HOST:PORT`` the executor joins that cluster and says what it found. A task whose
node dies is retried on another node (``REWARDSMITH_RAY_RETRIES`` times, default 2); once the
retries are used up, or when a node cannot run candidates at all, the run stops with an
:class:`~rewardsmith.errors.InfrastructureError` (``--resume`` continues it): a lost node is never
the reward's failure.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ...errors import DiskFull, InfrastructureError, OptionError, RewardsmithError, is_disk_full
from ..jobs import CandidateJob, JobOutcome, ProgressFn
from ..sandboxes.base import Sandbox
from .artifacts import LOG, Artifacts, pack, unpack

LOCAL_OBJECT_STORE = 200 * 1024 * 1024
RETRIES = 2                # default number of times a task is run again after its node died
NODES_WAIT_S = 600.0       # how long the run waits while no live node can take a waiting candidate
POLL_S = 5.0
CANCEL_WAIT_S = 10.0   # how long a stopping run waits for its cancelled tasks to clean up

Notify = Callable[[str], None]


@functools.cache
def code_hash() -> str:
    """A hash of this installation's rewardsmith code: every node must run the host's."""
    root = Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class NodeReply:
    """What a task sends back: the outcome, the candidate's files, and where it ran."""

    outcome: JobOutcome
    artifacts: Artifacts
    node_id: str
    node_ip: str


def run_on_node(job: CandidateJob, sandbox_name: str, threads: int, code: str, queue, key: int) -> NodeReply:
    """The Ray task: train and evaluate in a node-local folder, return the outcome and the files."""
    import ray

    from ..jobs import train_and_evaluate
    from ..sandboxes import make_sandbox

    node_id, node_ip = ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
    if code_hash() != code:
        raise InfrastructureError(f"Ray node {node_ip} runs other rewardsmith code ({code_hash()}) than the host "
                                  f"({code}): install the same rewardsmith on every node")

    def send(payload: dict | None) -> None:
        try:
            queue.put_nowait((key, node_id, payload))
        except Exception:  # noqa: BLE001 - progress is best effort (a full queue drops it)
            pass

    if queue is not None:
        send(None)  # this attempt started here
    # no GPU asked for: the candidate gets none (the sandbox does not see Ray's CUDA_VISIBLE_DEVICES)
    device = "cpu" if not ray.get_gpu_ids() and job.device == "auto" else job.device
    folder = Path(tempfile.mkdtemp(prefix="rewardsmith-ray-"))
    try:
        sandbox = make_sandbox(sandbox_name)
        local = replace(job, folder=folder, device=device, on_progress=send if queue is not None else None)
        outcome = _cancellable(train_and_evaluate, local, sandbox, threads)
        if (folder / LOG).is_file():
            with open(folder / LOG, "a") as log:
                log.write(f"\nran on Ray node {node_ip} (node id {node_id})\n")
        return NodeReply(outcome, pack(folder), node_id, node_ip)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _cancellable(work: Callable[..., JobOutcome], *args: Any) -> JobOutcome:
    """Run ``work`` in a thread. Ray cancels a task by raising KeyboardInterrupt in its main thread
    (the host's run stopped): the sandboxes are then ended at once, as Ctrl-C ends them on the
    host, instead of after the job's own clean-up waited for them; then it winds down."""
    from ..sandboxes import kill_all

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="candidate") as pool:
        future = pool.submit(work, *args)
        try:
            while True:  # short waits: Ray's interrupt is seen between them
                with contextlib.suppress(FuturesTimeout):
                    return future.result(timeout=0.2)
        except KeyboardInterrupt:
            kill_all()
            concurrent.futures.wait([future])
            raise


def _check_reachable(address: str, found: str = "") -> None:
    """Fail fast: ray.init retries an address with nothing behind it for minutes."""
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError):
        raise RewardsmithError(f"no Ray cluster answers at {address}{found} (start one with `ray start --head`)"
                               ) from None


def _resolve(address: str) -> str:
    """The address ``ray.init`` gets: ``auto`` is looked up as Ray does (``RAY_ADDRESS``, a
    running cluster, the address file of the last ``ray start``), then checked like any other."""
    if address.startswith("ray://"):
        return address  # Ray Client: its own connection logic
    found = ""
    if address == "auto":
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # another Ray layout: let ray.init look
            return address
        try:
            resolved = canonicalize_bootstrap_address("auto")
        except ConnectionError:
            raise RewardsmithError("--ray-address auto: no Ray cluster is running on this machine (start one with "
                                   "`ray start --head`, or give its HOST:PORT)") from None
        if resolved is None:
            return address
        address, found = resolved, " (found by --ray-address auto)"
    _check_reachable(address, found)
    return address


def _nodes(ray) -> list[dict]:
    return [node for node in ray.nodes() if node.get("Alive")]


def can_run(nodes: list[dict], cpus: float, gpus: float) -> bool:
    """Whether some live node has the CPUs and GPUs a candidate asks for."""
    return any(n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus for n in nodes)


class RayExecutor:
    """Submits each job to a Ray cluster; at most ``parallel`` in flight (default: what fits)."""

    name = "ray"

    def __init__(self, sandbox: Sandbox, parallel: int | None = None, address: str | None = None,
                 notify: Notify | None = None, retries: int | None = None, nodes_wait_s: float = NODES_WAIT_S):
        try:
            import ray
        except ImportError:
            raise RewardsmithError("the ray executor needs Ray: pip install 'rewardsmith[ray]'") from None
        self.ray = ray
        self.sandbox = sandbox
        self.notify = notify or (lambda text: None)
        self.retries = _retries() if retries is None else retries
        self.nodes_wait_s = nodes_wait_s
        self.connected_here = not ray.is_initialized()
        if self.connected_here:
            self._connect(address)
        nodes = _nodes(ray)
        resources = ray.cluster_resources()
        self.cpus = max(1, int(resources.get("CPU", 1)))
        self.gpus = float(resources.get("GPU", 0))
        self.node_cpus = max(1, int(max((n["Resources"].get("CPU", 0) for n in nodes), default=1)))
        self.parallel = max(1, parallel or self.cpus)
        self._announce(address, nodes, resources)
        self._remote = ray.remote(run_on_node)
        self._queue: Any = None
        self._listeners: dict[int, tuple[ProgressFn | None, str]] = {}
        self._nodes_seen: dict[int, str] = {}
        self._lock = threading.Lock()
        self._next_key = 0

    # -- the cluster ---------------------------------------------------------------------------
    def _connect(self, address: str | None) -> None:
        quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING}
        try:
            if address in (None, "local"):
                self.ray.init(address="local", include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE,
                              _node_ip_address="127.0.0.1", **quiet)
            else:
                self.ray.init(address=_resolve(address), **quiet)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"join the Ray cluster at {address}" if address else "start a local Ray cluster"
            raise RewardsmithError(f"cannot {where}: {str(exc).strip().splitlines()[0][:300]}") from None

    def _announce(self, address: str | None, nodes: list[dict], resources: dict) -> None:
        context = self.ray.get_runtime_context()
        if address in (None, "local") and self.connected_here:
            where = "started a local Ray cluster for this run"
        else:
            where = f"joined the Ray cluster at {context.gcs_address} ({context.get_session_name()})"
        gpus = resources.get("GPU", 0)
        self.notify(f"Ray: {where}: {len(nodes)} node{'s' * (len(nodes) != 1)}, {resources.get('CPU', 0):g} CPUs, "
                    f"{gpus:g} GPU{'s' * (gpus != 1)}")
        if not can_run(nodes, 1, 0):
            self.notify("Ray: no node has a CPU for a candidate yet; candidates wait for nodes to join")

    def threads_per_job(self, jobs: int) -> int:
        return max(1, min(self.node_cpus, self.cpus // max(1, min(self.parallel, jobs))))

    def gpus_per_job(self, job: CandidateJob) -> float:
        return min(1.0, self.gpus / self.parallel) if self.gpus and job.device != "cpu" else 0.0

    # -- running jobs --------------------------------------------------------------------------
    def run(self, jobs: Iterable[CandidateJob]) -> Iterator[tuple[CandidateJob, JobOutcome]]:
        """Submit each job as a Ray task (at most ``parallel`` in flight) and yield ``(job,
        outcome)`` as each finishes. Tasks still running when this stops are cancelled."""
        waiting = deque(jobs)
        if not waiting:
            return
        if not self.gpus and any(job.device.startswith("cuda") for job in waiting):
            raise OptionError(f"--device {waiting[0].device}: the Ray cluster has no GPUs (use --device cpu or auto)")
        threads = self.threads_per_job(len(waiting))
        running: dict[Any, tuple[CandidateJob, int]] = {}
        stuck_since: float | None = None
        try:
            while waiting or running:
                while waiting and len(running) < self.parallel:
                    job = waiting.popleft()
                    ref, key = self._submit(job, threads)
                    running[ref] = (job, key)
                done, _ = self.ray.wait(list(running), num_returns=1, timeout=POLL_S)
                if not done:
                    stuck_since = self._check_nodes([job for job, _ in running.values()], threads, stuck_since)
                    continue
                stuck_since = None
                for ref in done:
                    job, key = running.pop(ref)
                    self._forget(key)
                    yield job, self._receive(job, ref)
        finally:
            # Ctrl-C, or the run stopped: end them on their nodes, and give the nodes a moment to
            # end their sandboxes and remove their folders
            for ref, (_, key) in running.items():
                with contextlib.suppress(Exception):  # the cluster may be what failed
                    self.ray.cancel(ref)
                self._forget(key)
            if running:
                with contextlib.suppress(Exception):
                    self.ray.wait(list(running), num_returns=len(running), timeout=CANCEL_WAIT_S)

    def _submit(self, job: CandidateJob, threads: int):
        if job.on_start is not None:
            job.on_start()
        queue, key = self._listen(job)
        task = self._remote.options(num_cpus=threads, num_gpus=self.gpus_per_job(job), max_retries=self.retries)
        # the node gets the job without the host's folder and callbacks
        return task.remote(job.portable(job.folder), self.sandbox.name, threads, code_hash(), queue, key), key

    def _receive(self, job: CandidateJob, ref) -> JobOutcome:
        try:
            reply: NodeReply = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            raise self._node_fault(exc) from None
        except self.ray.exceptions.RayError as exc:
            why = (str(exc).strip().splitlines() or [""])[0].split(". ")[0][:300]
            attempts = self.retries + 1
            raise InfrastructureError(
                f"the Ray cluster lost {_label(job)} after {attempts} attempt{'s' * (attempts > 1)} "
                f"({type(exc).__name__}: {why}); not the reward's fault") from None
        job.folder.mkdir(parents=True, exist_ok=True)
        unpack(reply.artifacts, job.folder, source=f"Ray node {reply.node_ip}")
        return reply.outcome

    @staticmethod
    def _node_fault(exc) -> Exception:
        """The task raised: a fault of its node (missing sandbox, full disk, other code), or a bug."""
        cause, ip = getattr(exc, "cause", None), getattr(exc, "ip", None) or "?"
        if isinstance(cause, InfrastructureError):
            return type(cause)(str(cause) if str(cause).startswith("Ray node") else f"Ray node {ip}: {cause}")
        if isinstance(cause, OSError) and is_disk_full(cause):
            return DiskFull(f"the disk of Ray node {ip} is full: {cause}")
        if isinstance(cause, (RewardsmithError, OSError, ImportError)):
            return InfrastructureError(f"Ray node {ip} cannot run candidates: {cause}")
        return exc  # a bug: keep the node's traceback

    def _check_nodes(self, jobs: list[CandidateJob], threads: int, stuck_since: float | None) -> float | None:
        """Stop the run when, for ``nodes_wait_s``, no live node could take the waiting jobs."""
        nodes = _nodes(self.ray)
        if all(can_run(nodes, threads, self.gpus_per_job(job)) for job in jobs):
            return None
        now = time.monotonic()
        if stuck_since is None:
            self.notify(f"Ray: no live node has {threads} CPUs for a candidate ({len(nodes)} nodes left); waiting "
                        f"up to {self.nodes_wait_s:g} s for one")
            return now
        if now - stuck_since > self.nodes_wait_s:
            raise InfrastructureError(f"no node of the Ray cluster could take a candidate for {self.nodes_wait_s:g} s "
                                      f"({len(nodes)} live nodes)")
        return stuck_since

    # -- progress from the nodes ---------------------------------------------------------------
    def _listen(self, job: CandidateJob):
        with self._lock:
            self._next_key += 1
            key = self._next_key
            if job.on_progress is None:
                return None, key
            if self._queue is None:
                self._queue = self._make_queue()
                threading.Thread(target=self._drain, daemon=True).start()
            self._listeners[key] = (job.on_progress, _label(job))
            return self._queue, key

    def _make_queue(self):
        """A queue on this host's node: it lives as long as the run, whichever workers die. (Not
        ``soft``: Ray then places it elsewhere when this node has no CPUs, as a head often has not.)"""
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(self.ray.get_runtime_context().get_node_id(), soft=False)
        return Queue(maxsize=1000, actor_options={"num_cpus": 0, "scheduling_strategy": here})

    def _forget(self, key: int) -> None:
        with self._lock:
            self._listeners.pop(key, None)
            self._nodes_seen.pop(key, None)

    def _drain(self) -> None:
        from ray.util.queue import Empty

        while self._queue is not None:
            try:
                key, node, payload = self._queue.get(timeout=1)
            except Empty:
                continue
            except Exception:  # noqa: BLE001 - the cluster is in trouble: progress waits, the run goes on
                time.sleep(1)
                continue
            with self._lock:
                listener, label = self._listeners.get(key, (None, ""))
                before = self._nodes_seen.get(key) if listener else None
                if listener:
                    self._nodes_seen[key] = node
            if before is not None and before != node:
                self.notify(f"Ray: {label} started again on node {node[:8]} (its node {before[:8]} was lost)")
            if listener is not None and payload is not None:
                listener(payload)

    def close(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            try:
                queue.shutdown()
            except Exception:  # noqa: BLE001
                pass
        if self.connected_here:
            self.ray.shutdown()


def _label(job: CandidateJob) -> str:
    return f"the candidate in {job.folder.parent.name}/{job.folder.name}"


def _retries() -> int:
    text = os.environ.get("REWARDSMITH_RAY_RETRIES", "")
    try:
        return max(0, int(text)) if text else RETRIES
    except ValueError:
        raise RewardsmithError(f"REWARDSMITH_RAY_RETRIES must be a whole number, not {text!r}") from None
