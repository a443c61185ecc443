"""Bounds of every number and ID the simulator accepts (scenario files, control API).

The simulator must keep answering whatever a test sends it, so each input is held to
what the real API could show: IDs that match rayref's own patterns, finite durations,
timestamps that stay valid dates. The bounds are far beyond any test's needs and low
enough that no sum of them overflows a timestamp or an integer conversion.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rayref.emr.endpoints import CLUSTER_ID_PATTERN, SUBMISSION_ID_PATTERN, WORKSPACE_ID_PATTERN

# Simulated time never passes 3000-01-01T00:00:00Z. A job's timeline adds at most six
# durations of MAX_DURATION_SECONDS to it, which still ends before year 10000, the last
# year a client's date type can hold.
MAX_SIM_MS = 32_503_680_000_000
MAX_DURATION_SECONDS = 100 * 365 * 86_400
# Seeded history reaches back at most 50 years: wall time is past 2020, so a seeded
# timestamp never goes below the epoch.
MAX_AGE_SECONDS = 50 * 365 * 86_400
MAX_SPEED = 1_000_000.0

# strict: a number, never "60" or true
Duration = Annotated[float, Field(ge=0, le=MAX_DURATION_SECONDS, allow_inf_nan=False, strict=True)]
Age = Annotated[float, Field(ge=0, le=MAX_AGE_SECONDS, allow_inf_nan=False, strict=True)]
Speed = Annotated[float, Field(ge=0, le=MAX_SPEED, allow_inf_nan=False, strict=True)]
# a JSON number of an API field (an int is a number too)
Number = Annotated[float, Field(allow_inf_nan=False, strict=True)]

WorkspaceId = Annotated[str, Field(pattern=WORKSPACE_ID_PATTERN, strict=True)]
SubmissionId = Annotated[str, Field(pattern=SUBMISSION_ID_PATTERN, strict=True)]
ClusterId = Annotated[str, Field(pattern=CLUSTER_ID_PATTERN, strict=True)]
# An AccessKey id is a path segment of the control API and part of `Authorization`.
AccessKeyId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", strict=True)]
# What an HTTP header can carry: visible ASCII, no spaces.
HeaderToken = Annotated[str, Field(pattern=r"^[!-~]{1,8192}$", strict=True)]
# "head" or "worker-N", the instance keys of a cluster run.
InstanceKey = Annotated[str, Field(pattern=r"^(head|worker-[0-9]{1,4})$", strict=True)]
