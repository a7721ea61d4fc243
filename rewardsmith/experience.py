"""Experience a solve's SAC candidates share: the transitions earlier candidates collected
(observation, next observation, action, termination and the named state after each step; no
rewards), handed to the next candidate's training job, which relabels them with its own reward
inside its sandbox.

On disk a set of transitions is two files: ``STEM.json`` (an :class:`ExperienceIndex`: how many
rows, and the columns with their shapes and types) and ``STEM.f32`` (the rows, float32,
little-endian, one after another). A training job writes them into its folder; the host reads
them back as it reads anything a sandbox wrote (regular files, capped, see :func:`read`),
checks them against the env's description (:func:`check`: the columns it must have, their
shapes, finite values, actions within their bounds, termination flags 0 or 1) and keeps its own
copy in the run (``RUN/experience/``, :class:`ExperienceStore`, bounded in bytes). A training
job only ever gets a copy, so whatever its reward does to it stays in that sandbox.

numpy only (no torch): the host reads and writes these; :mod:`rewardsmith.train.sac` turns them
into tensors.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .envs.description import EnvDescription
from .runs import atomic_write_bytes, atomic_write_text

INDEX_SUFFIX, DATA_SUFFIX = ".json", ".f32"
MAX_INDEX_BYTES = 64 * 1024
MAX_WIDTH = 65536       # floats in one row
FIXED = ("obs", "next_obs", "action", "terminated")
VARIABLE_PREFIX = "var:"  # a named state variable's column: var:NAME
DTYPES = ("float32", "float64", "bool", "int32", "int64", "uint8")
ACTION_SLACK = 1e-4      # relative to the action range: rounding at the bounds
MAX_MAGNITUDE = 1e6      # no env's state is this large; values beyond it would overflow the critics


class Column(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(max_length=200)
    shape: tuple[Annotated[int, Field(ge=1)], ...] = Field(max_length=8)
    dtype: Literal["float32", "float64", "bool", "int32", "int64", "uint8"] = "float32"

    @property
    def width(self) -> int:
        return math.prod(self.shape)


class ExperienceIndex(BaseModel):
    """What ``STEM.f32`` holds: ``rows`` rows of the ``columns`` side by side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int = Field(ge=0)
    columns: tuple[Column, ...] = Field(max_length=520)

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def nbytes(self) -> int:
        return self.rows * self.width * 4


@dataclass(frozen=True)
class Transitions:
    """Rows of transitions as one float32 array ``(rows, width)``, described by ``index``."""

    index: ExperienceIndex
    data: np.ndarray

    @property
    def rows(self) -> int:
        return self.index.rows

    @property
    def nbytes(self) -> int:
        return self.index.nbytes

    def columns(self) -> dict[str, np.ndarray]:
        """Each column as ``(rows, *shape)`` in its own dtype (views where the dtype is float32)."""
        out, offset = {}, 0
        for c in self.index.columns:
            block = self.data[:, offset:offset + c.width].reshape(self.rows, *c.shape)
            out[c.name] = block if c.dtype == "float32" else block.astype(c.dtype)
            offset += c.width
        return out

    def newest(self, rows: int) -> Transitions:
        rows = max(0, min(rows, self.rows))
        return Transitions(self.index.model_copy(update={"rows": rows}), self.data[self.rows - rows:])

    @staticmethod
    def from_columns(columns: dict[str, np.ndarray]) -> Transitions:
        """Rows from named arrays of equal length (``obs``, ``next_obs``, ``action``,
        ``terminated``, ``var:NAME``...), in that order."""
        rows = len(next(iter(columns.values())))
        spec = tuple(Column(name=k, shape=tuple(v.shape[1:]),
                            dtype=str(v.dtype) if str(v.dtype) in DTYPES else "float32")
                     for k, v in columns.items())
        data = np.concatenate([np.asarray(v, dtype=np.float32).reshape(rows, -1) for v in columns.values()], 1)
        return Transitions(ExperienceIndex(rows=rows, columns=spec), np.ascontiguousarray(data))

    @staticmethod
    def concat(parts: list[Transitions]) -> Transitions:
        index = parts[0].index.model_copy(update={"rows": sum(p.rows for p in parts)})
        return Transitions(index, np.concatenate([p.data for p in parts], 0))


