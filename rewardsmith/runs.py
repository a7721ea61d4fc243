"""The run directory: every artifact of a solve, written atomically; the source of truth for resume.

```
RUN/
  run.json                 options the run was started with
  task.yaml                the task as resolved (defaults filled in, flags applied)
  summary.json             best candidate, every candidate, wall time, LLM usage
  rankings.jsonl           rankings by people (``rewardsmith rank``) and VLMs, one per line, append-only
  iter_00/
    proposals.json         what the designer proposed (so a resume does not ask again)
    feedback.json          the judgement on this iteration
    cand_00/
      reward.py  critic.json  result.json  train.log  eval.log  policy.pt
      rollout.json  rollout.mp4  rollout.gif   one episode of the trained policy (recorded by the
                           clean evaluation; the reward per step from a score job)
      check.json           the dry run's report (components, signature for spotting duplicates,
                           returns on the stored episodes)
      vlm_frames.png       with --feedback vlm: the contact sheet of the episode the VLM was shown
      work/  eval/  score/ the sandboxes' job folders, while a job runs
  episodes/
    index.json             the stored episodes (fitness, origin) for trajectory screening
    batch_00000.npz        their per-step states and actions (see rewardsmith.episodes)
  llm/
    000-request.json       every request to the LLM and its answer (no API keys), in order
    000-response.json
```
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from .errors import DiskFull, RunDirError, is_disk_full
from .schemas import (
    BestCandidate,
    Candidate,
    CandidateLine,
    CandidateResult,
    CheckReport,
    Feedback,
    IterationRecord,
    Ranking,
    Summary,
)
from .task import TaskSpec, parse_task

# how atomic_write_bytes names its temporary file (".NAME.<random>" + this), and the folders of a
# run that sandboxed jobs write into
PARTIAL_SUFFIX = ".partial.tmp"
SCRATCH_FOLDERS = {"work", "eval", "checks", "tmp"}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if is_disk_full(exc):
            raise DiskFull(f"the disk is full: could not write {path}") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: BaseModel | dict | list) -> None:
    text = data.model_dump_json(indent=2) if isinstance(data, BaseModel) else json.dumps(data, indent=2)
    atomic_write_text(path, text + "\n")


def check_writable(path: Path, what: str, folder: bool = True) -> None:
    """That ``path`` can be written here (a folder, or with ``folder=False`` a file), before any
    work starts; else a one-line :class:`RunDirError` naming ``what`` (``--out``, ``-o``). Missing
    parent folders are fine (they are made later); nothing is left behind."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        raise RunDirError(f"{what} {path}: " + ("it is a file, not a folder" if folder else "it is a folder"))
    ancestor = path if folder else path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunDirError(f"{what} {path}: {ancestor} is not a folder")
    try:  # the only honest test (permissions, read-only mounts, /proc): make something, then remove it,
        # and give the folder back its times (a run folder that is only read keeps them)
        times = os.stat(ancestor)
        os.rmdir(tempfile.mkdtemp(prefix=".rewardsmith-probe-", dir=ancestor))
        os.utime(ancestor, ns=(times.st_atime_ns, times.st_mtime_ns))
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(f"the disk is full: cannot write in {ancestor}") from None
        raise RunDirError(f"{what} {path}: cannot write in {ancestor} ({exc.strerror or exc})") from None


