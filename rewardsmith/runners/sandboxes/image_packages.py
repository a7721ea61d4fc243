"""What goes into the Docker sandbox's image: the Python distributions the guest and the envs need.

The image carries, each pinned to the version installed on the host (so the container computes
what the host would):

- what the guest itself imports (``sandbox/requirements.txt``: torch, numpy, pydantic, ...);
- the simulators of every gymnasium extra the host installed (MuJoCo, Box2D, pygame for the
  classic-control frames, Atari) and the env packages of other projects the host has
  (Gymnasium-Robotics, Meta-World, ...), with what draws their frames off-screen (PyOpenGL);
- for each task given (``rewardsmith sandbox build --task TASK``), every distribution its env
  imports on the host, found by building the env in a short child process: this is how a
  user's own env package goes in (one installed from a local folder is built into a wheel);
- distributions named with ``--with``.

Their dependencies are resolved by pip with the host's installed versions as constraints.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

from ...errors import SandboxUnavailable

if TYPE_CHECKING:
    from ...task import TaskSpec

# gymnasium's extras that bring simulators (not its jax/torch/testing extras)
GYMNASIUM_ENV_EXTRAS = ("classic-control", "toy-text", "box2d", "mujoco", "atari")
# env packages of other projects, carried when the host has them
ENV_PACKAGES = ("gymnasium-robotics", "metaworld", "dm-control", "shimmy", "minigrid", "highway-env", "pybullet",
                "mo-gymnasium", "ale-py")
# what draws frames without a display, where installed (MuJoCo's OSMesa renderer uses it)
RENDER_PACKAGES = ("PyOpenGL",)
NEVER = {"rewardsmith", "pip", "setuptools", "wheel"}  # the image gets rewardsmith's own files


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_version(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def local_source(name: str) -> Path | None:
    """The folder a distribution was installed from, if it came from a local folder (``pip
    install ./myenv`` or ``-e``) rather than an index: it is built into a wheel for the image."""
    try:
        raw = md.distribution(name).read_text("direct_url.json")
    except md.PackageNotFoundError:
        return None
    if not raw:
        return None
    info = json.loads(raw)
    url = urlparse(info.get("url", ""))
    if url.scheme != "file" or "dir_info" not in info:
        return None
    return Path(unquote(url.path))


@dataclass
class ImagePackages:
    """The distributions for the image: ``pins`` from an index, ``local`` built from folders,
    and why each is in (shown by ``sandbox build``)."""

    pins: dict[str, str] = field(default_factory=dict)       # canonical name -> "name==version"
    local: dict[str, Path] = field(default_factory=dict)     # canonical name -> source folder
    reasons: dict[str, str] = field(default_factory=dict)    # canonical name -> why it is in
    missing: list[str] = field(default_factory=list)         # asked for but not installed on the host

    def add(self, name: str, why: str) -> None:
        key = canonical(name)
        if key in NEVER or key in self.pins or key in self.local:
            return
        version = installed_version(name)
        if version is None:
            self.missing.append(name)
            return
        source = local_source(name)
        if source is not None:
            self.local[key] = source
        else:
            self.pins[key] = f"{name}=={version}"
        self.reasons[key] = why

    def lines(self) -> list[str]:
        """What went in, one line each, for the build's output."""
        out = [f"{self.pins[k]}  ({self.reasons[k]})" for k in sorted(self.pins)]
        out += [f"{k} from {self.local[k]}  ({self.reasons[k]})" for k in sorted(self.local)]
        return out

    def key(self) -> str:
        """What names the image: the pins, and for local folders their names and versions."""
        local = [f"{k}=={installed_version(k)}@local" for k in sorted(self.local)]
        return "\n".join([*sorted(self.pins.values()), *local])


def core_requirements(source: Path) -> list[str]:
    """``sandbox/requirements.txt``: what the guest itself imports."""
    return [line.split("#")[0].strip() for line in (source / "requirements.txt").read_text().splitlines()
            if line.split("#")[0].strip()]


