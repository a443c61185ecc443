"""Client-side CPU cost of one GetRayJob call: build + sign the request, parse the reply.

No network: an httpx MockTransport answers with the example GetRayJob answer of
tests/data, so what is measured is what EmrClient adds per call (URL building,
AcsV3Auth signing, httpx request/response plumbing, pydantic parsing). The pieces are
also timed alone.

    .venv/bin/python bench/client_overhead.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "operator"))

from rayref.emr import signing  # noqa: E402
from rayref.emr.client import EmrClient  # noqa: E402
from rayref.emr.credentials import Credentials  # noqa: E402
from rayref.emr.models import RayJob  # noqa: E402

FIXTURE = REPO_ROOT / "tests" / "data" / "responses" / "get-ray-job.json"
CREDS = Credentials("STS.benchKey", "benchSECRETbenchSECRET0123456789", "CAIS+bench/token==")


def _per_call_us(seconds: float, calls: int) -> float:
    return seconds / calls * 1e6


def bench_parse(body: bytes, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        RayJob.model_validate_json(body)
    return _per_call_us(time.perf_counter() - start, calls)


def bench_sign_pure(calls: int) -> float:
    path = "/api/v1/workspaces/w-d2d82aa09155/rayJob/rj-a1b2c3d4e5f6"
    start = time.perf_counter()
    for _ in range(calls):
        headers = signing.required_headers(
            host="emr-serverless-spark.cn-hangzhou.aliyuncs.com",
            action="GetRayJob",
            credentials=CREDS,
            date=signing.utc_timestamp(),
            nonce=signing.new_nonce(),
        )
        signing.sign_request(
            method="GET",
            path=path,
            query={},
            headers=headers,
            access_key_id=CREDS.access_key_id,
            access_key_secret=CREDS.access_key_secret,
        )
    return _per_call_us(time.perf_counter() - start, calls)


def bench_sign(calls: int) -> float:
    auth = signing.AcsV3Auth(CREDS)
    url = "https://emr-serverless-spark.cn-hangzhou.aliyuncs.com/api/v1/workspaces/w-d2d82aa09155/rayJob/rj-a1b2c3d4e5f6"
    start = time.perf_counter()
    for _ in range(calls):
        request = httpx.Request("GET", url, headers={"x-acs-action": "GetRayJob"})
        next(auth.sync_auth_flow(request))
    return _per_call_us(time.perf_counter() - start, calls)


async def bench_client(body: bytes, calls: int) -> float:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    client = EmrClient(CREDS, region="cn-hangzhou", http_client=http)
    for _ in range(200):  # warm-up
        await client.get_ray_job("w-d2d82aa09155", "rj-a1b2c3d4e5f6")
    start = time.perf_counter()
    for _ in range(calls):
        await client.get_ray_job("w-d2d82aa09155", "rj-a1b2c3d4e5f6")
    elapsed = time.perf_counter() - start
    await http.aclose()
    return _per_call_us(elapsed, calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    body = FIXTURE.read_bytes()
    parse_us = bench_parse(body, args.calls)
    pure_us = bench_sign_pure(args.calls)
    sign_us = bench_sign(args.calls)
    total_us = asyncio.run(bench_client(body, args.calls))
    print(f"calls: {args.calls} (python {sys.version.split()[0]})")
    print(f"parse GetRayJob fixture:          {parse_us:8.1f} us/call")
    print(f"sign (pure functions):            {pure_us:8.1f} us/call")
    print(f"build + sign httpx request (auth): {sign_us:7.1f} us/call")
    print(f"parse + sign:                     {parse_us + sign_us:8.1f} us/call")
    print(f"EmrClient.get_ray_job end to end: {total_us:8.1f} us/call (mock transport, no I/O)")


if __name__ == "__main__":
    main()
