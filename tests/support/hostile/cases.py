"""One generated case: the objects one hostile tenant puts in its own namespace.

A case holds CRD-valid refs and sets (some aimed at the case's own remote objects with
usable credentials so that their edge answers are really read, some at whatever the
schema allowed), stored statuses for some refs, credentials Secrets with odd values, and
the remote jobs and clusters of the case's own workspace. Every planted secret value is
listed in `markers`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import strategies as st

from rayref.api.kinds import CLUSTER_KIND, CLUSTER_SET_KIND, JOB_KIND, JOB_SET_KIND
from tests.support.hostile import remote
from tests.support.hostile.schema import specs, statuses

# How a ref or set finds its credentials.
#   valid: a Secret of its namespace with the scenario's key (reads really happen)
#   odd: a Secret of its namespace with odd values
#   none: no Secret; the namespace may not use the operator-wide credentials
#   witness: the name of the witness's Secret, which exists only in the witness's namespace
#   drawn: whatever name the schema drew (no such Secret)
Credentials = Literal["valid", "odd", "none", "witness", "drawn"]
VALID_SECRET = "valid"
CROWD = 40
WITNESS_SECRET = "witness-creds"
# CRD object names: DNS subdomains, up to 253 characters.
NAMES = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)
LONG_NAME = st.sampled_from(["a" * 253, "z" + "-9" * 126, "a." * 126 + "b"])
# Credential values nobody sends on purpose (each piece is joined around a marker).
ODD_PIECES = (
    "",
    "\r\n",
    "\n",
    "\u00e9\u00e8",
    "\u7528\u6237",
    "\U0001f511",
    " ",
    "\x00",
    "\t",
    "=",
    "a" * 200_000,
)


@dataclass(frozen=True)
class SecretPlan:
    name: str
    data: dict[str, str]  # base64 values, as a Secret's `data`


@dataclass(frozen=True)
class RefPlan:
    kind: str
    name: str
    spec: dict[str, Any]
    credentials: Credentials
    aimed: bool  # at one of the case's own remote objects
    status: dict[str, Any] | None


@dataclass(frozen=True)
class SetPlan:
    kind: str
    name: str
    spec: dict[str, Any]
    credentials: Credentials
    aimed: bool


@dataclass
class HostileCase:
    refs: list[RefPlan]
    sets: list[SetPlan]
    secrets: list[SecretPlan]
    jobs: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    markers: list[str] = field(default_factory=list)
    # this many more job refs, all reading the case's first job with the usable Secret:
    # a crowd in one namespace that the witness must not wait behind
    crowd: int = 0

    @property
    def objects(self) -> int:
        """What the tenant created: refs, sets, Secrets and remote objects."""
        made = len(self.refs) + len(self.sets) + len(self.secrets) + self.crowd
        return made + len(self.jobs) + len(self.clusters)

    def __repr__(self) -> str:
        # hypothesis prints a failing case; the long values are cut so it stays readable
        return repr(
            {
                "refs": [
                    (r.kind, r.name, r.credentials, r.aimed, _cut(r.spec), r.status is not None)
                    for r in self.refs
                ],
                "sets": [(s.kind, s.name, s.credentials, s.aimed, _cut(s.spec)) for s in self.sets],
                "secrets": [(s.name, sorted(s.data)) for s in self.secrets],
                "jobs": [_cut(j) for j in self.jobs],
                "clusters": [_cut(c) for c in self.clusters],
                "crowd": self.crowd,
            }
        )


def _cut(value: Any, limit: int = 80) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}...({len(value)} chars)"
    if isinstance(value, dict):
        return {k: _cut(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v, limit) for v in value[:3]] + (
            [f"...{len(value)} items"] if len(value) > 3 else []
        )
    return value


def _b64(value: str | bytes) -> str:
    raw = value.encode("utf-8", errors="surrogatepass") if isinstance(value, str) else value
    return base64.b64encode(raw).decode()


@st.composite
def odd_secret(draw: st.DrawFn, name: str, marker: str) -> SecretPlan:
    """Credentials a tenant got wrong: non-ASCII, CR/LF, NUL, empty, huge, not UTF-8, env
    style or SDK style keys; the secret key always carries the marker when not empty."""
    pieces = st.sampled_from(ODD_PIECES)
    secret = draw(
        st.one_of(st.just(""), st.tuples(pieces, pieces).map(lambda p: p[0] + marker + p[1]))
    )
    key_id = draw(st.one_of(st.sampled_from(ODD_PIECES[:10]), st.just("LTAI\u00e9\r\nx")))
    style = draw(st.sampled_from(["sdk", "env", "mixed"]))
    data: dict[str, str | bytes] = {
        "sdk": {"accessKeyId": key_id, "accessKeySecret": secret},
        "env": {"ALIBABA_CLOUD_ACCESS_KEY_ID": key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret},
        "mixed": {"accessKeyId": key_id, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret},
    }[style]
    if draw(st.booleans()):
        tokens: list[str | bytes] = [marker + "\r\n", b"\xff\xfe" + marker.encode(), ""]
        data["securityToken"] = draw(st.sampled_from(tokens))
    if draw(st.booleans()):
        # bytes that are no UTF-8 text at all
        data["accessKeySecret"] = b"\xc3\x28" + marker.encode() + b"\x80"
    return SecretPlan(name, {key: _b64(value) for key, value in data.items()})


def _aim_ref(kind: str, spec: dict[str, Any], workspace: str, remote_id: str) -> dict[str, Any]:
    id_key = "submissionId" if kind == JOB_KIND else "clusterId"
    return {**spec, "workspaceId": workspace, id_key: remote_id}


def _with_credentials(
    spec: dict[str, Any], credentials: Credentials, odd_names: list[str]
) -> dict[str, Any]:
    spec = dict(spec)
    if credentials == "none":
        spec.pop("credentialsSecretRef", None)
    elif credentials == "valid":
        spec["credentialsSecretRef"] = {"name": VALID_SECRET}
    elif credentials == "witness":
        spec["credentialsSecretRef"] = {"name": WITNESS_SECRET}
    elif credentials == "odd":
        spec["credentialsSecretRef"] = {"name": odd_names[0]}
    elif "credentialsSecretRef" not in spec:
        spec["credentialsSecretRef"] = {"name": "no-such-secret"}
    return spec


KINDS = [JOB_KIND, CLUSTER_KIND]
CREDENTIALS: st.SearchStrategy[Credentials] = st.sampled_from(
    ["valid", "valid", "odd", "none", "witness", "drawn"]
)


@st.composite
def hostile_cases(draw: st.DrawFn, workspace: str = "w-0") -> HostileCase:
    """A tenant's objects. `workspace` is replaced by the case's own before it runs:
    the remote IDs are the simulator's (`job-N`, `cluster-N` are placeholders)."""
    case_markers = draw(st.lists(remote.markers(), min_size=4, max_size=4, unique=True))
    jobs = draw(st.lists(remote.job_fields(case_markers[0]), min_size=1, max_size=3))
    clusters = draw(st.lists(remote.cluster_fields(case_markers[1]), min_size=1, max_size=2))
    secrets = [draw(odd_secret(f"odd-{i}", case_markers[2 + i])) for i in range(2)]
    odd_names = [s.name for s in secrets]
    names = draw(
        st.lists(st.one_of(NAMES, NAMES, NAMES, LONG_NAME), min_size=14, max_size=14, unique=True)
    )
    refs: list[RefPlan] = []
    for index in range(draw(st.integers(2, 12))):
        # the first two read a remote job and a remote cluster for sure, so every case
        # has statuses, Events and logs made from its edge answers
        sure = index < 2
        kind = [JOB_KIND, CLUSTER_KIND][index] if sure else draw(st.sampled_from(KINDS))
        spec = draw(specs(kind))
        aimed = sure or draw(st.booleans())
        credentials: Credentials = "valid" if sure else draw(CREDENTIALS)
        if aimed:
            pool = len(jobs) if kind == JOB_KIND else len(clusters)
            prefix = "job" if kind == JOB_KIND else "cluster"
            spec = _aim_ref(kind, spec, workspace, f"{prefix}-{draw(st.integers(0, pool - 1))}")
        if sure:
            spec["suspend"] = False
        spec = _with_credentials(spec, credentials, odd_names)
        status = draw(st.one_of(st.none(), statuses(kind)))
        refs.append(RefPlan(kind, names[index], spec, credentials, aimed, status))
    sets: list[SetPlan] = []
    for index in range(draw(st.integers(0, 2))):
        kind = draw(st.sampled_from([JOB_SET_KIND, CLUSTER_SET_KIND]))
        spec = draw(specs(kind))
        aimed = draw(st.booleans())
        credentials = draw(CREDENTIALS)
        if aimed:
            spec = {**spec, "workspaceId": workspace}
        spec = _with_credentials(spec, credentials, odd_names)
        sets.append(SetPlan(kind, names[12 + index], spec, credentials, aimed))
    crowd = draw(st.sampled_from([0, 0, 0, CROWD]))
    return HostileCase(refs, sets, secrets, jobs, clusters, list(case_markers), crowd)
