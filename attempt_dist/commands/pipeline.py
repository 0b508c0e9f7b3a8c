"""`attempt-dist pipeline`: source prompts -> attention prior -> ATTEMPT on the targets."""

from .passthrough import register_passthrough


def register(subparsers) -> None:
    register_passthrough(subparsers, "pipeline", "source prompts -> attention prior -> ATTEMPT targets",
                         "attempt_dist.pipeline")
