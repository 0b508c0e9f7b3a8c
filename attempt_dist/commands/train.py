"""`attempt-dist train`: one training run (the same recipe as `deepspeed launch/train.py`)."""

from .passthrough import register_passthrough


def register(subparsers) -> None:
    register_passthrough(subparsers, "train", "train one method on one or more tasks", "attempt_dist.train")
