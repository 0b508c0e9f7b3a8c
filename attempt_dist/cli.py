"""`attempt-dist` command line: one subcommand per module in attempt_dist/commands/.

Each command module defines `register(subparsers)` that adds its parser and sets
`func(args) -> int`. Add a new command by adding its module name to COMMANDS.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console

from .errors import UserError

COMMANDS = ["params", "plan", "sweep", "plot", "tasks", "train", "pipeline", "predict", "export"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="attempt-dist",
        description="ATTEMPT and its baselines over frozen T5: train, count, sweep, plot.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"attempt_dist.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
