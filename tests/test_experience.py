"""Experience reuse within a solve: SAC candidates start from the transitions earlier candidates
collected, kept by the host in the run (rewardsmith.experience), relabelled in each candidate's
own sandbox; what a sandbox wrote is checked before it is kept, and a reward cannot change what
another candidate is given."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest
from conftest import TASKS, sandbox_unavailable

from rewardsmith import envs
from rewardsmith.experience import ExperienceStore, Transitions, check, read, write
from rewardsmith.report import training_text
from rewardsmith.schemas import Candidate, CandidateResult

PENDULUM = envs.describe("torch:Pendulum")


def transitions(rows: int, seed: int = 0, obs_dim: int = 3) -> Transitions:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-np.pi, np.pi, rows).astype(np.float32)
    obs = rng.normal(size=(rows, obs_dim)).astype(np.float32)
    return Transitions.from_columns({
        "obs": obs, "next_obs": obs + 0.1, "action": rng.uniform(-2, 2, (rows, 1)).astype(np.float32),
        "terminated": rng.random(rows) < 0.1,
        "var:cos_theta": np.cos(theta), "var:sin_theta": np.sin(theta),
        "var:theta_dot": rng.normal(size=rows).astype(np.float32), "var:theta": theta})


def test_transitions_round_trip_through_files(tmp_path):
    t = transitions(50)
    write(tmp_path, "x", t)
    back = read(tmp_path, "x", PENDULUM, 1 << 20)
    assert isinstance(back, Transitions)
    assert back.index == t.index and np.array_equal(back.data, t.data)
    cols = back.columns()
    assert cols["terminated"].dtype == np.bool_ and cols["terminated"].shape == (50,)
    assert cols["action"].shape == (50, 1) and cols["var:theta"].shape == (50,)


def _raw(t: Transitions) -> bytes:
    return t.data.astype("<f4").tobytes()


def test_what_a_sandbox_wrote_is_checked(tmp_path):
    good = transitions(20)
    assert isinstance(check(good.index, _raw(good), PENDULUM), Transitions)

    def broken(change) -> str:
        data = good.data.copy()
        change(data)
        found = check(good.index, data.tobytes(), PENDULUM)
        assert isinstance(found, str)
        return found

    assert "NaN" in broken(lambda d: d.__setitem__((3, 7), np.nan))
    assert "bounds" in broken(lambda d: d.__setitem__((0, 6), 50.0))       # the action column
    assert "terminated" in broken(lambda d: d.__setitem__((0, 7), 2.0))    # the terminated column
    assert "bytes of data" in check(good.index, _raw(good)[:-4], PENDULUM)
    fewer = good.index.model_copy(update={"columns": good.index.columns[:-1]})
    assert "columns" in check(fewer, _raw(good), PENDULUM)
    other_env = envs.describe("torch:CartPole")
    assert isinstance(check(good.index, _raw(good), other_env), str)

    # files: a symlink to a host file, a FIFO, too many bytes, a malformed index
    write(tmp_path, "x", good)
    (tmp_path / "x.f32").unlink()
    secret = tmp_path / "secret"
    secret.write_bytes(_raw(good))
    (tmp_path / "x.f32").symlink_to(secret)
    assert "no readable x.f32" in read(tmp_path, "x", PENDULUM, 1 << 20)
    (tmp_path / "x.f32").unlink()
    os.mkfifo(tmp_path / "x.f32")
    assert "no readable x.f32" in read(tmp_path, "x", PENDULUM, 1 << 20)
    (tmp_path / "x.f32").unlink()
    write(tmp_path, "x", good)
    assert "more than the 100 bytes" in read(tmp_path, "x", PENDULUM, 100)
    (tmp_path / "x.json").write_text('{"rows": 1e30}')
    assert "malformed" in read(tmp_path, "x", PENDULUM, 1 << 20)


def test_the_store_is_bounded_and_oldest_go_first(tmp_path):
    row = transitions(1).nbytes
    store = ExperienceStore(tmp_path / "experience", max_bytes=250 * row)
    store.add(0, 0, transitions(100, seed=0))
    store.add(0, 1, transitions(100, seed=1))
    assert store.gather(PENDULUM).rows == 200
    assert store.gather(PENDULUM, before_iteration=0) is None
    store.add(1, 0, transitions(100, seed=2))  # 300 rows > 250: the oldest candidate's go
    assert [(e["iteration"], e["index"]) for e in store.contributors()] == [(0, 1), (1, 0)]
    assert not (tmp_path / "experience" / "iteration_0_candidate_0.f32").exists()
    gathered = store.gather(PENDULUM)
    assert gathered.rows == 200 and np.array_equal(gathered.data[100:], transitions(100, seed=2).data)
    store.add(2, 0, transitions(400, seed=3))  # alone more than the bound: its newest rows
    assert store.gather(PENDULUM).rows == 250
    assert np.array_equal(store.gather(PENDULUM).data, transitions(400, seed=3).data[-250:])
    # a candidate whose observations differ in size from the rest is left out of what is handed on
    small = ExperienceStore(tmp_path / "mixed", max_bytes=10**6)
    small.add(0, 0, transitions(30, obs_dim=3))
    small.add(0, 1, transitions(10, obs_dim=5))
    assert small.gather(PENDULUM).index.columns[0].shape == (3,)


# ---- a solve -------------------------------------------------------------------------------------

GOOD = '''
import torch


def compute_reward(cos_theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    up = (cos_theta + 1.0) / 2.0
    effort = torch.square(action).sum(-1)
    return up - 0.01 * effort - 0.001 * theta_dot.square(), {"up": up, "effort": effort}
'''
OTHER_GOOD = GOOD.replace("up - 0.01 * effort", "up * up - 0.02 * effort")  # not a duplicate of GOOD

# Sees the shared experience (it is relabelled with this reward) and tries to spoil it for the
# candidates after it: it writes into the tensors it is given, rewrites the experience files it
# was handed, replaces the transitions it collected with garbage once they are written (the
# episode recorded after training calls it again), and tries to write into the run's store.
HOSTILE = '''
import torch

os = torch.serialization.os
JOB = torch.serialization.sys.argv[-1]


def spoil(name, data):
    try:
        fd = os.open(os.path.join(JOB, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
    except OSError:
        pass


def compute_reward(cos_theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    cos_theta.fill_(7.0)
    theta_dot.mul_(0.0)
    action.zero_()
    spoil("experience_in.f32", b"\\xff" * 64)
    spoil("experience_in.json", b"{}")
    if os.path.exists(os.path.join(JOB, "experience_out.json")):
        spoil("experience_out.f32", b"\\x00\\x00\\xc0\\x7f" * 4096)
    for store in ("../../experience", "../../../experience", "/job/../../experience"):
        try:
            os.makedirs(store, exist_ok=True)
            spoil(os.path.join(store, "index.json"), b'{"chunks": []}')
        except OSError:
            pass
    up = torch.ones_like(theta_dot)
    return up, {"up": up}
'''


class ScriptedDesigner:
    """Proposes fixed rewards: the designer is not what is under test here."""

    name = "scripted"

    def __init__(self, rewards: list[str]):
        self.rewards = rewards

    def propose(self, request):
        return [Candidate(iteration=request.iteration, index=0, code=self.rewards[request.iteration])]


def _store_hash(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("iteration_0_*"))}


def test_candidates_start_from_earlier_experience_which_a_hostile_reward_cannot_spoil(tmp_path, monkeypatch):
    sandbox = "bwrap"
    reason = sandbox_unavailable(sandbox)
    if reason is not None:
        pytest.skip(f"{sandbox} sandbox not available: {reason}")
    import rewardsmith.designer as designer_module
    from rewardsmith.api import solve
    from rewardsmith.loop import SilentReporter

    monkeypatch.setattr(designer_module, "make_designer",
                        lambda *a, **k: ScriptedDesigner([GOOD, HOSTILE, OTHER_GOOD]))
    run = tmp_path / "run"
    seen: dict[int, dict[str, str]] = {}

    class Watch(SilentReporter):
        def iteration_finished(self, record):
            seen[record.iteration] = _store_hash(run / "experience")

    result = solve(TASKS / "pendulum_sac.yaml", out=run, model="builtin", sandbox=sandbox, reporter=Watch(),
                   iterations=3, samples=1, total_timesteps=600,
                   settings={"train.learning_starts": 200, "train.early_stop": False, "train.eval_every": 0,
                             "env.max_episode_steps": 100, "fitness.eval_episodes": 4,
                             # the hostile reward pays the same everywhere: screening would not train it
                             "search.screening.enabled": False})
    first, hostile, third = (json.loads((run / f"iter_{i:02d}" / "cand_00" / "result.json").read_text())
                             for i in range(3))
    assert first["status"] == "ok" and first["train"]["reused_transitions"] == 0
    assert hostile["train"]["reused_transitions"] == 600  # it saw the first candidate's transitions
    assert third["status"] == "ok"
    # the third starts from the first's transitions and the hostile's own: the guest writes those
    # after the reward's last call (the training job records no episode since issue 22), and the
    # host checks them like any others
    assert third["train"]["reused_transitions"] == 1200 and 0.5 < third["train"]["reused_share"] <= 1
    assert "1200 transitions of earlier candidates" in (run / "iter_02" / "cand_00" / "train.log").read_text()
    index = json.loads((run / "experience" / "index.json").read_text())["chunks"]
    assert [(c["iteration"], c["rows"]) for c in index] == [(0, 600), (1, 600), (2, 600)]
    # the first candidate's transitions as the host wrote them, untouched by what came after
    assert seen[0] == seen[1] == seen[2] == _store_hash(run / "experience") and len(seen[0]) == 2
    kept = read(run / "experience", "iteration_0_candidate_0", PENDULUM, 1 << 24)
    assert isinstance(kept, Transitions) and float(kept.columns()["var:cos_theta"].max()) <= 1.0
    assert not list(run.glob("iter_*/cand_*/experience.*"))  # moved into the store
    assert "started from 1,200 reused transitions" in training_text(CandidateResult.model_validate(third))
    assert result.summary.status == "done"
