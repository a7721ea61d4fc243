"""Named state for MuJoCo-based gymnasium envs, read from the model itself.

Any env whose unwrapped object holds a MuJoCo ``model`` and ``data`` (gymnasium's MuJoCo set,
Meta-World, Gymnasium-Robotics, a user's own) is named without a table per env:

1. **probe** (:func:`probe`): a few dozen steps with random and held actions record the
   observation and the model's arrays after each step: ``qpos`` and ``qvel`` by joint, cosine and
   sine of hinge angles, body positions and orientations, site positions, ``cvel``, ``cinert``,
   ``cfrc_ext``, joint forces, and (for entries nothing else explains) differences of positions;
2. **match** (:func:`match_observation`): the observation is read left to right as a
   concatenation of contiguous runs of those arrays, clipped or not, the longest run first; each
   run is named after the joints, bodies or sites it holds (``cos_joint0``, ``target_x_pos``,
   ``fingertip_rel_target_xy``);
3. **extras** (:func:`extra_quantities`): quantities the observation lacks (body and site
   positions, joint angles and velocities by joint name, the height of a root body, contact with
   the floor) are computed after every step by :class:`ModelStateInfo`, a gymnasium wrapper that
   puts them into ``info``; the description reads them as info variables, so sync and async
   vectorization both carry them.

The description also gets a short body tree (:func:`body_tree`), as Text2Reward's env
abstraction shows one. Imports numpy and gymnasium, never torch; MuJoCo only through the env.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np

from ..description import StateVar

PROBE_EPISODES = 3
PROBE_STEPS = 40          # steps per probe episode (stepping on past a termination: physics goes on)
MAX_TREE_LINES = 24
_JOINT_KIND = {0: "free", 1: "ball", 2: "slide", 3: "hinge"}
_AXES = "xyz"
_QUAT = ("w", "x", "y", "z")


def is_mujoco(unwrapped: Any) -> bool:
    """Whether an env object simulates with MuJoCo (has ``model``/``data`` of the bindings)."""
    model, data = getattr(unwrapped, "model", None), getattr(unwrapped, "data", None)
    return type(model).__name__ == "MjModel" and type(data).__name__ == "MjData"


def snake(name: str) -> str:
    """A model name as a lower_snake_case identifier (``endEffector`` -> ``end_effector``)."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"\W+", "_", name).strip("_").lower()
    return re.sub(r"_+", "_", name)


# ---------------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Slot:
    """A named part ``[start, stop)`` of one model array: one entry, or a vector (a group)."""

    name: str
    start: int
    stop: int
    unit: str = "-"
    description: str = ""
    low: float | None = None
    high: float | None = None
    part: str = ""        # the entry's place in its group: "x", "y", "z", "w", or ""
    owner: str = ""       # the body or dof it belongs to


@dataclass
class ModelArray:
    """One array of the model's data, flattened, with names for its entries and groups."""

    key: str
    size: int
    entries: list[Slot]
    groups: list[Slot] = field(default_factory=list)
    block: tuple[str, str, str] | None = None   # (name, unit, what): a run over several groups is one vector

    def group_at(self, k: int) -> Slot | None:
        return next((g for g in self.groups if g.start <= k < g.stop), None)