def gymnasium_env_requirements() -> list[str]:
    """The distributions of gymnasium's simulator extras (those installed are carried)."""
    out = []
    for requirement in md.requires("gymnasium") or []:
        match = re.search(r'extra == "([^"]+)"', requirement)
        if match and match.group(1) in GYMNASIUM_ENV_EXTRAS:
            markers = requirement.split(";", 1)[1] if ";" in requirement else ""
            if "python_version" in markers and not _python_marker_holds(markers):
                continue
            out.append(re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0])
    return out


def _python_marker_holds(markers: str) -> bool:
    try:
        from packaging.markers import Marker

        clause = " and ".join(c for c in re.split(r"\band\b", markers) if "python_version" in c)
        return Marker(clause).evaluate()
    except Exception:  # noqa: BLE001 - no packaging, or a marker it cannot read: keep the requirement
        return True


def image_packages(source: Path, tasks: Sequence[TaskSpec] = (), extra: Sequence[str] = ()) -> ImagePackages:
    """Everything the image should carry for this host, ``tasks`` and ``extra`` names."""
    packages = ImagePackages()
    for name in core_requirements(source):
        packages.add(name, "the guest")
    for name in gymnasium_env_requirements():
        if installed_version(name) is not None:
            packages.add(name, "a gymnasium extra installed here")
    for name in (*ENV_PACKAGES, *RENDER_PACKAGES):
        if installed_version(name) is not None:
            packages.add(name, "an env package installed here" if name in ENV_PACKAGES else "off-screen frames")
    for task in tasks:
        for name in env_distributions(task):
            packages.add(name, f"imported by {task.env.name}")
    for name in extra:
        packages.add(name, "--with")
    if packages.missing:
        asked = [n for n in packages.missing if n in extra]
        if asked:
            raise SandboxUnavailable(f"--with {asked[0]}: it is not installed here (the image carries the host's "
                                     "versions; pip install it first)")
    return packages


PROBE = """
import json, sys, sysconfig
from rewardsmith.task import TaskSpec
task = TaskSpec.model_validate_json(sys.argv[1])
env = task.env.make(1, "cpu", seed=0)
stdlib = sysconfig.get_paths()["stdlib"]
tops = {name.split(".")[0] for name in sys.modules}
files = {top: getattr(sys.modules.get(top), "__file__", None) for top in tops}
print(json.dumps(sorted(top for top, path in files.items() if path and not path.startswith(stdlib))))
"""


def env_distributions(task: TaskSpec) -> list[str]:
    """The installed distributions whose modules ``task``'s env imports when built on the host."""
    proc = subprocess.run([sys.executable, "-c", PROBE, task.model_dump_json()], capture_output=True, text=True,
                          timeout=600, env={**_quiet_env(), "PYTHONDONTWRITEBYTECODE": "1"})
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxUnavailable(f"could not build {task.env.name} here to see what it imports: {last}")
    modules = json.loads(proc.stdout.strip().splitlines()[-1])
    owners = md.packages_distributions()
    names: list[str] = []
    unowned = []
    for module in modules:
        if module in sys.stdlib_module_names or module.startswith("_"):
            continue
        dists = owners.get(module)
        if dists:
            names.extend(d for d in dists if d not in names)
        elif module != "rewardsmith":
            unowned.append(module)
    if unowned:
        raise SandboxUnavailable(f"{task.env.name} imports {', '.join(sorted(unowned))}, which no installed "
                                 "distribution provides; install it as a package (pip install -e DIR) so the image "
                                 "can carry it")
    return names


def _quiet_env() -> dict[str, str]:
    import os

    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "osmesa")
    return env


def host_constraints() -> list[str]:
    """Every distribution installed here at its version (pip's constraints for the dependencies),
    but for rewardsmith and what was installed from a local folder."""
    pins: dict[str, str] = {}
    for dist in md.distributions():  # in sys.path order: the first of a name is the one imported
        name = dist.metadata["Name"]
        if not name or canonical(name) in NEVER or canonical(name) in pins or local_source(name) is not None:
            continue
        pins[canonical(name)] = f"{name}=={dist.version}"
    return sorted(pins.values())
