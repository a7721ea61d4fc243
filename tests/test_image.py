"""The Docker image's ingredients (no engine needed): the Debian mirror read as apt reads its
sources, what the image carries from this host, and CI's rule that a skip is a failure."""

import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, TASKS

from rewardsmith.errors import SandboxUnavailable
from rewardsmith.runners.sandboxes.apt_sources import apt_sources, debian_mirror
from rewardsmith.runners.sandboxes.image import code_hash, sandbox_source
from rewardsmith.runners.sandboxes.image_packages import env_distributions, image_packages, installed_version
from rewardsmith.task import load_task


def _sources(tmp_path, main: str | None, **files: str):
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True)
    if main is not None:
        (root / "sources.list").write_text(textwrap.dedent(main))
    for name, text in files.items():
        (root / "sources.list.d" / name.replace("__", ".")).write_text(textwrap.dedent(text))
    return root


def test_mirror_is_read_as_apt_reads_it(tmp_path):
    # this machine's layout: a commented-out snapshot URL first, in a deb822 file; a disabled file
    root = _sources(tmp_path, None, debian__sources="""\
        Types: deb
        # http://snapshot.debian.org/archive/debian/20250520T000000Z
        URIs: http://deb.debian.org/debian
        Suites: bookworm bookworm-updates
        Components: main

        Types: deb
        # http://snapshot.debian.org/archive/debian-security/20250520T000000Z
        URIs: http://deb.debian.org/debian-security
        Suites: bookworm-security
        Components: main
        """, google__list__disabled="deb http://wrong.example/debian bookworm main\n")
    assert debian_mirror(root) == "http://deb.debian.org/debian"
    assert all("snapshot" not in s.uri and "wrong" not in s.uri for s in apt_sources(root))


def test_one_line_sources_options_comments_and_disabled_stanzas(tmp_path):
    root = _sources(tmp_path, """\
        # deb http://commented.example/debian bookworm main
        deb-src http://source.example/debian bookworm main
        deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main  # a comment
        """, off__sources="""\
        Enabled: no
        Types: deb
        URIs: http://off.example/debian
        Suites: bookworm
        """)
    assert [s.uri for s in apt_sources(root)] == ["http://mirror.example/debian/"]
    assert debian_mirror(root) == "http://mirror.example/debian"
    assert debian_mirror(_sources(tmp_path / "none", "# nothing\n")) is None


def test_the_image_carries_the_guest_and_the_simulators_installed_here():
    packages = image_packages(sandbox_source())
    carried = set(packages.pins)
    assert {"torch", "numpy", "pydantic", "gymnasium", "pillow", "pyyaml"} <= carried  # the guest
    assert "mujoco" in carried and packages.pins["mujoco"] == f"mujoco=={installed_version('mujoco')}"
    assert "pygame-ce" in carried  # gymnasium's classic-control frames
    assert "rewardsmith" not in carried and "pytest" not in carried  # its own files; not test tools
    assert any("mujoco==" in line and "gymnasium extra" in line for line in packages.lines())
    with pytest.raises(SandboxUnavailable, match="--with no-such-dist: it is not installed here"):
        image_packages(sandbox_source(), extra=["no-such-dist"])


def test_a_tasks_env_brings_the_distributions_it_imports():
    names = {n.lower() for n in env_distributions(load_task(TASKS / "halfcheetah_backward.yaml"))}
    assert {"mujoco", "gymnasium", "numpy"} <= names


def test_an_env_module_that_is_no_distribution_is_named(tmp_path, monkeypatch):
    (tmp_path / "loose_env_mod.py").write_text(
        "from rewardsmith.envs.isaacgym.example import make_cartpole\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    task = load_task(TASKS / "vectask_cartpole.yaml").with_overrides(env={"id": "loose_env_mod:make_cartpole"})
    with pytest.raises(SandboxUnavailable, match="imports loose_env_mod, which no installed distribution provides"):
        env_distributions(task)


def test_code_hash_covers_the_code_not_the_templates():
    assert len(code_hash()) == 16 and code_hash() == code_hash()


def test_in_ci_a_skip_is_a_failure_but_a_gpu_test_may_skip(tmp_path):
    (tmp_path / "conftest.py").write_text((ROOT / "tests" / "conftest.py").read_text())
    (tmp_path / "test_parts.py").write_text(textwrap.dedent("""\
        import pytest

        def test_needs_a_part():
            pytest.skip("no tmux here")

        @pytest.mark.gpu
        def test_needs_cuda():
            pytest.skip("needs CUDA")
        """))
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "", "-o", "addopts=",
           "-o", "markers=gpu: needs CUDA", str(tmp_path)]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    local = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert local.returncode == 0 and "2 skipped" in local.stdout, local.stdout
    ci = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, env={**env, "CI": "true"}, timeout=120)
    assert ci.returncode == 1 and "1 failed, 1 skipped" in ci.stdout, ci.stdout
    assert "skipped in CI, where every part a test needs must be there: no tmux here" in ci.stdout
