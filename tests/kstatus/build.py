"""Build the kstatus helper once and cache it beside the test bed's binaries.

The cache key is a hash of the module's sources and the Go toolchain version,
so editing main.go or bumping cli-utils in go.mod rebuilds; anything else
reuses ~/.cache/rayref/kstatus/<key>/kstatus.

    python -m tests.kstatus.build      # prints the binary's path
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent
_SOURCES = ("go.mod", "go.sum", "main.go")


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rayref" / "kstatus"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("the kstatus helper needs a Go toolchain on PATH (see .ci/run)")
    return go


def _cache_key(go: str) -> str:
    digest = hashlib.sha256()
    version = subprocess.run([go, "version"], check=True, capture_output=True, text=True)
    digest.update(version.stdout.encode())
    for name in _SOURCES:
        digest.update(name.encode() + b"\0" + (MODULE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def build() -> Path:
    """Return the path of the kstatus binary, building it if the cache misses."""
    go = _go()
    target = cache_root() / _cache_key(go) / "kstatus"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a concurrent run never sees half a file.
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        partial = Path(scratch) / "kstatus"
        subprocess.run(
            [go, "build", "-trimpath", "-o", str(partial), "."],
            cwd=MODULE_DIR,
            check=True,
        )
        os.replace(partial, target)
    return target


if __name__ == "__main__":
    try:
        print(build())
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"kstatus build failed: {exc}", file=sys.stderr)
        sys.exit(1)
