"""`attempt-dist export`: a finished run as a PEFT adapter or a self-contained safetensors artefact."""

from .passthrough import register_passthrough


def register(subparsers) -> None:
    register_passthrough(subparsers, "export", "export a finished run (PEFT adapter, safetensors artefact)",
                         "attempt_dist.export")
