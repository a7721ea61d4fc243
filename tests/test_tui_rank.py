"""The ranking app, driven with Textual's pilot on a run directory laid out as a solve leaves it."""

import asyncio
import json
import os
import shlex
import shutil
import sys

import pytest
from fake_run import make_run

from rewardsmith.runs import RunDir
from rewardsmith.schemas import Candidate, Ranking
from rewardsmith.tui.model import Marks, load_iteration
from rewardsmith.tui.player import RolloutPlayer
from rewardsmith.tui.rank import RankApp


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("template") / "run").path


@pytest.fixture
def run(template, tmp_path):
    shutil.copytree(template, tmp_path / "run")
    return RunDir(tmp_path / "run")


async def _settle(pilot):
    """Wait until the app's loading workers are done."""
    for _ in range(200):
        await pilot.pause(0.05)
        if not any(w.is_running for w in pilot.app.workers):
            break
    await pilot.pause()


def test_rank_best_and_worst_then_submit_saves_the_ranking(run):
    async def scenario():
        app = RankApp(load_iteration(run.path))
        async with app.run_test(size=(160, 48)) as pilot:
            await _settle(pilot)
            table = app.query_one("DataTable")
            assert table.row_count == 4
            assert "0.930" in [str(cell) for cell in table.get_row("1")]  # fitness shown
            await pilot.press("b", "down", "down", "w")  # candidate 2 failed: cannot be ranked
            assert app.marks.worst is None
            await pilot.press("down", "w", "s")
        return app.return_value

    ranking = asyncio.run(scenario())
    assert (ranking.best, ranking.worst, ranking.iteration) == (0, 3, 0)
    lines = (run.path / "rankings.jsonl").read_text().splitlines()
    assert [json.loads(line)["best"] for line in lines] == [0]
    assert json.loads(lines[0])["worst"] == 3 and json.loads(lines[0])["time"]


def test_quit_saves_nothing_and_submit_needs_a_best(run):
    async def scenario():
        app = RankApp(load_iteration(run.path))
        async with app.run_test() as pilot:
            await pilot.press("w", "s")  # no best yet: the app stays open
            await pilot.pause()
            assert app.is_running
            await pilot.press("q")
        return app.return_value

    assert asyncio.run(scenario()) is None
    assert not (run.path / "rankings.jsonl").exists()


def test_full_order_with_digits(run):
    async def scenario():
        app = RankApp(load_iteration(run.path))
        async with app.run_test() as pilot:
            await pilot.press("2", "down", "1", "down", "down", "3", "s")
        return app.return_value

    ranking = asyncio.run(scenario())
    assert (ranking.best, ranking.worst, ranking.order) == (1, 3, [1, 0, 3])


def test_rankings_are_appended_across_submissions(run):
    async def rank_once(keys):
        app = RankApp(load_iteration(run.path))
        async with app.run_test() as pilot:
            await pilot.press(*keys)
        return app.return_value

    asyncio.run(rank_once(["b", "down", "w", "s"]))
    second = asyncio.run(rank_once(["down", "b", "up", "w", "s"]))
    assert [r.best for r in run.load_rankings()] == [0, 1]
    assert run.latest_ranking(0) == second
    assert load_iteration(run.path).previous == second


def test_cursor_shows_the_candidates_code_and_plays_its_episode(run):
    async def scenario():
        app = RankApp(load_iteration(run.path))
        async with app.run_test(size=(160, 48)) as pilot:
            await _settle(pilot)
            player = app.query_one(RolloutPlayer)
            assert len(player.frames) == 12 and player.candidate.index == 0
            assert "reward of candidate 0" in app.query_one("#code-text").content.code
            first = player.position
            await pilot.pause(0.4)
            assert player.position != first  # the animation advances
            assert "step" in player.caption() and "upright" in player.caption()
            await pilot.press("down")
            await _settle(pilot)
            assert player.candidate.index == 1 and len(player.frames) == 12
            assert "reward of candidate 1" in app.query_one("#code-text").content.code
            await pilot.press("down")  # the failed candidate has no episode
            await _settle(pilot)
            assert player.frames == [] and "no trained policy" in str(app.query_one("#caption").content)
            await pilot.press("space")
            assert player.playing is False

    asyncio.run(scenario())


