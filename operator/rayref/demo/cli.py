"""`rayref demo`'s arguments and entry point; the steps are in `rayref.demo.session`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# operator/rayref/demo/cli.py -> the checkout (the demo runs only from one).
REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_TIMEOUT = 300.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        metavar="PATH",
        help="use the cluster of this kubeconfig instead of starting a local control plane "
        "(the CRDs are installed there; the operator and simulator still run locally)",
    )
    parser.add_argument(
        "--current-context",
        action="store_true",
        help="use the current context of $KUBECONFIG (or ~/.kube/config) instead of a local "
        "control plane; the demo stops with an error when that cluster is not reachable",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=REPO_ROOT / ".demo",
        metavar="DIR",
        help="kubeconfig, logs and control-plane files (default: .demo in the checkout)",
    )
    parser.add_argument(
        "--scenario",
        type=Path,
        default=REPO_ROOT / "examples" / "demo" / "scenario.yaml",
        help="the simulator's scenario (default: examples/demo/scenario.yaml)",
    )
    parser.add_argument(
        "--samples",
        type=Path,
        default=REPO_ROOT / "examples" / "demo" / "manifests",
        help="manifest file or directory applied once the operator runs "
        "(default: examples/demo/manifests)",
    )
    parser.add_argument(
        "--crds",
        type=Path,
        default=REPO_ROOT / "crds",
        help="directory of the CustomResourceDefinitions (default: crds)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        help="simulated seconds per wall second (default: the scenario's)",
    )
    parser.add_argument(
        "--until-complete",
        action="store_true",
        help="end once every sample ref reached its expected state (non-interactive); "
        "exit 1 if that takes longer than --timeout",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"with --until-complete: give up after this long (default {DEFAULT_TIMEOUT:.0f})",
    )


def run(args: argparse.Namespace) -> int:
    from rayref.demo.session import DemoOptions, run_demo

    # usage problems: one line and exit 2, before anything is started
    from rayref.simulator.limits import MAX_SPEED

    # the simulator's own bound, checked before the control plane is started for nothing
    if args.speed is not None and not 0 < args.speed <= MAX_SPEED:
        return _usage(f"--speed must be a positive number of at most {MAX_SPEED:g}")
    if not 0 < args.timeout < float("inf"):
        return _usage("--timeout must be a positive number")
    try:
        kubeconfig = _chosen_kubeconfig(args)
    except ValueError as refused:
        return _usage(str(refused))
    if kubeconfig is not None and not kubeconfig.is_file():
        return _usage(f"--kubeconfig {args.kubeconfig}: no such file")
    options = DemoOptions(
        workdir=args.workdir.resolve(),
        scenario=args.scenario.resolve(),
        samples=args.samples.resolve(),
        crds=args.crds.resolve(),
        kubeconfig=kubeconfig,
        speed=args.speed,
        until_complete=args.until_complete,
        timeout=args.timeout,
    )
    return run_demo(options)


def _usage(message: str) -> int:
    print(f"rayref demo: {message}", file=sys.stderr)
    return 2


def _chosen_kubeconfig(args: argparse.Namespace) -> Path | None:
    """The kubeconfig of an existing cluster, or None for the local control plane.

    The current context is used only when asked for: a demo must never apply its
    samples to whatever cluster a person happens to be logged into.
    """
    if args.kubeconfig is not None:
        if args.current_context:
            raise ValueError("give either --kubeconfig or --current-context")
        resolved: Path = args.kubeconfig.resolve()
        return resolved
    if not args.current_context:
        return None
    env = os.environ.get("KUBECONFIG", "")
    candidates = [Path(p) for p in env.split(os.pathsep) if p] or [Path.home() / ".kube" / "config"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    raise ValueError(
        "--current-context: no kubeconfig found "
        f"(looked at {', '.join(str(c) for c in candidates)})"
    )
