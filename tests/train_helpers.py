"""Launch real training runs (plain python, deepspeed launcher, torchrun) on t5-tiny and fixtures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from attempt_dist.distributed.env import free_port
from tests.paths import DATA, REPO, TRAIN

# Small everything: a CPU test must finish in seconds, ZeRO-3 included.
TINY = ["--model", "t5-tiny", "--data-dir", str(DATA), "--prompt-length", "4", "--bottleneck", "4",
        "--batch-size", "2", "--max-eval-examples", "2", "--max-target-length", "8",
        "--eval-every", "1000", "--max-length", "64"]
# The same small run as a sweep file's `train:` block (sweep keys), checkpointing every 2 steps.
TINY_SWEEP_TRAIN = {"data_dir": str(DATA), "ds_config": "zero0", "batch_size": 4, "save_every": 2, "max_length": 64,
                    "prompt_length": 4, "max_eval_examples": 4, "max_target_length": 8, "eval_every": 1000}


def launch(args: list[str], *, launcher: str = "python", ranks: int = 1, env: dict | None = None,
           script: Path = TRAIN, module: str | None = None, timeout: int = 600,
           check: bool = True) -> subprocess.CompletedProcess:
    """Run `script` (or, given `module`, `-m module`) under launcher python, deepspeed, torchrun or
    accelerate (accelerate's --multi_gpu: its torchrun path, the one that starts several CPU processes)."""
    target = ["-m", module] if module else [str(script)]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
                **(env or {})}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        full_env.pop(var, None)
    port = str(free_port())
    if launcher == "deepspeed":
        cmd = [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", str(ranks),
               "--master_port", port, *(["--module", module] if module else [str(script)]), *args]
    elif launcher == "torchrun":
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(ranks),
               "--master_port", port, *target, *args]
    elif launcher == "accelerate":
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", str(ranks),
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--main_process_port", port, *target, *args]
    else:
        cmd = [sys.executable, *target, *args]
    proc = subprocess.run(cmd, env=full_env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-5000:]}"
    return proc


def startup_hook(folder: Path, code: str) -> dict:
    """launch()'s env that runs `code` first in every Python process of the run (a sitecustomize
    on PYTHONPATH): how a test injects a fault into a trainer it starts as a subprocess."""
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": f"{folder}{os.pathsep}{REPO}"}


# Two *different* computations of the same run (activation checkpointing recomputes each block's
# forward in backward, which may round differently from keeping it) agree to fp32 noise, not to the
# bit: after a few steps the losses differ in the sixth decimal (7.009858 vs 7.009859 seen in CI).
# rel 1e-5 is ~100 fp32 ulps, below what a real defect moves: a recompute that does not replay
# the dropout masks moves t5-tiny's second loss by 1.1e-4 relative after one step at lr 0.3
# (tests/test_activation_checkpointing.py shows this tolerance catching it). The same computation (resume vs uninterrupted, 2 ranks vs 1 x accumulation where
# bit-exact) keeps exact equality.
FP32_RTOL, FP32_ATOL = 1e-5, 1e-6


def losses_close(a: list[float], b: list[float], rtol: float = FP32_RTOL) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= rtol * max(abs(x), abs(y)) for x, y in zip(a, b))


def assert_same_training(a: Path, b: Path) -> None:
    """Run folders `a` and `b` trained the same run by different computations: the same losses
    and trainable weights within fp32 noise (FP32_RTOL), the same weight names."""
    la, lb = result(a)["train_loss"], result(b)["train_loss"]
    assert losses_close(la, lb), (la, lb)
    wa, wb = trainable(a), trainable(b)
    assert wa and wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=FP32_RTOL, atol=FP32_ATOL, msg=key)


def result(out: Path) -> dict:
    return json.loads((out / "result.json").read_text())


def trainable(out: Path) -> dict[str, torch.Tensor]:
    from attempt_dist.finished.artifacts import read_trainable

    return read_trainable(out)


def make_library(folder: Path, names=("mnli", "sst2", "squad"), backbone="t5-tiny", d_model=32,
                 length=4, seed=0) -> Path:
    from attempt_dist.methods.prompts import add_to_library

    g = torch.Generator().manual_seed(seed)
    for name in names:
        add_to_library(folder, torch.randn(length, d_model, generator=g), task=name, backbone=backbone)
    return folder