class ModelNames:
    """Identifiers for a model's bodies, joints, sites and dofs, and the arrays they name."""

    def __init__(self, model):
        self.model = model
        self.bodies = self._bodies(model)
        self.joints = self._unique([snake(model.joint(j).name) or f"{self.bodies[model.jnt_bodyid[j]]}_joint"
                                    for j in range(model.njnt)], "joint")
        self.sites = self._unique([snake(model.site(s).name) or f"{self.bodies[model.site_bodyid[s]]}_site"
                                   for s in range(model.nsite)], "site")
        self.geoms = [snake(model.geom(g).name) or f"geom{g}" for g in range(model.ngeom)]
        self.moving = self._moving(model)
        self.hinges = [j for j in range(model.njnt) if model.jnt_type[j] == 3]
        self.dofs = self._dofs(model)
        self.arrays = self._arrays(model)

    @staticmethod
    def _unique(names: list[str], fallback: str) -> list[str]:
        out, seen = [], set()
        for i, name in enumerate(names):
            name = name or f"{fallback}{i}"
            if name[0].isdigit():
                name = f"{fallback}_{name}"
            base, k = name, 2
            while name in seen:
                name, k = f"{base}_{k}", k + 1
            seen.add(name)
            out.append(name)
        return out

    def _bodies(self, model) -> list[str]:
        raw: list[str] = []
        for b in range(model.nbody):
            name = snake(model.body(b).name)
            if not name and model.body_jntnum[b] > 0:  # an unnamed link: name it after its first joint
                name = f"{snake(model.joint(int(model.body_jntadr[b])).name)}_body"
            if not name or name == "_body":
                name = f"{raw[model.body_parentid[b]]}_child" if b else "world"
            raw.append(name)
        return self._unique(raw, "body")

    @staticmethod
    def _moving(model) -> list[bool]:
        out = [False] * model.nbody
        for b in range(1, model.nbody):
            out[b] = bool(model.body_jntnum[b] > 0 or model.body_mocapid[b] >= 0 or out[model.body_parentid[b]])
        return out

    def _dofs(self, model) -> list[str]:
        names = [""] * model.nv
        for j in range(model.njnt):
            adr, kind = int(model.jnt_dofadr[j]), _JOINT_KIND[int(model.jnt_type[j])]
            if kind == "free":
                body = self.bodies[model.jnt_bodyid[j]]
                for i, part in enumerate(("x", "y", "z", "rot_x", "rot_y", "rot_z")):
                    names[adr + i] = f"{body}_{part}"
            elif kind == "ball":
                for i in range(3):
                    names[adr + i] = f"{self.joints[j]}_rot_{_AXES[i]}"
            else:
                names[adr] = self.joints[j]
        return names

    def joint_range(self, j: int) -> tuple[float | None, float | None]:
        if self.model.jnt_limited[j]:
            low, high = (float(x) for x in self.model.jnt_range[j])
            if high > low:
                return low, high
        return None, None

    # -- the arrays a probe records
    def _arrays(self, model) -> list[ModelArray]:
        bodies, joints, sites = self.bodies, self.joints, self.sites
        qpos, qvel, qpos_groups, qvel_groups = [], [], [], []
        for j in range(model.njnt):
            kind, body, name = _JOINT_KIND[int(model.jnt_type[j])], bodies[model.jnt_bodyid[j]], joints[j]
            a, d = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
            low, high = self.joint_range(j)
            if kind == "free":
                for i, axis in enumerate(_AXES):
                    qpos.append(Slot(f"{body}_{axis}", a + i, a + i + 1, "m", f"{axis} position of the {body} (free joint "
                                     f"{name})", part=axis))
                for i, part in enumerate(_QUAT):
                    qpos.append(Slot(f"{body}_quat_{part}", a + 3 + i, a + 4 + i, "-",
                                     f"{part} of the {body}'s orientation quaternion", part=part))
                qpos_groups += [Slot(f"{body}_pos", a, a + 3, "m", f"position (x, y, z) of the {body} (free joint {name})"),
                                Slot(f"{body}_quat", a + 3, a + 7, "-", f"orientation quaternion (w, x, y, z) of the "
                                     f"{body}; (1, 0, 0, 0) is the orientation the model is written in")]
                for i, axis in enumerate(_AXES):
                    qvel.append(Slot(f"{body}_{axis}_vel", d + i, d + i + 1, "m/s", f"{axis} velocity of the {body}",
                                     part=axis))
                for i, axis in enumerate(_AXES):
                    qvel.append(Slot(f"{body}_ang_vel_{axis}", d + 3 + i, d + 4 + i, "rad/s",
                                     f"angular velocity of the {body} about its own {axis} axis", part=axis))
                qvel_groups += [Slot(f"{body}_lin_vel", d, d + 3, "m/s", f"linear velocity (x, y, z) of the {body}"),
                                Slot(f"{body}_ang_vel", d + 3, d + 6, "rad/s",
                                     f"angular velocity of the {body} in its own frame (x, y, z)")]
            elif kind == "ball":
                for i, part in enumerate(_QUAT):
                    qpos.append(Slot(f"{name}_quat_{part}", a + i, a + i + 1, "-", f"{part} of ball joint {name}'s "
                                     "quaternion", part=part))
                qpos_groups.append(Slot(f"{name}_quat", a, a + 4, "-", f"orientation quaternion of ball joint {name}"))
                for i, axis in enumerate(_AXES):
                    qvel.append(Slot(f"{name}_ang_vel_{axis}", d + i, d + i + 1, "rad/s",
                                     f"angular velocity of ball joint {name} about {axis}", part=axis))
                qvel_groups.append(Slot(f"{name}_ang_vel", d, d + 3, "rad/s", f"angular velocity of ball joint {name}"))
            elif kind == "slide":
                stem = name if name.endswith("pos") else f"{name}_pos"
                qpos.append(Slot(stem, a, a + 1, "m", f"position of slide joint {name} (moves the {body})", low, high))
                qvel.append(Slot(f"{name}_vel", d, d + 1, "m/s", f"velocity of slide joint {name}"))
            else:
                qpos.append(Slot(f"{name}_angle", a, a + 1, "rad", f"angle of hinge joint {name} (turns the {body})",
                                 low, high))
                qvel.append(Slot(f"{name}_vel", d, d + 1, "rad/s", f"angular velocity of hinge joint {name}"))
        arrays = [ModelArray("qpos", model.nq, qpos, qpos_groups), ModelArray("qvel", model.nv, qvel, qvel_groups)]
        h = self.hinges
        arrays.append(ModelArray("cos", len(h), [Slot(f"cos_{joints[j]}", i, i + 1, "-", f"cosine of the angle of hinge "
                                                      f"joint {joints[j]}", -1.0, 1.0) for i, j in enumerate(h)]))
        arrays.append(ModelArray("sin", len(h), [Slot(f"sin_{joints[j]}", i, i + 1, "-", f"sine of the angle of hinge "
                                                      f"joint {joints[j]}", -1.0, 1.0) for i, j in enumerate(h)]))
        arrays.append(self._per_item("xpos", bodies[1:], 3, "m", "position (x, y, z) of the {}", "_pos", _AXES))
        arrays.append(self._per_item("xquat", bodies[1:], 4, "-", "orientation quaternion (w, x, y, z) of the {}",
                                     "_quat", _QUAT))
        arrays.append(self._per_item("site_xpos", sites, 3, "m", "position (x, y, z) of site {}", "_pos", _AXES))
        arrays.append(self._per_item("cvel", bodies[1:], 6, "mixed", "centre-of-mass based velocity of the {} "
                                     "(angular rad/s, then linear m/s)", "_cvel", (), block=(
                                         "body_velocities", "mixed", "centre-of-mass based velocities (6 numbers "
                                         "each: angular rad/s, linear m/s)")))
        arrays.append(self._per_item("cinert", bodies[1:], 10, "mixed", "centre-of-mass based inertia and mass of the {}",
                                     "_cinert", (), block=("body_inertias", "mixed", "centre-of-mass based inertia and "
                                                           "mass (10 numbers each)")))
        arrays.append(self._per_item("cfrc_ext", bodies[1:], 6, "N, N m", "external (contact) force on the {} "
                                     "(torque, then force)", "_ext_force", (), block=(
                                         "contact_forces", "N, N m", "external contact forces (6 numbers each: torque, "
                                         "force)")))
        for key, what, unit in (("qfrc_actuator", "actuator", "N or N m"),
                                ("qfrc_constraint", "constraint", "N or N m")):
            entries = [Slot(f"{dof}_{what}_force", i, i + 1, unit, f"{what} force on dof {dof}", owner=dof)
                       for i, dof in enumerate(self.dofs)]
            arrays.append(ModelArray(key, model.nv, entries, [], (f"{what}_forces", unit, f"{what} forces")))
        return arrays

    @staticmethod
    def _per_item(key, names, width, unit, what, suffix, parts, block=None) -> ModelArray:
        entries, groups = [], []
        for i, name in enumerate(names):
            start = i * width
            groups.append(Slot(f"{name}{suffix}", start, start + width, unit, what.format(name), owner=name))
            for c in range(width):
                part = parts[c] if parts else str(c)
                label = f"{name}_{part}" if suffix == "_pos" else f"{name}{suffix}_{part}"
                entries.append(Slot(label, start + c, start + c + 1, unit, f"{what.format(name)}: entry {part}", part=part))
        return ModelArray(key, width * len(names), entries, groups, block)

    def read(self, data) -> dict[str, np.ndarray]:
        """The arrays of :attr:`arrays` from ``data``, flattened (float64)."""
        qpos = np.array(data.qpos, dtype=np.float64)
        return {
            "qpos": qpos, "qvel": np.array(data.qvel, dtype=np.float64),
            "cos": np.cos(qpos[self.model.jnt_qposadr[self.hinges]]) if self.hinges else np.zeros(0),
            "sin": np.sin(qpos[self.model.jnt_qposadr[self.hinges]]) if self.hinges else np.zeros(0),
            "xpos": np.array(data.xpos[1:], dtype=np.float64).reshape(-1),
            "xquat": np.array(data.xquat[1:], dtype=np.float64).reshape(-1),
            "site_xpos": np.array(data.site_xpos, dtype=np.float64).reshape(-1),
            "cvel": np.array(data.cvel[1:], dtype=np.float64).reshape(-1),
            "cinert": np.array(data.cinert[1:], dtype=np.float64).reshape(-1),
            "cfrc_ext": np.array(data.cfrc_ext[1:], dtype=np.float64).reshape(-1),
            "qfrc_actuator": np.array(data.qfrc_actuator, dtype=np.float64),
            "qfrc_constraint": np.array(data.qfrc_constraint, dtype=np.float64),
        }

    def points(self) -> list[tuple[str, str, int]]:
        """Moving bodies and sites as (name, kind, index), for differences of positions."""
        out = [(self.bodies[b], "xpos", b) for b in range(1, self.model.nbody) if self.moving[b]]
        out += [(self.sites[s], "site_xpos", s) for s in range(self.model.nsite)]
        return out


