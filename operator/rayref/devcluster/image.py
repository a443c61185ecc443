"""Build the operator's image without Docker: `python -m rayref.devcluster.image` (`make image`).

Three layers, written as an OCI archive by rayref.devcluster.oci:
1. a Debian root filesystem made by mmdebstrap from Debian's packages (python3 and
   ca-certificates on the `essential` set, no apt, no docs), cached under
   ~/.cache/rayref/image/ by the hash of its inputs, like the control-plane binaries;
2. the venv /opt/rayref with the locked runtime dependencies
   (operator/requirements.lock, with hashes, from a local wheelhouse), cached by the
   base layer and the lock;
3. the working tree's wheel installed into that venv: the only layer a change to the
   operator's code rebuilds.
Both installs are `pip install --no-index` (the dependencies `--require-hashes`) run
from pip's own wheel inside a chroot, so pip never lands in the image.
The config is operator/Dockerfile's: numeric user 65532, `rayref run` as entry point.
Needs root (mmdebstrap's root mode and chroot) and Debian's mmdebstrap.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from rayref.devcluster.build import cache_root
from rayref.devcluster.oci import Layer, compress_layer, write_archive, write_tree_layer

IMAGE_NAME = "rayref.local/rayref-operator"
SUITE = "bookworm"
PACKAGES = ("python3", "ca-certificates")
MIRRORS = (
    f"deb http://deb.debian.org/debian {SUITE} main",
    f"deb http://deb.debian.org/debian {SUITE}-updates main",
    f"deb http://deb.debian.org/debian-security {SUITE}-security main",
)
# Docs, man pages and translations are dead weight in a container; licenses stay.
DPKG_OPTIONS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
)
VENV = "/opt/rayref"
# Where the wheels are staged inside the chroot while pip runs (removed before the
# layer is written).
STAGED = "/tmp/wheels"  # noqa: S108 - a path inside the image's tree, not the host's /tmp
USER = "65532:65532"
# The image's user, named in /etc/passwd and /etc/group (Debian's essential set has no useradd).
PASSWD_ENTRY = "rayref:x:65532:65532:rayref:/nonexistent:/usr/sbin/nologin"  # noqa: S105
GROUP_ENTRY = "rayref:x:65532:"
# Files in the image are dated no later than this (2026-01-01), so their times do not
# make two builds of the same inputs differ.
SOURCE_DATE_EPOCH = 1767225600
IMAGE_CONFIG: dict[str, object] = {
    "User": USER,
    "Env": [
        f"PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        f"VIRTUAL_ENV={VENV}",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
    ],
    "Entrypoint": ["rayref", "run"],
    "WorkingDir": "/tmp",  # noqa: S108 - the image's /tmp, as in operator/Dockerfile
    "ExposedPorts": {"8080/tcp": {}, "9090/tcp": {}},
}

Log = Callable[[str], None]


class ImageBuildError(RuntimeError):
    """The image could not be built; the message names the step and its output."""


@dataclass(frozen=True)
class BuiltImage:
    archive: Path
    ref: str
    manifest_digest: str
    size: int
    seconds: float
    base_was_cached: bool


def _print(line: str) -> None:
    print(line, flush=True)


def repo_root() -> Path:
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        raise ImageBuildError(f"not a rayref checkout: {root}/pyproject.toml is missing")
    return root


def lock_file() -> Path:
    return repo_root() / "operator" / "requirements.lock"


def image_cache() -> Path:
    return cache_root().parent / "image"


def missing_prerequisites() -> list[str]:
    """What this machine lacks to build the image (empty when it can)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (mmdebstrap's root mode, chroot, an overlay mount)")
    absent = [c for c in ("mmdebstrap", "chroot", "tar", "mount", "umount") if not shutil.which(c)]
    if absent:
        missing.append(f"{', '.join(absent)} (apt-get install mmdebstrap coreutils tar mount)")
    return missing


def _run(argv: Sequence[str], step: str, *, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise ImageBuildError(f"{step} failed (exit {result.returncode}): {' '.join(argv)}\n{tail}")
    return result.stdout


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # Two builds filling the same cache entry would both pay for mmdebstrap.
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _mmdebstrap_argv(out: Path) -> list[str]:
    argv = ["mmdebstrap", "--mode=root", "--variant=essential", "--quiet"]
    argv.append(f"--include={','.join(PACKAGES)}")
    argv += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
    # The user has a name: kopf names its process after getpass.getuser(), which fails
    # for a uid without a passwd entry (the operator crashed at start without it).
    argv.append(f"--customize-hook=echo '{PASSWD_ENTRY}' >> \"$1/etc/passwd\"")
    argv.append(f"--customize-hook=echo '{GROUP_ENTRY}' >> \"$1/etc/group\"")
    return [*argv, SUITE, str(out), *MIRRORS]


def base_layer(log: Log = _print) -> tuple[Path, Layer, bool]:
    """The cached root filesystem tar and its layer blob; built by mmdebstrap when missing."""
    version = _run(["mmdebstrap", "--version"], "mmdebstrap --version").strip()
    key = _digest(_mmdebstrap_argv(Path("out")), version, SOURCE_DATE_EPOCH)
    entry = image_cache() / f"rootfs-{SUITE}-{key}"
    rootfs, blob, meta = entry / "rootfs.tar", entry / "layer.tar.gz", entry / "layer.json"
    with _locked(entry):
        if meta.is_file():
            fields = json.loads(meta.read_text())
            return rootfs, Layer(blob, fields["digest"], fields["diff_id"], fields["size"]), True
        log(f"image: mmdebstrap {SUITE} with {', '.join(PACKAGES)} (first time only)")
        started = time.monotonic()
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)}
        _run(_mmdebstrap_argv(rootfs), "mmdebstrap", env=env)
        layer = compress_layer(rootfs, blob)
        fields = {"digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size}
        meta.write_text(json.dumps(fields))
        log(f"image: root filesystem cached in {entry} ({time.monotonic() - started:.0f} s)")
        return rootfs, layer, False


def _installer_version() -> str:
    # pip installs the image's venv but is not part of it: it runs from its wheel.
    return importlib.metadata.version("pip")


def wheelhouse(log: Log = _print) -> Path:
    """The locked dependencies' wheels and pip's own wheel, cached by the lock's hash."""
    lock = lock_file().read_bytes()
    pip_version = _installer_version()
    entry = image_cache() / f"wheels-{_digest(lock.decode(), pip_version)}"
    with _locked(entry):
        if (entry / ".complete").is_file():
            return entry
        log(f"image: downloading the locked wheels into {entry}")
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
        _run(
            [
                *pip,
                "wheel",
                "--quiet",
                "--no-deps",
                "--require-hashes",
                "-r",
                str(lock_file()),
                "-w",
                str(entry / "deps"),
            ],
            "pip wheel (the locked dependencies)",
        )
        _run(
            [
                *pip,
                "download",
                "--quiet",
                "--no-deps",
                f"pip=={pip_version}",
                "-d",
                str(entry / "installer"),
            ],
            "pip download (the installer)",
        )
        (entry / ".complete").touch()
        return entry


def project_wheel(out_dir: Path) -> Path:
    """The working tree's wheel, built from what operator/Dockerfile copies.

    Built in a fresh tree, as tests/integration/test_wheel.py does: setuptools packs
    whatever an earlier build left in build/lib, and the checkout stays untouched.
    """
    source = out_dir / "source"
    for name in ("pyproject.toml", "README.md"):
        source.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo_root() / name, source / name)
    shutil.copytree(
        repo_root() / "operator" / "rayref",
        source / "operator" / "rayref",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    # The wheel's zip entries are dated SOURCE_DATE_EPOCH: the same tree, the same wheel,
    # the same image digest.
    _run(
        [*pip, "wheel", "--quiet", "--no-deps", str(source), "-w", str(out_dir)],
        "pip wheel (the project)",
        env={**os.environ, "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH)},
    )
    (wheel,) = out_dir.glob("rayref_operator-*.whl")
    return wheel


def _chroot_env() -> dict[str, str]:
    # Nothing of the caller's pip configuration (find-links, caches) reaches the install.
    return {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_CACHE_DIR": "1",
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
    }


def _pip_in(rootfs: Path, installer: Path) -> list[str]:
    # The installer sits outside the image's venv, in the staged wheel folder.
    return ["chroot", str(rootfs), f"{VENV}/bin/python", f"{STAGED}/{installer.name}/pip"]


def _stage(rootfs: Path, files: Sequence[Path]) -> Path:
    staged = rootfs / STAGED.lstrip("/")
    staged.mkdir(parents=True)
    for path in files:
        shutil.copy2(path, staged / path.name)
    return staged


def deps_layer(rootfs_tar: Path, base: Layer, log: Log = _print) -> tuple[Path, Layer, bool]:
    """The root filesystem with /opt/rayref holding the locked dependencies, and its layer.

    Cached by the base layer and the lock: a change to the operator's code reuses it,
    so a warm build only installs the project's wheel on top.
    """
    wheels = wheelhouse(log)
    entry = image_cache() / f"deps-{_digest(base.digest, wheels.name)}"
    tree, blob, meta = entry / "tree", entry / "layer.tar.gz", entry / "layer.json"
    with _locked(entry):
        if meta.is_file():
            fields = json.loads(meta.read_text())
            return tree, Layer(blob, fields["digest"], fields["diff_id"], fields["size"]), True
        log("image: installing the locked dependencies into /opt/rayref (cached afterwards)")
        shutil.rmtree(tree, ignore_errors=True)
        tree.mkdir()
        _run(["tar", "-C", str(tree), "-xpf", str(rootfs_tar)], "unpacking the root filesystem")
        (installer,) = (wheels / "installer").glob("pip-*.whl")
        staged = _stage(tree, [lock_file(), installer])
        shutil.copytree(wheels / "deps", staged / "deps")
        _run(["chroot", str(tree), "/usr/bin/python3", "-m", "venv", "--without-pip", VENV], "venv")
        _run(
            [
                *_pip_in(tree, installer),
                "install",
                "--quiet",
                "--no-index",
                "--require-hashes",
                "--find-links",
                f"{STAGED}/deps",
                "-r",
                f"{STAGED}/requirements.lock",
            ],
            "pip install (the locked dependencies)",
            env=_chroot_env(),
        )
        shutil.rmtree(staged)
        write_tree_layer(tree, ["opt"], entry / "layer.tar", mtime=SOURCE_DATE_EPOCH)
        layer = compress_layer(entry / "layer.tar", blob)
        (entry / "layer.tar").unlink()
        meta.write_text(
            json.dumps({"digest": layer.digest, "diff_id": layer.diff_id, "size": layer.size})
        )
        return tree, layer, False


def app_layer(deps_tree: Path, wheel: Path, installer: Path, work: Path) -> Layer:
    """The project's wheel installed over the cached tree; the layer is what it added.

    An overlay mount keeps the cached tree untouched: the install writes into the
    upper directory, which then holds exactly the new files.
    """
    upper, scratch, merged = work / "upper", work / "overlay-work", work / "merged"
    for path in (upper, scratch, merged):
        path.mkdir()
    options = f"lowerdir={deps_tree},upperdir={upper},workdir={scratch}"
    _run(["mount", "-t", "overlay", "overlay", "-o", options, str(merged)], "mount overlay")
    try:
        staged = _stage(merged, [wheel, installer])
        env = _chroot_env()
        _run(
            [
                *_pip_in(merged, installer),
                "install",
                "--quiet",
                "--no-index",
                "--no-deps",
                f"{STAGED}/{wheel.name}",
            ],
            "pip install (the project's wheel)",
            env=env,
        )
        _run(["chroot", str(merged), f"{VENV}/bin/rayref", "--help"], "rayref --help", env=env)
        shutil.rmtree(staged)
    finally:
        _run(["umount", str(merged)], "umount overlay")
    write_tree_layer(upper, ["opt"], work / "app.tar", mtime=SOURCE_DATE_EPOCH)
    return compress_layer(work / "app.tar", work / "app.tar.gz")


def image_ref(wheel: Path) -> str:
    version = wheel.name.split("-")[1]
    return f"{IMAGE_NAME}:{version}"


def build_image(out: Path | None = None, *, log: Log = _print) -> BuiltImage:
    """Build the image archive (default dist/rayref-operator-<version>.oci.tar)."""
    missing = missing_prerequisites()
    if missing:
        raise ImageBuildError(f"cannot build the image here: missing {'; '.join(missing)}")
    started = time.monotonic()
    rootfs_tar, base, base_was_cached = base_layer(log)
    deps_tree, deps, _ = deps_layer(rootfs_tar, base, log)
    (installer,) = (wheelhouse(log) / "installer").glob("pip-*.whl")
    with tempfile.TemporaryDirectory(prefix="rayref-image-") as tmp:
        work = Path(tmp)
        wheel = project_wheel(work / "dist")
        ref = image_ref(wheel)
        target = out or repo_root() / "dist" / f"rayref-operator-{ref.rsplit(':', 1)[1]}.oci.tar"
        log(f"image: installing {wheel.name} into {VENV}")
        app = app_layer(deps_tree, wheel, installer, work)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = write_archive(target, [base, deps, app], IMAGE_CONFIG, ref, work)
    seconds = time.monotonic() - started
    return BuiltImage(target, ref, digest, target.stat().st_size, seconds, base_was_cached)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rayref.devcluster.image", description=__doc__)
    parser.add_argument("--output", type=Path, help="the archive to write")
    args = parser.parse_args(argv)
    try:
        built = build_image(args.output)
    except ImageBuildError as error:
        print(f"image: error: {error}", file=sys.stderr, flush=True)
        return 1
    cached = "cached" if built.base_was_cached else "built"
    print(
        f"image: {built.ref} ({built.manifest_digest}) in {built.archive}, "
        f"{built.size / 1e6:.1f} MB, {built.seconds:.1f} s (root filesystem {cached})",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
