"""Remote answers with edge values, set through the simulator's control API: times at
year 1 and 9999, numbers at the ends of int64 and of a double, unicode everywhere, and
planted secret markers in every place the API can carry one (URL userinfo, `?token=`,
`;token=`, `password=`, runtimeEnvJson's env_vars and working_dir, metadataJson,
extraParam, submitToken, node env, Redis credentials).

Every value here is one the simulator accepts (its documented JSON types); numbers are
not range-checked there, so out-of-range ones reach the operator as a broken API would
send them.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.support.hostile.schema import texts
from tests.support.leakscan import PLANT_KEYS, planted_job_fields, runtime_env_json, text_forms

YEAR_1_MS = -62_135_596_800_000
YEAR_9999_MS = 253_402_300_799_999
EDGE_MS = (YEAR_1_MS, YEAR_9999_MS, 0, -1, 2**53, 2**63 - 1, -(2**63))
EDGE_INTS = (0, -1, 2**31 - 1, -(2**31), 2**53 + 1, 2**63 - 1, -(2**63))
EDGE_NUMBERS = (0.0, -0.0, 1.7976931348623157e308, -1e308, 5e-324, 1e-7, 2**64)
JOB_STATES = ("Submitted", "Pending", "Running", "Succeeded", "Failed", "Cancelling")
CLUSTER_STATES = ("Starting", "Running", "Stopping", "Stopped", "Error")
# A marker is long and random enough that finding it anywhere means it leaked.
MARKER_HEX = 16


def markers() -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=MARKER_HEX, max_size=MARKER_HEX).map(
        lambda digits: f"LEAKHOSTILE{digits}"
    )


def free_text() -> st.SearchStrategy[str]:
    """A remote string: unicode, tricky pieces, or a very long one."""
    return st.one_of(
        texts(0, 200), st.characters(exclude_categories=["Cs"]).map(lambda c: c * 70_000)
    )


def times() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_MS), st.integers(YEAR_1_MS, YEAR_9999_MS))


def ints() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(EDGE_INTS), st.integers(-(2**63), 2**63 - 1))


def numbers() -> st.SearchStrategy[float | int]:
    floats = st.floats(allow_nan=False, allow_infinity=False)
    return st.one_of(st.sampled_from(EDGE_NUMBERS), floats)


def secret_urls(marker: str) -> st.SearchStrategy[str]:
    """A URL carrying the marker where a credential hides in a URL."""
    forms = (
        f"https://user:{marker}@emr-ray-gateway.example.com/workspace/w/dashboard",
        f"https://emr-ray-gateway.example.com/d;token={marker}/x",
        f"https://emr-ray-gateway.example.com/d?token={marker}&x=1",
        f"https://emr-ray-gateway.example.com/d?a=1&password={marker}",
        f"https://emr-ray-gateway.example.com/d?TOKEN={marker}#frag",
        f"redis://default:{marker}@r-1.redis.example.com:6379/0",
        f"oss://AKID:{marker}@bucket/working.zip",
        f"https://{marker}@host.example.com/",
    )
    return st.sampled_from(forms)


def runtime_env(marker: str, url: str) -> st.SearchStrategy[str]:
    forms = (
        {"env_vars": {"REDIS_PASSWORD": marker}, "working_dir": url},
        {"env_vars": {"A": "\u00e9", "TOKEN": marker}},
        {"working_dir": url, "pip": [f"git+https://u:{marker}@git.example.com/p.git"]},
        {"env_vars": {"NESTED": {"deep": marker}}},
    )
    text = st.sampled_from(forms).map(lambda value: json.dumps(value, ensure_ascii=False))
    # not JSON at all: must be masked whole
    return st.one_of(
        text, st.just(f"env_vars=PASSWORD={marker}"), st.just(runtime_env_json(marker))
    )


def secret_texts(marker: str) -> st.SearchStrategy[str]:
    """Free text carrying the marker in one of the forms the redaction rule covers
    (tests.support.leakscan.text_forms), with any of its key names."""
    return st.tuples(st.sampled_from(PLANT_KEYS), st.integers(0, 10)).map(
        lambda pair: list(text_forms(marker, pair[0]).values())[pair[1]]
    )


def metadata_json(marker: str) -> st.SearchStrategy[str]:
    forms = (
        json.dumps({"owner": "\u7528\u6237", "password": marker}, ensure_ascii=False),
        json.dumps({"nested": {"token": marker}, "list": [marker]}),
        f"password={marker}",
        json.dumps([marker]),
    )
    return st.sampled_from(forms)


def tags() -> st.SearchStrategy[list[dict[str, str]]]:
    tag = st.fixed_dictionaries({"key": texts(0, 80), "value": texts(0, 80)})
    return st.lists(tag, max_size=4)


def instances() -> st.SearchStrategy[list[dict[str, Any]]]:
    node = st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["Head", "Worker", "\u00fcber"]),
            "instanceId": texts(0, 120),
            "phase": st.sampled_from(["Running", "Failed", "Pending", "\U0001f4a5"]),
            "containerState": texts(0, 40),
            "reason": st.sampled_from(["OOMKilled", "", "\u202eOOM"]),
            "message": free_text(),
            "startTime": times(),
            "createTime": times(),
            "containerExitCode": ints(),
            "containerStateReason": texts(0, 40),
            "containerStateMessage": texts(0, 200),
        },
    )
    return st.lists(node, max_size=4)


def node_spec(marker: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "env": st.just(json.dumps({"DB_PASSWORD": marker})),
            "gftConfig": st.just(
                {
                    "redisUrl": f"redis://default:{marker}@redis.example.com:6379/0",
                    "redisUsername": "default",
                    "redisPassword": marker,
                }
            ),
            "rayStartParams": st.just(json.dumps({"redis-password": marker, "num-cpus": "0"})),
        },
        optional={
            "replica": ints(),
            "cpu": texts(0, 20),
            "memory": texts(0, 20),
            "idleTimeoutSeconds": ints(),
            "queueName": texts(0, 80),
        },
    )


@st.composite
def job_fields(draw: st.DrawFn, marker: str) -> dict[str, Any]:
    """GetRayJob fields of one hostile remote job; the marker sits in each secret place."""
    url = draw(secret_urls(marker))
    optional = {
        "name": free_text(),
        "message": st.one_of(free_text(), secret_texts(marker)),
        "status": st.one_of(st.sampled_from(JOB_STATES), texts(1, 40)),
        "submitTime": times(),
        "startTime": times(),
        "endTime": times(),
        "duration": ints(),
        "cuHours": numbers(),
        "entrypoint": st.one_of(free_text(), secret_texts(marker)),
        "creatorName": free_text(),
        "tags": tags(),
        "volumeIds": st.lists(texts(0, 80), max_size=3),
        "backoffLimit": ints(),
        "ttlSecondsAfterFinished": ints(),
        "entrypointNumCpus": texts(0, 20),
        "guHours": st.fixed_dictionaries({"gpuSpec": texts(0, 20), "gpuHours": numbers()}),
    }
    fields = draw(st.fixed_dictionaries({}, optional=optional))
    if draw(st.booleans()):
        # every field a user controls, each with the marker in another form
        fields.update(planted_job_fields(marker))
    fields.update(
        dashboardUrl=url,
        workingDir=draw(secret_urls(marker)),
        runtimeEnvJson=draw(runtime_env(marker, url)),
        metadataJson=draw(metadata_json(marker)),
        extraParam=json.dumps({"password": marker}),
        dashboardUrlExtra=[url],
    )
    return fields


@st.composite
def cluster_fields(draw: st.DrawFn, marker: str) -> dict[str, Any]:
    """GetRayCluster fields of one hostile remote cluster, the marker in each secret place."""
    optional = {
        "name": free_text(),
        "state": st.one_of(st.sampled_from(CLUSTER_STATES), texts(1, 40)),
        "message": st.one_of(free_text(), secret_texts(marker)),
        "description": st.one_of(free_text(), secret_texts(marker)),
        "instances": instances(),
        "createTime": times(),
        "startTime": times(),
        "modifiedTime": times(),
        "volumeIds": st.lists(texts(0, 80), max_size=3),
        "creatorName": free_text(),
        "modified": st.booleans(),
    }
    fields = draw(st.fixed_dictionaries({}, optional=optional))
    fields.update(
        submitToken=marker,
        dashboardUrl=draw(secret_urls(marker)),
        jobUrl=draw(secret_urls(marker)),
        jobUrlInner=draw(secret_urls(marker)),
        grpcEndpoint=f"ray://user:{marker}@10.0.0.1:10001",
        extraParam=json.dumps({"token": marker}),
        headSpec=draw(node_spec(marker)),
        workerSpec=[draw(node_spec(marker))],
    )
    return fields
