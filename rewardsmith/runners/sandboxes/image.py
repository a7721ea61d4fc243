"""The Docker sandbox's image: which one matches this code, and how to build it.

An image belongs to one version of the code: its ``rewardsmith.code`` label is a hash of the
rewardsmith package's Python files, the Dockerfile and the guest's own requirements at the host's
versions, so a container never runs other code than the host's. What else it carries (env
packages; :mod:`.image_packages`) is listed in its ``rewardsmith.packages`` label, and the tag
covers both. The sandbox uses the newest image of this code; a build keeps what the previous one
carried and adds what is asked for.

The build needs no network inside Docker: wheels are downloaded on the host (with the host's
pip configuration and versions) and copied in. The base image comes from a registry where one
answers, else from ``sandbox/make-base.sh`` (debootstrap from the Debian mirror apt uses here,
read as apt reads its sources, + ``docker import``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ...errors import SandboxUnavailable
from .bwrap import package_dir
from .image_packages import ImagePackages, core_requirements, host_constraints, image_packages, installed_version

if TYPE_CHECKING:
    from ...task import TaskSpec

IMAGE = os.environ.get("REWARDSMITH_SANDBOX_IMAGE", "rewardsmith-sandbox")  # the repository name
REGISTRY_BASE = "python:3.11-slim-bookworm"
# what envs load besides Python packages: OSMesa draws MuJoCo's frames without a display
SYSTEM_PACKAGES = ("libosmesa6",)
LOCAL_BASE = "rewardsmith-base:bookworm-" + hashlib.sha256(" ".join(SYSTEM_PACKAGES).encode()).hexdigest()[:8]
CODE_LABEL = "rewardsmith.code"
PACKAGES_LABEL = "rewardsmith.packages"
IMAGE_PYTHON = "3.11"

Report = Callable[[str], None]


def sandbox_source() -> Path:
    """The ``sandbox/`` folder (Dockerfile, requirements, base image script): next to the
    package in a checkout, inside it in an installed wheel."""
    for folder in (package_dir() / "sandbox", package_dir().parent / "sandbox"):
        if (folder / "Dockerfile").is_file():
            return folder
    raise SandboxUnavailable(f"no sandbox/Dockerfile in or next to the rewardsmith package ({package_dir()}); "
                             "this installation is incomplete: reinstall rewardsmith")


def _code_files() -> list[Path]:
    """The package's Python files: what the guest runs (templates, tasks and the sandbox folder
    are not part of it, so a checkout and an installed wheel of the same code agree)."""
    root = package_dir()
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and (p.suffix == ".py" or p.name == "py.typed"))


def code_hash() -> str:
    """This code's identity: its Python files, the Dockerfile, the guest's requirements at the
    host's versions."""
    digest = hashlib.sha256()
    source = sandbox_source()
    digest.update((source / "Dockerfile").read_bytes())
    core = [f"{name}=={installed_version(name)}" for name in core_requirements(source)]
    digest.update("\n".join(core).encode())
    root = package_dir()
    for path in _code_files():
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def connect(timeout: float = 300):
    """A Docker client whose engine answered, or raise SandboxUnavailable."""
    try:
        import docker
    except ImportError:
        raise SandboxUnavailable("the docker Python package is missing: pip install 'rewardsmith[docker]'") from None
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"no Docker engine answers ({str(exc).splitlines()[0][:160]})") from None
    return client


