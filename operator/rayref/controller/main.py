"""`rayref run`: the operator (kopf embedded, standalone, no peering)."""

from __future__ import annotations

import argparse
import os
import sys


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
    configure_logging(settings.log_level, settings.log_format)

    registry = kopf.OperatorRegistry()
    register(registry)
    namespaces = list(settings.watch_namespaces)
    if settings.leader_election:
        from rayref.election.run import run_elected

        return run_elected(
            settings,
            environ,
            lambda memo, stop_flag: kopf.operator(
                registry=registry,
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
                stop_flag=stop_flag,
                memo=memo,
            ),
        )
    liveness = f"http://0.0.0.0:{settings.health_port}/healthz" if settings.health_port else None
    asyncio.run(
        kopf.operator(
            registry=registry,
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=liveness,
            memo=kopf.Memo(settings=settings),
        )
    )
    return 0


if __name__ == "__main__":  # `python -m rayref.controller.main`, without the other subcommands
    _parser = argparse.ArgumentParser(prog="rayref run")
    add_arguments(_parser)
    raise SystemExit(run(_parser.parse_args()))
