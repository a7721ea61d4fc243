"""The critic: static check, sandboxed dry run (``check_reward``), LLM review, memoised; the
trajectory analyzer on the candidates the designer sees."""

from conftest import GOOD_CARTPOLE_REWARD, TASKS

from rewardsmith.critic import Critic
from rewardsmith.feedback import MetricFeedback
from rewardsmith.loop import SilentReporter, Solver
from rewardsmith.runners.jobs import check_reward
from rewardsmith.runners.sandboxes.base import Limits
from rewardsmith.runners.sandboxes.process import ProcessSandbox
from rewardsmith.runs import RunDir
from rewardsmith.schemas import Analysis, CandidateResult, CriticVerdict, Feedback, IterationRecord
from rewardsmith.task import load_task

TASK = load_task(TASKS / "cartpole.yaml")
LIMITS = Limits(timeout_s=120, memory_mb=4096)


def test_check_reward_reports_components_signature_and_errors(tmp_path):
    good = check_reward(TASK, GOOD_CARTPOLE_REWARD, tmp_path / "good", ProcessSandbox(), LIMITS, "cpu")
    assert good.ok and good.components == ["upright", "centered"]
    assert len(good.signature) == 16 * 32 and all(0 <= x <= 1 for x in good.signature)

    shape = GOOD_CARTPOLE_REWARD.replace("return upright * centered,", "return (upright * centered)[:, None],")
    bad = check_reward(TASK, shape, tmp_path / "shape", ProcessSandbox(), LIMITS, "cpu")
    assert not bad.ok and "shape (16, 1); expected (16,)" in bad.reason

    raising = "def compute_reward(pole_angle):\n    x = pole_angle / {}['missing']\n    return x, {}\n"
    bad = check_reward(TASK, raising, tmp_path / "raise", ProcessSandbox(), LIMITS, "cpu")
    assert not bad.ok and "KeyError" in bad.reason and "reward.py line 2" in bad.reason


class Reviewer:
    def __init__(self):
        self.reviewed = []

    def review(self, code, task, env, report):
        self.reviewed.append(code)
        veto = "/ 0.9)" in code
        return CriticVerdict(ok=not veto, stage="llm", reason="the scale is far too wide" if veto else None)


class Explainer:
    def __init__(self):
        self.calls = []

    def explain(self, result, task, env, show_fitness=True):
        self.calls.append((result.index, show_fitness))
        return f"behaviour of {result.index}"


def _solver(tmp_path, **fields):
    run = RunDir.create(tmp_path / "run", TASK, {})
    critic = Critic(TASK, ProcessSandbox(), LIMITS, run.path / "checks", "cpu")
    return Solver(TASK, run, designer=None, critic=critic, executor=None, feedback=MetricFeedback(),
                  reporter=SilentReporter(), device="cpu", **fields)


def test_the_critic_runs_each_stage_once_per_code(tmp_path):
    reviewer = Reviewer()
    critic = Critic(TASK, ProcessSandbox(), LIMITS, tmp_path / "checks", "cpu", reviewer=reviewer)
    vetoed = GOOD_CARTPOLE_REWARD.replace("/ 0.2)", "/ 0.9)")
    assert critic.check(vetoed) == CriticVerdict(ok=False, stage="llm", reason="the scale is far too wide")
    assert critic.check(vetoed).reason == "the scale is far too wide" and len(reviewer.reviewed) == 1  # memoized
    verdict, report = critic.review(GOOD_CARTPOLE_REWARD)
    assert verdict.ok and verdict.stage == "llm" and report.components == ["upright", "centered"]
    assert critic.check("def compute_reward(pole_angel):\n    return pole_angel, {}\n").stage == "static"
    assert len(reviewer.reviewed) == 2  # statically rejected code never reaches the LLM
    assert not (tmp_path / "checks").exists()  # the dry runs' folders are cleaned up

    # a reward equal to a trained one up to scale and offset is its duplicate; a reshaped one is not
    critic.remember_trained((0, 0), report)
    twice = GOOD_CARTPOLE_REWARD.replace("return upright * centered,", "return 2 * upright * centered + 1,")
    assert critic.duplicate_of(critic.review(twice)[1])[0] == (0, 0)
    squared = GOOD_CARTPOLE_REWARD.replace("return upright * centered,", "return (upright * centered) ** 2,")
    assert critic.duplicate_of(critic.review(squared)[1]) is None


def test_explainer_sees_best_only_under_metric_and_best_and_worst_without_fitness_under_preference(tmp_path):
    results = [CandidateResult(iteration=0, index=i, status="ok", fitness=f, reward_file=f"r{i}.py",
                               analysis=Analysis(findings=[], text="stats")) for i, f in enumerate([0.3, 0.9, 0.1])]
    explainer = Explainer()
    solver = _solver(tmp_path, explainer=explainer)
    record = IterationRecord(iteration=0, candidates=results,
                             feedback=Feedback(iteration=0, kind="metric", best=1, worst=2, order=[1, 0, 2]))
    out = solver._explain(record)
    assert explainer.calls == [(1, True)]
    assert out.candidates[1].analysis.llm_summary == "behaviour of 1"
    assert solver.run.load_result(0, 1).analysis.llm_summary == "behaviour of 1"  # saved for a resume

    explainer.calls.clear()
    human = record.model_copy(update={"feedback": record.feedback.model_copy(update={"kind": "human"})})
    solver._explain(human)
    assert explainer.calls == [(1, False), (2, False)]
