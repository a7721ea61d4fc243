"""Names for the state of gymnasium envs: where each named variable comes from.

A gymnasium env hands out an observation vector and an ``info`` dict. A reward written by a
designer reads *named* quantities instead (``cos_theta``, ``x_velocity``), so each variable
says where it lives: a slice of the (flattened) observation or a key of ``info``.

Three sources of names, first match wins:

1. the task file's own ``env.variables`` (a list of :class:`~rewardsmith.envs.description.StateVar`
   with ``obs`` or ``info``), which replaces
   the names below entirely;
2. :data:`REGISTRY`, names for common envs with the meanings gymnasium documents;
3. a fallback from the observation space (``obs_0``, ``obs_1``, ... or one ``obs`` vector;
   one variable per key of a ``Dict`` space) plus the numeric scalars the env puts in ``info``.

Pure data and numpy-free logic: the host imports this to describe envs without torch.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ..description import StateVar
from ..torch.catalog import CARTPOLE

# names a variable may not take: they mean something else to rewards and fitness expressions
RESERVED = {"action", "episode_length", "max_episode_steps", "terminated", "truncated", "pi",
            "mean", "sum", "min", "max", "any", "all", "last", "abs", "sqrt", "exp", "log", "cos",
            "sin", "tanh", "sign", "norm", "clip", "minimum", "maximum", "torch", "math"}
FALLBACK_SCALARS = 32  # up to this many observation entries get one scalar name each


def check_task_variable(v: StateVar) -> None:
    """A task file's own variable: a lower_snake_case name that is not reserved, and exactly one
    of ``obs`` or ``info`` saying where its value comes from. Raises ``ValueError``."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", v.name):
        raise ValueError(f"variable {v.name!r}: names are lower_snake_case identifiers")
    if (v.obs is None) == (v.info is None):
        raise ValueError(f"variable {v.name!r}: give exactly one of obs or info")
    if v.name in RESERVED:
        raise ValueError(f"variable {v.name!r}: the name is reserved")
    if isinstance(v.obs, tuple) and not 0 <= v.obs[0] < v.obs[1]:
        raise ValueError(f"variable {v.name!r}: obs slice [start, stop) needs 0 <= start < stop")
    if isinstance(v.obs, int) and v.obs < 0:
        raise ValueError(f"variable {v.name!r}: obs index must be 0 or more")


@dataclass(frozen=True)
class Naming:
    """Names for one env family (``Hopper`` covers ``Hopper-v4`` and ``Hopper-v5``)."""

    summary: str
    variables: tuple[StateVar, ...]
    # reason -> step expression over the names; "{z_low}" style fields are filled from the
    # unwrapped env's attributes (so kwargs such as healthy_z_range are honoured)
    terminations: dict[str, str] = field(default_factory=dict)
    # entries of the observation that exclude_current_positions_from_observation=False prepends
    position_dims: int = 0


def _v(name, description, unit="-", obs=None, info=None, low=None, high=None) -> StateVar:
    return StateVar(name=name, description=description, unit=unit, obs=obs, info=info, low=low, high=high)


def _locomotion_2d(body: str, joints: list[tuple[str, str]], x_desc: str,
                   z_range: tuple[float | None, float | None] = (None, None),
                   angle_range: tuple[float | None, float | None] = (None, None)) -> tuple[StateVar, ...]:
    """qpos[1:] then qvel, as gymnasium documents for the planar MuJoCo walkers; the ranges are
    the env's default healthy ranges, where it has them."""
    n = len(joints)
    out = [
        _v("x_position", f"x position of the {x_desc}; 0 at the start, positive is forward", "m", info="x_position"),
        _v("x_velocity", f"forward velocity of the {x_desc} (the one the env's own reward uses)", "m/s",
           info="x_velocity", low=-5.0, high=10.0),
        _v(f"{body}_z", f"height (z-coordinate) of the {x_desc}", "m", obs=0, low=z_range[0], high=z_range[1]),
        _v(f"{body}_angle", f"pitch angle of the {x_desc}, 0 as at the start", "rad", obs=1, low=angle_range[0],
           high=angle_range[1]),
        _v("joint_angles", "joint angles in order " + ", ".join(j for j, _ in joints), "rad", obs=(2, 2 + n)),
        _v(f"{body}_x_vel", f"x velocity of the {x_desc} from the observation (qvel)", "m/s", obs=2 + n),
        _v(f"{body}_z_vel", f"vertical velocity of the {x_desc}", "m/s", obs=3 + n),
        _v(f"{body}_angular_vel", f"pitch angular velocity of the {x_desc}", "rad/s", obs=4 + n),
        _v("joint_velocities", "joint angular velocities, same order as joint_angles", "rad/s",
           obs=(5 + n, 5 + 2 * n)),
    ]
    return tuple(out)


