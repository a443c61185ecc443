"""Run the `rayref` command line as a user would (`python -m rayref ...`), in an
environment that holds nothing of this machine's: no credentials, no kubeconfig, no
cloud metadata service, so a test sees exactly what it passes."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping

from tests.fixtures.paths import REPO_ROOT

TIMEOUT = 90.0


def clean_env(**extra: str) -> dict[str, str]:
    """PATH and HOME, every default credential source pointed at nothing, and `extra`."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "ALIBABA_CLOUD_CREDENTIALS_FILE": "/nonexistent/credentials.ini",
        "KUBECONFIG": "/nonexistent/kubeconfig",
        **extra,
    }


async def rayref(*args: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """`rayref ARGS` to its end: exit code, stdout, stderr (killed after TIMEOUT)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rayref",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env if env is not None else clean_env()),
        cwd=REPO_ROOT,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def one_line(err: str) -> str:
    """The only line of `err`; fails the test on a traceback or a second line."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]
