"""`rayref simulate`: run the local EMR API simulator.

Bad input ends with one line on stderr: exit 2 for a usage problem (a flag, a scenario
file that is missing or invalid), 1 for trouble at run time (the port is taken).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (0 to 65535)")
    return port


def _host(text: str) -> str:
    # checked here so that a control character cannot split the "cannot listen" line
    if not text or len(text) > 253 or not all("!" <= char <= "~" for char in text):
        raise argparse.ArgumentTypeError(f"{text[:80]!r} is not a host name or address")
    return text


def _speed(text: str) -> float:
    from rayref.simulator.limits import MAX_SPEED

    try:
        speed = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(speed) or not 0 <= speed <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"{text} is not from 0 to {MAX_SPEED:g}")
    return speed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", type=_host, default="127.0.0.1", help="address to bind (default: loopback)"
    )
    parser.add_argument(
        "--port", type=_port, default=8787, help="port to bind; 0 picks a free one (default: 8787)"
    )
    parser.add_argument(
        "--scenario",
        type=Path,
        default=None,
        metavar="FILE",
        help="scenario file (YAML, or JSON if it ends in .json) to seed from",
    )
    parser.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="simulated seconds per wall second (default: the scenario's, else 1)",
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default="WARNING",
        metavar="LEVEL",
        help="Python log level: " + ", ".join(LOG_LEVELS) + " (default: WARNING)",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from rayref.simulator.scenario import Scenario, ScenarioError, load_scenario
    from rayref.simulator.server import ListenError, serve

    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s %(message)s")
    try:
        scenario = load_scenario(args.scenario) if args.scenario else Scenario()
    except ScenarioError as exc:
        print(f"rayref simulate: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(scenario, host=args.host, port=args.port, speed=args.speed))
    except ListenError as exc:
        print(f"rayref simulate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