def make_folder(path: Path, what: str) -> None:
    """``mkdir -p path``, with a failure as a one-line :class:`RunDirError`."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(f"the disk is full: could not make {path}") from None
        raise RunDirError(f"{what} {path}: cannot make this folder ({exc.strerror or exc})") from None


def default_run_path(task_name: str, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{task_name}-{stamp}"
    n = 2
    while path.exists():
        path, n = root / f"{task_name}-{stamp}-{n}", n + 1
    return path


class RunDir:
    """A solve's run directory, or the folder of one ``rewardsmith train`` (``single``): that one
    holds its only candidate at the top (``reward.py``, ``result.json``, ``policy.pt``) and reads
    as a run of one iteration with one candidate."""

    def __init__(self, path: Path, single: bool = False):
        self.path = Path(path)
        self.single = single

    # -- creation and resume ----------------------------------------------------------------
    @classmethod
    def create(cls, path: Path, task: TaskSpec, options: dict) -> RunDir:
        if path.exists() and any(path.iterdir()):
            raise RunDirError(f"{path} already exists and is not empty; choose another --out "
                              f"or continue it with --resume {path}")
        run = cls(path)
        make_folder(path, "--out")
        atomic_write_text(path / "task.yaml", yaml.safe_dump(task.model_dump(mode="json"), sort_keys=False))
        atomic_write_json(path / "run.json", {"version": 1, "options": options,
                                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return run

    @classmethod
    def create_single(cls, path: Path, task: TaskSpec, options: dict) -> RunDir:
        """The folder of one ``rewardsmith train`` (``task.yaml``, ``run.json``; the candidate's
        files follow at the top)."""
        if path.exists() and any(path.iterdir()):
            raise RunDirError(f"{path} already exists and is not empty; choose another --out")
        make_folder(path, "--out")
        atomic_write_text(path / "task.yaml", yaml.safe_dump(task.model_dump(mode="json"), sort_keys=False))
        atomic_write_json(path / "run.json", {"version": 1, "kind": "train", "options": options,
                                              "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        return cls(path, single=True)

    @classmethod
    def open(cls, path: Path) -> tuple[RunDir, TaskSpec, dict]:
        """An existing run, its task and options (for ``--resume``, ``rank``, ``report``, ``eval``
        and ``export``); also the folder of a ``rewardsmith train``."""
        path = Path(path)
        single = (path / "result.json").is_file() and (path / "reward.py").is_file()
        if not (path / "task.yaml").is_file() or not ((path / "run.json").is_file() or single):
            raise RunDirError(f"{path} is not a rewardsmith run directory (no run.json/task.yaml)")
        try:  # a train folder of an older version has no run.json
            record = json.loads((path / "run.json").read_text()) if (path / "run.json").is_file() else {"options": {}}
            options = record["options"]
            single = single and record.get("kind", "train") == "train"
        except (ValueError, KeyError, TypeError):
            raise RunDirError(f"{path}/run.json is damaged") from None
        # the task as it was resolved; its env is not built here (a report needs no simulator)
        try:
            data = yaml.safe_load((path / "task.yaml").read_text())
        except (yaml.YAMLError, OSError, UnicodeDecodeError):
            raise RunDirError(f"{path}/task.yaml is damaged") from None
        task = parse_task(data, str(path / "task.yaml"), check_env=False)
        return cls(path, single=single), task, options

    def save_options(self, options: dict) -> None:
        """The options a resumed run goes on with (``run.json`` keeps when it started)."""
        data = json.loads((self.path / "run.json").read_text())
        atomic_write_json(self.path / "run.json", {**data, "options": options})

    def remove_partial_writes(self) -> int:
        """Delete what atomic writes of a killed solve left: their temporary files (the file they
        were replacing is intact). Called when a solve resumes; returns how many it removed.
        Sandboxes' scratch folders are not searched: untrusted code wrote them, and they are
        rebuilt before any reuse."""
        removed = 0
        for folder, subfolders, files in os.walk(self.path):
            subfolders[:] = [d for d in subfolders if d not in SCRATCH_FOLDERS]
            for name in files:
                if name.startswith(".") and name.endswith(PARTIAL_SUFFIX):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(folder, name))
                        removed += 1
        return removed

    # -- layout -------------------------------------------------------------------------------
    def iteration_dir(self, iteration: int) -> Path:
        return self.path / f"iter_{iteration:02d}"

    def candidate_dir(self, iteration: int, index: int) -> Path:
        if self.single:
            return self.path
        return self.iteration_dir(iteration) / f"cand_{index:02d}"

    def results(self) -> list[CandidateResult]:
        """Every finished candidate's result, by iteration and index."""
        if self.single:
            return [r for r in [self.load_result(0, 0)] if r is not None]
        found = []
        for folder in sorted(self.path.glob("iter_*/cand_*")):
            try:
                iteration, index = int(folder.parent.name[5:]), int(folder.name[5:])
            except ValueError:
                continue  # not a folder this code wrote
            if (result := self.load_result(iteration, index)) is not None:
                found.append(result)
        return found

    def relative(self, path: Path) -> str:
        return str(path.relative_to(self.path))

    # -- records ------------------------------------------------------------------------------
    def save_proposals(self, iteration: int, candidates: list[Candidate]) -> None:
        for c in candidates:
            folder = self.candidate_dir(iteration, c.index)
            atomic_write_text(folder / "reward.py", c.code)
        atomic_write_json(self.iteration_dir(iteration) / "proposals.json",
                          [c.model_dump(mode="json") for c in candidates])

    def load_proposals(self, iteration: int) -> list[Candidate] | None:
        return self._load_list(self.iteration_dir(iteration) / "proposals.json", Candidate)

    def save_result(self, result: CandidateResult) -> None:
        atomic_write_json(self.candidate_dir(result.iteration, result.index) / "result.json", result)

    def forget_result(self, iteration: int, index: int) -> None:
        """Mark a finished candidate as not done, so that a resume trains it again."""
        (self.candidate_dir(iteration, index) / "result.json").unlink(missing_ok=True)

    def load_result(self, iteration: int, index: int) -> CandidateResult | None:
        return self.load(self.candidate_dir(iteration, index) / "result.json", CandidateResult)

    def save_check(self, iteration: int, index: int, report: CheckReport) -> None:
        atomic_write_json(self.candidate_dir(iteration, index) / "check.json", report)

    def load_check(self, iteration: int, index: int) -> CheckReport | None:
        return self.load(self.candidate_dir(iteration, index) / "check.json", CheckReport)

    def save_feedback(self, feedback: Feedback) -> None:
        atomic_write_json(self.iteration_dir(feedback.iteration) / "feedback.json", feedback)

    def load_feedback(self, iteration: int) -> Feedback | None:
        return self.load(self.iteration_dir(iteration) / "feedback.json", Feedback)

    def save_ranking(self, ranking: Ranking) -> None:
        """Add a ranking to ``rankings.jsonl`` (earlier lines are kept as they were)."""
        path = self.path / "rankings.jsonl"
        before = path.read_text() if path.is_file() else ""
        if before and not before.endswith("\n"):
            before += "\n"
        atomic_write_text(path, before + ranking.model_dump_json() + "\n")

    def load_rankings(self) -> list[Ranking]:
        path = self.path / "rankings.jsonl"
        if not path.is_file():
            return []
        rankings = []
        for line in path.read_text().splitlines():
            try:
                rankings.append(Ranking.model_validate_json(line))
            except (ValidationError, ValueError):
                continue  # a damaged line is skipped, not fatal
        return rankings

    def latest_ranking(self, iteration: int, judge: str | None = None) -> Ranking | None:
        """The last ranking given for ``iteration`` (by ``judge``: ``person`` or ``vlm``), if any."""
        return next((r for r in reversed(self.load_rankings())
                     if r.iteration == iteration and judge in (None, r.judge)), None)

    def history(self) -> list[IterationRecord]:
        """Finished iterations (those with feedback), in order."""
        records = []
        iteration = 0
        while (feedback := self.load_feedback(iteration)) is not None:
            proposals = self.load_proposals(iteration) or []
            results = [r for c in proposals if (r := self.load_result(iteration, c.index)) is not None]
            records.append(IterationRecord(iteration=iteration, candidates=results, feedback=feedback))
            iteration += 1
        return records

    def write_summary(self, summary: Summary) -> None:
        atomic_write_json(self.path / "summary.json", summary)

    def load_summary(self) -> Summary | None:
        summary = self.load(self.path / "summary.json", Summary)
        if summary is None and self.single and (result := self.load_result(0, 0)) is not None:
            return single_summary(self.path.name, result)
        return summary

    @staticmethod
    def load(path: Path, model: type[BaseModel]):
        """A record from a file of the run, or ``None`` if it is missing or damaged."""
        if not path.is_file():
            return None
        try:
            return model.model_validate_json(path.read_text())
        except (ValidationError, ValueError):
            return None  # a damaged file counts as not written; the work is redone

    @staticmethod
    def _load_list(path: Path, model: type[BaseModel]):
        if not path.is_file():
            return None
        try:
            return [model.model_validate(item) for item in json.loads(path.read_text())]
        except (ValidationError, ValueError, TypeError):
            return None


def single_summary(task_name: str, result: CandidateResult) -> Summary:
    """The summary of a run of one candidate (what ``rewardsmith train`` leaves)."""
    best = None
    if result.status == "ok" and result.fitness is not None:
        best = BestCandidate(iteration=result.iteration, index=result.index, fitness=result.fitness,
                             success=result.success, reward_file=result.reward_file)
    line = CandidateLine(iteration=result.iteration, index=result.index, status=result.status, fitness=result.fitness,
                         reason=result.reason, success=result.success)
    return Summary(task=task_name, status="done", best=best, candidates=[line], wall_s=round(result.wall_s, 3),
                   iterations_done=1, sandbox=result.sandbox, designer="")