# ------------------------------------------------------------------------------ files

def write(folder: Path, stem: str, transitions: Transitions) -> None:
    """Write ``STEM.f32`` then ``STEM.json``, each atomically (a reader finds the index last)."""
    atomic_write_bytes(folder / (stem + DATA_SUFFIX), transitions.data.astype("<f4", copy=False).tobytes())
    atomic_write_text(folder / (stem + INDEX_SUFFIX), transitions.index.model_dump_json())


def read(folder: Path | int, stem: str, description: EnvDescription, max_bytes: int,
         obs_dim: int | None = None) -> Transitions | str:
    """Read and :func:`check` transitions a sandbox may have written (``folder``: a path, or an
    open folder's descriptor); a reason when they are unusable."""
    from .runners.jobs import read_untrusted

    def untrusted(name: str, limit: int) -> bytes | None:
        if isinstance(folder, int):
            return read_untrusted(name, limit, dir_fd=folder)
        return read_untrusted(folder / name, limit)

    raw_index = untrusted(stem + INDEX_SUFFIX, MAX_INDEX_BYTES)
    if raw_index is None:
        return f"no readable {stem + INDEX_SUFFIX} (a regular file of at most {MAX_INDEX_BYTES} bytes)"
    try:
        index = ExperienceIndex.model_validate_json(raw_index)
    except (ValidationError, ValueError):
        return f"{stem + INDEX_SUFFIX} is malformed"
    if index.nbytes > max_bytes:
        return f"{index.rows} transitions ({index.nbytes} bytes) are more than the {max_bytes} bytes allowed"
    raw = untrusted(stem + DATA_SUFFIX, max_bytes)
    if raw is None:
        return f"no readable {stem + DATA_SUFFIX} of at most {max_bytes} bytes"
    return check(index, raw, description, obs_dim)


def check(index: ExperienceIndex, raw: bytes, description: EnvDescription,
          obs_dim: int | None = None) -> Transitions | str:
    """The transitions if ``raw`` holds what ``index`` says and that is what ``description``'s
    env gives (with observations of ``obs_dim`` when given): a reason otherwise, never an error."""
    try:
        return _check(index, raw, description, obs_dim)
    except (ValueError, TypeError, KeyError, MemoryError) as exc:
        return f"unreadable transitions: {type(exc).__name__}: {str(exc)[:200]}"


def _check(index: ExperienceIndex, raw: bytes, description: EnvDescription, obs_dim: int | None) -> Transitions | str:
    expected = expected_columns(description)
    names = [c.name for c in index.columns]
    if names != list(expected):
        return f"the columns are {names[:8]}, not {list(expected)[:8]}"
    columns = {c.name: c for c in index.columns}
    obs, next_obs = columns["obs"], columns["next_obs"]
    if len(obs.shape) != 1 or obs != next_obs.model_copy(update={"name": "obs"}) or obs.dtype != "float32":
        return "obs and next_obs must be float32 vectors of the same size"
    if obs_dim is not None and obs.shape != (obs_dim,):
        return f"observations of {obs.shape}, the env's are ({obs_dim},)"
    for name, shape in expected.items():
        if shape is not None and columns[name].shape != shape:
            return f"{name} has shape {columns[name].shape}, the env's is {shape}"
    if not 0 < index.width <= MAX_WIDTH:
        return f"a row of {index.width} floats"
    if len(raw) != index.nbytes:
        return f"{len(raw)} bytes of data for {index.rows} rows of {index.width} floats"
    data = np.frombuffer(raw, dtype="<f4").reshape(index.rows, index.width).astype(np.float32)
    if not np.isfinite(data).all():
        return "some values are NaN or infinite"
    if data.size and float(np.abs(data).max()) > MAX_MAGNITUDE:
        return f"some values are beyond ±{MAX_MAGNITUDE:g}"
    transitions = Transitions(index, data)
    cols = transitions.columns()
    terminated = cols["terminated"]
    if not np.isin(data[:, _offset(index, "terminated")], (0.0, 1.0)).all() or terminated.shape != (index.rows,):
        return "terminated is not 0 or 1"
    low, high = description.action.low, description.action.high
    if low is not None and high is not None:
        lo, hi = np.asarray(low, np.float32), np.asarray(high, np.float32)
        slack = ACTION_SLACK * np.maximum(hi - lo, 1.0)
        if not ((cols["action"] >= lo - slack).all() and (cols["action"] <= hi + slack).all()):
            return "actions outside the env's action bounds"
    return transitions