def test_marks_turn_into_a_consistent_ranking():
    marks = Marks({0, 1, 2, 3})
    with pytest.raises(ValueError, match="best"):
        marks.ranking(0)
    marks.set_rank(2, 1)
    marks.set_rank(0, 2)
    marks.set_rank(3, 3)
    assert (r := marks.ranking(5)).best == 2 and r.worst == 3 and r.order == [2, 0, 3] and r.iteration == 5
    marks.mark_worst(2)  # the explicit worst wins over its place in the order
    r = marks.ranking(5)
    assert (r.best, r.worst, r.order) == (0, 2, [0, 3, 2])
    marks.mark_best(2)
    assert marks.best == 2 and marks.worst is None
    marks.set_rank(1, 2)  # place 2 moves from candidate 0 to candidate 1
    assert marks.ranks == {2: 1, 1: 2, 3: 3}
    with pytest.raises(ValueError, match="no trained policy"):
        Marks({0}).mark_best(1)


def test_load_iteration_picks_the_latest_with_results(run):
    run.save_proposals(1, [Candidate(iteration=1, index=0, code="x")])  # proposed, nothing trained yet
    view = load_iteration(run.path)
    assert view.iteration == 0 and [c.status for c in view.candidates] == ["ok", "ok", "failed", "ok"]
    assert [c.index for c in view.candidates if c.rankable] == [0, 1, 3]


def _vlm_ranked(run):
    run.save_ranking(Ranking(iteration=0, best=3, worst=1, order=[3, 0, 1], time="t", judge="vlm",
                             model="openai/gpt-4o-mini",
                             reasons={3: "VLM-SAYS-3 the pole stays up", 0: "VLM-SAYS-0 drifts", 1: "VLM-SAYS-1 falls"}))


def test_a_vlms_ranking_and_reasons_are_shown_beside_the_candidates(run):
    _vlm_ranked(run)

    async def scenario():
        app = RankApp(load_iteration(run.path))
        async with app.run_test(size=(160, 48)) as pilot:
            await _settle(pilot)
            table = app.query_one("DataTable")
            column = [str(table.get_row(str(i))[4]) for i in (0, 1, 2, 3)]  # mark, cand, status, fitness, VLM
            assert column == ["#2", "✗ worst", "", "★ best"]
            said = str(app.query_one("#vlm").content)
            assert "openai/gpt-4o-mini: 3 > 0 > 1" in said and "VLM-SAYS-0" in said
            assert "overrules it" in str(app.query_one("#marks").content)
            await pilot.press("down")
            await _settle(pilot)
            assert "VLM-SAYS-1" in str(app.query_one("#vlm").content)

    asyncio.run(scenario())


def test_a_person_overrules_the_vlm_or_takes_its_ranking_as_theirs(run):
    _vlm_ranked(run)

    async def rank_once(keys):
        app = RankApp(load_iteration(run.path))
        async with app.run_test() as pilot:
            await pilot.press(*keys)
        return app.return_value

    taken = asyncio.run(rank_once(["a", "s"]))
    assert (taken.best, taken.worst, taken.order, taken.judge) == (3, 1, [3, 0, 1], "person")
    overruled = asyncio.run(rank_once(["down", "b", "down", "down", "w", "s"]))
    assert (overruled.best, overruled.worst, overruled.judge) == (1, 3, "person")
    assert run.latest_ranking(0, judge="person") == overruled and run.latest_ranking(0).judge == "person"
    view = load_iteration(run.path)
    assert view.previous == overruled and view.vlm is not None and view.vlm.judge == "vlm"


# ---- real terminals that make the image library stumble ---------------------------------------------
NEEDS_TMUX = pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"),
                                reason="needs tmux (scripts/system-deps.sh installs it)")


@NEEDS_TMUX
def test_rank_on_a_pty_that_reports_zero_columns(run):
    from conftest import ROOT
    from terminals import Tmux

    command = (f"stty cols 0 rows 0; cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m rewardsmith "
               f"rank {shlex.quote(str(run.path))}; echo RANK-EXIT=$?; sleep 60")
    tmux = Tmux(command)
    try:
        tmux.wait_for("status", "fitness", "iteration 1")
        tmux.keys("q")
        screen = tmux.wait_for("RANK-EXIT=")
    finally:
        tmux.close()
    assert "RANK-EXIT=0" in screen and "quit without saving" in screen
    assert "Traceback" not in screen and "ZeroDivisionError" not in screen


def test_rank_on_a_terminal_that_answers_no_graphics_query(run):
    from conftest import ROOT
    from terminals import run_in_silent_pty

    code, printed = run_in_silent_pty([sys.executable, "-m", "rewardsmith", "rank", str(run.path)],
                                      ready=b"fitness", keys=b"q", cwd=ROOT)
    assert code == 0 and "quit without saving" in printed
    assert "Traceback" not in printed and "TimeoutError" not in printed
