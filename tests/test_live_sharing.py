"""Live experience sharing between SAC candidates that train at the same time: the host's exchange
passes each running job's checked transitions to the others (rewardsmith.runners.sharing), and
each job relabels what it receives with its own reward inside its sandbox."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch
from conftest import TASKS, sandbox_unavailable
from test_experience import GOOD, OTHER_GOOD, PENDULUM, transitions

from rewardsmith import envs
from rewardsmith.experience import Transitions, write
from rewardsmith.runners.protocol import SHARED_IN, SHARED_OUT
from rewardsmith.runners.sharing import ExperienceExchange, SharedFolder
from rewardsmith.schemas import Candidate
from rewardsmith.train import train
from rewardsmith.train.config import SACConfig
from rewardsmith.train.sac import Experience


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def received(folder: SharedFolder) -> list[Experience]:
    found: list[Experience] = []
    wait_for(lambda: bool(found.extend(folder.receive()) or found))
    return found


def test_the_exchange_passes_checked_chunks_to_every_other_job(tmp_path):
    works = {name: tmp_path / name / "work" for name in ("a", "b", "c")}
    for work in works.values():
        work.mkdir(parents=True)
    with ExperienceExchange(PENDULUM, max_bytes=1 << 20, poll_s=0.02) as exchange:
        exchange.join("a", works["a"])
        exchange.join("b", works["b"])
        a = SharedFolder(works["a"], PENDULUM, "cpu", every=100, max_bytes=1 << 20)
        first = transitions(40, seed=1)
        a.publish(Experience.from_transitions(first, PENDULUM, "cpu"))
        wait_for(lambda: exchange.backlog)
        # b's job has not made its folders yet (it is starting): the host waits for them
        assert not (works["b"] / SHARED_IN).exists() and not exchange.problems
        b = SharedFolder(works["b"], PENDULUM, "cpu", every=100, max_bytes=1 << 20)
        got = received(b)
        assert len(got) == 1 and torch.equal(got[0].obs, torch.from_numpy(first.columns()["obs"]))
        assert a.receive() == []  # nobody gets its own transitions back
        # a chunk that fails the check is not passed on, and nothing more of that job is read
        bad = transitions(8, seed=2)
        bad.data[3, 0] = np.nan
        write(works["b"] / SHARED_OUT, "000001", bad)
        write(works["b"] / SHARED_OUT, "000002", transitions(8, seed=3))
        wait_for(lambda: exchange.problems)
        assert "NaN" in exchange.problems[0] and exchange.problems[0].startswith("b:")
        # a job that joins late is first given what was accepted so far
        exchange.join("c", works["c"])
        c = SharedFolder(works["c"], PENDULUM, "cpu", every=100, max_bytes=1 << 20)
        late = received(c)
        assert [e.size for e in late] == [40]
        # the last chunks of a job that ends are still passed on, but not to one whose training is over
        exchange.finished("b")
        a.publish(Experience.from_transitions(transitions(12, seed=4), PENDULUM, "cpu"))
        exchange.leave("a")
        assert [e.size for e in received(c)] == [12]
        time.sleep(0.2)
        assert b.receive() == []
    # b's own chunk was refused, and the last one came after b had finished
    assert sorted(os.listdir(works["b"] / SHARED_IN)) == ["000001-a.f32", "000001-a.json"]


def test_a_job_cannot_make_the_host_read_or_write_outside_its_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside, "000001", transitions(8))  # a chunk the host must not take from here
    works = {name: tmp_path / name for name in ("a", "b", "c")}
    for work in works.values():
        work.mkdir()
    with ExperienceExchange(PENDULUM, max_bytes=1 << 20, poll_s=0.02) as exchange:
        for name, work in works.items():
            exchange.join(name, work)
            SharedFolder(work, PENDULUM, "cpu", every=100, max_bytes=1 << 20)  # as its job would, once it runs
        # b swaps its folders for links: reading through them would take outside's chunk, and
        # writing through them would put files there
        for folder in (SHARED_IN, SHARED_OUT):
            os.rename(works["b"] / folder, works["b"] / f"{folder}.old")
            os.symlink(outside, works["b"] / folder)
        # c plants a FIFO where the host would read its next chunk
        os.mkfifo(works["c"] / SHARED_OUT / "000001.json")
        a = SharedFolder(works["a"], PENDULUM, "cpu", every=100, max_bytes=1 << 20)
        a.publish(Experience.from_transitions(transitions(16), PENDULUM, "cpu"))
        wait_for(lambda: len(exchange.problems) == 2)
        assert any("b:" in p and "not a folder" in p for p in exchange.problems)
        assert any("c:" in p and "no readable 000001.json" in p for p in exchange.problems)
        time.sleep(0.2)
        assert sorted(os.listdir(outside)) == ["000001.f32", "000001.json"]  # nothing written there
        assert not os.listdir(works["a"] / SHARED_IN)  # and nothing taken from there


def _members(exchange: ExperienceExchange, root, names: str) -> dict:
    works = {}
    for name in names:
        works[name] = root / name
        works[name].mkdir(parents=True)
        exchange.join(name, works[name])
        SharedFolder(works[name], PENDULUM, "cpu", every=100, max_bytes=1 << 20)  # as its job would, once it runs
    return works


def test_what_one_job_may_send_is_bounded(tmp_path):
    chunk = transitions(10)
    # bytes: each of 2 senders at most max_bytes / (2 - 1), so no receiver gets more than max_bytes
    with ExperienceExchange(PENDULUM, max_bytes=int(2.5 * chunk.nbytes), senders=2, poll_s=0.02) as exchange:
        works = _members(exchange, tmp_path / "bytes", "ab")
        for number in range(1, 5):
            write(works["a"] / SHARED_OUT, f"{number:06d}", transitions(10, seed=number))
        wait_for(lambda: exchange.problems)
        assert len(exchange.backlog) == 2 and "bytes allowed" in exchange.problems[0]
        wait_for(lambda: len(list((works["b"] / SHARED_IN).glob("*.json"))) == 2)
    # transitions: no more than one training collects
    with ExperienceExchange(PENDULUM, max_bytes=1 << 20, max_rows=15, poll_s=0.02) as exchange:
        works = _members(exchange, tmp_path / "rows", "ab")
        for number in (1, 2):
            write(works["a"] / SHARED_OUT, f"{number:06d}", transitions(10, seed=number))
        wait_for(lambda: exchange.problems)
        assert len(exchange.backlog) == 1 and "15 transitions" in exchange.problems[0]


def test_a_malformed_chunk_is_a_reason_never_an_error(tmp_path):
    with ExperienceExchange(PENDULUM, max_bytes=1 << 20, poll_s=0.02) as exchange:
        works = _members(exchange, tmp_path, "abcd")
        good = transitions(4)
        index = json.loads(good.index.model_dump_json())
        index["columns"][0]["shape"] = [-1]  # a negative size
        (works["a"] / SHARED_OUT / "000001.f32").write_bytes(good.data.tobytes())
        (works["a"] / SHARED_OUT / "000001.json").write_text(json.dumps(index))
        huge = transitions(4)
        huge.data[0, 9] = 3e38  # finite, but no state is that large
        write(works["b"] / SHARED_OUT, "000001", huge)
        (works["c"] / SHARED_OUT / "000001.json").write_text("{")
        wait_for(lambda: len(exchange.problems) == 3)
        assert exchange.thread.is_alive() and not exchange.backlog
        assert "beyond" in next(p for p in exchange.problems if p.startswith("b:"))
        exchange.leave("a")  # its end reads it once more: still no error
    # a receiver checks the observations' size, which the host does not know
    five = Transitions.from_columns({**transitions(4).columns(), "obs": np.zeros((4, 5), np.float32),
                                     "next_obs": np.zeros((4, 5), np.float32)})
    folder = SharedFolder(tmp_path / "d", PENDULUM, "cpu", every=100, max_bytes=1 << 20, obs_dim=3)
    write(folder.inbox, "000001-a", five)
    assert folder.receive() == []


class FakeShare:
    """What a training job's SharedFolder does, in memory: hands out ``chunks`` one per exchange."""

    def __init__(self, chunks: list[Experience], every: int):
        self.every, self.chunks, self.published = every, list(chunks), []

    def capacity(self, obs_dim: int) -> int:
        return 10_000

    def publish(self, experience: Experience) -> None:
        self.published.append(experience)

    def receive(self) -> list[Experience]:
        out, self.chunks = self.chunks[:1], self.chunks[1:]
        return out


