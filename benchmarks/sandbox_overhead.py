"""Start-up overhead of each sandbox backend, per candidate job.

Two measurements per backend (process, bwrap, docker; the ones that work here):
- ``bare``: the sandbox runs ``python -c pass`` (what isolation alone costs: namespaces and
  mounts for bwrap, container create/start/remove for docker);
- ``check``: a real worker job, the reward dry run (imports torch, builds the env, 32 steps);
- ``train``: a whole candidate, ``train_and_evaluate`` with a tiny budget (two sandboxed jobs:
  train, then a clean evaluation).
Each is repeated (``--repeats``) and the median is reported, with the overhead over ``process``.

    python benchmarks/sandbox_overhead.py [--repeats 3] [--steps 2048]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, save, table

sys.path.insert(0, str(ROOT))

from rewardsmith.errors import SandboxUnavailable  # noqa: E402
from rewardsmith.runners.jobs import CandidateJob, train_and_evaluate  # noqa: E402
from rewardsmith.runners.sandboxes import make_sandbox
from rewardsmith.runners.sandboxes.base import Limits, run_process  # noqa: E402
from rewardsmith.schemas import WorkerJob  # noqa: E402
from rewardsmith.task import load_task  # noqa: E402

REWARD = """import torch

def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs() / 0.2)
    return upright, {"upright": upright}
"""


def bare(box, folder: Path, limits: Limits) -> float:
    """The sandbox around ``python -c pass``."""
    start = time.perf_counter()
    if box.name == "docker":
        container = box.client.containers.run(box.image, ["python", "-c", "pass"], network_mode="none",
                                              read_only=True, detach=True)
        container.wait()
        container.remove(force=True)
    else:
        argv = box.command("check", folder, limits)
        if "--" in argv:  # bwrap: same sandbox, a trivial program
            argv = argv[:argv.index("--") + 1] + [box.python, "-I", "-c", "pass"]
        else:
            argv = [sys.executable, "-I", "-c", "pass"]
        result = run_process(argv, folder, box.environment(folder, limits), limits)
        assert result.returncode == 0, result.output
    return time.perf_counter() - start


def check(box, folder: Path, limits: Limits, task) -> float:
    (folder / "reward.py").write_text(REWARD)
    job = WorkerJob(kind="check", task=task.model_dump(mode="json"), reward_file="reward.py", device="cpu", threads=1)
    (folder / "job.json").write_text(job.model_dump_json())
    start = time.perf_counter()
    result = box.run_worker("check", folder, limits)
    assert result.result_line and '"ok": true' in result.result_line, result.output[-2000:]
    return time.perf_counter() - start


def train(box, folder: Path, limits: Limits, task) -> float:
    start = time.perf_counter()
    outcome = train_and_evaluate(CandidateJob(task, REWARD, folder, limits, "cpu"), box, threads=1)
    assert outcome.status == "ok", outcome.reason
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2048)
    args = parser.parse_args()
    task = load_task(ROOT / "tasks" / "cartpole.yaml").with_overrides(train={"total_timesteps": args.steps})
    limits = Limits(timeout_s=600, memory_mb=4096, threads=1)
    rows, results = [], {}
    boxes = {}
    for name in ("process", "bwrap", "docker"):
        try:
            boxes[name] = make_sandbox(name)
        except SandboxUnavailable as exc:
            print(f"{name}: skipped ({exc})")
    times = {name: {"bare": [], "check": [], "train": []} for name in boxes}
    for _ in range(args.repeats):  # backends interleaved, so a change in machine load hits all alike
        for kind, fn in (("bare", bare), ("check", check), ("train", train)):
            for name, box in boxes.items():
                folder = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
                try:
                    times[name][kind].append(fn(box, folder, limits) if kind == "bare"
                                             else fn(box, folder, limits, task))
                finally:
                    shutil.rmtree(folder, ignore_errors=True)
    for name in boxes:
        results[name] = {kind: {"median_s": statistics.median(v), "runs_s": v} for kind, v in times[name].items()}
    base = results.get("process", {})
    for name, r in results.items():
        row = [name]
        for kind in ("bare", "check", "train"):
            median = r[kind]["median_s"]
            extra = median - base[kind]["median_s"] if base else float("nan")
            row += [median, extra]
        rows.append(row)
    table(f"Sandbox start-up overhead per job (median of {args.repeats}; train = {args.steps} steps + evaluation)",
          ["backend", "bare s", "+ vs process", "check s", "+ vs process", "train s", "+ vs process"], rows)
    save("sandbox_overhead", {"repeats": args.repeats, "steps": args.steps, "results": results})


if __name__ == "__main__":
    main()
