"""`python -m rayref.simulator`: the same as `rayref simulate`, without the other subcommands."""

import argparse

from rayref.simulator.cli import add_arguments, run

_parser = argparse.ArgumentParser(
    prog="rayref-simulator", description="run the local EMR API simulator"
)
add_arguments(_parser)
raise SystemExit(run(_parser.parse_args()))
