"""The critic: everything a candidate passes before it may train, in one ``Critic.check``.

Stages, in order: static checks on the host (:mod:`.static`, the code is parsed, never run), a
dry run in the sandbox on real states (:func:`~rewardsmith.runners.jobs.check_reward`), which
also scores the run's stored episodes for trajectory screening (:mod:`.screening`), an optional
LLM review (:mod:`.llm_review`). Verdicts are memoised by code (and by the stored episodes they
were screened on), so the designer's fix loop and the solve loop never check the same code
twice. Separately, :meth:`Critic.duplicate_of`
spots a reward that equals one already trained up to scale and offset (:mod:`.duplicates`).
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..envs.description import EnvDescription
from ..errors import EnvUnavailable
from ..runners.jobs import PROBE_REWARD, check_reward
from ..runners.sandboxes.base import Limits, Sandbox
from ..schemas import CheckReport, CriticVerdict
from ..task import TaskSpec
from .screening import Screening, Selection
from .static import static_check

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Critic", "Reviewer", "static_check"]

RECENT_CHECKS = 64  # verdicts remembered; older code is checked again should it come back
PARALLEL_CHECKS = 4
# the reward of the env probe: it reads nothing and returns zeros, so only the env can make it fail
class Reviewer(Protocol):
    """A semantic review of code that passed the dry run (the LLM critic)."""

    def review(self, code: str, task: TaskSpec, env: EnvDescription, report: CheckReport) -> CriticVerdict: ...


class Critic:
    """Checks reward code for one task; dry runs go to ``sandbox`` in folders under ``scratch``."""

    def __init__(self, task: TaskSpec, sandbox: Sandbox, limits: Limits, scratch: Path, device: str = "auto",
                 reviewer: Reviewer | None = None, env: EnvDescription | None = None,
                 screening: Screening | None = None):
        self.task, self.sandbox, self.limits, self.scratch = task, sandbox, limits, Path(scratch)
        self.device, self.reviewer, self.screening = device, reviewer, screening
        self.env = env or task.env.describe()
        self._verdicts: OrderedDict[str, tuple[CriticVerdict, CheckReport | None]] = OrderedDict()
        self._reviews: OrderedDict[str, CriticVerdict] = OrderedDict()
        self._lock = threading.Lock()
        self._trained: dict[Hashable, np.ndarray] = {}  # signatures of rewards that went to training
        self._probe_lock = threading.Lock()
        self._env_problem: str | None = None
        self._env_probed = False

    def check(self, code: str) -> CriticVerdict:
        """The critic's verdict on ``code``; designers get this to ask for fixes before handing over."""
        return self.review(code)[0]

    def review(self, code: str) -> tuple[CriticVerdict, CheckReport | None]:
        """The verdict and, if the code got as far, the dry run's report (memoised)."""
        key = hashlib.sha256(code.encode()).hexdigest()
        selection = self.screening.selection() if self.screening is not None else None
        memo = key if selection is None else f"{key}:{selection.version}"
        with self._lock:
            if memo in self._verdicts:
                return self._verdicts[memo]
        verdict, report = static_check(code, self.env.reward_arguments), None
        if verdict.ok:
            report = self._dry_run(code, key, selection)
            screened = self._screen(report, selection)
            if not report.ok:
                self.check_env()  # when the env itself fails there, no reward is to blame
                verdict = CriticVerdict(ok=False, stage="dry_run", reason=report.reason, warnings=verdict.warnings)
            elif screened is not None and not screened.passed:
                verdict = CriticVerdict(ok=False, stage="screen", reason=screened.reason, warnings=verdict.warnings,
                                        screening=screened)
            elif self.reviewer is not None:
                review = self._review(key, code, report)
                verdict = review.model_copy(update={"warnings": verdict.warnings + review.warnings,
                                                    "screening": screened})
            else:
                verdict = verdict.model_copy(update={"stage": "dry_run", "screening": screened})
        with self._lock:
            self._verdicts[memo] = (verdict, report)
            while len(self._verdicts) > RECENT_CHECKS:
                self._verdicts.popitem(last=False)
        return verdict, report

    def _review(self, key: str, code: str, report: CheckReport) -> CriticVerdict:
        """The LLM review of ``code``: asked once per code (it does not depend on the stored
        episodes, which change the rest of the verdict's memo key)."""
        with self._lock:
            if key in self._reviews:
                return self._reviews[key]
        assert self.reviewer is not None
        review = self.reviewer.review(code, self.task, self.env, report)
        with self._lock:
            self._reviews[key] = review
            while len(self._reviews) > RECENT_CHECKS:
                self._reviews.popitem(last=False)
        return review

    def env_problem(self) -> str | None:
        """Why the task's env does not build and step in the sandbox with a reward that does
        nothing (``None`` when it does). Asked once, when a dry run first fails."""
        with self._probe_lock:
            if not self._env_probed:
                report = self._dry_run(PROBE_REWARD, "env-probe")
                # the reason ends with the exception's last line, which says enough
                self._env_problem = None if report.ok else \
                    (report.reason or "").removeprefix("the dry run failed: ").rsplit(" | ", 1)[-1]
                self._env_probed = True
            return self._env_problem

    def check_env(self) -> None:
        """Raise :class:`EnvUnavailable` when the env does not work in the sandbox."""
        problem = self.env_problem()
        if problem is not None:
            raise EnvUnavailable(f"{self.task.env.name} does not build and step in the {self.sandbox.name} sandbox "
                                 f"(with a reward that does nothing, within the task's limits): {problem}")

    def review_all(self, codes: list[str]) -> list[tuple[CriticVerdict, CheckReport | None]]:
        with ThreadPoolExecutor(max_workers=PARALLEL_CHECKS) as pool:
            return list(pool.map(self.review, codes))

    def _screen(self, report: CheckReport, selection: Selection | None):
        if not report.ok or selection is None or self.screening is None:
            return None
        return self.screening.judge(report.returns, selection)

    def _dry_run(self, code: str, key: str, selection: Selection | None = None) -> CheckReport:
        folder = self.scratch / f"{key[:12]}-{uuid.uuid4().hex[:8]}"  # the same code may run twice at once
        try:
            return check_reward(self.task, code, folder, self.sandbox, self.limits, self.device,
                                episodes=selection.data if selection is not None else None)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()  # when no other check is running

    # -- duplicates of rewards already trained -------------------------------------------------------
    def remember_trained(self, key: Hashable, report: CheckReport | None) -> None:
        """``report``'s reward goes to training (or trained); later candidates are compared with it."""
        from .duplicates import compact

        if report is not None and report.signature:
            self._trained[key] = compact(report.signature)

    def duplicate_of(self, report: CheckReport | None) -> tuple[Hashable, float] | None:
        """The already-trained reward that ``report``'s equals up to scale and offset, and how closely."""
        from .duplicates import find_duplicate

        threshold = self.task.search.duplicate_correlation
        if threshold is None or report is None:
            return None
        return find_duplicate(report.signature, self._trained, threshold)
