"""Resumable checkpoints: trainable weights, optimizer, scheduler, data position and RNG.

DeepSpeed writes the engine state of every rank under `<run>/checkpoints/<tag>/`, only the
trainable parameters: `exclude_frozen_parameters=True`, plus the tied-weight aliases DeepSpeed
misses (see only_trainable_in_state_dict), so a prompt-tuning tag of t5-small is kilobytes
and of t5-3b kilobytes plus optimizer state. Each rank also writes its own RNG and sampler
state beside the engine files.

A tag is complete only once rank 0 has written `complete.json` in it, after every rank
finished its files: the marker lists each file with its size and sha256 (hashed right after the
write, the ranks sharing the files) and holds the run's configuration and data fingerprint, so
loading can tell a whole tag from a killed, truncated, partly deleted or silently changed one
and resume can check that it continues the same run on the same data. `latest` is written
after the marker, and older tags are pruned only after that. Resume takes the newest step tag
whose files match their checksums, naming any newer damaged one it passes over; pruning and
write-failure reports check sizes only (hashing every kept tag at every save would cost a read
of each).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .. import distributed as dist
from ..errors import UserError
from ..atomic_files import atomic_path, write_json_atomic, write_text_atomic

LATEST = "latest"
MARKER = "complete.json"
KEEP = 2  # complete step tags kept besides "best"


class CheckpointWriteFailed(UserError):
    """A checkpoint could not be written (full disk, quota, I/O error); the previous one is kept."""


def _one_line(err: BaseException) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"


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


@contextlib.contextmanager
def only_trainable_in_state_dict(module: torch.nn.Module) -> Iterator[None]:
    """Inside the block, module.state_dict() leaves out every frozen parameter under every name.

    DeepSpeed's exclude_frozen_parameters removes the names `named_parameters()` yields, which
    lists a tied parameter once: T5's frozen shared embedding stays in the checkpoint as
    encoder.embed_tokens, decoder.embed_tokens and lm_head (63 MB a tag for t5-small).
    """
    frozen = {name for name, p in module.named_parameters(remove_duplicate=False) if not p.requires_grad}

    def drop_frozen(_module, state_dict, prefix, _local_metadata):
        for name in frozen:
            state_dict.pop(prefix + name, None)

    handle = module.register_state_dict_post_hook(drop_frozen)
    try:
        yield
    finally:
        handle.remove()


def save(engine, output_dir: str | Path, tag: str, client_state: dict, *, rank: int, config: dict,
         data: dict | None = None, latest: bool = True) -> Path:
    """Write `tag` from every rank, then (rank 0) its completeness marker, then `latest`.

    config: the run's configuration; data: its data fingerprint (task -> feature-cache key),
    both recorded in the marker for resume to compare.

    A write error on any rank (no space left, quota, I/O) removes the partial tag and raises
    CheckpointWriteFailed on every rank; the previous complete tag and `latest` are untouched.
    """
    root = checkpoint_dir(output_dir)
    tag_dir = root / tag
    if rank == 0 and tag_dir.exists():
        # "best", or a damaged tag written again after a fallback: it stops counting as complete
        # before any of its files change, and no stale file survives into the new tag.
        (tag_dir / MARKER).unlink(missing_ok=True)
        shutil.rmtree(tag_dir)
    dist.barrier()
    problem = None
    try:
        tag_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(tag_dir / f"rank{rank}_state.pt") as tmp:
            torch.save({"rng": rng_state(), **client_state.pop("per_rank", {})}, tmp)
        with only_trainable_in_state_dict(engine.module):
            engine.save_checkpoint(str(root), tag=tag, client_state=client_state,
                                   exclude_frozen_parameters=True, save_latest=False)
    except (OSError, RuntimeError) as err:  # torch.save reports a failed write as RuntimeError
        problem = _one_line(err)
    reports = dist.all_gather_object(problem)
    problems = [p for p in reports if p]
    if problems:
        dist.barrier()
        _write_failed(root, tag, problems[0], remove=rank == 0)
    dist.barrier()
    files = dist.broadcast_object(_listing(tag_dir) if rank == 0 else None)
    digests, problem = _shared_checksums(tag_dir, files, rank, len(reports))
    if problem:
        dist.barrier()
        _write_failed(root, tag, problem, remove=rank == 0)
    if rank == 0:
        try:
            write_json_atomic(tag_dir / MARKER, {"tag": tag, "step": engine.global_steps, "world_size": len(reports),
                                                 "files": files, "sha256": digests, "data": data, "config": config})
            if latest:
                write_text_atomic(root / LATEST, tag)
        except OSError as err:  # the other ranks wait at the barrier below until --dist-timeout
            _write_failed(root, tag, _one_line(err), remove=True)
        if latest:
            _prune(root, keep=tag)
    dist.barrier()
    return tag_dir


def _listing(tag_dir: Path) -> dict[str, int]:
    """name -> size of each file of a tag (the marker and hidden temporary files left out)."""
    return {str(p.relative_to(tag_dir)): p.stat().st_size for p in sorted(tag_dir.rglob("*"))
            if p.is_file() and not p.name.startswith(".") and p.name != MARKER}


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _shared_checksums(tag_dir: Path, files: dict[str, int], rank: int, world_size: int) -> tuple[dict, str | None]:
    """(name -> sha256 of each of `files`, None), every rank hashing its share (the files were
    just written: they are read back from the page cache); on a read error, every rank gets
    ({}, its one line)."""
    mine, problem = {}, None
    try:
        for i, name in enumerate(files):
            if i % world_size == rank:
                mine[name] = _sha256(tag_dir / name)
    except OSError as err:
        problem = _one_line(err)
    digests, problems = {}, []
    for part, part_problem in dist.all_gather_object((mine, problem)):
        digests.update(part)
        problems += [part_problem] if part_problem else []
    return ({}, problems[0]) if problems else (digests, None)


def _write_failed(root: Path, tag: str, problem: str, *, remove: bool) -> None:
    if remove:
        shutil.rmtree(root / tag, ignore_errors=True)
    previous = next((t for t in step_tags(root) if t != tag and check_tag(root, t).ok), None)
    fix = "free space (or fix the file system) and rerun"
    kept = (f"the previous checkpoint {root / previous} is kept; {fix} with --resume" if previous
            else f"no earlier checkpoint exists; {fix}")
    raise CheckpointWriteFailed(f"writing checkpoint {root / tag} failed ({problem}); {kept}")


def _step(tag: str) -> int:
    return int(tag[4:]) if tag.startswith("step") and tag[4:].isdigit() else -1


def step_tags(root: Path) -> list[str]:
    """Step tags under `root`, newest first."""
    if not root.is_dir():
        return []
    return sorted((p.name for p in root.iterdir() if p.is_dir() and _step(p.name) >= 0), key=_step, reverse=True)


def _prune(root: Path, keep: str) -> None:
    complete = [t for t in step_tags(root) if check_tag(root, t).ok]
    newest = _step(complete[0]) if complete else -1
    for tag in step_tags(root):
        if tag == keep:
            continue
        stale_damaged = tag not in complete and _step(tag) < newest
        if (tag in complete and tag not in complete[:KEEP]) or stale_damaged:
            shutil.rmtree(root / tag, ignore_errors=True)


@dataclass
class TagCheck:
    tag: str
    problem: str | None = None
    marker: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_tag(root: Path, tag: str, *, verify: bool = False) -> TagCheck:
    """Whether `tag` is whole: its marker exists and every file it lists has its recorded size;
    with `verify`, also its recorded sha256 (a marker written before checksums: sizes only)."""
    tag_dir = root / tag
    if not tag_dir.is_dir():
        return TagCheck(tag, "its folder does not exist")
    try:
        marker = json.loads((tag_dir / MARKER).read_text())
        files = dict(marker["files"])
    except FileNotFoundError:
        return TagCheck(tag, f"it has no {MARKER} (the save did not finish)")
    except (OSError, ValueError, KeyError, TypeError):
        return TagCheck(tag, f"its {MARKER} is unreadable")
    for name, size in files.items():
        path = tag_dir / name
        if not path.is_file():
            return TagCheck(tag, f"{name} is missing", marker)
        if path.stat().st_size != size:
            return TagCheck(tag, f"{name} is truncated or changed ({path.stat().st_size} of {size} bytes)", marker)
    checksums = (marker.get("sha256") or {}) if verify else {}
    for name, digest in checksums.items():
        try:
            same = _sha256(tag_dir / name) == digest
        except OSError as err:
            return TagCheck(tag, f"{name} is unreadable ({_one_line(err)})", marker)
        if not same:
            return TagCheck(tag, f"{name} does not match the sha256 recorded when it was saved "
                                 "(same size, other bytes)", marker)
    return TagCheck(tag, None, marker)


def latest_tag(output_dir: str | Path) -> str | None:
    """The tag `latest` names (None when the file is absent or empty)."""
    path = checkpoint_dir(output_dir) / LATEST
    try:
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def has_checkpoints(output_dir: str | Path) -> bool:
    """Whether a run left anything of a checkpoint here (whole or not)."""
    root = checkpoint_dir(output_dir)
    return (root / LATEST).exists() or bool(step_tags(root))


def find_resumable(output_dir: str | Path) -> tuple[TagCheck | None, list[str]]:
    """The newest complete step tag (None if there is none) and one line per problem passed over."""
    root = checkpoint_dir(output_dir)
    notes = []
    named = latest_tag(output_dir)
    if (root / LATEST).exists() and named is None:
        notes.append(f"{root / LATEST} is empty")
    elif named is not None and not (root / named).is_dir():
        notes.append(f"{root / LATEST} names {named}, which does not exist")
    for tag in step_tags(root):
        check = check_tag(root, tag, verify=True)
        if check.ok:
            return check, notes
        notes.append(f"checkpoint {root / tag} is damaged: {check.problem}")
    return None, notes


def load(engine, output_dir: str | Path, tag: str, *, rank: int, optimizer: bool = True) -> tuple[dict, dict]:
    """Restore the engine from `tag`; return (client_state, this rank's state)."""
    root = checkpoint_dir(output_dir)
    try:
        _, client_state = engine.load_checkpoint(
            str(root), tag=tag, load_module_strict=False, load_optimizer_states=optimizer,
            load_lr_scheduler_states=optimizer)
        if client_state is None:
            raise RuntimeError("DeepSpeed found nothing to load")
        per_rank = torch.load(root / tag / f"rank{rank}_state.pt", map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, KeyError, ValueError, EOFError, AssertionError) as err:
        raise UserError(f"checkpoint {root / tag} could not be loaded ({_one_line(err)}); move it aside and rerun with --resume "
                        "to continue from an earlier one, or --overwrite to start again") from None
    return client_state, per_rank


def dump_full_state(module, path: Path) -> None:
    """Every parameter and buffer, whole, from this rank (for tests; every rank must call)."""
    params = list(module.parameters())
    with dist.gathered(params):
        state = {n: p.detach().float().cpu().clone() for n, p in module.named_parameters()}
        state.update({n: b.detach().float().cpu().clone() for n, b in module.named_buffers()})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def load_best(engine, output_dir: str | Path, *, rank: int) -> str | None:
    """Restore tag "best" with its optimizer state (under ZeRO-3 the weights live in the
    optimizer's fp32 partitions, and a module-only load leaves the last step's weights in
    place); when that tag is damaged, load nothing and return what is wrong with it."""
    damage = check_tag(checkpoint_dir(output_dir), "best", verify=True).problem
    if damage:
        return damage
    load(engine, output_dir, "best", rank=rank, optimizer=True)
    return None
