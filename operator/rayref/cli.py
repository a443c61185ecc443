"""The `rayref` command line: one entry point, each subcommand owned by its layer.

Only the chosen subcommand's module is imported, so `rayref get` does not pay
for kopf and `rayref run` does not pay for the simulator.

Every failure a user can cause ends in one line on stderr, never a traceback: exit 2
for a usage problem (a flag, an argument, a file named on the command line), 1 for
trouble at run time, 130 for Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NoReturn

# subcommand -> (module with add_arguments(parser) and run(args) -> int, help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "get": ("rayref.commands.get", "read one remote Ray job or cluster and print it as JSON"),
    "logs": ("rayref.commands.logs", "print a remote Ray job's driver log (or list its files)"),
    "simulate": ("rayref.simulator.cli", "run the local EMR API simulator"),
    "crds": ("rayref.api.crd", "write the CustomResourceDefinitions generated from the models"),
    "run": ("rayref.controller.main", "run the operator"),
    "demo": ("rayref.demo.cli", "run the demo: local control plane, simulator, operator, samples"),
}
# The wheel, hence the image, leaves these subcommands' packages out: from such an
# install they say where they run instead of failing with a traceback.
CHECKOUT_ONLY: dict[str, str] = {
    "demo": "rayref demo needs a rayref checkout: run `make demo` there "
    "(this installation carries the operator only)",
}


def _subcommand_module(name: str, module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if name in CHECKOUT_ONLY and (
            module_name == missing or module_name.startswith(f"{missing}.")
        ):
            print(CHECKOUT_ONLY[name], file=sys.stderr)
            raise SystemExit(2) from None
        raise


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(command: str | None) -> argparse.ArgumentParser:
    from rayref import __version__

    parser = OneLineParser(
        prog="rayref",
        description="Mirror EMR Serverless Spark Ray jobs and clusters into Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"rayref {__version__}")
    # subparsers are of the parser's own class, so they answer in one line too
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        sp.set_defaults(_module=module_name)
        if name == command:
            module = _subcommand_module(name, module_name)
            add_arguments: Callable[[argparse.ArgumentParser], None] = module.add_arguments
            add_arguments(sp)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in args_list if not a.startswith("-")), None)
    parser = build_parser(command if command in SUBCOMMANDS else None)
    args = parser.parse_args(args_list)
    module = _subcommand_module(args.command, args._module)
    run: Callable[[argparse.Namespace], int] = module.run
    try:
        return run(args)
    except KeyboardInterrupt:
        print(f"rayref {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # a file or socket the system refused (`rayref crds -o /unwritable`): say which
        what = f"{exc.filename}: " if exc.filename else ""
        print(f"rayref {args.command}: {what}{exc.strerror or exc}", file=sys.stderr)
        return 1