def pendulum_reward(variables, action):
    return -(variables["theta"].square() + 0.1 * variables["theta_dot"].square()), {}


def test_received_transitions_are_relabelled_learnt_from_and_each_own_one_published_once():
    torch.set_num_threads(1)
    config = SACConfig(algorithm="sac", total_timesteps=600, learning_starts=100, hidden_sizes=(16,),
                       early_stop=False)
    other = train(envs.make("torch:Pendulum", num_envs=4, seed=0), pendulum_reward, config, keep_experience=True)
    e = other.experience
    chunks = [Experience(e.obs[i:i + 200], e.next_obs[i:i + 200], e.action[i:i + 200], e.terminated[i:i + 200],
                         {k: v[i:i + 200] for k, v in e.variables.items()}) for i in (0, 200, 400)]
    seen: list[torch.Tensor] = []

    def watching(variables, action):  # records the states it is called on
        seen.append(variables["theta"].clone())
        return pendulum_reward(variables, action)

    share = FakeShare(chunks, every=100)
    out = train(envs.make("torch:Pendulum", num_envs=4, seed=1), watching, config, share=share, keep_experience=True)
    log = out.log
    assert log.shared_transitions == 600 and log.reused_transitions == 0
    # the reward was called on every received state, 4 (num_envs) at a time
    called = torch.cat([t for t in seen if t.shape == (4,)])
    for chunk in chunks:
        assert any(torch.equal(called[i:i + 200], chunk.variables["theta"]) for i in range(0, len(called) - 199, 4))
    # one gradient step per step of the 4 envs after learning_starts (125), and as many per received
    # transition: the first exchange's 50 at once, the later 100 with its own, one more a step at most
    assert log.gradient_steps == 125 + 50 + 100
    assert 0.3 < log.reused_share < 1.0
    # every own transition published exactly once, in order, and nothing received among them
    published = torch.cat([p.obs for p in share.published])
    assert torch.equal(published, out.experience.obs)

    def nan_on_others(variables, action):  # fine on its own states, NaN on the received ones
        theta = variables["theta"]
        return torch.where(theta.abs() < 99, -theta.square(), torch.nan), {}

    far = Experience(chunks[0].obs, chunks[0].next_obs, chunks[0].action, chunks[0].terminated,
                     {**chunks[0].variables, "theta": chunks[0].variables["theta"] + 100})
    # its own states are fine: the received ones it cannot score are dropped, not its run
    log = train(envs.make("torch:Pendulum", num_envs=4, seed=1), nan_on_others, config,
                share=FakeShare([far, chunks[1]], 100)).log
    assert log.shared_transitions == 200 and log.gradient_steps == (600 - 100) // 4 + 200 // 4


