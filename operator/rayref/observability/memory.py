"""Giving freed heap back to the operating system.

At start the operator lists every ref and hands each over at once; the bodies are
freed soon after, but glibc keeps freed memory in the process unless asked to return
it, so the start-up peak would stay as the operator's resident size for good.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Callable


def _glibc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None
    return trim


_TRIM = _glibc_trim()


def release_free_memory() -> bool:
    """Return the allocator's free pages to the OS; False where that is not possible."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
