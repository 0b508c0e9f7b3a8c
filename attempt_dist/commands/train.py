"""`attempt-dist train`: one training run (the same recipe as `deepspeed launch/train.py`)."""

from .passthrough import register_passthrough

HELP = "train one method on one or more tasks"


def register(subparsers) -> None:
    register_passthrough(subparsers, "train", HELP, "attempt_dist.train")
