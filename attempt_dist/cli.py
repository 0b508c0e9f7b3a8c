"""`attempt-dist` command line: one subcommand per module in attempt_dist/commands/.

Each command module defines HELP (its line in `attempt-dist --help`) and `register(subparsers)`
that adds its parser and sets `func(args) -> int`. Add a new command by adding its module name
to COMMANDS. Only the command that runs builds its whole parser (some options come from the
methods, which import torch); the others only show their HELP. So a command module imports
nothing heavy (torch, transformers, scipy, ...) at its top: `--help`, `tasks` and `sweep status`
start in a fraction of a second (tests/test_cli_startup.py, benchmarks/startup.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console

from .errors import UserError, ends_on_ctrl_c

COMMANDS = ["params", "plan", "sweep", "plot", "compare", "tasks", "train", "pipeline", "predict", "export",
            "prepare"]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser: `command`'s whole sub-parser, every other command (all of them when
    `command` is None) as its name and HELP only."""
    parser = argparse.ArgumentParser(
        prog="attempt-dist",
        description="ATTEMPT and its baselines over frozen T5: train, count, sweep, plot.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"attempt_dist.commands.{name}")
        if name == command:
            module.register(sub)
        else:
            sub.add_parser(name, help=module.HELP)
    return parser


# Answers that depend only on their arguments and the code: a repeated one is replayed from
# the cache before any heavy import (shape_cache.cached_answer).
CACHED_ANSWERS = ("params", "plan")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((arg for arg in argv if not arg.startswith("-")), None)  # no global options take a value
    if command in CACHED_ANSWERS and "-h" not in argv and "--help" not in argv:
        from .shape_cache import cached_answer

        return cached_answer(argv, lambda: _run(command, argv))
    return _run(command, argv)


@ends_on_ctrl_c
def _run(command: str | None, argv: list[str]) -> int:
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        Console(stderr=True).print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