# ---------------------------------------------------------------------------------- the probe


@dataclass
class Probe:
    """Observations, model arrays and info values over the probe's steps (one row per step)."""

    obs: np.ndarray                         # (S, obs_dim)
    arrays: dict[str, np.ndarray]           # key -> (S, size)
    info: dict[str, np.ndarray]             # numeric info key -> (S, *shape)
    points: np.ndarray                      # (S, P, 3): positions of ModelNames.points()


def probe(env, names: ModelNames, flatten=None, seed: int = 0) -> Probe:
    """Step ``env`` with random and held actions; record what :class:`Probe` holds after each step."""
    rng = np.random.default_rng(seed)
    space = env.action_space
    data = env.unwrapped.data
    rows_obs, rows_arrays, rows_info, rows_points = [], [], [], []
    point_list = names.points()

    def record(obs, info):
        rows_obs.append(np.asarray(flatten(obs) if flatten else obs, dtype=np.float64).reshape(-1))
        rows_arrays.append(names.read(data))
        pts = np.zeros((len(point_list), 3))
        for i, (_, kind, idx) in enumerate(point_list):
            pts[i] = data.xpos[idx] if kind == "xpos" else data.site_xpos[idx]
        rows_points.append(pts)
        rows_info.append({k: np.asarray(v, dtype=np.float64) for k, v in info.items()
                          if isinstance(k, str) and _numeric(v)})

    low, high = _action_bounds(space)
    for episode in range(PROBE_EPISODES):
        obs, info = env.reset(seed=seed + episode)
        record(obs, {})
        held = None
        for _ in range(PROBE_STEPS):
            # half the time a random action, else one extreme held for a while: it reaches joint limits
            if held is None or rng.random() < 0.1:
                held = np.where(rng.random(low.shape) < 0.5, low, high) if rng.random() < 0.5 else None
            action = held if held is not None else rng.uniform(low, high)
            try:  # on past a termination (the physics goes on); an env that refuses gets a new episode
                obs, _, _, _, info = env.step(_as_action(space, action))
            except Exception:
                break
            record(obs, info)
    keys = set(rows_info[1]) if len(rows_info) > 1 else set()
    info = {}
    for key in sorted(keys):
        values = [r.get(key) for r in rows_info]
        shapes = {v.shape for v in values if v is not None}
        if len(shapes) == 1:
            fill = np.full(next(iter(shapes)), np.nan)
            info[key] = np.stack([v if v is not None else fill for v in values])
    return Probe(np.stack(rows_obs), {k: np.stack([r[k] for r in rows_arrays]) for k in rows_arrays[0]}, info,
                 np.stack(rows_points))


