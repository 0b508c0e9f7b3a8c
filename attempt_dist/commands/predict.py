"""`attempt-dist predict`: predictions of a finished run on new inputs (attempt_dist/finished/predict.py)."""

from .passthrough import register_passthrough


HELP = "predict with a finished run on new inputs"


def register(subparsers) -> None:
    register_passthrough(subparsers, "predict", HELP, "attempt_dist.finished.predict")
