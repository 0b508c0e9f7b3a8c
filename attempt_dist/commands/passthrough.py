"""Commands that hand their whole argument list to a module's own `main(argv)` (train, pipeline),
so `attempt-dist train ...` and `deepspeed launch/train.py ...` parse the very same options."""

from __future__ import annotations

import argparse
import importlib


def register_passthrough(subparsers, name: str, help_text: str, module: str) -> None:
    """`module` is imported only when the command runs (it may import torch: see cli.py)."""
    # prefix_chars="\0": no option of the sub-command is taken by this parser, --help included.
    parser = subparsers.add_parser(name, help=help_text, add_help=False, prefix_chars="\0")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    parser.set_defaults(func=lambda args: importlib.import_module(module).main(args.argv))
