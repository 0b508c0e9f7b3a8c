"""`attempt-dist export`: a finished run as a PEFT adapter or a self-contained safetensors artefact."""

from .passthrough import register_passthrough


HELP = "export a finished run (PEFT adapter, safetensors artefact)"


def register(subparsers) -> None:
    register_passthrough(subparsers, "export", HELP, "attempt_dist.finished.export")
