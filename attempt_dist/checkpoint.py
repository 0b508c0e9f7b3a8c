"""Resumable checkpoints: trainable weights, optimizer, scheduler, data position and RNG.

DeepSpeed writes the engine state of every rank under `<run>/checkpoints/<tag>/` (only the
trainable parameters: `exclude_frozen_parameters=True`, so a prompt-tuning checkpoint of
t5-3b is kilobytes plus optimizer state) and, last, the `latest` file that names the tag. A
run killed mid-save therefore still resumes from the previous, complete tag. Each rank also
writes its own RNG and sampler state beside the engine files, and older tags are pruned only
after the new `latest` exists.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import torch

from . import distributed as dist
from .results import atomic_path

LATEST = "latest"
KEEP = 2  # tags kept besides "best"


def checkpoint_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(engine, output_dir: str | Path, tag: str, client_state: dict, *, rank: int,
         latest: bool = True) -> Path:
    root = checkpoint_dir(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    # Per-rank state first: DeepSpeed writes `latest` last, so a tag named by `latest` is whole.
    tag_dir = root / tag
    tag_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(tag_dir / f"rank{rank}_state.pt") as tmp:
        torch.save({"rng": rng_state(), **client_state.pop("per_rank", {})}, tmp)
    engine.save_checkpoint(str(root), tag=tag, client_state=client_state,
                           exclude_frozen_parameters=True, save_latest=latest)
    dist.barrier()
    if latest and rank == 0:
        _prune(root, keep=tag)
    dist.barrier()
    return tag_dir


def _prune(root: Path, keep: str) -> None:
    tags = sorted((p for p in root.iterdir() if p.is_dir() and p.name.startswith("step")),
                  key=lambda p: int(p.name[4:]) if p.name[4:].isdigit() else -1)
    for old in tags[:-KEEP]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def latest_tag(output_dir: str | Path) -> str | None:
    path = checkpoint_dir(output_dir) / LATEST
    return path.read_text().strip() if path.exists() else None


def load(engine, output_dir: str | Path, tag: str, *, rank: int, optimizer: bool = True) -> tuple[dict, dict]:
    """Restore the engine from `tag`; return (client_state, this rank's state)."""
    root = checkpoint_dir(output_dir)
    _, client_state = engine.load_checkpoint(
        str(root), tag=tag, load_module_strict=False, load_optimizer_states=optimizer,
        load_lr_scheduler_states=optimizer)
    if client_state is None:
        raise RuntimeError(f"checkpoint {root / tag} could not be loaded")
    per_rank_path = root / tag / f"rank{rank}_state.pt"
    per_rank = torch.load(per_rank_path, map_location="cpu", weights_only=False) if per_rank_path.exists() else {}
    return client_state, per_rank