_CHEETAH_JOINTS = [("bthigh", ""), ("bshin", ""), ("bfoot", ""), ("fthigh", ""), ("fshin", ""), ("ffoot", "")]
_HOPPER_JOINTS = [("thigh", ""), ("leg", ""), ("foot", "")]
_WALKER_JOINTS = [("thigh", ""), ("leg", ""), ("foot", ""), ("thigh_left", ""), ("leg_left", ""), ("foot_left", "")]
_HEALTHY = {"unhealthy_height": "{body}_z < {z_low} or {body}_z > {z_high}",
            "unhealthy_angle": "{body}_angle < {angle_low} or {body}_angle > {angle_high}"}


def _healthy(body: str) -> dict[str, str]:
    return {k: v.replace("{body}", body) for k, v in _HEALTHY.items()}


_ANT_LEGS = "hip_1, ankle_1 (front left), hip_2, ankle_2 (front right), hip_3, ankle_3 (back left), hip_4, ankle_4 (back right)"
_HUMANOID_JOINTS = ("abdomen_z, abdomen_y, abdomen_x, right_hip_x, right_hip_z, right_hip_y, right_knee, left_hip_x, "
                    "left_hip_z, left_hip_y, left_knee, right_shoulder1, right_shoulder2, right_elbow, "
                    "left_shoulder1, left_shoulder2, left_elbow")


def _locomotion_3d(joints: int, joint_names: str, extra: tuple[StateVar, ...]) -> tuple[StateVar, ...]:
    j = joints
    return (
        _v("x_position", "x position of the torso; 0 at the start, positive is forward", "m", info="x_position"),
        _v("y_position", "y position of the torso (sideways)", "m", info="y_position"),
        _v("x_velocity", "forward velocity of the torso (the one the env's own reward uses)", "m/s",
           info="x_velocity", low=-5.0, high=10.0),
        _v("y_velocity", "sideways velocity of the torso", "m/s", info="y_velocity"),
        _v("distance_from_origin", "horizontal distance of the torso from where it started", "m",
           info="distance_from_origin"),
        _v("torso_z", "height of the torso centre", "m", obs=0),
        _v("torso_orientation", "torso orientation quaternion (w, x, y, z); (1, 0, 0, 0) is upright as at the start",
           obs=(1, 5)),
        _v("joint_angles", f"joint angles in order {joint_names}", "rad", obs=(5, 5 + j)),
        _v("torso_velocity", "torso linear velocity (x, y, z)", "m/s", obs=(5 + j, 8 + j)),
        _v("torso_angular_velocity", "torso angular velocity (x, y, z)", "rad/s", obs=(8 + j, 11 + j)),
        _v("joint_velocities", "joint angular velocities, same order as joint_angles", "rad/s",
           obs=(11 + j, 11 + 2 * j)),
        *extra,
    )


