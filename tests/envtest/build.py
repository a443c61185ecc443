"""`python -m tests.envtest.build` (`make envtest`): build and cache the control plane.

The building itself lives in the package (`rayref.devcluster.build`) because
`rayref demo` needs the same binaries; this module is the test tier's entry point.
"""

from __future__ import annotations

import sys

from rayref.devcluster.build import ensure_binaries, main

__all__ = ["ensure_binaries"]

if __name__ == "__main__":
    sys.exit(main())
