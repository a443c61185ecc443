"""The operator's image as `make image` builds it: what it holds and how it runs.

The archive is read as any OCI tool reads it (index -> manifest -> config and
layers); the last test runs it with containerd, read-only, as the image's user.
"""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rayref.devcluster.image import BuiltImage, build_image, lock_file
from rayref.devcluster.node import Containerd

pytestmark = pytest.mark.node


@dataclass(frozen=True)
class ImageContent:
    config: dict[str, object]
    files: set[str]


def _member_json(tar: tarfile.TarFile, name: str) -> Any:
    member = tar.extractfile(name)
    assert member is not None, f"{name} is missing from the archive"
    return json.load(member)


def _blob_path(digest: str) -> str:
    return f"blobs/sha256/{digest.removeprefix('sha256:')}"


@pytest.fixture(scope="module")
def content(operator_image: BuiltImage) -> ImageContent:
    files: set[str] = set()
    with tarfile.open(operator_image.archive) as tar:
        (entry,) = _member_json(tar, "index.json")["manifests"]
        manifest = _member_json(tar, _blob_path(entry["digest"]))
        config = _member_json(tar, _blob_path(manifest["config"]["digest"]))
        for layer in manifest["layers"]:
            blob = tar.extractfile(_blob_path(layer["digest"]))
            with tarfile.open(fileobj=blob, mode="r:gz") as layer_tar:
                files |= {name.removeprefix("./") for name in layer_tar.getnames()}
    return ImageContent(config, files)


def _locked_pins() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", lock_file().read_text(), re.MULTILINE)
    return {re.sub(r"[-_.]+", "_", name).lower(): version for name, version in pins}


def test_image_runs_rayref_as_the_numeric_non_root_user(content: ImageContent) -> None:
    settings = content.config["config"]
    assert isinstance(settings, dict)
    assert settings["User"] == "65532:65532"
    assert settings["Entrypoint"] == ["rayref", "run"]
    assert any(env.startswith("PATH=/opt/rayref/bin:") for env in settings["Env"])
    assert content.config["architecture"] == "amd64"


def test_image_holds_exactly_the_locked_dependencies_and_the_operator(
    content: ImageContent,
) -> None:
    dist_info = re.compile(
        r"^opt/rayref/lib/python3\.11/site-packages/([^/]+)-([^/-]+)\.dist-info$"
    )
    installed = {}
    for name in content.files:
        match = dist_info.match(name)
        if match:
            installed[match.group(1).lower()] = match.group(2)
    operator = installed.pop("rayref_operator")
    assert operator
    assert installed == _locked_pins()
    assert "opt/rayref/bin/rayref" in content.files
    assert "usr/bin/python3.11" in content.files


def test_image_has_no_pip_no_compiler_and_no_apt(content: ImageContent) -> None:
    forbidden = re.compile(
        r"^(usr/|usr/local/|opt/rayref/)?s?bin/"
        r"(pip[0-9.]*|gcc[-0-9.]*|cc|c\+\+|g\+\+|x86_64-linux-gnu-gcc[-0-9.]*|apt|apt-get)$"
        r"|/site-packages/(pip|setuptools)/"
    )
    assert sorted(name for name in content.files if forbidden.search(name)) == []


def test_the_image_runs_rayref_read_only_as_65532(
    containerd: Containerd, operator_image: BuiltImage
) -> None:
    script = (
        "id -u; python3 -c 'import getpass; print(getpass.getuser())'; rayref --help;"
        " touch /probe 2>&1; touch /opt/rayref/probe 2>&1; exit 0"
    )
    ran = containerd.ctr(
        "run", "--rm", "--read-only", operator_image.ref, "image-test", "sh", "-c", script
    )
    lines = ran.stdout.splitlines()
    assert lines[0] == "65532"
    # kopf names itself after the user: the uid must have a passwd entry.
    assert lines[1] == "rayref"
    assert any(line.startswith("usage: rayref") for line in lines)
    assert sum("Read-only file system" in line for line in lines) == 2


@pytest.mark.slow
def test_the_same_tree_builds_the_same_image(operator_image: BuiltImage, tmp_path: Path) -> None:
    again = build_image(tmp_path / "again.oci.tar")
    assert again.manifest_digest == operator_image.manifest_digest
