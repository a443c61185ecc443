"""The `rayref` command line: one entry point, each subcommand owned by its layer.

Subcommands import their module lazily so that `rayref get` does not pay for
kopf and `rayref run` does not pay for the simulator.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

# subcommand -> (module, function that adds arguments, function that runs)
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "get": ("rayref.commands.get", "read one remote Ray job or cluster and print it as JSON"),
    "simulate": ("rayref.simulator.cli", "run the local EMR API simulator"),
    "crds": ("rayref.api.crd", "write the CustomResourceDefinitions generated from the models"),
    "run": ("rayref.controller.main", "run the operator"),
    "demo": ("rayref.demo", "run the demo: local control plane, simulator, operator, samples"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rayref", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        add_arguments: Callable[[argparse.ArgumentParser], None] = module.add_arguments
        add_arguments(sp)
        sp.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    run: Callable[[argparse.Namespace], int] = module.run
    return run(args)