def _numeric(v) -> bool:
    try:
        a = np.asarray(v)
    except Exception:
        return False
    return a.dtype.kind in "biuf" and a.size <= 64


def _action_bounds(space) -> tuple[np.ndarray, np.ndarray]:
    from gymnasium import spaces

    if isinstance(space, spaces.Box):
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        return low.astype(np.float64), high.astype(np.float64)
    if isinstance(space, spaces.Discrete):
        return np.zeros(()), np.full((), float(space.n - 1))
    raise ValueError(f"action space {space} is not probed")


def _as_action(space, action):
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(np.clip(np.round(action), 0, space.n - 1))
    return np.asarray(action, dtype=space.dtype)


# ------------------------------------------------------------------------------- the matching


@dataclass(frozen=True)
class Segment:
    """obs[obs_start:obs_stop] is ``array[start:start + length]`` (clipped to ``±clip`` if given)."""

    obs_start: int
    obs_stop: int
    array: str
    start: int
    clip: float | None = None
    offset: tuple[str, str] | None = None   # for differences: (point a, point b), the value is a - b


def _tolerance(x: np.ndarray) -> np.ndarray:
    return 1e-5 * np.maximum(1.0, np.abs(x))


def _match_matrix(obs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, m) bool: obs column j equals values column k at every step, exactly or clipped; and
    (n, m) the clip bound where the match needed clipping (0 otherwise)."""
    if values.shape[1] == 0 or obs.shape[1] == 0:
        return np.zeros((obs.shape[1], values.shape[1]), dtype=bool), np.zeros((obs.shape[1], values.shape[1]))
    o, v = obs[:, :, None], values[:, None, :]
    tol = _tolerance(o)
    exact = np.abs(o - v) <= tol
    bound = np.abs(obs).max(axis=0)                                        # (n,)
    saturated = np.abs(np.abs(obs) - bound) <= _tolerance(bound)            # (S, n)
    beyond = (np.abs(v) >= bound[None, :, None] - tol) & (np.sign(v) == np.sign(o))
    ok = exact | (saturated[:, :, None] & beyond)
    match = ok.all(axis=0)
    clipped = match & ~exact.all(axis=0)
    # a clipped match needs evidence: several steps where both agree below the bound
    evidence = (exact & ~saturated[:, :, None]).sum(axis=0) >= 3
    match &= ~clipped | evidence
    clip = np.where(match & clipped, bound[:, None], 0.0)
    return match, clip


def _runs(match: np.ndarray, informative: np.ndarray, adjacent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length of the diagonal run of matches starting at (j, k), and how many of its entries vary;
    ``adjacent[j]`` says whether row j + 1 is the next observation entry after row j."""
    n, m = match.shape
    length = np.zeros((n + 1, m + 1), dtype=np.int64)
    useful = np.zeros((n + 1, m + 1), dtype=np.int64)
    for j in range(n - 1, -1, -1):
        go_on = int(adjacent[j])
        length[j, :m] = match[j] * (1 + go_on * length[j + 1, 1:])
        useful[j, :m] = match[j] * (int(informative[j]) + go_on * useful[j + 1, 1:])
    return length[:n, :m], useful[:n, :m]