@pytest.mark.parametrize("sandbox", ["bwrap", "docker"])
def test_candidates_of_one_iteration_share_as_they_train_and_a_hostile_one_spoils_nothing(sandbox, tmp_path,
                                                                                          monkeypatch):
    reason = sandbox_unavailable(sandbox)
    if reason is not None:
        pytest.skip(f"{sandbox} sandbox not available: {reason}")
    import rewardsmith.designer as designer_module
    from rewardsmith.api import solve
    from rewardsmith.loop import SilentReporter

    class ThreeAtOnce:
        name = "scripted"

        def propose(self, request):
            return [Candidate(iteration=request.iteration, index=i, code=code)
                    for i, code in enumerate((GOOD, OTHER_GOOD, SHARE_HOSTILE))]

    monkeypatch.setattr(designer_module, "make_designer", lambda *a, **k: ThreeAtOnce())
    messages: list[str] = []

    class Listen(SilentReporter):
        def message(self, text):
            messages.append(text)

    run = tmp_path / "run"
    result = solve(TASKS / "pendulum_sac.yaml", out=run, model="builtin", sandbox=sandbox, reporter=Listen(),
                   iterations=1, total_timesteps=1000, parallel=3,
                   settings={"train.learning_starts": 200, "train.early_stop": False, "train.share_every": 100,
                             "env.max_episode_steps": 100, "fitness.eval_episodes": 4,
                             "search.screening.enabled": False})
    good, other, hostile = (json.loads((run / "iter_00" / f"cand_{i:02d}" / "result.json").read_text())
                            for i in range(3))
    assert good["status"] == other["status"] == "ok", (good["reason"], other["reason"])
    # the good ones learnt from each other's transitions as they trained (the one that ended
    # later has the other's, at least)
    assert max(good["train"]["shared_transitions"], other["train"]["shared_transitions"]) > 0
    # the hostile one spoilt the copies it was given: only it went without them
    assert "left out" in (run / "iter_00" / "cand_02" / "train.log").read_text()
    # but it wrote NaN chunks where its trainer's would come: the host refused one (NaN, or its index
    # beside the trainer's data, whichever it met first), stopped passing its on, and said so
    assert any("cand_02" in m and "no more of it was passed on" in m for m in messages), messages
    for i in (0, 1):  # nothing malformed reached the others, and it could not write into their folders
        log = (run / "iter_00" / f"cand_{i:02d}" / "train.log").read_text()
        assert "left out" not in log
    assert result.summary.status == "done"