def image_exists(client, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def find_image(client, code: str | None = None):
    """The newest image of this code, or ``None``."""
    code = code or code_hash()
    images = [i for i in client.images.list(name=IMAGE, filters={"label": f"{CODE_LABEL}={code}"}) if i.tags]
    return max(images, key=lambda i: i.attrs.get("Created", ""), default=None)


def image_contents(image) -> list[str]:
    """The pinned distributions an image carries (``name==version``), from its label."""
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    try:
        return list(json.loads(labels.get(PACKAGES_LABEL, "[]")))
    except ValueError:
        return []


# ----------------------------------------------------------------------------------- build

def _base_image(client, report: Report) -> str:
    import docker

    for name in (REGISTRY_BASE, LOCAL_BASE):
        if image_exists(client, name):
            return name
    report(f"pulling {REGISTRY_BASE} ...")
    try:
        client.images.pull(REGISTRY_BASE)
        return REGISTRY_BASE
    except docker.errors.DockerException as exc:
        report(f"no registry ({str(exc).splitlines()[0][:120]}); making {LOCAL_BASE} with debootstrap")
    from .apt_sources import debian_mirror

    mirror = debian_mirror()
    if mirror is None:
        raise SandboxUnavailable("no registry answers and apt's sources (/etc/apt/sources.list*) name no Debian "
                                 "mirror to build a base image from")
    script = sandbox_source() / "make-base.sh"
    proc = subprocess.Popen(["bash", str(script), LOCAL_BASE, mirror, *SYSTEM_PACKAGES], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        report(line.rstrip())
    if proc.wait() != 0:
        raise SandboxUnavailable(f"could not make the base image {LOCAL_BASE} (see the lines above)")
    return LOCAL_BASE


def _wheels(packages: ImagePackages, report: Report) -> Path:
    """Wheels for the container's Python, made once per set of packages and kept in a cache:
    downloaded (the host's pip configuration, its versions as constraints for the dependencies)
    and built from local folders."""
    key = hashlib.sha256(packages.key().encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rewardsmith" / "sandbox-wheels" / key
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    for name, source in sorted(packages.local.items()):
        report(f"building a wheel of {name} from {source}")
        _pip(pip + ["wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), str(source)], f"building {name}")
    constraints = folder / "constraints.txt"
    constraints.write_text("\n".join(host_constraints()) + "\n")
    report(f"downloading wheels for the image ({len(packages.pins)} packages and their dependencies)")
    wanted = sorted(packages.pins.values()) + [str(w) for w in sorted(folder.glob("*.whl"))]
    _pip(pip + ["download", "--quiet", "--dest", str(folder), "--only-binary=:all:", "--python-version", IMAGE_PYTHON,
                "-c", str(constraints), *wanted], "pip download for the sandbox image")
    requirements = sorted(packages.pins.values()) + sorted(packages.local)
    (folder / "requirements.txt").write_text("\n".join(requirements) + "\n")
    (folder / ".complete").write_text("")
    return folder


def _pip(cmd: list[str], what: str) -> None:
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        raise SandboxUnavailable(f"{what} failed: {tail[-500:]}")


def _context(wheels: Path) -> Path:
    context = Path(tempfile.mkdtemp(prefix="rewardsmith-image-"))
    shutil.copy2(sandbox_source() / "Dockerfile", context / "Dockerfile")
    (context / "wheels").mkdir()
    for wheel in wheels.iterdir():
        if wheel.name not in (".complete", "constraints.txt"):
            try:
                os.link(wheel, context / "wheels" / wheel.name)
            except OSError:
                shutil.copy2(wheel, context / "wheels" / wheel.name)
    shutil.copytree(package_dir(), context / "rewardsmith",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tasks", "sandbox", "prompts"))
    return context


def build_image(client, report: Report, tasks: Sequence[TaskSpec] = (), extra: Sequence[str] = ()) -> str:
    """Build the image for this code carrying what this host's envs (and ``tasks``' envs, and
    ``extra`` distributions) need, unless the newest image of this code already carries it all;
    return its name."""
    import docker

    code = code_hash()
    packages = image_packages(sandbox_source(), tasks, extra)
    current = find_image(client, code)
    if current is not None:
        carried = image_contents(current)
        for pin in carried:  # what an earlier build added stays, at the host's version
            name = pin.split("==")[0]
            if installed_version(name) is not None:
                packages.add(name, "carried by the previous image")
        if set(packages.pins.values()) <= set(carried) and all(k in carried for k in packages.local):
            report(f"{current.tags[0]} is up to date; it carries:")
            for line in packages.lines():
                report(f"  {line}")
            return current.tags[0]
    name = f"{IMAGE}:{code}-{hashlib.sha256(packages.key().encode()).hexdigest()[:8]}"
    report(f"the image carries ({len(packages.pins) + len(packages.local)} distributions):")
    for line in packages.lines():
        report(f"  {line}")
    base = _base_image(client, report)
    context = _context(_wheels(packages, report))
    contents = sorted(packages.pins.values()) + sorted(packages.local)
    report(f"building {name} from {base} ...")
    try:
        # the local base has everything but the wheels: no network; a registry base may need apt
        network = "none" if base == LOCAL_BASE else None
        stream = client.api.build(path=str(context), tag=name, network_mode=network,
                                  buildargs={"BASE": base, "SYSTEM_PACKAGES": " ".join(SYSTEM_PACKAGES)},
                                  rm=True, forcerm=True, decode=True,
                                  labels={CODE_LABEL: code, PACKAGES_LABEL: json.dumps(contents)})
        for chunk in stream:
            if "error" in chunk:
                raise SandboxUnavailable(f"docker build failed: {chunk['error'].strip()[:400]}")
            line = str(chunk.get("stream", "")).strip()
            if line.startswith("Step "):
                report(line)
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"docker build failed: {exc}") from None
    finally:
        shutil.rmtree(context, ignore_errors=True)
    _remove_old_images(client, keep=name)
    _remove_dangling_stages(client)
    size = client.images.get(name).attrs.get("Size", 0) / 1e9
    report(f"{name} is ready ({size:.2f} GB)")
    return name


def _remove_dangling_stages(client) -> None:
    """The build's intermediate stage (the one that installed the wheels) is left untagged. The
    newest one stays: it is the layer cache that makes a rebuild after a code change take seconds
    instead of reinstalling every wheel; older ones go."""
    import docker

    try:
        stages = client.images.list(filters={"dangling": True, "label": "rewardsmith.stage=deps"})
    except docker.errors.DockerException:
        return
    stages.sort(key=lambda image: image.attrs.get("Created", ""), reverse=True)
    for image in stages[1:]:
        try:
            client.images.remove(image.id)
        except docker.errors.DockerException:
            pass  # the parent of a newer layer, or in use


KEEP_IMAGES = 4  # images of other code kept (other checkouts and venvs on this machine use them)


def _remove_old_images(client, keep: str) -> None:
    """Tags of the oldest images of other code, beyond the newest few (layers shared with the
    new one stay). Another checkout or venv of rewardsmith on this machine keeps its image."""
    import docker

    others = [image for image in client.images.list(name=IMAGE) if keep not in image.tags]
    others.sort(key=lambda image: image.attrs.get("Created", ""), reverse=True)
    for image in others[KEEP_IMAGES:]:
        for tag in image.tags:
            try:
                client.images.remove(tag)
            except docker.errors.DockerException:
                pass  # in use by a running job; removed next time
