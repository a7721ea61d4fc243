"""The Docker sandbox's image: which one matches this code, and how to build it.

The tag is a hash of what the container must share with the host: the rewardsmith package's
files, the Dockerfile and the pinned requirements. Changing any of them names a new image, so a
container never runs other code than the host's. The build needs no network inside Docker:
wheels are downloaded on the host (with the host's pip configuration), pinned to the host's
versions, and copied in. The base image comes from a registry where one answers, else from
``sandbox/make-base.sh`` (debootstrap + ``docker import``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from ...errors import SandboxUnavailable
from .bwrap import package_dir

IMAGE = "rewardsmith-sandbox"
REGISTRY_BASE = "python:3.11-slim-bookworm"
# what envs load besides Python packages: OSMesa draws MuJoCo's frames without a display
SYSTEM_PACKAGES = ("libosmesa6",)
LOCAL_BASE = "rewardsmith-base:bookworm-" + hashlib.sha256(" ".join(SYSTEM_PACKAGES).encode()).hexdigest()[:8]
CODE_LABEL = "rewardsmith.code"
IMAGE_PYTHON = "3.11"

Report = Callable[[str], None]


def sandbox_source() -> Path:
    """The top-level ``sandbox/`` folder (Dockerfile, requirements, base image script)."""
    folder = package_dir().parent / "sandbox"
    if not (folder / "Dockerfile").is_file():
        raise SandboxUnavailable(f"no sandbox/Dockerfile next to the rewardsmith package ({folder}); "
                                 "building the Docker image needs a source checkout")
    return folder


def requirement_pins() -> list[str]:
    """``sandbox/requirements.txt`` with each package pinned to the host's installed version."""
    pins = []
    for line in (sandbox_source() / "requirements.txt").read_text().splitlines():
        name = line.split("#")[0].strip()
        if not name:
            continue
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def _package_files() -> list[Path]:
    root = package_dir()
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix not in (".pyc", ".pyo"))


def code_hash() -> str:
    digest = hashlib.sha256()
    source = sandbox_source()
    digest.update((source / "Dockerfile").read_bytes())
    digest.update("\n".join(requirement_pins()).encode())
    root = package_dir()
    for path in _package_files():
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def image_name() -> str:
    return f"{IMAGE}:{code_hash()}"


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


def _wheels(pins: list[str], report: Report) -> Path:
    """Wheels for the container's Python, downloaded once per set of pins and kept in a cache."""
    key = hashlib.sha256("\n".join(pins).encode()).hexdigest()[:16]
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rewardsmith" / "sandbox-wheels" / key
    if (folder / ".complete").exists():
        return folder
    report(f"downloading wheels for the image: {' '.join(pins)}")
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--dest", str(folder),
           "--only-binary=:all:", "--python-version", IMAGE_PYTHON, *pins]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        tail = " | ".join(run.stderr.strip().splitlines()[-3:])
        raise SandboxUnavailable(f"pip download for the sandbox image failed: {tail[-400:]}")
    (folder / "requirements.txt").write_text("\n".join(pins) + "\n")
    (folder / ".complete").write_text("")
    return folder


def _context(wheels: Path) -> Path:
    context = Path(tempfile.mkdtemp(prefix="rewardsmith-image-"))
    shutil.copy2(sandbox_source() / "Dockerfile", context / "Dockerfile")
    (context / "wheels").mkdir()
    for wheel in wheels.iterdir():
        if wheel.name != ".complete":
            try:
                os.link(wheel, context / "wheels" / wheel.name)
            except OSError:
                shutil.copy2(wheel, context / "wheels" / wheel.name)
    shutil.copytree(package_dir(), context / "rewardsmith", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return context


def build_image(client, report: Report) -> str:
    """Build the image for this code (if it is not there yet) and return its name."""
    import docker

    name = image_name()
    if image_exists(client, name):
        report(f"{name} is up to date")
        return name
    base = _base_image(client, report)
    pins = requirement_pins()
    context = _context(_wheels(pins, report))
    report(f"building {name} from {base} ...")
    try:
        stream = client.api.build(path=str(context), tag=name, buildargs={"BASE": base}, network_mode="none",
                                  rm=True, forcerm=True, decode=True, labels={CODE_LABEL: name.split(":")[1]})
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
    report(f"{name} is ready")
    return name


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
