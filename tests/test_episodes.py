"""The run's episode store: batches of recorded episodes, checked when read, capped, reopened."""

import io
import json

import numpy as np
import pytest

from rewardsmith.episodes import EpisodeBatch, EpisodeError, EpisodeStore, informative, spread
from rewardsmith.schemas import EpisodeMeta

SHAPES = {"x": (), "v": (2,)}


def batch(fitness, length=5, source="eval", offset=0.0):
    n = len(fitness)
    steps = n * length
    x = np.arange(steps, dtype=np.float32) + offset
    return EpisodeBatch({"x": x, "v": np.stack([x, -x], 1)}, np.zeros(steps, np.float32),
                        [EpisodeMeta(source=source, fitness=f, length=length) for f in fitness])


def test_batch_round_trip_and_selection():
    b = batch([0.1, 0.5, 0.9], length=4)
    back = EpisodeBatch.from_bytes(b.to_bytes(compress=True), SHAPES, max_length=4)
    assert back.fitness.tolist() == pytest.approx([0.1, 0.5, 0.9])
    assert back.select([2, 0]).variables["x"].tolist() == [8, 9, 10, 11, 0, 1, 2, 3]
    assert back.select([1]).variables["v"].shape == (4, 2)


def _npz(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def test_a_batch_from_a_sandbox_is_checked():
    meta = np.array(json.dumps([{"source": "eval", "fitness": 1.0, "length": 2}]))
    good = {"var:x": np.zeros(2, np.float32), "var:v": np.zeros((2, 2), np.float32),
            "action": np.zeros(2, np.float32), "lengths": np.array([2]), "meta": meta}
    EpisodeBatch.from_bytes(_npz(**good), SHAPES)
    bad = {
        "not an npz": b"garbage",
        "pickled": _npz(**{**good, "var:x": np.array([object(), object()], dtype=object)}),
        "NaN": _npz(**{**good, "var:x": np.array([0.0, np.nan], np.float32)}),
        "records": _npz(**{k: v for k, v in good.items() if k != "var:v"}),
        "per-step shape": _npz(**{**good, "var:v": np.zeros((2, 3), np.float32)}),
        "lengths": _npz(**{**good, "lengths": np.array([3])}),
        "descriptions": _npz(**{**good, "meta": np.array('[{"source": "elsewhere"}]')}),
        "unexpected": _npz(**good, extra=np.zeros(2)),
    }
    for words, raw in bad.items():
        with pytest.raises(EpisodeError) as exc:
            EpisodeBatch.from_bytes(raw, SHAPES)
        assert str(exc.value), words
    with pytest.raises(EpisodeError, match="longer than"):
        EpisodeBatch.from_bytes(_npz(**good), SHAPES, max_length=1)


def test_store_keeps_under_its_cap_spread_over_fitness_and_reopens(tmp_path):
    per_episode = batch([0.0]).episode_bytes(0)
    store = EpisodeStore(tmp_path / "episodes", cap_bytes=20 * per_episode, variables=SHAPES)
    store.add(batch([0.0] * 30, source="random"))            # many alike
    store.add(batch([0.5, 0.6, 0.9, 1.0], offset=1000))      # few, better
    assert store.total_bytes <= 20 * per_episode
    kept = [e.meta.fitness for e in store.entries]
    assert {0.5, 0.6, 0.9, 1.0} <= set(kept)                 # the crowded low range lost episodes first
    assert len(kept) == 20
    files = {p.name for p in (tmp_path / "episodes").iterdir()}
    assert files == {"index.json", *{e.batch for e in store.entries}}  # rewritten batches; old ones gone
    store.mark_seeded({"random_episodes": 30})

    again = EpisodeStore(tmp_path / "episodes", cap_bytes=20 * per_episode, variables=SHAPES)
    assert again.seeded and again.seed_info == {"random_episodes": 30}
    assert [e.id for e in again.entries] == [e.id for e in store.entries]
    loaded = again.load(again.entries[-2:])
    assert loaded.fitness.tolist() == pytest.approx([0.9, 1.0])
    assert loaded.variables["x"][0] == 1010  # the episode's own states


def test_spread_and_informative():
    store_like = [type("E", (), {"id": i, "meta": EpisodeMeta(source="eval", fitness=f, length=1)})()
                  for i, f in enumerate([0.0] * 50 + [1.0] * 2)]
    chosen = spread(store_like, 8)
    assert len(chosen) == 8 and sum(e.meta.fitness == 1.0 for e in chosen) == 2
    assert not informative([0.3] * 10) and not informative([0.1, 0.2])
    assert informative([0.0, 0.0, 1.0, 1.0])