REGISTRY: dict[str, Naming] = {
    "CartPole": Naming(
        "a pole hinged on a cart that moves along a frictionless track; the agent pushes the cart left or right",
        tuple(v.model_copy(update={"obs": i}) for i, v in enumerate(CARTPOLE.variables)),  # the same names as torch:CartPole
        dict(CARTPOLE.terminations)),
    "Pendulum": Naming(
        "a pendulum on a motorised pivot, starting at a random angle; the agent applies a torque at the "
        "pivot (too weak to lift it straight up: it must swing)",
        (_v("cos_theta", "cosine of the angle from upright: 1 upright, -1 hanging down", obs=0, low=-1.0, high=1.0),
         _v("sin_theta", "sine of the angle from upright (positive counter-clockwise)", obs=1, low=-1.0, high=1.0),
         _v("theta_dot", "angular velocity, positive counter-clockwise", "rad/s", obs=2, low=-8.0, high=8.0))),
    "MountainCar": Naming(
        "a car in a valley between two hills, too weak to drive straight up; the goal is the flag on the "
        "right hill at position 0.5",
        (_v("position", "car position along the track; the valley bottom is near -0.52, the goal at 0.5", "m",
            obs=0, low=-1.2, high=0.6),
         _v("velocity", "car velocity, positive to the right", "m/step", obs=1, low=-0.07, high=0.07)),
        {"reached_goal": "position >= 0.5"}),
    "MountainCarContinuous": Naming(
        "a car in a valley between two hills, too weak to drive straight up; the goal is the flag on the "
        "right hill at position 0.45",
        (_v("position", "car position along the track; the valley bottom is near -0.52, the goal at 0.45", "m",
            obs=0, low=-1.2, high=0.6),
         _v("velocity", "car velocity, positive to the right", "m/step", obs=1, low=-0.07, high=0.07)),
        {"reached_goal": "position >= 0.45"}),
    "Acrobot": Naming(
        "two links hanging from a fixed joint, torque only at the joint between them; the goal is to swing "
        "the free end above a line one link length over the fixed joint",
        (_v("cos_theta1", "cosine of the first link's angle from hanging down", obs=0, low=-1.0, high=1.0),
         _v("sin_theta1", "sine of the first link's angle from hanging down", obs=1, low=-1.0, high=1.0),
         _v("cos_theta2", "cosine of the second link's angle relative to the first", obs=2, low=-1.0, high=1.0),
         _v("sin_theta2", "sine of the second link's angle relative to the first", obs=3, low=-1.0, high=1.0),
         _v("theta1_dot", "angular velocity of the first link", "rad/s", obs=4, low=-12.57, high=12.57),
         _v("theta2_dot", "angular velocity of the second link", "rad/s", obs=5, low=-28.27, high=28.27)),
        {"reached_goal": "-cos_theta1 - (cos_theta1 * cos_theta2 - sin_theta1 * sin_theta2) > 1.0"}),
    "LunarLander": Naming(
        "a lander descending to a pad at the origin; it fires its main and side engines",
        (_v("x", "horizontal position, 0 is the pad centre (normalised)", obs=0, low=-1.5, high=1.5),
         _v("y", "height above the pad (normalised)", obs=1, low=-0.5, high=1.5),
         _v("x_velocity", "horizontal velocity (normalised)", obs=2, low=-5.0, high=5.0),
         _v("y_velocity", "vertical velocity (normalised)", obs=3, low=-5.0, high=5.0),
         _v("angle", "lander angle, 0 upright", "rad", obs=4, low=-3.14, high=3.14),
         _v("angular_velocity", "lander angular velocity (normalised)", obs=5, low=-5.0, high=5.0),
         _v("left_leg_contact", "1 when the left leg touches the ground", obs=6, low=0.0, high=1.0),
         _v("right_leg_contact", "1 when the right leg touches the ground", obs=7, low=0.0, high=1.0))),
    "BipedalWalker": Naming(
        "a two-legged walker on rough terrain; it applies torques at hips and knees",
        (_v("hull_angle", "hull angle, 0 level", "rad", obs=0),
         _v("hull_angular_velocity", "hull angular velocity (normalised)", obs=1),
         _v("x_velocity", "horizontal velocity (normalised)", obs=2),
         _v("y_velocity", "vertical velocity (normalised)", obs=3),
         _v("joint_state", "hip 1 angle, hip 1 speed, knee 1 angle, knee 1 speed, leg 1 contact, then the same "
            "for leg 2", obs=(4, 14)),
         _v("lidar", "ten lidar range readings ahead, 1 means nothing in range", obs=(14, 24)))),
    "HalfCheetah": Naming(
        "a planar two-legged cat-like robot (torso, back and front thigh, shin and foot); the agent applies "
        "torques at the six joints. It cannot fall over into a terminal state: episodes always last the "
        "full length",
        _locomotion_2d("tip", _CHEETAH_JOINTS, "front tip (torso)"), position_dims=1),
    "Hopper": Naming(
        "a planar one-legged robot (torso, thigh, leg, foot) that moves by hopping; the agent applies torques "
        "at the three joints. It starts standing with the torso about 1.25 m high",
        _locomotion_2d("torso", _HOPPER_JOINTS, "torso", (0.7, 2.0), (-0.2, 0.2)), _healthy("torso"), position_dims=1),
    "Walker2d": Naming(
        "a planar two-legged robot (torso, and per leg a thigh, leg and foot); the agent applies torques at "
        "the six joints. It starts standing with the torso about 1.25 m high",
        _locomotion_2d("torso", _WALKER_JOINTS, "torso", (0.8, 2.0), (-1.0, 1.0)), _healthy("torso"), position_dims=1),
    "Ant": Naming(
        "a four-legged robot (a torso and four two-link legs) on a plane; the agent applies torques at the "
        "eight joints",
        _locomotion_3d(8, _ANT_LEGS, (
            _v("contact_forces", "external contact forces on the 13 bodies (6 numbers each, clipped)", obs=(27, 105)),
        )),
        {"unhealthy_height": "torso_z < {z_low} or torso_z > {z_high}"}, position_dims=2),
    "Humanoid": Naming(
        "a 3D two-legged humanoid (torso, abdomen, two legs and two arms); the agent applies torques at the "
        "17 joints. It starts standing with the torso about 1.4 m high",
        _locomotion_3d(17, _HUMANOID_JOINTS, (
            _v("body_inertia", "mass and inertia of the 13 bodies relative to the centre of mass", obs=(45, 175)),
            _v("body_velocity", "centre-of-mass based velocities of the 13 bodies", obs=(175, 253)),
            _v("actuator_forces", "forces the actuators apply at the 17 joints", obs=(253, 270)),
            _v("contact_forces", "external contact forces on the 13 bodies (6 numbers each)", obs=(270, 348)),
        )),
        {"unhealthy_height": "torso_z < {z_low} or torso_z > {z_high}"}, position_dims=2),
}


