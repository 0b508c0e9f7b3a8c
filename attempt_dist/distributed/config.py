"""DeepSpeed JSON configs: find, fill the "auto" values from the command line, validate.

One file serves every backbone and machine: batch sizes are "auto" and filled here, bf16 is
"auto" and becomes true only when CUDA is available (T5 overflows in fp16; the CPU runs fp32),
and learning rates live in the client optimizer, never in the file. Keys starting with
"_comment" are notes for readers and are stripped before DeepSpeed sees the dict.

The shipped configs are package data, attempt_dist/ds_configs/*.json (so an installed package
has them); the repository's ds_configs/ is a link to that folder, for `--ds-config
ds_configs/zero2_offload.json` and for reading. A name (zero3_offload) means that file.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from attempt_dist.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "ds_configs"

AUTO = "auto"


def shipped_config_names() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.json"))


def shipped_config(name: str) -> dict[str, Any]:
    """A shipped config by name, as a fresh dict (the file's "_comment" notes included)."""
    return _read(name)


def strip_comments(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: strip_comments(v) for k, v in value.items() if not str(k).startswith("_comment")}
    if isinstance(value, list):
        return [strip_comments(v) for v in value]
    return value


def _read(path_or_name: str | Path | dict) -> dict[str, Any]:
    if isinstance(path_or_name, dict):
        return copy.deepcopy(path_or_name)
    text = str(path_or_name)
    path = Path(text).expanduser()
    looks_like_path = path.suffix == ".json" or "/" in text or path.is_file()
    if not looks_like_path:
        path = CONFIG_DIR / f"{text}.json"
    if not path.is_file():
        raise UserError(
            f"DeepSpeed config {text!r} not found; give a .json path or one of: {', '.join(shipped_config_names())}"
        )
    try:
        loaded = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"DeepSpeed config {path} is not valid JSON ({err.msg} at line {err.lineno}); fix the file") from None
    if not isinstance(loaded, dict):
        raise UserError(f"DeepSpeed config {path} must hold a JSON object, not {type(loaded).__name__}")
    return loaded


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _fill(cfg: dict, key: str, value: Any, source: str) -> None:
    current = cfg.get(key, AUTO)
    if current == AUTO:
        cfg[key] = value
    elif current != value:
        raise UserError(f"DeepSpeed config sets {key}={current} but {source} gives {value}; set it to \"auto\" or make them agree")


def _find_auto(value: Any, where: str = "") -> str | None:
    if value == AUTO:
        return where or "<root>"
    if isinstance(value, dict):
        for k, v in value.items():
            found = _find_auto(v, f"{where}.{k}" if where else k)
            if found:
                return found
    return None


def zero_stage(ds_config: dict) -> int:
    stage = ds_config.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise UserError(f"zero_optimization.stage must be 0, 1, 2 or 3, not {stage!r}")
    return int(stage)


def load_ds_config(
    path_or_name: str | Path | dict,
    *,
    micro_batch_size: int,
    grad_accum: int,
    world_size: int,
    use_bf16: bool | None = None,
    nvme_path: str | Path | None = None,
    overrides: dict | None = None,
) -> dict[str, Any]:
    """A complete DeepSpeed config dict with no "auto" left.

    path_or_name: a .json path, a shipped name ("zero3_offload"), or a dict.
    use_bf16: None = bf16 exactly when CUDA is available; True on a CPU-only machine is an error.
    nvme_path: fills nvme_path under offload_param/offload_optimizer (needed by zero3_nvme).
    overrides: nested dict merged over the file before filling (e.g. {"zero_optimization":
    {"stage3_param_persistence_threshold": 0}}).
    """
    import torch

    cfg = strip_comments(_read(path_or_name))
    if overrides:
        _merge(cfg, strip_comments(overrides))
    for name, value in (("micro_batch_size", micro_batch_size), ("grad_accum", grad_accum), ("world_size", world_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{name} must be a positive integer, not {value!r}")
    _fill(cfg, "train_micro_batch_size_per_gpu", micro_batch_size, "--batch-size")
    _fill(cfg, "gradient_accumulation_steps", grad_accum, "--grad-accum")
    _fill(cfg, "train_batch_size", micro_batch_size * grad_accum * world_size,
          f"batch {micro_batch_size} x accumulation {grad_accum} x {world_size} ranks")

    cuda = torch.cuda.is_available()
    if use_bf16 is None:
        use_bf16 = cuda
    elif use_bf16 and not cuda:
        raise UserError("bf16 was requested but no CUDA device is available; the CPU path runs in fp32")
    bf16 = cfg.setdefault("bf16", {})
    if bf16.get("enabled", AUTO) == AUTO:
        bf16["enabled"] = bool(use_bf16)
    if cfg.get("fp16", {}).get("enabled") in (True, AUTO):
        raise UserError("fp16 is not supported: T5 overflows in fp16; use bf16 (set fp16.enabled false)")

    stage = zero_stage(cfg)
    zero = cfg.get("zero_optimization", {})
    for section in ("offload_param", "offload_optimizer"):
        block = zero.get(section)
        if not isinstance(block, dict):
            continue
        if block.get("device") == "nvme":
            if block.get("nvme_path", AUTO) == AUTO:
                if nvme_path is None:
                    raise UserError("this DeepSpeed config offloads to NVMe; give --nvme-path DIR (a fast local disk)")
                block["nvme_path"] = str(nvme_path)
        if section == "offload_param" and block.get("device") not in (None, "none") and stage != 3:
            raise UserError(f"offload_param needs ZeRO stage 3 (config has stage {stage}); use zero3_offload")

    left = _find_auto(cfg)
    if left:
        raise UserError(f"DeepSpeed config still has \"auto\" at {left}; only batch sizes, bf16 and nvme_path are filled, set it explicitly")
    return cfg
