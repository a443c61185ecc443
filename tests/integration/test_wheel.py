"""The image's install path without a Docker engine.

operator/Dockerfile builds a wheel, installs only that wheel into a clean virtual
environment and runs `rayref run`. These tests do the same on the host: build the
wheel from the files the Dockerfile copies, install it into a fresh venv
(dependencies from the package index), and run the entry point from outside the
source tree, so only packaged files can answer. The demo and the local control
plane are development tools: the wheel leaves them out and the runtime never needs
them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.fixtures.paths import CRDS_DIR, REPO_ROOT

DOCKERFILE = REPO_ROOT / "operator" / "Dockerfile"
CHART_VALUES = REPO_ROOT / "charts" / "rayref-operator" / "values.yaml"


@dataclass(frozen=True)
class InstalledWheel:
    venv: Path
    workdir: Path  # outside the repository, so the source tree is not importable

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return subprocess.run(
            list(args), cwd=self.workdir, env=env, capture_output=True, text=True, timeout=300
        )


@pytest.fixture(scope="module")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # What the Dockerfile's builder stage copies, into a fresh tree: setuptools packs
    # whatever an earlier build left in build/lib, so a build in the checkout could
    # carry stale modules (a removed or excluded one) into the wheel.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    shutil.copytree(
        REPO_ROOT / "operator" / "rayref",
        source / "operator" / "rayref",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", str(dist)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, f"building the wheel failed:\n{built.stderr}"
    (wheel,) = dist.glob("rayref_operator-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed_wheel(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> InstalledWheel:
    root = tmp_path_factory.mktemp("wheel")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(built_wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, f"installing the wheel failed:\n{installed.stderr}"
    workdir = root / "work"
    workdir.mkdir()
    return InstalledWheel(venv=venv, workdir=workdir)


def test_wheel_holds_the_package_and_nothing_else(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as archive:
        names = archive.namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert "rayref/py.typed" in names
    assert "rayref/cli.py" in names
    assert not {"tests", "bench", "charts", "operator"} & top_level
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(built_wheel) as archive:
        assert "rayref = rayref.cli:main" in archive.read(entry_points).decode()


# rayref/monitoring: the dashboard's generator; its JSON ships in the chart.
DEVELOPMENT_PACKAGES = ("rayref/demo/", "rayref/devcluster/", "rayref/monitoring/")


def test_wheel_leaves_out_the_demo_and_the_local_control_plane(built_wheel: Path) -> None:
    # They are in the checkout, so their absence from the wheel is the exclusion's doing.
    for package in DEVELOPMENT_PACKAGES:
        assert (REPO_ROOT / "operator" / package / "__init__.py").is_file(), package
    with zipfile.ZipFile(built_wheel) as archive:
        names = archive.namelist()
    carried = [n for n in names if n.startswith(DEVELOPMENT_PACKAGES)]
    assert carried == []
    go_files = [n for n in names if n.rsplit("/", 1)[-1] in ("go.mod", "go.sum", "tools.go")]
    assert go_files == []


@pytest.mark.slow
def test_every_packaged_module_imports_without_the_development_packages(
    installed_wheel: InstalledWheel,
) -> None:
    """The runtime never imports the demo or the devcluster: they are not there to import."""
    script = (
        "import importlib, pkgutil, rayref\n"
        "names = [m.name for m in pkgutil.walk_packages(rayref.__path__, 'rayref.')\n"
        "         if not m.name.endswith('__main__')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names))\n"
    )
    result = installed_wheel.run("python", "-c", script)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 30  # the operator, the simulator, the commands
    missing = installed_wheel.run("python", "-c", "import rayref.demo")
    assert "No module named 'rayref.demo'" in missing.stderr


def test_demo_from_the_wheel_says_it_needs_a_checkout(installed_wheel: InstalledWheel) -> None:
    for argv in (("rayref", "demo"), ("rayref", "demo", "--until-complete")):
        result = installed_wheel.run(*argv)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert "checkout" in lines[0] and "make demo" in lines[0], lines[0]


def test_package_is_imported_from_the_venv_not_the_checkout(
    installed_wheel: InstalledWheel,
) -> None:
    result = installed_wheel.run("python", "-c", "import rayref; print(rayref.__file__)")
    assert result.returncode == 0, result.stderr
    location = Path(result.stdout.strip())
    assert location.is_relative_to(installed_wheel.venv), location


def test_entry_point_lists_every_subcommand(installed_wheel: InstalledWheel) -> None:
    result = installed_wheel.run("rayref", "--help")
    assert result.returncode == 0, result.stderr
    for command in ("run", "crds", "get", "simulate", "demo"):
        assert re.search(rf"\b{command}\b", result.stdout), f"{command} missing:\n{result.stdout}"


def test_run_help_is_the_image_entrypoint(installed_wheel: InstalledWheel) -> None:
    result = installed_wheel.run("rayref", "run", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: rayref run")


def test_installed_crds_command_writes_the_committed_crds(
    installed_wheel: InstalledWheel, tmp_path: Path
) -> None:
    out = tmp_path / "crds"
    result = installed_wheel.run("rayref", "crds", "--output", str(out))
    assert result.returncode == 0, result.stderr
    written = {p.name: p.read_bytes() for p in out.glob("*.yaml")}
    committed = {p.name: p.read_bytes() for p in CRDS_DIR.glob("*.yaml")}
    assert committed, "crds/ is empty"
    assert written == committed


def _final_stage(dockerfile: str) -> list[str]:
    lines = [line.strip() for line in dockerfile.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.upper().startswith("FROM ")]
    return [line for line in lines[starts[-1] :] if line and not line.startswith("#")]


def test_dockerfile_final_stage_matches_the_chart() -> None:
    """The image runs as the numeric user the chart's runAsNonRoot check expects."""
    final = _final_stage(DOCKERFILE.read_text())
    values = yaml.safe_load(CHART_VALUES.read_text())
    uid = values["securityContext"]["runAsUser"]
    gid = values["securityContext"]["runAsGroup"]
    assert f"USER {uid}:{gid}" in final
    assert 'ENTRYPOINT ["rayref", "run"]' in final
    assert not any(re.search(r"\b(apt-get|gcc|build-essential)\b", line) for line in final)
    assert any(line.startswith("COPY --from=builder") for line in final)