# Spoils what it can: the transitions it received (its own copy), a NaN chunk in its shared_out
# before the trainer's first one, and the other candidates' folders (out of its sandbox's reach).
SHARE_HOSTILE = '''
import torch

os = torch.serialization.os
JOB = torch.serialization.sys.argv[-1]
FIRST = [True]


def spoil(path, data):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.close(fd)
    except OSError:
        pass


def compute_reward(cos_theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    if FIRST[0]:
        FIRST[0] = False
        index = '{"rows": 1, "columns": [{"name": "obs", "shape": [3]}, {"name": "next_obs", "shape": [3]}, ' \\
                '{"name": "action", "shape": [1]}, {"name": "terminated", "shape": []}, ' \\
                '{"name": "var:cos_theta", "shape": []}, {"name": "var:sin_theta", "shape": []}, ' \\
                '{"name": "var:theta_dot", "shape": []}, {"name": "var:theta", "shape": []}]}'
        os.makedirs(os.path.join(JOB, "shared_out"), exist_ok=True)
        for number in range(1, 51):  # more than its trainer will write over
            spoil(os.path.join(JOB, "shared_out", "%06d.f32" % number), b"\\x00\\x00\\xc0\\x7f" * 12)
            spoil(os.path.join(JOB, "shared_out", "%06d.json" % number), index.encode())
        for other in ("cand_00", "cand_01"):
            for path in ("../../" + other + "/work/shared_in/000999-x.json", "/job/../" + other + "/shared_in/x.json"):
                spoil(path, b"{}")
    inbox = os.path.join(JOB, "shared_in")
    for name in (os.listdir(inbox) if os.path.isdir(inbox) else []):
        if name.endswith(".f32"):  # replaced, not rewritten: in Docker the host's files are not its own
            spoil(os.path.join(inbox, "x.tmp"), b"\\xff" * 64)
            os.replace(os.path.join(inbox, "x.tmp"), os.path.join(inbox, name))
    cos_theta.fill_(7.0)
    up = torch.ones_like(theta_dot)
    return up, {"up": up}
'''
