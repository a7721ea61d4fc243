"""A candidate's files, brought back from the machine it ran on.

An executor that runs :func:`~rewardsmith.runners.jobs.train_and_evaluate` on another machine (a
Ray node) runs it in a folder there. :func:`pack` reads everything it left in that folder (what
it leaves in a local candidate's folder: policy, logs, the recorded episode and its videos, and
any file it writes in future) as the host reads anything a sandbox wrote: regular files only,
each within its cap (:data:`~rewardsmith.runners.jobs.CANDIDATE_FILES`). :func:`unpack` writes
them into the candidate's folder here, checked again (names inside the folder, sizes, the
episode trace's schema), atomically. A file left out is named in ``train.log`` with the reason.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from ...runs import atomic_write_bytes
from ...schemas import RolloutTrace
from ..jobs import CANDIDATE_FILES, read_untrusted
from ..protocol import TRACE_FILE

MAX_OTHER_BYTES = 64 * 1024 * 1024    # a file not in CANDIDATE_FILES
MAX_TOTAL_BYTES = 512 * 1024 * 1024   # all of a candidate's files together
LOG = "train.log"                     # where what was left out is said


@dataclass(frozen=True)
class Artifacts:
    """The files of a candidate's folder (relative POSIX paths) and what was left out, and why."""

    files: dict[str, bytes]
    left_out: tuple[str, ...] = ()


def cap(name: str) -> int:
    return CANDIDATE_FILES.get(name, MAX_OTHER_BYTES)


def pack(folder: Path) -> Artifacts:
    """Read every file under ``folder`` (symbolic links and special files are left out)."""
    files: dict[str, bytes] = {}
    left_out: list[str] = []
    total = 0
    for top, dirs, names in os.walk(folder):
        for name in sorted(dirs):
            if (Path(top) / name).is_symlink():  # os.walk does not follow it; say so
                left_out.append(f"{_relative(folder, Path(top) / name)}: not a regular file")
        for name in sorted(names):
            path = Path(top) / name
            rel = _relative(folder, path)
            try:
                info = os.lstat(path)
            except OSError as exc:
                left_out.append(f"{rel}: unreadable ({exc.strerror})")
                continue
            if not stat.S_ISREG(info.st_mode):
                left_out.append(f"{rel}: not a regular file")
            elif info.st_size > cap(rel):
                left_out.append(f"{rel}: {info.st_size} bytes, more than the {cap(rel)} allowed")
            elif total + info.st_size > MAX_TOTAL_BYTES:
                left_out.append(f"{rel}: the candidate's files would exceed {MAX_TOTAL_BYTES} bytes")
            elif (data := read_untrusted(path, cap(rel))) is None:
                left_out.append(f"{rel}: changed while it was read")
            else:
                files[rel] = data
                total += len(data)
    return Artifacts(files, tuple(left_out))


def unpack(artifacts: Artifacts, folder: Path, source: str) -> list[str]:
    """Write the files into ``folder``; returns what was left out (also appended to ``train.log``,
    as ``not brought back from SOURCE: ...``)."""
    left_out = list(artifacts.left_out)
    total = 0
    for name, data in artifacts.files.items():
        problem = _problem(name, data, total)
        if problem:
            left_out.append(f"{name!r}: {problem}")
            continue
        total += len(data)
        atomic_write_bytes(folder.joinpath(*PurePosixPath(name).parts), data)
    if left_out:
        with open(folder / LOG, "a") as log:
            log.writelines(f"\nnot brought back from {source}: {line}" for line in left_out)
            log.write("\n")
    return left_out


def _problem(name: str, data: bytes, total: int) -> str | None:
    path = PurePosixPath(name)
    if "\\" in name or "\0" in name or path.is_absolute() or not path.parts or ".." in path.parts:
        return "not a name inside the candidate's folder"
    if len(data) > cap(name):
        return f"{len(data)} bytes, more than the {cap(name)} allowed"
    if total + len(data) > MAX_TOTAL_BYTES:
        return f"the candidate's files would exceed {MAX_TOTAL_BYTES} bytes"
    if name == TRACE_FILE:
        try:
            RolloutTrace.model_validate_json(data)
        except (ValidationError, ValueError) as exc:
            return f"not a valid episode trace ({type(exc).__name__})"
    return None


def _relative(folder: Path, path: Path) -> str:
    return path.relative_to(folder).as_posix()
