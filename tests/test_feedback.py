"""Feedback sources: a person's ranking (saved, asked for, or awaited) and the synthetic person."""

import pytest
from fake_run import make_run

from rewardsmith.errors import FeedbackPending, RewardsmithError
from rewardsmith.feedback import make_feedback
from rewardsmith.runs import RunDir
from rewardsmith.schemas import CandidateResult, IterationRecord, Ranking
from rewardsmith.task import load_task

TASK = load_task("tasks/cartpole.yaml")


@pytest.fixture
def run(tmp_path) -> RunDir:
    return make_run(tmp_path / "run")


def _record(run: RunDir, iteration: int = 0) -> IterationRecord:
    proposals = run.load_proposals(iteration)
    return IterationRecord(iteration=iteration, candidates=[run.load_result(iteration, c.index) for c in proposals])


def test_human_feedback_without_a_terminal_waits_for_a_ranking(run):
    judge = make_feedback("human", run_path=run.path, interactive=False)
    with pytest.raises(FeedbackPending) as info:
        judge.judge(_record(run), TASK)
    message = str(info.value)
    assert f"rewardsmith rank {run.path}" in message and f"rewardsmith solve --resume {run.path}" in message
    assert info.value.exit_code == 3


def test_human_feedback_uses_the_latest_saved_ranking(run):
    run.save_ranking(Ranking(iteration=0, best=3, worst=0, time="t1"))
    run.save_ranking(Ranking(iteration=0, best=1, worst=3, order=[1, 0, 3], time="t2"))
    run.save_ranking(Ranking(iteration=1, best=0, time="t3"))  # another iteration's
    feedback = make_feedback("human", run_path=run.path, interactive=False).judge(_record(run), TASK)
    assert (feedback.kind, feedback.best, feedback.worst, feedback.order) == ("human", 1, 3, [1, 0, 3])
    assert "t2" in feedback.note


def test_a_ranking_of_untrained_candidates_is_not_used(run):
    run.save_ranking(Ranking(iteration=0, best=2, worst=0, time="t"))  # candidate 2 failed
    with pytest.raises(FeedbackPending, match="without a trained policy"):
        make_feedback("human", run_path=run.path, interactive=False).judge(_record(run), TASK)


def test_nobody_is_asked_when_there_is_nothing_to_compare(run):
    record = _record(run)
    lone = IterationRecord(iteration=0, candidates=[c if c.index == 1 else _failed(c) for c in record.candidates])
    feedback = make_feedback("human", run_path=run.path, interactive=False).judge(lone, TASK)
    assert feedback.kind == "human" and feedback.best == 1 and feedback.worst is None


def _failed(c: CandidateResult) -> CandidateResult:
    return c.model_copy(update={"status": "failed", "fitness": None})


def test_synthetic_feedback_is_the_metric_without_noise_and_differs_with_much_noise(run):
    record = _record(run)
    metric = make_feedback("metric").judge(record, TASK)
    assert metric.order == [1, 0, 3]
    assert make_feedback("synthetic", noise=0.0).judge(record, TASK).order == metric.order
    noisy = [make_feedback("synthetic", noise=5.0, seed=s).judge(record, TASK) for s in range(8)]
    assert all(sorted(f.order) == [0, 1, 3] and f.kind == "synthetic" for f in noisy)
    assert any(f.order != metric.order for f in noisy)
    again = make_feedback("synthetic", noise=5.0, seed=3).judge(record, TASK)
    assert again.order == noisy[3].order  # seeded: a benchmark can be repeated


def test_feedback_options_are_checked():
    with pytest.raises(RewardsmithError, match="unknown feedback 'people'"):
        make_feedback("people")
    with pytest.raises(RewardsmithError, match="0 or more"):
        make_feedback("synthetic", noise=-1.0)
