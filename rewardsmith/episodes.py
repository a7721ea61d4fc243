"""Recorded episodes: what training already sees, kept to judge later rewards on.

A reward is a pure function of the named state after a step and the step's action, so any
recorded state can be scored by any candidate, exactly. The clean evaluation job (which never
loads reward code) records its episodes; they are stored in the run (``RUN/episodes/``), and
later candidates are scored on them in their sandbox before they train (screening,
:mod:`rewardsmith.critic.screening`); the ``score`` job can relabel them with any reward.

One file holds a batch of episodes (:class:`EpisodeBatch`), an ``.npz`` without pickles::

    var:NAME   float32 (total_steps, *shape)   each state variable after each step
    action     float32 (total_steps, *action)  the action of each step
    lengths    int64   (episodes,)             steps of each episode, in order
    meta       unicode ()                      JSON list of EpisodeMeta, one per episode

:class:`EpisodeStore` keeps batches under a cap in bytes, dropping episodes of the most crowded
fitness range first, so what is kept stays spread over fitness. Its ``index.json`` and every
batch file are written atomically.

>>> import numpy as np
>>> from rewardsmith.schemas import EpisodeMeta
>>> batch = EpisodeBatch({"x": np.arange(5, dtype=np.float32)}, np.zeros((5, 1), np.float32),
...                      [EpisodeMeta(source="random", fitness=0.0, length=2),
...                       EpisodeMeta(source="eval", fitness=1.0, length=3)])
>>> batch.select([1]).variables["x"].tolist()
[2.0, 3.0, 4.0]
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter, ValidationError

from .schemas import EpisodeMeta, StoredEpisode

INDEX_FILE = "index.json"
MAX_EPISODES = 4096        # in one batch read from a job
MAX_BATCH_BYTES = 256 * 1024 * 1024
FITNESS_BINS = 8
_META = TypeAdapter(list[EpisodeMeta])
_INDEX = TypeAdapter(list[StoredEpisode])


class EpisodeError(ValueError):
    """A batch of episodes that does not have the layout this env's episodes have."""


@dataclass(frozen=True)
class EpisodeBatch:
    """Episodes one after another: per-step arrays of every state variable and the action."""

    variables: dict[str, np.ndarray]
    action: np.ndarray
    meta: list[EpisodeMeta]

    def __post_init__(self):
        steps = self.action.shape[0]
        if sum(m.length for m in self.meta) != steps or any(v.shape[0] != steps for v in self.variables.values()):
            raise EpisodeError("the episodes' lengths do not add up to the steps recorded")

    @property
    def lengths(self) -> np.ndarray:
        return np.array([m.length for m in self.meta], dtype=np.int64)

    @property
    def offsets(self) -> np.ndarray:
        """Where each episode starts, and the end: ``len(meta) + 1`` entries."""
        return np.concatenate([[0], np.cumsum(self.lengths)]).astype(np.int64)

    @property
    def steps(self) -> int:
        return int(self.action.shape[0])

    @property
    def fitness(self) -> np.ndarray:
        return np.array([m.fitness for m in self.meta], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.meta)

    def episode_bytes(self, i: int) -> int:
        if not self.steps:
            return 0
        per_step = sum(v[0].nbytes for v in self.variables.values()) + self.action[0].nbytes
        return int(self.meta[i].length * per_step)

    def first_steps(self) -> dict[str, np.ndarray]:
        """Each scalar variable's value at every episode's first recorded step."""
        starts = self.offsets[:-1]
        return {k: v[starts].astype(np.float64) for k, v in self.variables.items() if v.ndim == 1}

    def select(self, indices: Sequence[int]) -> EpisodeBatch:
        """The episodes at ``indices``, in that order."""
        offsets = self.offsets
        rows = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in indices]) if len(indices) else \
            np.zeros(0, dtype=np.int64)
        return EpisodeBatch({k: v[rows] for k, v in self.variables.items()}, self.action[rows],
                            [self.meta[i] for i in indices])

    def with_meta(self, **update) -> EpisodeBatch:
        return EpisodeBatch(self.variables, self.action, [m.model_copy(update=update) for m in self.meta])

    @staticmethod
    def concat(batches: Sequence[EpisodeBatch]) -> EpisodeBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            raise EpisodeError("no episodes")
        names = list(batches[0].variables)
        if any(list(b.variables) != names for b in batches):
            raise EpisodeError("the batches record different variables")
        return EpisodeBatch({k: np.concatenate([b.variables[k] for b in batches]) for k in names},
                            np.concatenate([b.action for b in batches]), [m for b in batches for m in b.meta])

    # -- files -------------------------------------------------------------------------------
    def to_bytes(self, compress: bool = False) -> bytes:
        arrays = {f"var:{k}": np.ascontiguousarray(v, dtype=np.float32) for k, v in self.variables.items()}
        arrays["action"] = np.ascontiguousarray(self.action, dtype=np.float32)
        arrays["lengths"] = self.lengths
        arrays["meta"] = np.array(json.dumps([m.model_dump(mode="json") for m in self.meta]))
        buffer = io.BytesIO()
        save = np.savez_compressed if compress else np.savez
        save(buffer, **arrays)  # type: ignore[arg-type]
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes, variables: dict[str, tuple[int, ...]] | None = None,
                   max_length: int | None = None) -> EpisodeBatch:
        """Parse a batch (written by a sandboxed job: checked, never unpickled). With
        ``variables`` (name -> per-step shape), exactly those variables must be there, with
        those shapes; with ``max_length``, no episode may be longer."""
        try:
            with np.load(io.BytesIO(raw), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError, EOFError) as exc:
            raise EpisodeError(f"not a batch of episodes: {exc}") from None
        try:
            meta = _META.validate_json(str(arrays.pop("meta")))
            lengths, action = arrays.pop("lengths"), arrays.pop("action")
        except KeyError as exc:
            raise EpisodeError(f"the batch has no {exc.args[0]}") from None
        except ValidationError as exc:
            raise EpisodeError(f"the episodes' descriptions are malformed: {exc.errors()[0]['msg']}") from None
        if not 1 <= len(meta) <= MAX_EPISODES or lengths.shape != (len(meta),) or \
                [int(x) for x in lengths] != [m.length for m in meta]:
            raise EpisodeError("the episodes' lengths do not match their descriptions")
        if max_length is not None and max(m.length for m in meta) > max_length:
            raise EpisodeError(f"an episode is longer than the env's {max_length} steps")
        if not all(k.startswith("var:") for k in arrays):
            raise EpisodeError(f"unexpected arrays in the batch: {sorted(arrays)}")
        found = {k[4:]: v for k, v in arrays.items()}
        if variables is not None:
            if set(found) != set(variables):
                raise EpisodeError(f"the batch records {sorted(found)}, the env has {sorted(variables)}")
            for name, shape in variables.items():
                if found[name].shape[1:] != tuple(shape):
                    raise EpisodeError(f"{name} has per-step shape {found[name].shape[1:]}, expected {tuple(shape)}")
            found = {name: found[name] for name in variables}
        for name, value in [*found.items(), ("action", action)]:
            if value.dtype.kind != "f" or value.ndim < 1:
                raise EpisodeError(f"{name} is not a float array")
            if not np.isfinite(value).all():
                raise EpisodeError(f"{name} has NaN or infinite values")
        return cls({k: v.astype(np.float32, copy=False) for k, v in found.items()},
                   action.astype(np.float32, copy=False), meta)


