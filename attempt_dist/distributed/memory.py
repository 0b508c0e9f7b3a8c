"""Size strings, the per-process GPU memory cap, peak-memory reports, OOM recognition.

torch.cuda.set_per_process_memory_fraction caps only PyTorch's caching allocator: the CUDA
context, NCCL buffers and other processes are outside it. So the report carries both the
allocator's peak and the device-wide usage NVML sees (sampled, so a peak between samples
can be missed; call sample_device_memory() at log points to tighten it).
"""

from __future__ import annotations

import re
import resource
import sys
from typing import Any

from attempt_dist.errors import UserError

MIN_CAP_BYTES = 1 << 30  # below 1 GiB the CUDA context alone does not fit: surely a typo

OOM_HINT = ("does not fit under the cap; see `attempt-dist plan` and use --ds-config auto, or try "
            "ds_configs/zero3_offload.json, --activation-checkpointing or a smaller --batch-size")

_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
    "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40,  # the nvidia-smi / SLURM reading of 24G
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")

_state: dict[str, Any] = {"cap_bytes": None, "device_peak_bytes": None}


def parse_size(text: str | int) -> int:
    """'24GiB' -> 25769803776, '500MB' -> 500000000, '1024' -> 1024 (bytes)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        match = _SIZE_RE.match(str(text))
        unit = match.group(2).lower() if match else None
        if not match or unit not in _UNITS:
            raise UserError(f"cannot read size {text!r}; write e.g. 24GiB, 40GB, 512MiB or a number of bytes")
        value = int(float(match.group(1)) * _UNITS[unit])
    if value <= 0:
        raise UserError(f"size {text!r} must be positive")
    return value


def _fmt(nbytes: int) -> str:
    return f"{nbytes / 2**30:.2f} GiB"


def apply_memory_cap(cap_bytes: int | None) -> dict[str, Any]:
    """Limit this process's PyTorch allocator on the current CUDA device to cap_bytes.

    Every rank must call it (the fraction is per process). On a CPU-only machine nothing is
    enforced; the request is recorded so result records still say what was asked for.
    """
    import torch

    _state["cap_bytes"] = cap_bytes
    if cap_bytes is None:
        return {"cap_bytes": None, "applied": False, "device_total_bytes": None, "fraction": None}
    if cap_bytes < MIN_CAP_BYTES:
        raise UserError(f"memory cap {_fmt(cap_bytes)} is below {_fmt(MIN_CAP_BYTES)}; give a cap such as 24GiB")
    if not torch.cuda.is_available():
        return {"cap_bytes": cap_bytes, "applied": False, "device_total_bytes": None, "fraction": None}
    device = torch.cuda.current_device()
    total = torch.cuda.get_device_properties(device).total_memory
    if cap_bytes > total:
        raise UserError(
            f"memory cap {_fmt(cap_bytes)} is larger than the GPU ({_fmt(total)}); give a smaller cap or none"
        )
    fraction = cap_bytes / total
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    return {"cap_bytes": cap_bytes, "applied": True, "device_total_bytes": total, "fraction": fraction}


def _device_used_bytes() -> int | None:
    import torch

    if not torch.cuda.is_available():
        return None
    try:  # NVML through torch: device-wide, includes the CUDA context and NCCL buffers
        free, total = torch.cuda.mem_get_info()
        return int(total - free)
    except RuntimeError:
        pass
    try:
        import pynvml

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:  # pynvml missing or NVML unavailable: report None rather than guess
        return None


def sample_device_memory() -> int | None:
    """Note the device-wide usage now; memory_report returns the highest seen."""
    used = _device_used_bytes()
    if used is not None:
        _state["device_peak_bytes"] = max(used, _state["device_peak_bytes"] or 0)
    return used


def memory_report() -> dict[str, int | None]:
    """{"peak_allocated_bytes", "device_peak_bytes", "cap_bytes"} for the result record.

    GPU: peak_allocated_bytes is torch.cuda.max_memory_allocated. CPU: the process's peak
    resident set (what a GPU run would have had to hold), device_peak_bytes None.
    """
    import torch

    if torch.cuda.is_available():
        peak = int(torch.cuda.max_memory_allocated())
        sample_device_memory()
    else:
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux
    return {"peak_allocated_bytes": peak, "device_peak_bytes": _state["device_peak_bytes"], "cap_bytes": _state["cap_bytes"]}


def is_oom(exc: BaseException) -> bool:
    """True for a CUDA out-of-memory error, also when wrapped as another exception's cause."""
    import torch

    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if oom_types and isinstance(exc, oom_types):
            return True
        message = str(exc).lower()
        if isinstance(exc, RuntimeError) and (
            "out of memory" in message or "cublas_status_alloc_failed" in message
        ):
            return True
        exc = exc.__cause__ or exc.__context__
    return False
