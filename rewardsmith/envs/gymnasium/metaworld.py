"""Meta-World, the manipulation benchmark Text2Reward reports on, through its gymnasium ids.

``gymnasium:Meta-World/MT1`` with ``kwargs: {env_name: reach-v3, seed: 0}`` (``pip install
'rewardsmith[metaworld]'``) is one Meta-World task with its goal positions drawn from a fixed set
of 50. Every task shares one observation layout (``SawyerXYZEnv._get_obs``): the hand position,
how far the gripper is open, up to two objects' positions and orientations (zero-padded), the same
18 numbers one step earlier, and the goal position. The names here follow that layout; which body
or site each object is comes from the model (the point whose position differs from the object's
by a constant over the probe). The env's ``info`` carries ``success`` (the task's own test) and
the parts of its dense reward; :class:`ModelStateInfo` adds ``tcp_pos`` (the point between the
fingertips that Meta-World's rewards use), the positions at the start of the episode, and the
joints of the objects (a drawer's slide, a button's travel).

Meta-World ignores the seed given to ``reset`` (it seeds only at construction), so every copy of
a vector env would draw the same goals: :class:`SeedOnReset` passes the seed on. And its MT1
draws its 50 goals from numpy's global generator unless given a ``seed`` kwarg, which the
gymnasium backend cannot pass (its own ``seed`` seeds each copy): :func:`building` fixes the
generator while an env is built, so every copy and every job gets the same 50 goals (as MT1 with
seed 0), and builds them once per process (an env and 50 resets each time otherwise).
"""

from __future__ import annotations

import contextlib
import re

import gymnasium
import numpy as np

from ..description import StateVar
from .mujoco import ModelNames, ModelNaming, Quantity, body_tree, probe

ROBOT_ROOT = "right_arm_base_link"   # the Sawyer arm and gripper hang below this body


_GOALS: dict[tuple, object] = {}   # (env name, seed) -> MT1 benchmark, built while `building`
_BUILDING = False


@contextlib.contextmanager
def building():
    """Around ``gymnasium.make`` of a Meta-World id: numpy's global generator seeded with 0 (and
    restored after), and MT1's goal sets reused within the process."""
    global _BUILDING
    import metaworld

    if not getattr(metaworld.MT1, "_rewardsmith_cached", False):
        original = metaworld.MT1

        def cached_mt1(env_name, seed=None):
            if not _BUILDING:
                return original(env_name, seed=seed)
            key = (env_name, seed)
            if key not in _GOALS:
                _GOALS[key] = original(env_name, seed=seed)
            return _GOALS[key]

        cached_mt1._rewardsmith_cached = True
        metaworld.MT1 = cached_mt1  # make_mt_envs looks MT1 up in the module at call time
    state = np.random.get_state()
    np.random.seed(0)
    _BUILDING = True
    try:
        yield
    finally:
        _BUILDING = False
        np.random.set_state(state)


def is_metaworld(unwrapped) -> bool:
    return any(cls.__module__.split(".")[0] == "metaworld" for cls in type(unwrapped).__mro__)


