"""What trajectory screening costs a CartPole candidate, against the candidate's own wall time.

Screening adds (1) once per run, a clean job recording random policies' episodes, and (2) per
candidate, scoring the stored episodes in the dry run's job (the same process as the dry run,
so only the scoring itself). Measured here with the same jobs a solve runs: the dry run with and
without the stored episodes (alternating, ``--repeats`` each), the random episodes' job, and a
candidate trained and evaluated as in a solve.

    python benchmarks/screening_cost.py [--repeats 5] [--sandbox process] [--candidates-per-run 6]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, console, save, table

sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    from conftest import GOOD_CARTPOLE_REWARD

    from rewardsmith.critic.screening import Screening
    from rewardsmith.episodes import EpisodeStore, variable_shapes
    from rewardsmith.loop import MODEL_RANDOM_EPISODES, RANDOM_HOLDS, SAMPLED_EPISODES
    from rewardsmith.runners.jobs import CandidateJob, check_reward, record_random_episodes, train_and_evaluate
    from rewardsmith.runners.sandboxes import make_sandbox
    from rewardsmith.runners.sandboxes.base import Limits
    from rewardsmith.schemas import RecordSpec
    from rewardsmith.task import load_task

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--candidates-per-run", type=int, default=6, help="cartpole.yaml: 2 iterations x 3")
    args = parser.parse_args()
    task = load_task(ROOT / "tasks" / "cartpole.yaml")
    box, limits = make_sandbox(args.sandbox), Limits(timeout_s=600, memory_mb=4096)
    spec = task.search.screening
    with tempfile.TemporaryDirectory(prefix="rs-screen-cost-") as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        random = record_random_episodes(task, work / "random", box, limits, "cpu", list(RANDOM_HOLDS),
                                        (spec.random_episodes or MODEL_RANDOM_EPISODES) // len(RANDOM_HOLDS), seed=1)
        random_s = time.perf_counter() - start
        assert not isinstance(random, str), random
        store = EpisodeStore(work / "episodes", 64 << 20, variable_shapes(task.env.describe()))
        store.add(random)
        start = time.perf_counter()
        job = CandidateJob(task, GOOD_CARTPOLE_REWARD, work / "cand", limits, "cpu",
                           record=RecordSpec(episodes=task.fitness.eval_episodes, sampled=SAMPLED_EPISODES, video=True))
        outcome = train_and_evaluate(job, box)
        candidate_s = time.perf_counter() - start
        assert outcome.status == "ok", outcome.reason
        from rewardsmith.runners.jobs import read_episodes

        batch = read_episodes(work / "cand" / "episodes.npz", task)
        assert not isinstance(batch, str), batch
        store.add(batch)
        selection = Screening(store, spec).selection()
        assert selection is not None
        plain, screened = [], []
        for i in range(args.repeats):
            for episodes, times in ((None, plain), (selection.data, screened)):
                start = time.perf_counter()
                report = check_reward(task, GOOD_CARTPOLE_REWARD, work / f"check-{i}-{len(times)}-{episodes is None}",
                                      box, limits, "cpu", episodes=episodes)
                times.append(time.perf_counter() - start)
                assert report.ok, report.reason
    per_check = statistics.median(screened) - statistics.median(plain)
    per_candidate = per_check + random_s / args.candidates_per_run
    share = per_candidate / candidate_s
    table("Screening's cost on CartPole (seconds)", ["what", "s"], [
        ["a candidate (train + clean evaluation + video)", candidate_s],
        ["dry run, median", statistics.median(plain)],
        [f"dry run scoring {len(selection.meta)} stored episodes, median", statistics.median(screened)],
        ["random episodes' job (once a run)", random_s],
        [f"screening per candidate ({args.candidates_per_run} a run)", per_candidate]])
    console.print(f"screening costs {100 * share:.1f}% of a candidate's wall time "
                  f"({100 * per_check / candidate_s:.1f}% for the scoring alone)")
    save("screening_cost", {"sandbox": args.sandbox, "candidate_s": candidate_s, "check_s": plain,
                            "check_with_episodes_s": screened, "random_s": random_s, "episodes": len(selection.meta),
                            "per_candidate_s": per_candidate, "share": share,
                            "candidate_env_steps": outcome.train.env_steps if outcome.train else None})


if __name__ == "__main__":
    main()