def expected_columns(description: EnvDescription) -> dict[str, tuple[int, ...] | None]:
    """The columns a set of transitions on this env has, with their shapes (``None``: the
    observation's, which the description does not give)."""
    action = description.action
    out: dict[str, tuple[int, ...] | None] = {"obs": None, "next_obs": None,
                                              "action": (action.size,), "terminated": ()}
    for v in description.variables:
        out[VARIABLE_PREFIX + v.name] = tuple(v.shape)
    return out


def _offset(index: ExperienceIndex, name: str) -> int:
    offset = 0
    for c in index.columns:
        if c.name == name:
            return offset
        offset += c.width
    raise KeyError(name)


# ------------------------------------------------------------------------------ the run's store

class ExperienceStore:
    """The transitions of a run's candidates, newest last, at most ``max_bytes`` of them (the
    oldest candidates' go first): ``RUN/experience/index.json`` and a pair of files per candidate,
    all written by the host."""

    INDEX = "index.json"

    def __init__(self, folder: Path, max_bytes: int):
        self.folder, self.max_bytes = folder, max_bytes

    def _entries(self) -> list[dict]:
        try:
            entries = json.loads((self.folder / self.INDEX).read_text())["chunks"]
        except (OSError, ValueError, KeyError, TypeError):
            return []
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("stem"), str)]

    def _save(self, entries: list[dict]) -> None:
        atomic_write_text(self.folder / self.INDEX, json.dumps({"chunks": entries}, indent=1) + "\n")

    def add(self, iteration: int, index: int, transitions: Transitions) -> None:
        """Keep a candidate's transitions (its newest ones if they alone exceed the bound), and
        drop the oldest candidates' beyond it."""
        stem = f"iteration_{iteration}_candidate_{index}"
        per_row = max(1, transitions.index.width * 4)
        transitions = transitions.newest(self.max_bytes // per_row)
        self.folder.mkdir(parents=True, exist_ok=True)
        write(self.folder, stem, transitions)
        entries = [e for e in self._entries() if e["stem"] != stem]
        entries.append({"stem": stem, "iteration": iteration, "index": index, "rows": transitions.rows,
                        "bytes": transitions.nbytes})
        while sum(int(e.get("bytes", 0)) for e in entries) > self.max_bytes and len(entries) > 1:
            gone = entries.pop(0)
            for suffix in (INDEX_SUFFIX, DATA_SUFFIX):
                (self.folder / (gone["stem"] + suffix)).unlink(missing_ok=True)
        self._save(entries)

    def gather(self, description: EnvDescription, before_iteration: int | None = None) -> Transitions | None:
        """Every kept transition (of candidates of earlier iterations than ``before_iteration``),
        oldest first; of candidates whose columns differ, those with the most rows."""
        groups: dict[ExperienceIndex, list[Transitions]] = {}
        for entry in self._entries():
            if before_iteration is not None and int(entry.get("iteration", 0)) >= before_iteration:
                continue
            found = read(self.folder, entry["stem"], description, self.max_bytes)
            if isinstance(found, Transitions) and found.rows:
                groups.setdefault(found.index.model_copy(update={"rows": 0}), []).append(found)
        if not groups:
            return None
        largest = max(groups.values(), key=lambda parts: sum(p.rows for p in parts))
        return Transitions.concat(largest)

    def contributors(self) -> list[dict]:
        return self._entries()
