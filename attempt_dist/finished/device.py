"""The device a finished run predicts on, checked before anything is loaded onto it."""

from __future__ import annotations

import torch

from ..errors import UserError


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device `device` names ("auto": a GPU when there is one), refused in one line
    when torch does not know it or this machine has none of it."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise UserError(f"device {str(device)!r} is not one torch knows; use auto, cpu, cuda or cuda:N") from None
    if chosen.type == "cpu":
        return chosen
    if chosen.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            built = "" if torch.version.cuda else " (this torch is built without CUDA)"
            raise UserError(f"device {str(device)!r}: no CUDA GPU is visible on this machine{built}; use --device cpu")
        if chosen.index is not None and chosen.index >= count:
            raise UserError(f"device {str(device)!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
        return chosen
    backend = torch.backends.mps if chosen.type == "mps" else getattr(torch, chosen.type, None)
    if not getattr(backend, "is_available", lambda: False)():
        raise UserError(f"device {str(device)!r}: no {chosen.type} device is available here; use --device cpu or auto")
    return chosen