def family(env_id: str) -> str:
    """``"HalfCheetah-v5"`` -> ``"HalfCheetah"``; ``"ns/Name-v1"`` and ``"module:Name-v1"`` -> ``"Name"``."""
    return re.sub(r"-v\d+$", "", env_id.rpartition(":")[2].rsplit("/", 1)[-1])


def registered_naming(env_id: str, kwargs: dict[str, Any]) -> Naming | None:
    """The registry's names for ``env_id``, adjusted for kwargs that move observation entries."""
    naming = REGISTRY.get(family(env_id))
    if naming is None:
        return None
    if naming.position_dims and kwargs.get("exclude_current_positions_from_observation") is False:
        naming = replace(naming, variables=tuple(v.shifted(naming.position_dims) for v in naming.variables))
    return naming


def identifier(key: str) -> str | None:
    """A variable name made from an info key or Dict-space key, or None if none fits."""
    name = re.sub(r"\W+", "_", key).strip("_").lower()
    if not name or name[0].isdigit() or keyword.iskeyword(name) or name in RESERVED:
        return None
    return name


def from_sources(sources: tuple[StateVar, ...]) -> tuple[StateVar, ...]:
    """A task file's own variables, with a description where it gave none."""
    return tuple(s if s.description else s.model_copy(update={"description": f"task-defined variable {s.name}"})
                 for s in sources)


def fallback_variables(obs_parts: list[tuple[str, int, int, float | None, float | None]],
                       info_scalars: list[str]) -> tuple[StateVar, ...]:
    """Generic names: ``obs_parts`` are (key, start, stop, low, high) of the flattened observation
    (key ``""`` for a plain Box); ``info_scalars`` the numeric scalar keys seen in ``info``."""
    out: list[StateVar] = []
    for key, start, stop, low, high in obs_parts:
        base = identifier(key) if key else "obs"
        if base is None:
            continue
        size = stop - start
        if not key and size <= FALLBACK_SCALARS:
            out += [StateVar(name=f"obs_{i}", description=f"observation entry {i} (no documented meaning)", obs=i,
                             low=low, high=high) for i in range(start, stop)]
        elif size == 1:
            out.append(StateVar(name=base, description=f"observation entry {key!r}", obs=start, low=low, high=high))
        else:
            out.append(StateVar(name=base, description=f"observation {key!r}" if key else "the observation vector",
                                obs=(start, stop)))
    taken = {v.name for v in out}
    for key in info_scalars:
        name = identifier(key)
        if name and name not in taken:
            out.append(StateVar(name=name, description=f"the env's info[{key!r}] after the step", info=key))
            taken.add(name)
    return tuple(out)
