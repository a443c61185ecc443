"""Build the kstatus helper once and cache it beside the test bed's binaries.

`python -m tests.kstatus.build` prints the binary's path. The cache key is a hash
of the module's sources and the Go version, so editing main.go or bumping
cli-utils in go.mod rebuilds; anything else reuses
~/.cache/rayref/kstatus/<key>/kstatus. Go is found the way the test bed finds
it (`rayref.devcluster.build.find_go`).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

from rayref.devcluster.build import DevClusterBuildError, find_go

MODULE_DIR = Path(__file__).resolve().parent
_SOURCES = ("go.mod", "go.sum", "main.go")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rayref" / "kstatus"


def _cache_key(go: str) -> str:
    digest = hashlib.sha256()
    version = subprocess.run([go, "version"], check=True, capture_output=True, text=True)
    digest.update(version.stdout.encode())
    for name in _SOURCES:
        digest.update(name.encode() + b"\0" + (MODULE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def build() -> Path:
    """Return the path of the kstatus binary, building it if the cache misses."""
    go = find_go()
    target = cache_root() / _cache_key(go) / "kstatus"
    if os.access(target, os.X_OK):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build at a time; a second session waits, then finds the binary cached.
    with (target.parent / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.access(target, os.X_OK):
            return target
        partial = target.with_name(f".kstatus.{os.getpid()}.tmp")
        env = dict(os.environ, CGO_ENABLED="0", GOWORK="off", GOFLAGS="-trimpath -buildvcs=false")
        result = subprocess.run(
            [go, "build", "-o", str(partial), "."],
            cwd=MODULE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise DevClusterBuildError(f"building the kstatus helper failed:\n{result.stderr}")
        partial.replace(target)
    return target


if __name__ == "__main__":
    try:
        print(build())
    except DevClusterBuildError as exc:
        print(f"kstatus: error: {exc}", file=sys.stderr)
        sys.exit(1)
