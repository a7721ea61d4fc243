"""The HTML report: built from a run directory, self-contained, shows its plots in a real browser."""

import base64
import re
import shutil
import subprocess

import pytest
from conftest import TASKS

from rewardsmith.report import write_report
from rewardsmith.runs import RunDir
from rewardsmith.schemas import Analysis, BestCandidate, CandidateLine, CandidateResult, Stats, Summary, TrainCheckpoint, TrainLog
from rewardsmith.task import load_task


def _stats(m):
    return Stats(mean=m, std=0.1, min=m - 0.2, max=m + 0.2)


def _result(iteration, index, fitness, status="ok", reason=None):
    train = None
    if status == "ok":
        train = TrainLog(checkpoints=[TrainCheckpoint(step=1000 * (i + 1), wall_s=i, reward=_stats(0.5 + 0.05 * i),
                                                      components={"upright": _stats(0.5 + 0.05 * i),
                                                                  "centered": _stats(0.9 - 0.02 * i)},
                                                      episodes=10, fitness=fitness * i / 4,
                                                      eval_fitness=fitness if i == 4 else None)
                                      for i in range(5)], env_steps=5000, wall_s=5.0, steps_per_s=1000.0)
    return CandidateResult(iteration=iteration, index=index, status=status, reason=reason, fitness=fitness,
                           success=bool(fitness and fitness >= 0.95),
                           reward_file=f"iter_{iteration:02d}/cand_{index:02d}/reward.py",
                           code="import torch\ndef compute_reward(pole_angle):\n    return pole_angle, {}\n", train=train,
                           analysis=Analysis(findings=[], text="Task fitness 0.97 <b>not html</b>"))


@pytest.fixture
def run_dir(tmp_path):
    task = load_task(TASKS / "cartpole.yaml")
    run = RunDir.create(tmp_path / "run", task, {"model": "builtin"})
    results = [_result(0, 0, 0.4), _result(0, 1, None, "failed", "timeout: still running after 5 s <script>"),
               _result(1, 0, 0.97), _result(1, 1, None, "rejected", "critic: unknown argument 'pole_angel'")]
    for r in results:
        run.save_result(r)
    run.write_summary(Summary(task="cartpole", status="done", wall_s=42.0, iterations_done=2, designer="builtin",
                              sandbox="process",
                              best=BestCandidate(iteration=1, index=0, fitness=0.97, success=True,
                                                 reward_file="iter_01/cand_00/reward.py"),
                              candidates=[CandidateLine(iteration=r.iteration, index=r.index, status=r.status,
                                                        fitness=r.fitness, reason=r.reason) for r in results]))
    return run.path


def test_report_is_self_contained_with_plots_code_and_failures(run_dir):
    page = write_report(run_dir).read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == 3  # fitness, training curves, components of the best
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "compute_reward" in page and "iteration 2, candidate 0: fitness 0.970 (solved)" in page
    assert "timeout: still running after 5 s &lt;script&gt;" in page and "<script>" not in page
    assert "unknown argument &#x27;pole_angel&#x27;" in page
    assert "&lt;b&gt;not html&lt;/b&gt;" in page
    assert "http" not in page.split("<body>")[1]  # nothing fetched from elsewhere


def test_report_checks_the_vlm_judge_against_the_fitness(tmp_path):
    from rewardsmith.report import judge_checks
    from rewardsmith.schemas import Ranking

    run = RunDir.create(tmp_path / "run", load_task(TASKS / "cartpole.yaml"), {"feedback": "vlm"})
    fitness = {0: [0.2, 0.9, 0.5], 1: [0.6, 0.3, 0.8], 2: [0.7, 0.1, None]}
    results = [_result(i, k, f) if f is not None else _result(i, k, None, "failed", "crashed")
               for i, scores in fitness.items() for k, f in enumerate(scores)]
    for r in results:
        run.save_result(r)
    vlm = {"judge": "vlm", "model": "openai/gpt-4o-mini", "time": "t"}
    run.save_ranking(Ranking(iteration=0, best=0, worst=1, order=[0, 2, 1], reasons={0: "REASON-0 <b>", 1: "x"}, **vlm))
    run.save_ranking(Ranking(iteration=0, best=1, worst=0, order=[1, 2, 0], reasons={1: "LATER", 0: "x"}, **vlm))
    run.save_ranking(Ranking(iteration=1, best=0, worst=1, order=[0, 2, 1], reasons={0: "y", 1: "z"}, **vlm))
    run.save_ranking(Ranking(iteration=2, best=0, worst=1, time="t"))  # a person's: not the VLM's check
    checks = judge_checks(run.load_rankings(), results)
    assert [(c.iteration, c.best, c.fitness_best, c.agrees) for c in checks] == [(0, 1, 1, True), (1, 0, 2, False)]
    assert checks[0].pairs_agreeing == 1.0 and checks[1].pairs_agreeing == pytest.approx(2 / 3)
    page = write_report(run.path).read_text()
    assert "chose the fittest candidate in <b>1 of 2</b> iterations" in page and "openai/gpt-4o-mini" in page
    assert "LATER" in page and "REASON-0" not in page  # the latest ranking of an iteration counts


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (scripts/system-deps.sh)")
def test_report_renders_in_headless_chromium(run_dir, tmp_path):
    from matplotlib.image import imread

    page = write_report(run_dir)
    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1800", f"--screenshot={shot}",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    pixels = imread(shot)[..., :3]
    assert pixels.shape[0] >= 1800 and pixels.shape[1] >= 1000
    # the plots are drawn: many pixels of the fitness plot's blue and the threshold's green
    blue = ((abs(pixels[..., 0] - 0x2a / 255) < 0.08) & (abs(pixels[..., 1] - 0x7a / 255) < 0.08)
            & (abs(pixels[..., 2] - 0xb0 / 255) < 0.08)).sum()
    green = ((abs(pixels[..., 0] - 0x27 / 255) < 0.08) & (abs(pixels[..., 1] - 0xae / 255) < 0.08)
             & (abs(pixels[..., 2] - 0x60 / 255) < 0.08)).sum()
    assert blue > 200 and green > 200


def test_tensorboard_events_hold_the_training_curves(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from rewardsmith.tensorboard_log import log_candidate

    folder = log_candidate(tmp_path / "tb", _result(1, 0, 0.97))
    acc = EventAccumulator(str(folder))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"reward/total", "reward/upright", "reward/centered", "fitness/training_episodes", "fitness/evaluation",
            "fitness/final"} <= tags
    upright = acc.Scalars("reward/upright")
    assert [e.step for e in upright] == [1000, 2000, 3000, 4000, 5000]
    assert upright[-1].value == pytest.approx(0.7)
    assert acc.Scalars("fitness/final")[0].value == pytest.approx(0.97)
