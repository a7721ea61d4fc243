from rewardsmith.analyzer import analyze
from rewardsmith.schemas import EvalSummary, Stats, TrainCheckpoint, TrainLog


def s(mean, std=0.1):
    return Stats(mean=mean, std=std, min=mean - std, max=mean + std)


def log(components_by_checkpoint, fitness):
    cps = [TrainCheckpoint(step=(i + 1) * 100, wall_s=i, reward=s(1.0), episodes=5, fitness=f,
                           episode_length=50.0, components={k: v for k, v in comps.items()},
                           terminations={"pole_fell": 4, "time_limit": 1})
           for i, (comps, f) in enumerate(zip(components_by_checkpoint, fitness))]
    return TrainLog(checkpoints=cps, env_steps=len(cps) * 100, wall_s=3.0, steps_per_s=100.0)


def ev(fitness, success):
    return EvalSummary(fitness=fitness, success=success, episodes=4, fitness_per_episode=[fitness] * 4,
                       episode_length=s(100.0), terminations={"pole_fell": 4})


def test_flags_constant_dominating_and_hacking():
    cps = [{"flat": s(0.5, 0.0), "big": s(10.0 + i), "hack": s(0.1 * i)} for i in range(5)]
    analysis = analyze(log(cps, [0.1] * 5), ev(0.1, False), success_threshold=0.95)
    kinds = {(f.kind, f.component) for f in analysis.findings}
    assert ("constant", "flat") in kinds
    assert ("dominating", "big") in kinds
    assert ("rising_without_fitness", "hack") in kinds
    assert ("no_progress", None) in kinds
    assert "hack" in analysis.text and "pole_fell 4" in analysis.text and "0.1" in analysis.text


def test_healthy_run_has_no_findings():
    cps = [{"a": s(0.2 * i + 0.1), "b": s(0.3 + 0.1 * i)} for i in range(5)]
    analysis = analyze(log(cps, [0.1, 0.3, 0.5, 0.8, 0.97]), ev(0.97, True), success_threshold=0.95)
    assert analysis.findings == []
    assert "solved" in analysis.text


def test_failed_candidate_reports_reason():
    analysis = analyze(None, None, 0.95, status="failed", reason="timeout: still running after 5 s")
    assert "timeout" in analysis.text and analysis.findings == []
