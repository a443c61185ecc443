"""`rayref run`: the operator (kopf embedded, standalone, no peering)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rayref.controller.settings import OperatorSettings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        metavar="NAME",
        help="watch this namespace (repeatable); default: RAYREF_WATCH_NAMESPACES, else all",
    )
    scope.add_argument(
        "--all-namespaces",
        "-A",
        action="store_true",
        help="watch every namespace, whatever RAYREF_WATCH_NAMESPACES says",
    )


# How long the start-up check waits for the API server before it gives up.
PREFLIGHT_TIMEOUT_SECONDS = 10.0


def _reason(exc: BaseException) -> str:
    # urllib3 nests the cause: "Max retries exceeded ... (Caused by NewConnectionError(...
    # Connection refused))"; the innermost reason is the part a person can act on
    while exc.__cause__ is not None or getattr(exc, "reason", None) is not None:
        inner = getattr(exc, "reason", None) or exc.__cause__
        if not isinstance(inner, BaseException) or inner is exc:
            break
        exc = inner
    text = " ".join(str(exc).split())
    text = text.rsplit(": ", 1)[-1] if "Failed to establish" in text else text
    return text[:300]


def preflight_kubernetes(timeout: float = PREFLIGHT_TIMEOUT_SECONDS) -> tuple[int, str] | None:
    """(exit status, one line) if the API server cannot be used; None when it answers.

    kopf finds the configuration the same way (in-cluster, else the kubeconfig) but, when
    it fails, logs tracebacks and retries for ever; this check says it once and exits:
    2 for a missing or broken configuration, 1 for a server that does not answer.
    """
    try:
        import kubernetes
        from kubernetes.config.config_exception import ConfigException
    except ImportError:  # kopf then has no client login either; let it say so
        return None
    try:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    except Exception as exc:  # any loader failure is the same user error
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        return 2, (
            f"no usable Kubernetes configuration (not in a pod, kubeconfig {where}): {detail}"
        )
    config = kubernetes.client.Configuration.get_default_copy()
    config.retries = 0
    server = config.host
    try:
        with kubernetes.client.ApiClient(config) as api:
            kubernetes.client.VersionApi(api).get_code(_request_timeout=timeout)
    except kubernetes.client.ApiException as exc:
        if exc.status in (401, 403):
            return 1, (
                f"the Kubernetes API server {server} refused the credentials of the "
                f"kubeconfig (HTTP {exc.status})"
            )
        return None  # it answers; whatever else is wrong, kopf reports it in context
    except Exception as exc:  # transport failures come in many types
        return 1, f"cannot reach the Kubernetes API server {server}: {_reason(exc)}"
    return None


def run(args: argparse.Namespace) -> int:
    import asyncio

    import kopf

    from rayref.controller.handlers import register
    from rayref.controller.settings import OperatorSettings, SettingsError
    from rayref.observability.logs import configure_logging

    environ = dict(os.environ)
    if args.namespace:
        environ["RAYREF_WATCH_NAMESPACES"] = ",".join(args.namespace)
    elif args.all_namespaces:
        environ["RAYREF_WATCH_NAMESPACES"] = ""
    try:
        settings = OperatorSettings.from_env(environ)
    except SettingsError as exc:
        print(f"rayref run: {exc}", file=sys.stderr)
        return 2
    refused = preflight_kubernetes()
    if refused is not None:
        status, message = refused
        print(f"rayref run: {message}", file=sys.stderr)
        return status
    configure_logging(settings.log_level, settings.log_format)

    registry = kopf.OperatorRegistry()
    register(registry)
    namespaces = list(settings.watch_namespaces)

    def operator(memo: kopf.Memo, stop_flag: asyncio.Event | None) -> Awaitable[None]:
        # kopf as sharding and leader election run it (they serve /healthz themselves)
        return kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            stop_flag=stop_flag,
            memo=memo,
        )

    if settings.shards:
        from rayref.sharding.run import run_sharded

        return run_sharded(
            settings,
            environ,
            operator,
        )
    if settings.leader_election:
        from rayref.election.run import run_elected

        return run_elected(
            settings,
            environ,
            operator,
        )
    asyncio.run(_run_single(settings, operator))
    return 0


async def _run_single(
    settings: OperatorSettings, operator: Callable[[Any, Any], Awaitable[None]]
) -> None:
    """One replica, no election: the operator serves its probes itself, as the elected
    and sharded runs do (kopf's liveness endpoint has one path; readiness needs its own,
    `kube.health`)."""
    import kopf

    from rayref.kube.health import serve_health

    memo = kopf.Memo(settings=settings)
    # Alive once the startup handler built the runtime (and started the watches), as
    # kopf's own endpoint answered only after startup.
    runner = await serve_health(
        settings.health_port, lambda: {"role": "single"} if "runtime" in memo else None
    )
    try:
        await operator(memo, None)
    finally:
        if runner is not None:
            await runner.cleanup()


if __name__ == "__main__":  # `python -m rayref.controller.main`, without the other subcommands
    _parser = argparse.ArgumentParser(prog="rayref run")
    add_arguments(_parser)
    raise SystemExit(run(_parser.parse_args()))
