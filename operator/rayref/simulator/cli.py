"""`rayref simulate`: run the local EMR API simulator."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=8787, help="port to bind; 0 picks a free one")
    parser.add_argument(
        "--scenario", type=Path, default=None, help="scenario file (YAML or JSON) to seed from"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="simulated seconds per wall second (default: the scenario's, else 1)",
    )
    parser.add_argument("--log-level", default="WARNING", help="Python log level")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from rayref.simulator.scenario import Scenario, load_scenario
    from rayref.simulator.server import serve

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    scenario = load_scenario(args.scenario) if args.scenario else Scenario()
    if args.speed is not None and args.speed < 0:
        raise SystemExit("--speed must not be negative")
    asyncio.run(serve(scenario, host=args.host, port=args.port, speed=args.speed))
    return 0
