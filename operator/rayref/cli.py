"""The `rayref` command line: one entry point, each subcommand owned by its layer.

Only the chosen subcommand's module is imported, so `rayref get` does not pay
for kopf and `rayref run` does not pay for the simulator.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

# subcommand -> (module with add_arguments(parser) and run(args) -> int, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "get": ("rayref.commands.get", "read one remote Ray job or cluster and print it as JSON"),
    "simulate": ("rayref.simulator.cli", "run the local EMR API simulator"),
    "crds": ("rayref.api.crd", "write the CustomResourceDefinitions generated from the models"),
    "run": ("rayref.controller.main", "run the operator"),
    "demo": ("rayref.demo.cli", "run the demo: local control plane, simulator, operator, samples"),
}


def build_parser(command: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rayref",
        description="Mirror EMR Serverless Spark Ray jobs and clusters into Kubernetes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        if name == command:
            module = importlib.import_module(module_name)
            add_arguments: Callable[[argparse.ArgumentParser], None] = module.add_arguments
            add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(args_list)
    module = importlib.import_module(args._module)
    run: Callable[[argparse.Namespace], int] = module.run
    return run(args)
