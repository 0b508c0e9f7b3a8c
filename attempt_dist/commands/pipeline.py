"""`attempt-dist pipeline`: source prompts -> attention prior -> ATTEMPT on the targets."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("pipeline", help="source prompts -> attention prior -> ATTEMPT targets",
                                   add_help=False, prefix_chars="\0")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..pipeline import main

    return main(args.argv)