class SeedOnReset(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """``reset(seed=s)`` seeds the Meta-World env (task choice, random positions) with ``s``."""

    def __init__(self, env: gymnasium.Env):
        gymnasium.utils.RecordConstructorArgs.__init__(self)
        gymnasium.Wrapper.__init__(self, env)

    def reset(self, *, seed: int | None = None, options=None):
        if seed is not None:
            self.env.unwrapped.seed(seed)  # type: ignore[attr-defined]  # SawyerXYZEnv.seed
        return self.env.reset(seed=seed, options=options)


def _task_words(unwrapped) -> str:
    name = type(unwrapped).__name__
    name = re.sub(r"^Sawyer|EnvV\d+$|Env$", "", name)
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _object_source(names: ModelNames, data, obs_slice: slice) -> str:
    """Which moving body or site the object is, as the probe shows (a constant offset allowed)."""
    values = data.obs[:, obs_slice]
    best = None
    for i, (name, kind, _) in enumerate(names.points()):
        diff = values - data.points[:, i]
        if np.ptp(diff, axis=0).max() < 1e-6:
            offset = diff.mean(axis=0)
            size = float(np.linalg.norm(offset))
            if best is None or size < best[0]:
                best = (size, name, kind, offset)
    if best is None:
        return ""
    size, name, kind, offset = best
    what = f"{'site' if kind == 'site_xpos' else 'body'} {name}"
    if size < 1e-6:
        return f" ({what})"
    shift = ", ".join(f"{x:+.3g}" for x in offset)
    return f" (the point offset by ({shift}) m from {what})"


def _quat_source(names: ModelNames, data, obs_slice: slice) -> str:
    """What an object's quaternion is (it may never change: an object that slides, not turns)."""
    values = data.obs[:, obs_slice]
    if np.ptp(values, axis=0).max() < 1e-9:
        shown = ", ".join(f"{x:g}" for x in values[0])
        return f"constant ({shown}): this object does not turn"
    quats = data.arrays["xquat"].reshape(len(values), -1, 4)
    for b in range(quats.shape[1]):
        if np.allclose(values, quats[:, b], atol=1e-6):
            return f"(w, x, y, z) as body {names.bodies[b + 1]} has it"
        if np.allclose(values, quats[:, b][:, [1, 2, 3, 0]], atol=1e-6) or \
                np.allclose(values, -quats[:, b][:, [1, 2, 3, 0]], atol=1e-6):
            return f"(x, y, z, w) as body {names.bodies[b + 1]} has it"
    return "as the task reports it"


_INFO = {
    "success": ("1 while the task's own success test holds at this step (Meta-World's success flag), else 0",
                0.0, 1.0),
    "near_object": ("the task's near_object value: for reach the hand-to-goal distance (m), for object tasks "
                    "1 when the gripper is near the object", None, None),
    "grasp_success": ("the task's grasp_success value (1 when the object is grasped, or the gripper is in the state "
                      "the task wants)", 0.0, 1.0),
    "grasp_reward": ("the reaching/grasping part of the env's own dense reward, 0..1", None, None),
    "in_place_reward": ("the placing part of the env's own dense reward (1 at the goal)", None, None),
    "obj_to_target": ("the task's distance from the object (or hand, for reach) to its goal", None, None),
    "unscaled_reward": ("the env's own dense reward for this step (Meta-World's v2 reward)", None, None),
}


def naming(env) -> ModelNaming:
    """Names for a Meta-World env (a fresh instance: it is reset and stepped)."""
    u = env.unwrapped
    names = ModelNames(u.model)
    data = probe(env, names)
    n_obj = len(np.asarray(u._get_pos_objects())) // 3
    pad = int(getattr(u, "_obs_obj_max_len", 14))
    frame = 4 + pad
    variables: list[StateVar] = []

    def frame_vars(base: int, prefix: str, when: str) -> None:
        variables.append(StateVar(name=f"{prefix}hand_pos", obs=(base, base + 3), unit="m",
                                  description=f"position (x, y, z) of the gripper's hand{when} (y points away from "
                                              "the robot's base, z up)"))
        variables.append(StateVar(name=f"{prefix}gripper_opening", obs=base + 3, low=0.0, high=1.0,
                                  description=f"how far apart the two fingers are{when}: 0 closed, 1 fully open "
                                              "(finger distance / 0.1 m, clipped)"))
        for i in range(n_obj):
            stem = "obj" if i == 0 else f"obj{i + 1}"
            start, now = base + 4 + 7 * i, 4 + 7 * i  # the same object in the current frame
            src = _object_source(names, data, slice(now, now + 3))
            variables.append(StateVar(name=f"{prefix}{stem}_pos", obs=(start, start + 3), unit="m",
                                      description=f"position (x, y, z) of the task's object{src}{when}"))
            quat = _quat_source(names, data, slice(now + 3, now + 7))
            variables.append(StateVar(name=f"{prefix}{stem}_quat", obs=(start + 3, start + 7),
                                      description=f"orientation quaternion of the object{when}, {quat}"))

    frame_vars(0, "", "")
    frame_vars(frame, "prev_", " one step earlier")
    padding = ((4 + 7 * n_obj, frame), (frame + 4 + 7 * n_obj, 2 * frame)) if 7 * n_obj < pad else ()
    goal = slice(2 * frame, 2 * frame + 3)
    if np.abs(data.obs[:, goal]).max() > 0:  # zero when the goal is hidden
        variables.append(StateVar(name="goal_pos", obs=(goal.start, goal.stop), unit="m",
                                  description="position (x, y, z) of the goal: where the hand (reach) or the object "
                                              "must end up"))
    info = tuple(StateVar(name=k, info=k, description=d, low=lo, high=hi) for k, (d, lo, hi) in _INFO.items()
                 if k in data.info)
    extras = [
        Quantity("tcp_pos", "mid_sites", (names.sites.index("right_end_effector"), names.sites.index("left_end_effector")),
                 (3,), "m", "position of the point midway between the two fingertips (Meta-World's tool centre point, "
                            "which its rewards measure from; about 4.5 cm below hand_pos)"),
        Quantity("init_tcp_pos", "attr", ("init_tcp",), (3,), "m", "tcp_pos at the start of the episode"),
        Quantity("hand_init_pos", "attr", ("hand_init_pos",), (3,), "m",
                 "where the task puts the hand at the start of each episode"),
        Quantity("obj_init_pos", "attr", ("obj_init_pos",), (3,), "m",
                 "where the task placed its object at the start of the episode"),
    ]
    robot = names.bodies.index(ROBOT_ROOT) if ROBOT_ROOT in names.bodies else -1
    model = u.model
    for j in range(model.njnt):
        body = int(model.jnt_bodyid[j])
        if _below(model, body, robot) or model.jnt_type[j] not in (2, 3):
            continue
        kind = "slide" if model.jnt_type[j] == 2 else "hinge"
        unit = "m" if kind == "slide" else "rad"
        joint = names.joints[j]
        low, high = names.joint_range(j)
        extras.append(Quantity(f"{joint}_{'pos' if kind == 'slide' else 'angle'}", "qpos", (int(model.jnt_qposadr[j]),),
                               (), unit, f"position of {kind} joint {joint} of the {names.bodies[body]}", low, high))
    summary = (f"Meta-World {_task_words(u)}: a Sawyer robot arm with a two-finger gripper at a table; each step the "
               "agent moves the hand by up to about 1 cm along x, y and z and sets the gripper's closing effort")
    arm = [names.joints[j] for j in range(model.njnt) if _below(model, int(model.jnt_bodyid[j]), robot)]
    leave_out = frozenset(b for b in range(1, model.nbody) if b == robot or model.body_mocapid[b] >= 0)
    structure = (f"The arm (below {ROBOT_ROOT}; joints {', '.join(arm)}) follows a mocap body that the action moves. "
                 + body_tree(names, leave_out=leave_out, head="Other bodies that move"))
    return ModelNaming(tuple(variables), tuple(extras), structure, summary=summary, info=info,
                       wrappers=(("metaworld_seed", ()),), padding=padding)


def _below(model, body: int, root: int) -> bool:
    while body > 0:
        if body == root:
            return True
        body = int(model.body_parentid[body])
    return False