def variable_shapes(description) -> dict[str, tuple[int, ...]]:
    """The per-step shape of each state variable of an env's description."""
    return {v.name: tuple(v.shape) for v in description.variables}


def informative(fitness: Sequence[float] | np.ndarray, min_pairs: float = 0.05) -> bool:
    """Whether episodes differ enough in fitness to rank rewards by: at least four, and at least
    ``min_pairs`` of their pairs differ."""
    f = np.asarray(fitness, dtype=np.float64)
    if len(f) < 4:
        return False
    _, counts = np.unique(np.round(f, 6), return_counts=True)
    n = len(f)
    differing = (n * n - float((counts ** 2).sum())) / 2
    return differing / (n * (n - 1) / 2) >= min_pairs


def spread(entries: Sequence[StoredEpisode], n: int, bins: int = FITNESS_BINS) -> list[StoredEpisode]:
    """Up to ``n`` entries spread over their fitness: the range cut into ``bins``, then one
    from each bin in turn, newest first."""
    if len(entries) <= n:
        return list(entries)
    groups = _bins(entries, bins)
    chosen: list[StoredEpisode] = []
    queues = [sorted(g, key=lambda e: -e.id) for g in groups if g]
    while len(chosen) < n:
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    return sorted(chosen, key=lambda e: e.id)


def _bins(entries: Sequence[StoredEpisode], bins: int) -> list[list[StoredEpisode]]:
    f = np.array([e.meta.fitness for e in entries])
    lo, hi = float(f.min()), float(f.max())
    width = (hi - lo) / bins or 1.0
    groups: list[list[StoredEpisode]] = [[] for _ in range(bins)]
    for e in entries:
        groups[min(bins - 1, int((e.meta.fitness - lo) / width))].append(e)
    return groups


