"""Live experience sharing between the SAC candidates of an iteration that train at the same time
(LaRes-style: one population, each transition relabelled with each candidate's reward).

Every ``share_every`` env steps a training job writes the transitions it collected since its last
exchange into ``shared_out/`` (``NNNNNN.f32``, then ``NNNNNN.json``) and takes in whatever the
host has put into ``shared_in/`` since, relabelling it with its own reward inside its sandbox
(:class:`SharedFolder`, the guest's side). The host's :class:`ExperienceExchange` watches the
``shared_out/`` of every running candidate, reads each chunk as it reads anything a sandbox wrote
(regular files, capped, never through a symlink), checks it against the env's description
(:func:`rewardsmith.experience.check`) and writes a copy into the ``shared_in/`` of every other
running candidate. A candidate that joins late is first given everything accepted so far.

What one candidate can do to another: only send transitions of the right form (columns, shapes,
finite values, actions within bounds), as it could through the end-of-training experience of
:mod:`rewardsmith.experience`. Each receiver gets its own copy, so what a reward does to what it
received stays in its sandbox. The host writes into a folder the sandbox controls, so it opens
``shared_in/`` without following a symlink and creates each file anew under a name that must
not exist yet (``O_EXCL | O_NOFOLLOW``): whatever the job put there, the host writes nothing
outside it.
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..envs.description import EnvDescription
from ..experience import DATA_SUFFIX, INDEX_SUFFIX, Transitions, read, write
from .protocol import SHARED_IN, SHARED_OUT

POLL_S = 0.2
MAX_CHUNKS = 100_000  # chunk numbers a job may use (six digits)


def _open_folder(parent: Path, name: str) -> int | None:
    """A descriptor of ``parent/name``, a real folder; ``None`` while there is none (the job has
    not made it yet, or its folder is being moved); ``OSError`` for a symlink or anything else."""
    try:
        return os.open(parent / name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None


def _write_at(folder: int, name: str, data: bytes) -> None:
    """Create ``name`` in the folder ``folder`` (written under a temporary name first, then
    renamed: a reader never sees half a file). Raises ``OSError`` if the temporary name is taken."""
    partial = f".{name}.partial"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(partial, name, src_dir_fd=folder, dst_dir_fd=folder)  # replaces an entry, never follows one
    except BaseException:
        try:
            os.unlink(partial, dir_fd=folder)
        except OSError:
            pass
        raise


def _exists_at(folder: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    return True


def read_chunk(folder: int, stem: str, description: EnvDescription, max_bytes: int) -> Transitions | str | None:
    """The chunk ``stem`` of an untrusted folder, checked; ``None`` while its index is not there
    yet (the writer puts it last), a reason when it is unusable."""
    if not _exists_at(folder, stem + INDEX_SUFFIX):
        return None
    return read(folder, stem, description, max_bytes)


@dataclass
class _Member:
    name: str
    work: Path
    next_chunk: int = 1
    received_bytes: int = 0
    sent_rows: int = 0
    sent_bytes: int = 0
    delivered: int = 0       # chunks of the backlog written into its shared_in/ (or passed over)
    done: bool = False       # its training is over, or its folder broken: nothing more is written there
    problem: str | None = None  # why the host stopped reading its shared_out/


@dataclass
class ExperienceExchange:
    """Passes transitions between the running training jobs of one iteration (see the module).

    Bounded: each member sends at most ``max_rows`` transitions (what one training collects) and
    ``max_bytes / (senders - 1)`` bytes, so no member receives more than ``max_bytes`` and the
    host holds at most about twice that, however the jobs behave."""

    description: EnvDescription
    max_bytes: int                      # the most bytes of transitions each member receives
    senders: int = 2                    # how many jobs of the iteration take part
    max_rows: int | None = None         # the most transitions one member may send
    poll_s: float = POLL_S
    members: dict[str, _Member] = field(default_factory=dict)
    backlog: list[tuple[str, Transitions]] = field(default_factory=list)  # (sender, chunk) accepted so far
    problems: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.per_sender = self.max_bytes // max(1, self.senders - 1)
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True, name="experience-exchange")
        self.thread.start()

    def join(self, name: str, work: Path) -> None:
        """``work`` (a training job's folder, before its job starts) takes part from now on. Its
        job makes its two folders once it runs (so the host writes nothing there while a warm
        worker moves the folder in), and is then given every chunk accepted so far."""
        with self.lock:
            self.members[name] = _Member(name, work)

    def finished(self, name: str) -> None:
        """Its training is over (it said so): it is given nothing more. (Called from the job's
        output reader: it takes no lock, so the exchange never holds up a job's output.)"""
        member = self.members.get(name)
        if member is not None:
            member.done = True

    def leave(self, name: str) -> None:
        """Its job has ended: take its last chunks, then stop watching it."""
        with self.lock:
            member = self.members.pop(name, None)
            if member is not None:
                self._collect(member)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=30)

    def __enter__(self) -> ExperienceExchange:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the host's thread -------------------------------------------------------------------------
    def _watch(self) -> None:
        while not self.stopped.wait(self.poll_s):
            with self.lock:
                for member in list(self.members.values()):
                    self._collect(member)
                for member in list(self.members.values()):
                    try:
                        self._deliver(member)
                    except Exception:  # noqa: BLE001 - the host's own trouble (memory): this member goes without
                        member.done = True

    def _collect(self, member: _Member) -> None:
        """Every complete new chunk in the member's ``shared_out/``, checked, into the backlog.
        Whatever it put there, this says why it stops reading it rather than raise."""
        if member.problem is not None:
            return
        try:
            folder = _open_folder(member.work, SHARED_OUT)
        except OSError:
            self._stop_reading(member, f"{SHARED_OUT}/ is not a folder")
            return
        if folder is None:
            return
        try:
            while member.next_chunk < MAX_CHUNKS:
                stem = f"{member.next_chunk:06d}"
                found = read_chunk(folder, stem, self.description, self.per_sender - member.sent_bytes)
                if found is None:
                    return
                member.next_chunk += 1
                if isinstance(found, str):
                    self._stop_reading(member, found)
                    return
                member.sent_rows += found.rows
                member.sent_bytes += found.nbytes
                if self.max_rows is not None and member.sent_rows > self.max_rows:
                    self._stop_reading(member, f"it sent more than the {self.max_rows} transitions one training "
                                               "collects")
                    return
                if found.rows:
                    self.backlog.append((member.name, found))
        except Exception as exc:  # noqa: BLE001 - nothing a job wrote may stop the exchange or the solve
            self._stop_reading(member, f"{type(exc).__name__}: {str(exc)[:200]}")
        finally:
            os.close(folder)

    def _stop_reading(self, member: _Member, why: str) -> None:
        member.problem = why
        self.problems.append(f"{member.name}: {why}")

    def _deliver(self, member: _Member) -> None:
        """The backlog's chunks it has not had yet (not its own), written into its ``shared_in/``;
        a folder it broke, or a write that fails, ends what it is given."""
        if member.done or member.delivered >= len(self.backlog):
            return
        try:
            folder = _open_folder(member.work, SHARED_IN)
        except OSError:
            folder, member.done = None, True
        if folder is None:
            return
        try:
            for number in range(member.delivered, len(self.backlog)):
                sender, chunk = self.backlog[number]
                member.delivered = number + 1
                if sender == member.name or member.received_bytes + chunk.nbytes > self.max_bytes:
                    continue
                stem = f"{number + 1:06d}-{sender}"
                member.received_bytes += chunk.nbytes  # counted first: a failed write still counts
                try:
                    _write_at(folder, stem + DATA_SUFFIX, chunk.data.astype("<f4", copy=False).tobytes())
                    _write_at(folder, stem + INDEX_SUFFIX, chunk.index.model_dump_json().encode())
                except OSError:  # a name it took, a full disk: it is given nothing more
                    _unlink_at(folder, stem + DATA_SUFFIX)
                    member.done = True
                    return
        finally:
            os.close(folder)


def _unlink_at(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass


class SharedFolder:
    """The training job's side of live sharing (inside the sandbox): :meth:`publish` what this
    run collected, :meth:`receive` what the host passed on from the others."""

    def __init__(self, job_dir: Path, description: EnvDescription, device, every: int, max_bytes: int,
                 obs_dim: int | None = None):
        self.out, self.inbox = job_dir / SHARED_OUT, job_dir / SHARED_IN
        self.description, self.device, self.every, self.max_bytes = description, device, every, max_bytes
        self.obs_dim = obs_dim
        self.out.mkdir(exist_ok=True)
        self.inbox.mkdir(exist_ok=True)
        self.sent = 0
        self.seen: set[str] = set()
        self.received_bytes = 0

    def capacity(self, obs_dim: int) -> int:
        """The most transitions it may bring in (for sizing the replay buffer)."""
        width = 2 * obs_dim + self.description.action.size + 1 + sum(
            math.prod(v.shape) for v in self.description.variables)
        return self.max_bytes // (4 * width)

    def publish(self, experience) -> None:
        """Write ``experience`` (a :class:`rewardsmith.train.sac.Experience`) as the next chunk."""
        if experience.size == 0 or self.sent + 1 >= MAX_CHUNKS:  # the host reads chunks 1 to MAX_CHUNKS - 1
            return
        self.sent += 1
        self.out.mkdir(exist_ok=True)
        write(self.out, f"{self.sent:06d}", experience.to_transitions(self.description))

    def receive(self) -> list:
        """The chunks the host put into ``shared_in/`` since the last call, as ``Experience``s;
        an unusable one is said and left out."""
        from ..train.sac import Experience

        try:
            names = sorted(p.name.removesuffix(INDEX_SUFFIX) for p in self.inbox.iterdir()
                           if p.name.endswith(INDEX_SUFFIX) and not p.name.startswith("."))
        except OSError:
            return []
        found = []
        for stem in names:
            if stem in self.seen:
                continue
            self.seen.add(stem)
            chunk = read(self.inbox, stem, self.description, self.max_bytes - self.received_bytes, self.obs_dim)
            if isinstance(chunk, str):
                print(f"shared experience {stem} left out: {chunk}", flush=True)
                continue
            self.received_bytes += chunk.nbytes
            found.append(Experience.from_transitions(chunk, self.description, self.device))
        return found
