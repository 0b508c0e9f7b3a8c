"""`attempt-dist pipeline`: source prompts -> attention prior -> ATTEMPT on the targets."""

from .passthrough import register_passthrough

HELP = "source prompts -> attention prior -> ATTEMPT targets"


def register(subparsers) -> None:
    register_passthrough(subparsers, "pipeline", HELP, "attempt_dist.library.pipeline")