class EpisodeStore:
    """The run's episodes, under a cap in bytes; safe to use from several threads."""

    def __init__(self, folder: Path, cap_bytes: int, variables: dict[str, tuple[int, ...]] | None = None):
        self.folder, self.cap_bytes, self.variables = Path(folder), int(cap_bytes), variables
        self._lock = threading.Lock()
        self._entries: list[StoredEpisode] = []
        self._state: dict = {"next_id": 0, "next_batch": 0, "seeded": False, "seed": {}}
        self._load()

    # -- reading -------------------------------------------------------------------------------
    def _load(self) -> None:
        path = self.folder / INDEX_FILE
        if not path.is_file():
            return
        try:
            data = json.loads(path.read_text())
            entries = _INDEX.validate_python(data.pop("episodes"))
        except (ValueError, KeyError, ValidationError, TypeError):
            return  # a damaged index: start again (the episodes are an optimisation)
        self._entries = [e for e in entries if (self.folder / e.batch).is_file()]
        self._state.update({k: data[k] for k in self._state if k in data})

    @property
    def entries(self) -> list[StoredEpisode]:
        with self._lock:
            return list(self._entries)

    @property
    def version(self) -> int:
        """Changes whenever episodes are added (memo keys of verdicts that depend on them)."""
        return int(self._state["next_id"])

    @property
    def seeded(self) -> bool:
        """Whether the first iteration's episodes (random policies, probe) were collected."""
        return bool(self._state["seeded"])

    @property
    def total_bytes(self) -> int:
        return sum(e.bytes for e in self.entries)

    def start_values(self) -> dict[str, tuple[float, float, float]]:
        """Where episodes start: each scalar variable's 10th, 50th and 90th percentile at the first
        step of the random policies' episodes (what the env's reset gives, whatever the policy)."""
        random = [e for e in self.entries if e.meta.source == "random"]
        if not random:
            return {}
        starts = {}
        for name, values in self.load(random).first_steps().items():
            p10, p50, p90 = np.percentile(values, [10, 50, 90])
            starts[name] = (float(p10), float(p50), float(p90))
        return starts

    def load(self, entries: Sequence[StoredEpisode]) -> EpisodeBatch:
        """The episodes of ``entries``, in that order."""
        by_batch: dict[str, list[StoredEpisode]] = {}
        for e in entries:
            by_batch.setdefault(e.batch, []).append(e)
        parts: dict[int, EpisodeBatch] = {}
        for name, group in by_batch.items():
            batch = EpisodeBatch.from_bytes((self.folder / name).read_bytes(), self.variables)
            for e in group:
                parts[e.id] = batch.select([e.slot])
        return EpisodeBatch.concat([parts[e.id] for e in entries])

    # -- writing -------------------------------------------------------------------------------
    def add(self, batch: EpisodeBatch) -> list[StoredEpisode]:
        """Keep ``batch``; then drop episodes until the store fits its cap. Returns what was added."""
        from .runs import atomic_write_bytes

        if not len(batch) or self.cap_bytes <= 0:
            return []
        with self._lock:
            name = f"batch_{self._state['next_batch']:05d}.npz"
            first = self._state["next_id"]
            added = [StoredEpisode(id=first + i, batch=name, slot=i, bytes=batch.episode_bytes(i), meta=m)
                     for i, m in enumerate(batch.meta)]
            atomic_write_bytes(self.folder / name, batch.to_bytes(compress=True))
            self._entries += added
            self._state["next_batch"] += 1
            self._state["next_id"] += len(added)
            self._fit_cap()
            self._write_index()
            kept = {e.id for e in self._entries}
            return [e for e in added if e.id in kept]

    @property
    def seed_info(self) -> dict:
        """What collecting the first iteration's episodes took (kept for the summary)."""
        return dict(self._state["seed"])

    def mark_seeded(self, info: dict) -> None:
        with self._lock:
            self._state.update(seeded=True, seed=dict(info))
            self._write_index()

    def _write_index(self) -> None:
        from .runs import atomic_write_json

        atomic_write_json(self.folder / INDEX_FILE,
                          {**self._state, "episodes": [e.model_dump(mode="json") for e in self._entries]})

    def _fit_cap(self) -> None:
        """Drop episodes, from the most crowded fitness range and oldest first, until the store
        fits; rewrite the batch files that lost episodes."""
        from .runs import atomic_write_bytes

        total = sum(e.bytes for e in self._entries)
        if total <= self.cap_bytes:
            return
        dropped: set[int] = set()
        kept = list(self._entries)
        while total > self.cap_bytes and kept:
            crowded = max(_bins(kept, FITNESS_BINS), key=len)
            victim = min(crowded, key=lambda e: e.id)
            kept.remove(victim)
            dropped.add(victim.id)
            total -= victim.bytes
        # a batch that lost episodes is written again under a new name before the index names
        # it, and the old file goes after: a kill at any point leaves a consistent store
        touched = {e.batch for e in self._entries if e.id in dropped}
        survivors: list[StoredEpisode] = []
        for name in sorted({e.batch for e in self._entries}):
            group = [e for e in self._entries if e.batch == name]
            if name not in touched:
                survivors += group
                continue
            keep = [e for e in group if e.id not in dropped]
            if keep:
                batch = EpisodeBatch.from_bytes((self.folder / name).read_bytes(), self.variables)
                fresh = f"batch_{self._state['next_batch']:05d}.npz"
                self._state["next_batch"] += 1
                atomic_write_bytes(self.folder / fresh, batch.select([e.slot for e in keep]).to_bytes(compress=True))
                survivors += [e.model_copy(update={"batch": fresh, "slot": i}) for i, e in enumerate(keep)]
        self._entries = sorted(survivors, key=lambda e: e.id)
        self._write_index()
        for name in touched:
            (self.folder / name).unlink(missing_ok=True)