def _parse(obs: np.ndarray, candidates: list[tuple[str, np.ndarray]], columns: np.ndarray) -> list[Segment]:
    """Greedy left-to-right reading of obs[:, columns] as runs of the candidate arrays: at each
    entry the longest run that holds at least one entry that varies over the probe (constant
    entries alone match too many things); ties go to the earlier candidate."""
    informative = np.ptp(obs, axis=0) > _tolerance(np.abs(obs).max(axis=0))
    adjacent = np.r_[np.diff(columns) == 1, False]
    tables = []
    for key, values in candidates:
        match, clip = _match_matrix(obs[:, columns], values)
        length, useful = _runs(match, informative[columns], adjacent)
        tables.append((key, clip, length, useful))
    out, p = [], 0
    while p < len(columns):
        best = None
        for rank, (key, clip, length, useful) in enumerate(tables):
            ok = useful[p] > 0 if length.shape[1] else np.zeros(0, dtype=bool)
            if not ok.any():
                continue
            k = int(np.argmax(np.where(ok, length[p], -1)))
            score = (int(length[p, k]), -rank)
            if best is None or score > best[0]:
                best = (score, key, k, int(length[p, k]), clip)
        if best is None:
            p += 1
            continue
        _, key, k, size, clip = best
        bounds = [float(clip[p + i, k + i]) for i in range(size) if clip[p + i, k + i] > 0]
        out.append(Segment(int(columns[p]), int(columns[p]) + size, key, k, max(bounds) if bounds else None))
        p += size
    return out


