"""`attempt-dist train`: one training run (the same recipe as `deepspeed launch/train.py`)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train one method on one or more tasks",
                                   add_help=False, prefix_chars="\0")
    parser.add_argument("argv", nargs=argparse.REMAINDER)
    parser.set_defaults(func=run)


def run(args) -> int:
    from ..train import main

    return main(args.argv)
