"""The image's install path without a Docker engine.

operator/Dockerfile builds a wheel, installs only that wheel into a clean virtual
environment and runs `rayref run`. These tests do the same on the host: build the
wheel, install it into a fresh venv (dependencies from the package index), and run
the entry point from outside the source tree, so only packaged files can answer.
"""

from __future__ import annotations

import os
import re
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
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", ".", "-w", str(dist)],
        cwd=REPO_ROOT,
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