def match_observation(names: ModelNames, data: Probe) -> list[Segment]:
    """Which model quantity each observation entry is, where the probe shows it (unmatched left out)."""
    arrays = [(a.key, data.arrays[a.key]) for a in names.arrays]
    n = data.obs.shape[1]
    segments = _parse(data.obs, arrays, np.arange(n))
    covered = np.zeros(n, dtype=bool)
    for s in segments:
        covered[s.obs_start:s.obs_stop] = True
    rest = np.flatnonzero(~covered)
    points = names.points()
    if len(rest) and len(points) > 1:
        # differences of positions (a - b) explain what single quantities do not
        pairs = [(a, b) for a in range(len(points)) for b in range(len(points)) if a != b]
        diffs = np.stack([data.points[:, a] - data.points[:, b] for a, b in pairs], axis=1).reshape(len(data.obs), -1)
        for s in _parse(data.obs, [("rel", diffs)], rest):
            a, b = pairs[s.start // 3]
            segments.append(Segment(s.obs_start, s.obs_stop, "rel", s.start % 3, s.clip, (points[a][0], points[b][0])))
    return sorted(segments, key=lambda s: s.obs_start)


def _range_text(clip: float | None) -> str:
    return f" (clipped to ±{clip:g})" if clip else ""


def segment_variables(names: ModelNames, segments: list[Segment]) -> list[StateVar]:
    """Variables for matched observation runs, named after what they hold."""
    arrays = {a.key: a for a in names.arrays}
    out: list[StateVar] = []
    for s in segments:
        size = s.obs_stop - s.obs_start
        if s.array == "rel":
            assert s.offset is not None
            a, b = s.offset
            parts = _AXES[s.start:s.start + size]
            name = f"{a}_rel_{b}" + ("" if size == 3 else f"_{parts}")
            desc = f"position of the {a} relative to the {b} ({a} - {b})" + ("" if size == 3 else f", {', '.join(parts)}")
            out.append(_var(name, desc + _range_text(s.clip), "m", s.obs_start, size, clip=s.clip))
            continue
        array = arrays[s.array]
        for slot, k0, k1 in _split(array, s.start, s.start + size):
            obs0 = s.obs_start + (k0 - s.start)
            low, high = (slot.low, slot.high) if not s.clip else (-s.clip, s.clip)
            out.append(_var(slot.name, slot.description + _range_text(s.clip), slot.unit, obs0, k1 - k0, low, high))
    return out


def _var(name, description, unit, obs0, size, low=None, high=None, clip=None) -> StateVar:
    if clip:
        low, high = -clip, clip
    obs = obs0 if size == 1 else (obs0, obs0 + size)
    return StateVar(name=name, description=description, unit=unit, obs=obs, low=low, high=high)


def _split(array: ModelArray, k0: int, k1: int) -> list[tuple[Slot, int, int]]:
    """Cover ``array[k0:k1]`` with its groups and entries (a block when it spans several groups)."""
    if array.block is not None:
        whole = [g for g in array.groups if k0 <= g.start and g.stop <= k1]
        if len(whole) >= 2 or (not array.groups and k1 - k0 >= 3):
            name, unit, what = array.block
            if array.groups:
                k0, k1 = whole[0].start, whole[-1].stop
                listed = "the " + ", ".join(g.owner for g in whole)
            else:
                listed = "the dofs " + ", ".join(array.entries[k].owner for k in range(k0, k1))
            return [(Slot(name, k0, k1, unit, f"{what} of {listed}"), k0, k1)]
    out, k = [], k0
    while k < k1:
        g = array.group_at(k)
        if g is not None and g.start == k and g.stop <= k1:
            out.append((g, k, g.stop))
            k = g.stop
            continue
        if g is not None:
            stop = min(g.stop, k1)
            if stop - k >= 2:
                parts = "".join(array.entries[i].part for i in range(k, stop))
                slot = Slot(f"{g.name}_{parts}", k, stop, g.unit, f"{g.description}, entries {', '.join(parts)}")
                out.append((slot, k, stop))
                k = stop
                continue
        out.append((array.entries[k], k, k + 1))
        k += 1
    return out


# ------------------------------------------------------------------------------------ extras


@dataclass(frozen=True)
class Quantity:
    """A model quantity :class:`ModelStateInfo` computes after each step, under ``info[name]``."""

    name: str
    kind: str                 # qpos, qvel, xpos, height, site, contact, attr, mid_sites
    index: tuple = ()         # indices into the model, or an attribute name (see QuantityReader)
    shape: tuple[int, ...] = ()
    unit: str = "-"
    description: str = ""
    low: float | None = None
    high: float | None = None

    def spec(self) -> tuple:
        return (self.name, self.kind, tuple(self.index), tuple(self.shape))

    def variable(self) -> StateVar:
        return StateVar(name=self.name, description=self.description, unit=self.unit, shape=self.shape,
                        low=self.low, high=self.high, info=self.name)


def floor_geoms(model) -> list[int]:
    """Plane geoms fixed to the world: the floor (or ground, or table) bodies can touch."""
    return [g for g in range(model.ngeom) if model.geom_type[g] == 0 and model.geom_bodyid[g] == 0]


def _can_touch(model, body: int, plane: int) -> bool:
    for g in range(model.ngeom):
        if model.geom_bodyid[g] == body and (
                model.geom_contype[g] & model.geom_conaffinity[plane] or model.geom_contype[plane] & model.geom_conaffinity[g]):
            return True
    return False


def candidate_extras(names: ModelNames) -> list[Quantity]:
    """Every model quantity worth offering, before those the observation already has are dropped."""
    model, out = names.model, []
    for j in range(model.njnt):
        kind, name, body = _JOINT_KIND[int(model.jnt_type[j])], names.joints[j], names.bodies[model.jnt_bodyid[j]]
        a, d = int(model.jnt_qposadr[j]), int(model.jnt_dofadr[j])
        low, high = names.joint_range(j)
        if kind == "hinge":
            out.append(Quantity(f"{name}_angle", "qpos", (a,), (), "rad", f"angle of hinge joint {name} (turns the {body})",
                                low, high))
            out.append(Quantity(f"{name}_vel", "qvel", (d,), (), "rad/s", f"angular velocity of hinge joint {name}"))
        elif kind == "slide":
            stem = name if name.endswith("pos") else f"{name}_pos"
            out.append(Quantity(stem, "qpos", (a,), (), "m", f"position of slide joint {name} (moves the {body})",
                                low, high))
            out.append(Quantity(f"{name}_vel", "qvel", (d,), (), "m/s", f"velocity of slide joint {name}"))
        elif kind == "free":
            out.append(Quantity(f"{body}_quat", "qpos", (a + 3, a + 7), (4,), "-",
                                f"orientation quaternion (w, x, y, z) of the {body}"))
            out.append(Quantity(f"{body}_lin_vel", "qvel", (d, d + 3), (3,), "m/s", f"linear velocity (x, y, z) of the {body}"))
            out.append(Quantity(f"{body}_ang_vel", "qvel", (d + 3, d + 6), (3,), "rad/s",
                                f"angular velocity of the {body} in its own frame"))
    for b in range(1, model.nbody):
        if names.moving[b]:
            out.append(Quantity(f"{names.bodies[b]}_pos", "xpos", (b,), (3,), "m",
                                f"position (x, y, z) of the {names.bodies[b]} in the world frame"))
    for s in range(model.nsite):
        if names.moving[model.site_bodyid[s]]:
            out.append(Quantity(f"{names.sites[s]}_pos", "site", (s,), (3,), "m",
                                f"position (x, y, z) of site {names.sites[s]} (on the {names.bodies[model.site_bodyid[s]]})"))
    floors = floor_geoms(model)
    for b in range(1, model.nbody):
        if model.body_parentid[b] == 0 and names.moving[b]:
            out.append(Quantity(f"{names.bodies[b]}_height", "height", (b,), (), "m",
                                f"height (z) of the {names.bodies[b]} above the world origin"))
    for plane in floors:
        for b in range(1, model.nbody):
            if names.moving[b] and _can_touch(model, b, plane):
                pname = names.geoms[plane]
                out.append(Quantity(f"{names.bodies[b]}_{pname}_contact", "contact", (b, plane), (), "-",
                                    f"1 while the {names.bodies[b]} touches the {pname}, else 0", 0.0, 1.0))
    return out


def extra_quantities(names: ModelNames, data: Probe, taken: set[str]) -> list[Quantity]:
    """The candidate extras the observation (and the env's own info) lacks, judged by value over
    the probe: a quantity is dropped when each of its entries equals an observation entry or a
    scalar of the env's info at every probe step, or when its name is taken."""
    have = [data.obs[:, j] for j in range(data.obs.shape[1])]
    have += [v for v in data.info.values() if v.ndim == 1]

    def known(column: np.ndarray) -> bool:
        for h in have:
            rows = np.isfinite(h)  # info keys missing on some step (the reset) are compared where present
            # loosely: body positions lag the joints by one physics substep after mj_step
            if rows.sum() >= 3 and np.all(np.abs(column[rows] - h[rows]) <= 1e-2 * np.maximum(1.0, np.abs(h[rows]))):
                return True
        return False

    out = []
    for q in candidate_extras(names):
        if q.name in taken or q.name in data.info:
            continue
        column = _replay(q, data)
        if column is not None:
            cols = column.reshape(len(column), -1)
            if q.kind == "height" and np.ptp(column) < 1e-3:
                continue  # a root body that never moves vertically: its height says nothing
            if np.all(np.ptp(cols, axis=0) <= _tolerance(np.abs(cols).max(axis=0))):
                continue  # never changes (a fixed target's velocity): nothing to reward
            if all(known(c) for c in cols.T):
                continue  # every entry is in the observation or the env's info already
        out.append(q)
        taken.add(q.name)
    return out


def _replay(q: Quantity, data: Probe) -> np.ndarray | None:
    """``q`` at every probe step, from the recorded arrays (None for contacts: not recorded)."""
    steps = len(data.obs)
    if q.kind in ("qpos", "qvel"):
        src = data.arrays[q.kind]
        return src[:, q.index[0]] if len(q.index) == 1 else src[:, q.index[0]:q.index[1]]
    if q.kind in ("xpos", "height"):
        xpos = data.arrays["xpos"].reshape(steps, -1, 3)[:, q.index[0] - 1]
        return xpos[:, 2] if q.kind == "height" else xpos
    if q.kind == "site":
        return data.arrays["site_xpos"].reshape(steps, -1, 3)[:, q.index[0]]
    return None


PACKED_INFO_KEY = "rewardsmith_model_state"   # all quantities as one flat array (what GymVecEnv reads)


class QuantityReader:
    """Reads :class:`Quantity` specs from a MuJoCo env's current ``data`` into one flat array,
    a few numpy operations per step (one per kind of quantity)."""

    def __init__(self, unwrapped, specs: tuple[tuple, ...]):
        self.unwrapped = unwrapped
        self.slices: dict[str, tuple[int, int, tuple[int, ...]]] = {}
        groups: dict[str, tuple[list[int], list]] = {}
        start = 0
        for name, kind, index, shape in specs:
            size = int(np.prod(shape)) if shape else 1
            self.slices[name] = (start, start + size, tuple(shape))
            places, what = groups.setdefault(kind, ([], []))
            places.extend(range(start, start + size))
            if kind in ("qpos", "qvel"):
                what.extend(range(index[0], index[0] + size))
            else:
                what.append(tuple(index))
            start += size
        self.size = start
        unknown = set(groups) - {"qpos", "qvel", "xpos", "height", "site", "mid_sites", "attr", "contact"}
        if unknown:
            raise ValueError(f"unknown model quantity kind(s) {sorted(unknown)}")
        # per kind: where its numbers go in the flat array, and the model indices they come from
        self._groups = []
        for kind, (places, what) in groups.items():
            if kind == "attr":
                first = None
            elif kind in ("qpos", "qvel"):
                first = np.asarray(what, dtype=np.int64)
            else:
                first = np.asarray([i[0] for i in what], dtype=np.int64)
            second = np.asarray([i[1] for i in what], dtype=np.int64) if kind in ("mid_sites", "contact") else None
            names = [i[0] for i in what] if kind == "attr" else None
            self._groups.append((kind, np.asarray(places, dtype=np.int64), first, second, names))
        self._geom_body = [int(b) for b in unwrapped.model.geom_bodyid]

    def read(self) -> np.ndarray:
        u = self.unwrapped
        data = u.data
        out = np.empty(self.size, dtype=np.float64)
        for kind, places, first, second, names in self._groups:
            if kind == "qpos":
                out[places] = data.qpos[first]
            elif kind == "qvel":
                out[places] = data.qvel[first]
            elif kind == "xpos":
                out[places] = data.xpos[first].reshape(-1)
            elif kind == "height":
                out[places] = data.xpos[first, 2]
            elif kind == "site":
                out[places] = data.site_xpos[first].reshape(-1)
            elif kind == "mid_sites":
                out[places] = ((data.site_xpos[first] + data.site_xpos[second]) / 2.0).reshape(-1)
            elif kind == "attr":  # attributes of the env (e.g. Meta-World's init_tcp)
                out[places] = np.concatenate([np.asarray(getattr(u, n), dtype=np.float64).reshape(-1)
                                              for n in names or ()])
            else:  # contact of body `first` with plane geom `second`
                assert first is not None and second is not None
                out[places] = self._contacts(data, first, second)
        return out

    def _contacts(self, data, bodies: np.ndarray, planes: np.ndarray) -> list[float]:
        n = int(data.ncon)
        if n == 0:
            return [0.0] * len(bodies)
        body = self._geom_body
        touching = set()
        for g1, g2 in data.contact.geom[:n].tolist():  # a handful of contacts: plain Python is quickest
            touching.add((g1, body[g2]))
            touching.add((g2, body[g1]))
        return [1.0 if (p, b) in touching else 0.0 for b, p in zip(bodies.tolist(), planes.tolist())]

    def as_dict(self, flat: np.ndarray) -> dict[str, Any]:
        return {name: float(flat[a]) if not shape else flat[a:b].reshape(shape).copy()
                for name, (a, b, shape) in self.slices.items()}


def read_quantities(unwrapped, specs: tuple[tuple, ...]) -> dict[str, Any]:
    """The values of :class:`Quantity` specs in a MuJoCo env's current ``data``, by name."""
    reader = QuantityReader(unwrapped, specs)
    return reader.as_dict(reader.read())


class ModelStateInfo(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """Puts model quantities (specs of :class:`Quantity`) into ``info`` after every reset and step:
    one key per quantity, or with ``packed`` all of them as one array under :data:`PACKED_INFO_KEY`
    (cheaper to batch; :class:`~.vec.GymVecEnv` reads that).

    >>> env = ModelStateInfo(gymnasium.make("Reacher-v5"), (("fingertip_pos", "xpos", (3,), (3,)),))
    >>> _, info = env.reset(seed=0)
    >>> info["fingertip_pos"].shape
    (3,)
    """

    def __init__(self, env: gymnasium.Env, quantities: tuple[tuple, ...], packed: bool = False):
        gymnasium.utils.RecordConstructorArgs.__init__(self, quantities=quantities, packed=packed)
        gymnasium.Wrapper.__init__(self, env)
        self.quantities = tuple(tuple(q) for q in quantities)
        self.packed = packed
        self._reader = QuantityReader(env.unwrapped, self.quantities)

    def _info(self, info: dict) -> dict:
        flat = self._reader.read()
        return {**info, PACKED_INFO_KEY: flat} if self.packed else {**info, **self._reader.as_dict(flat)}

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return obs, self._info(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated, truncated, self._info(info)


# ------------------------------------------------------------------------------- the body tree


def body_tree(names: ModelNames, max_lines: int = MAX_TREE_LINES, leave_out: frozenset[int] = frozenset(),
              head: str = "Bodies that move") -> str:
    """The bodies that move, indented under their parents, with their joints and sites
    (``leave_out``: bodies not to show, with everything below them)."""
    model = names.model
    depth = [0] * model.nbody
    lines, fixed, hidden = [], [], set(leave_out)
    shown = [False] * model.nbody
    for b in range(1, model.nbody):
        parent = int(model.body_parentid[b])
        depth[b] = depth[parent] + int(shown[parent])  # indented under the bodies that are shown
        if parent in hidden:
            hidden.add(b)
        if b in hidden:
            continue
        if not names.moving[b]:
            if parent == 0:
                fixed.append(names.bodies[b])
            continue
        joints = [f"{_JOINT_KIND[int(model.jnt_type[j])]} {names.joints[j]}"
                  for j in range(int(model.body_jntadr[b]), int(model.body_jntadr[b] + model.body_jntnum[b]))]
        sites = [names.sites[s] for s in range(model.nsite) if model.site_bodyid[s] == b]
        extra = []
        if joints:
            extra.append(", ".join(joints))
        if model.body_mocapid[b] >= 0:
            extra.append("moved directly (mocap)")
        if sites:
            extra.append("sites " + ", ".join(sites))
        lines.append("  " * (depth[b] + 1) + names.bodies[b] + (f" [{'; '.join(extra)}]" if extra else ""))
        shown[b] = True
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"  ... and {len(lines) - max_lines} more moving bodies"]
    if fixed:
        listed = ", ".join(fixed[:8]) + (f" and {len(fixed) - 8} more" if len(fixed) > 8 else "")
        lines.append(f"  fixed to the world: {listed}")
    floors = [names.geoms[g] for g in floor_geoms(model)]
    head += " (child under parent; [joints; sites])" + (f"; ground plane: {', '.join(floors)}" if floors else "")
    return head + ":\n" + "\n".join(lines)


# ------------------------------------------------------------------------------------ together


@dataclass(frozen=True)
class ModelNaming:
    """What the model says about an env: names for observation entries, extra info variables
    (computed by :class:`ModelStateInfo` from their specs), and the body tree."""

    observation: tuple[StateVar, ...]
    extras: tuple[Quantity, ...]
    tree: str
    summary: str = ""                          # a summary the model's family knows better than a docstring
    info: tuple[StateVar, ...] = ()            # the env's own info keys, described
    wrappers: tuple[tuple[str, tuple], ...] = ()   # further wrappers (name, args) the env needs (see make.py)
    padding: tuple[tuple[int, int], ...] = ()      # observation runs [start, stop) that carry nothing (always zero)

    @property
    def specs(self) -> tuple[tuple, ...]:
        return tuple(q.spec() for q in self.extras)


def model_naming(env, flatten=None, taken: set[str] | None = None) -> ModelNaming:
    """Probe ``env`` (a fresh instance: it is reset and stepped) and name its state from its model.
    ``taken``: names already used (an env's registered names), which the extras avoid."""
    names = ModelNames(env.unwrapped.model)
    data = probe(env, names, flatten)
    observation = _dedupe(segment_variables(names, match_observation(names, data)))
    taken = set(taken or ()) | {v.name for v in observation}
    return ModelNaming(tuple(observation), tuple(extra_quantities(names, data, taken)), body_tree(names))


def _dedupe(variables: list[StateVar]) -> list[StateVar]:
    seen, out = set(), []
    for v in variables:
        name, k = v.name, 2
        while name in seen:
            name, k = f"{v.name}_{k}", k + 1
        seen.add(name)
        out.append(v if name == v.name else v.model_copy(update={"name": name}))
    return out
