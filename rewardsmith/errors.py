"""Errors a user can cause. The CLI turns each into a one-line message and exit code 2.

Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class RewardsmithError(Exception):
    """Base class: a problem the user can fix (bad input, missing tool, unreachable service)."""

    exit_code = 2


class OptionError(RewardsmithError):
    """A command-line option or library argument has a value that cannot be used."""


class TaskFileError(RewardsmithError):
    """The task file is missing, is not valid YAML, or does not match the schema."""


class UnknownEnvError(RewardsmithError):
    """No environment is registered under that name."""


class EnvOptionError(RewardsmithError):
    """An env setting of the task (``env.kwargs``, ``env.variables``) does not fit the env; the
    message starts with the field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class ExpressionError(RewardsmithError):
    """A fitness or termination expression uses something that is not allowed."""


class RewardCodeError(RewardsmithError):
    """Reward code breaks the reward contract (parse error, wrong signature, ...)."""


class SandboxUnavailable(RewardsmithError):
    """The requested sandbox backend cannot run on this machine."""


class LLMError(RewardsmithError):
    """The language model could not be reached or refused the request."""


class RunDirError(RewardsmithError):
    """A run directory is missing, foreign, or cannot be resumed."""


class BudgetExceeded(RewardsmithError):
    """A spending limit (such as --max-cost) was reached; the run stops cleanly."""


class FeedbackPending(RewardsmithError):
    """The run waits for a person's ranking; it stopped cleanly and continues with ``--resume``."""

    exit_code = 3


class SolveInterrupted(KeyboardInterrupt):
    """Ctrl-C during a solve; carries the run directory so the user is told how to continue."""

    def __init__(self, run_path) -> None:
        super().__init__(str(run_path))
        self.run_path = run_path


class InfrastructureError(RewardsmithError):
    """Something outside the reward code broke (the disk, the sandbox engine). Not the candidate's
    fault: it is not recorded as a failure, the run stops with what is done, and ``--resume``
    continues once the problem is fixed."""


class DiskFull(InfrastructureError):
    """No space left where the run directory or a job folder is written."""


class SandboxLacks(InfrastructureError):
    """The sandbox cannot build the task's env or start the guest (a package or a library that the
    host has is missing there): the run stops with the fix; no candidate is blamed."""


class EnvUnavailable(InfrastructureError):
    """The task's env does not build and step in the sandbox even with a reward that does
    nothing: no candidate's fault (a package the sandbox lacks, limits too low for the env)."""


class SandboxGone(InfrastructureError):
    """The sandbox backend stopped working in the middle of a run (e.g. the Docker engine stopped)."""


def is_disk_full(exc: BaseException) -> bool:
    import errno

    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
