"""Hypothesis strategies for remote responses: plausible, odd and plain garbage.

A body is a dict of the documented keys, each present or missing, each holding either a
value of the documented shape or something else entirely (wrong type, null, huge string,
unknown enum, unicode, nested garbage). `wire_bytes` turns bodies into what could arrive
on a socket, including text that is not JSON at all and JSON cut short.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

INT64_MAX = 2**63 - 1

# Any JSON value, nested a few levels; numbers include values no int64 or double can hold.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
garbage = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Strings a person would not expect: control characters, right-to-left marks, emoji, NULs.
odd_text = st.text(
    alphabet=st.characters(codec="utf-8"), min_size=0, max_size=60
) | st.sampled_from(["", " ", "\u0000", "\u202eevil", "💥" * 10, "Running\n", "null", "NaN"])
huge_text = st.integers(min_value=10_000, max_value=300_000).map(lambda n: "x" * n)
text_like = odd_text | huge_text | st.none() | garbage
epoch_ms = (
    st.integers(min_value=0, max_value=4_102_444_800_000)
    | st.integers(min_value=0, max_value=4_102_444_800_000).map(str)
    | st.sampled_from(["2025-06-19T09:58:02Z", "", "yesterday", "-1", "1e30"])
    | st.integers()
    | st.floats()
)
small_int = st.integers(min_value=-(10**6), max_value=10**6)
int_like = small_int | small_int.map(str) | st.integers() | garbage
float_like = st.floats() | small_int | small_int.map(str) | garbage


def _value(*good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A documented-shape value most of the time, anything at all otherwise."""
    plausible: st.SearchStrategy[Any] = st.one_of(*good)
    return st.one_of(plausible, plausible, plausible, garbage)


def _body(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    # Every key optional: a missing field is as likely as a present one.
    return st.fixed_dictionaries({}, optional=fields)


JOB_STATUSES = st.sampled_from(
    ["Submitted", "Pending", "Running", "Succeeded", "Failed", "Cancelling", "Cancelled", "Timeout"]
)
CLUSTER_STATES = st.sampled_from(["Starting", "Running", "Stopping", "Stopped", "Error"])
urls = st.sampled_from(
    [
        "https://gw.example/ws/w-1/raycluster/ray-1/dashboard?token=t0k3n",
        "not a url",
        "http://[::1",
        "https://u:p@host/x?token=a&token=b#token",
    ]
)

worker = _body(
    {
        "groupName": _value(odd_text),
        "workerType": _value(odd_text),
        "replica": _value(int_like),
        "minReplica": _value(int_like),
        "maxReplica": _value(int_like),
        "cpu": _value(odd_text, small_int),
        "memory": _value(odd_text),
        "env": _value(odd_text),
    }
)
head = _body(
    {
        "replica": _value(int_like),
        "enableAutoScaling": _value(st.booleans()),
        "cpu": _value(odd_text, small_int),
        "memory": _value(odd_text),
        "env": _value(odd_text),
        "gftEnabled": _value(st.booleans()),
        "gftConfig": _value(_body({"redisUrl": _value(urls), "redisPassword": _value(odd_text)})),
    }
)
tag = _body({"key": _value(odd_text), "value": _value(odd_text)})

job_fields: dict[str, st.SearchStrategy[Any]] = {
    "requestId": _value(odd_text),
    "submissionId": _value(odd_text),
    "name": _value(odd_text, huge_text),
    "status": _value(JOB_STATUSES, odd_text),
    "clusterState": _value(
        st.sampled_from(["Deleted", "Submitted", "Pending", "Running"]), odd_text
    ),
    "message": _value(odd_text, huge_text),
    "submitTime": _value(epoch_ms),
    "startTime": _value(epoch_ms),
    "endTime": _value(epoch_ms),
    "duration": _value(int_like),
    "cuHours": _value(float_like),
    "guHours": _value(_body({"gpuSpec": _value(odd_text), "gpuHours": _value(float_like)})),
    "tags": _value(st.lists(tag, max_size=3)),
    "entrypoint": _value(odd_text, huge_text),
    "entrypointNumCpus": _value(odd_text, small_int),
    "entrypointResources": _value(odd_text, st.just('{"fpu": 1e308, "x": "y", "n": null}')),
    "runtimeEnvJson": _value(odd_text, st.just('{"env_vars": {"K": "v"}}')),
    "volumeIds": _value(st.lists(odd_text, max_size=3)),
    "backoffLimit": _value(int_like),
    "headSpec": _value(head),
    "workerSpecs": _value(st.lists(worker, max_size=3)),
    "dashboardUrl": _value(urls),
    "dashboardUrlExtra": _value(st.lists(urls, max_size=2)),
    "logPath": _value(odd_text),
}
instance = _body(
    {
        "type": _value(st.sampled_from(["Head", "Worker"]), odd_text),
        "instanceId": _value(odd_text),
        "phase": _value(st.sampled_from(["Pending", "Running", "Failed"]), odd_text),
        "containerState": _value(st.sampled_from(["Running", "Waiting", "Terminated"]), odd_text),
        "reason": _value(st.just("OOMKilled"), odd_text, huge_text),
        "message": _value(odd_text, huge_text),
        "containerExitCode": _value(int_like),
        "startTime": _value(epoch_ms),
        "createTime": _value(epoch_ms),
    }
)
cluster_fields: dict[str, st.SearchStrategy[Any]] = {
    "requestId": _value(odd_text),
    "clusterId": _value(odd_text),
    "name": _value(odd_text, huge_text),
    "description": _value(odd_text, huge_text),
    "state": _value(CLUSTER_STATES, odd_text),
    "message": _value(odd_text, huge_text),
    "instances": _value(st.lists(instance, max_size=4)),
    "headSpec": _value(head),
    "workerSpec": _value(st.lists(worker, max_size=3)),
    "dashboardUrl": _value(urls),
    "submitToken": _value(odd_text),
    "jobUrl": _value(odd_text),
    "grpcEndpoint": _value(odd_text),
    "modified": _value(st.booleans()),
    "createTime": _value(epoch_ms),
    "startTime": _value(epoch_ms),
}

job_bodies = _body(job_fields)
cluster_bodies = _body(cluster_fields)
job_pages = _body(
    {
        "requestId": _value(odd_text),
        "totalCount": _value(int_like),
        "rayJobs": _value(st.lists(job_bodies, max_size=3)),
    }
)
cluster_pages = _body(
    {"requestId": _value(odd_text), "rayClusters": _value(st.lists(cluster_bodies, max_size=3))}
)


@st.composite
def wire_bytes(draw: st.DrawFn, bodies: st.SearchStrategy[Any]) -> bytes:
    """What could arrive as a 200 answer: JSON, JSON cut short, a non-object, or junk."""
    body = draw(bodies | garbage)
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    shape = draw(st.sampled_from(["whole", "whole", "cut", "bytes", "wrapped"]))
    if shape == "cut":
        return text.encode()[: draw(st.integers(min_value=0, max_value=len(text)))]
    if shape == "bytes":
        return draw(st.binary(max_size=64))
    if shape == "wrapped":
        return (draw(st.sampled_from(["<html>", "\ufeff", " ", "[", "{{"])) + text).encode()
    return text.encode("utf-8", errors="surrogatepass")
