"""Steady-state training throughput and MFU, through the trainer itself (issue 17).

    python benchmarks/throughput.py --cpu                  # CI-sized cells (minutes on 2 cores) -> results/throughput-cpu.*
    python benchmarks/throughput.py --gpu                  # the GPU cells, one command, < 8 min on an H100/H200
    python benchmarks/throughput.py --cpu --paired-only    # only the in-process pairs -> results/throughput-cpu-paired.*
    python benchmarks/throughput.py --gpu --dry-run        # print each cell's trainer command
    python benchmarks/throughput.py --gpu --peak-tflops 989 --cells 't5-3b_*'

Every cell is one run of the normal trainer (`launch/train.py`, random weights, no download)
for WARMUP + TIMED optimizer steps; the figures are the run record's own steady state
(result.json `throughput.steady`, attempt_dist/training/step_meter.py): the first 3 steps left out, a
step timed from the end of the previous one (the loop reads the step's loss there: the host
waits for the device once per step), evaluation and checkpoints outside the steps. For each
cell: step time (mean and median), examples/s, real (non-padding) tokens/s, the padding
fraction, model TFLOP/s per device, MFU and HFU (FLOPs: attempt_dist/planning/flops.py; MFU against
the device's dense peak from its table, or --peak-tflops).

Cells marked "profile" also run steps PROFILE_STEPS under torch.profiler (after the timed
steps, not timed: ATTEMPT_DIST_PROFILE_STEPS, attempt_dist/training/step_profiler.py); their top
operators/kernels tables are copied beside the report (`<stem>-profile/<cell>.txt`).

Data. "fixed": the example boolq rows with each passage repeated past --max-length words, so
every input is exactly max_length tokens (as memory_scaling.py; multi-task cells lengthen each
task). "mix": a synthetic BoolQ + MultiRC + ReCoRD training set of realistic lengths: each
example row's passage is extended with single-token filler words to a log-normal word count
(LENGTH_MIX: medians and spreads chosen to match the published datasets' input lengths in
T5 tokens, roughly: BoolQ ~130, MultiRC ~300, ReCoRD ~220; each then cut at its task's
max_length 256/348/512), MIX_EXAMPLES rows per task. Random batches of that mix pay a lot of
padding; --group-by-length cells sort it away.

CPU mode also times, in one process (plain torch, no DeepSpeed: the models' own costs), our
prompt tuning against PEFT's on the same backbone, batch and prompt length, and ATTEMPT-MT
against multi-task prompt tuning, and random against length-grouped batches of the mix (the
trainer's sampler and collator, one prompt-tuning model), the two of a pair taking turns step
by step (a busy machine slows both alike; separate trainer processes on a shared CPU are not).

Output: <out>/<stem>.json and .md with the date, command, versions, device and every cell.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
import memory_scaling as ms  # noqa: E402  (data lengthening, random library, environment)

WARMUP, TIMED = 3, 10
PROFILE_STEPS = (WARMUP + TIMED + 1, WARMUP + TIMED + 2)
MIX_TASKS = ("boolq", "multirc", "record")
# task: (passage field, median words added, log-normal sigma): approximate real length mixes.
LENGTH_MIX = {"boolq": ("passage", 110, 0.55), "multirc": ("paragraph", 280, 0.3), "record": ("passage", 200, 0.35)}
MIX_EXAMPLES = 400
PAIRS = ("peft", "attempt", "attention", "grouping")  # the CPU's in-process comparisons
# Words that are one token for the test tokenizer (and T5's): a passage of n of them is n tokens.
FILLER = ("the of and to in a is that for it was with by on not this are at an were all her will who time "
          "year people way man school place question night home money word city name team person change").split()


@dataclass(frozen=True)
class Cell:
    model: str
    method: str
    batch: int
    tasks: str = "boolq"
    data: str = "fixed"  # "fixed" (every input max_length tokens) or "mix" (realistic lengths)
    ds_config: str = "zero0"
    group_by_length: bool = False
    checkpointing: bool = False
    profile: bool = False
    attn: str = "sdpa"  # --attn-implementation

    @property
    def name(self) -> str:
        tasks = "mt" if "," in self.tasks else self.tasks
        return (f"{self.model}_{self.method}_{tasks}_{self.data}_bs{self.batch}_{self.ds_config}"
                + ("_grouped" if self.group_by_length else "") + ("_ckpt" if self.checkpointing else "")
                + (f"_{self.attn.split('_')[0]}" if self.attn != "sdpa" else ""))


@dataclass(frozen=True)
class Mode:
    cells: tuple[Cell, ...]
    max_length: int  # of the "fixed" data
    prompt_length: int
    stem: str
    peft_model: str | None = None  # CPU: our prompt tuning against PEFT's on this backbone
    peft_batch: int = 4
    eval_examples: int = 1  # per task, for the final evaluation's ms per generated token


CPU = Mode(
    cells=(
        # ATTEMPT-MT against multi-task prompt tuning (goal: <= 1.03x its step time).
        Cell("t5-mini", "prompt", 4, tasks="boolq,cb,rte"),
        Cell("t5-mini", "attempt", 4, tasks="boolq,cb,rte", profile=True),
        # Random against length-grouped batches on the realistic length mix (goal: >= 1.5x examples/s),
        # with prompt tuning (its 100 prompt rows per example are no padding: grouping cannot save
        # them) and with fine-tuning (no prompt).
        Cell("t5-mini", "prompt", 8, tasks=",".join(MIX_TASKS), data="mix"),
        Cell("t5-mini", "prompt", 8, tasks=",".join(MIX_TASKS), data="mix", group_by_length=True),
        Cell("t5-mini", "finetune", 8, tasks=",".join(MIX_TASKS), data="mix"),
        Cell("t5-mini", "finetune", 8, tasks=",".join(MIX_TASKS), data="mix", group_by_length=True),
    ),
    max_length=64, prompt_length=100, stem="throughput-cpu", peft_model="t5-small")

GPU = Mode(
    cells=(
        # The cells, in priority order: t5-3b prompt tuning vs ATTEMPT at batch 32,
        # 216-token inputs, ZeRO-0 bf16 (goal: ATTEMPT >= 0.95x; prompt tuning >= 30% MFU),
        # both profiled; t5-large fine-tuning (goal >= 35% MFU); T5's attention by sdpa (the
        # default), flex attention and eager on t5-large prompt tuning (same seed and data: the
        # losses compared step by step); then the length mix.
        Cell("t5-3b", "prompt", 32, profile=True),
        Cell("t5-3b", "attempt", 32, profile=True),
        Cell("t5-large", "finetune", 32),
        Cell("t5-large", "prompt", 32),
        Cell("t5-large", "prompt", 32, attn="flex_attention"),
        Cell("t5-large", "prompt", 32, attn="eager"),
        Cell("t5-large", "prompt", 32, tasks=",".join(MIX_TASKS), data="mix"),
        Cell("t5-large", "prompt", 32, tasks=",".join(MIX_TASKS), data="mix", group_by_length=True),
    ),
    max_length=216, prompt_length=100, stem="throughput-gpu", eval_examples=32)


# --- data -------------------------------------------------------------------------------------------
def write_fixed_data(dest: Path, tasks: list[str], max_length: int) -> Path:
    for task in tasks:
        ms.write_benchmark_data(REPO / "examples" / "data", dest, task, max_length)
    return dest


def mix_rows(rows: list[dict], field: str, median: float, sigma: float, count: int, seed: int) -> list[dict]:
    """`count` copies of `rows` (cycled) whose `field` gains a log-normal number of filler words."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        row = rows[k % len(rows)]
        words = int(rng.lognormal(math.log(median), sigma))
        filler = " ".join(rng.choice(FILLER, size=words))
        out.append({**row, field: f"{row[field]} {filler}"})  # appended: entity offsets stay valid
    return out


def write_mix_data(dest: Path, examples: int = MIX_EXAMPLES) -> Path:
    """<dest>/<task>/<split>.jsonl: training rows of realistic lengths; evaluation rows as shipped."""
    from attempt_dist.data.loading import load_rows
    from attempt_dist.atomic_files import write_jsonl_atomic
    from attempt_dist.tasks import get_task

    for seed, task in enumerate(MIX_TASKS):
        spec = get_task(task)
        field, median, sigma = LENGTH_MIX[task]
        folder = dest / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        for split in dict.fromkeys(spec.hub_splits.values()):
            rows = list(load_rows(spec, split, REPO / "examples" / "data").rows)
            if split == "train":
                rows = mix_rows(rows, field, median, sigma, examples, seed)
            write_jsonl_atomic(folder / f"{split}.jsonl", rows, default=str)
    return dest


def input_lengths(tasks: list[str], data_dir: Path, tokenizer: str, max_length: int | None) -> dict:
    """Per task: the training inputs' token lengths as the trainer cuts them (min, median, max)."""
    from attempt_dist.data import load_task_splits, load_tokenizer, tokenize_examples
    from attempt_dist.tasks import get_task

    tok = load_tokenizer(tokenizer)
    out = {}
    for task in tasks:
        train = load_task_splits(task, str(data_dir), seed=42)["train"]
        feats = tokenize_examples(train, tok, 0, max_length or get_task(task).max_length, 8)
        lengths = sorted(len(f["input_ids"]) for f in feats)
        out[task] = {"examples": len(lengths), "min": lengths[0], "median": lengths[len(lengths) // 2],
                     "max": lengths[-1]}
    return out


# --- running the cells --------------------------------------------------------------------------------
def train_command(cell: Cell, mode: Mode, work: Path, python: str = sys.executable) -> list[str]:
    data = work / ("data-mix" if cell.data == "mix" else "data-fixed")
    args = [python, "launch/train.py", "--model", cell.model, "--method", cell.method, "--tasks", cell.tasks,
            "--data-dir", str(data), "--init", "random", "--ds-config", f"ds_configs/{cell.ds_config}.json",
            "--batch-size", str(cell.batch), "--max-steps", str(steps_of(cell)), "--warmup-steps", "0",
            "--max-target-length", "8", "--max-eval-examples", str(mode.eval_examples), "--eval-every", "1000000",
            "--no-checkpoints", "--no-save-attention", "--no-data-cache", "--output-dir", str(work / "runs" / cell.name)]
    if cell.data == "fixed":
        args += ["--max-length", str(mode.max_length)]
    if cell.method in ("prompt", "attempt", "spot"):
        args += ["--prompt-length", str(mode.prompt_length)]
    if cell.method == "attempt":
        args += ["--source-prompts", str(ms.library_dir(work, cell.model, mode.prompt_length))]
    if cell.group_by_length:
        args.append("--group-by-length")
    if cell.checkpointing:
        args.append("--activation-checkpointing")
    if cell.attn != "sdpa":
        args += ["--attn-implementation", cell.attn]
    return args + ms.tokenizer_args(cell.model)


def steps_of(cell: Cell) -> int:
    return PROFILE_STEPS[1] if cell.profile else WARMUP + TIMED


def run_cell(cell: Cell, mode: Mode, work: Path, out: Path, stem: str, timeout_s: int, log=print) -> dict:
    from attempt_dist.finished.record import RecordError, read_record

    run_dir = work / "runs" / cell.name
    shutil.rmtree(run_dir, ignore_errors=True)
    env = ms.base_env()
    if cell.profile:
        env["ATTEMPT_DIST_PROFILE_STEPS"] = f"{PROFILE_STEPS[0]}:{PROFILE_STEPS[1]}"
    cmd = train_command(cell, mode, work)
    log(f"[{cell.name}] {shlex.join(cmd[1:])}")
    started = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
        code, tail = proc.returncode, proc.stderr[-1500:]
    except subprocess.TimeoutExpired:
        code, tail = None, f"cut after {timeout_s} s"
    row = {**asdict(cell), "cell": cell.name, "exit_code": code, "process_s": round(time.perf_counter() - started, 1)}
    try:
        record = read_record(run_dir / "result.json")
        row.update(status="completed", steady=asdict(record.throughput.steady) if record.throughput.steady else None,
                   steps=record.steps, peak_allocated_gib=_gib(record.memory.peak_allocated_bytes),
                   train_loss=record.train_loss, wall_time_s=record.wall_time_s, **eval_figures(record.throughput))
    except RecordError:
        row.update(status="failed", steady=None, error=tail.strip().splitlines()[-1:] if tail else None)
    profile = run_dir / "profile" / "top_ops.txt"
    if profile.exists():
        dest = out / f"{stem}-profile"
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(profile, dest / f"{cell.name}.txt")
        shutil.copy(run_dir / "profile" / "top_ops.json", dest / f"{cell.name}.json")
        row["profile"] = str((dest / f"{cell.name}.txt").relative_to(out))
    return row


def eval_figures(throughput) -> dict:
    """The run's evaluation cost: its share of the run's wall time and ms per generated token (every split)."""
    splits = throughput.eval.values()
    tokens = sum(s.get("generated_tokens", 0) for s in splits)
    seconds = sum(s["seconds"] for s in splits)
    return {"eval_share": throughput.eval_share, "eval_s": round(seconds, 3),
            "eval_ms_per_generated_token": round(1000 * seconds / tokens, 3) if tokens else None}


def _gib(value) -> float | None:
    return None if value is None else round(value / 2**30, 2)


def with_peak(row: dict, peak_tflops: float | None) -> dict:
    """--peak-tflops: MFU/HFU recomputed from the record's model TFLOP/s against that peak."""
    steady = row.get("steady")
    if peak_tflops and steady:
        ratio = steady["hfu"] / steady["mfu"] if steady.get("mfu") else 1.0
        steady.update(peak_tflops=peak_tflops, mfu=steady["model_tflops_per_s"] / peak_tflops)
        steady["hfu"] = steady["mfu"] * ratio
    return row


# --- paired step timings in one process ------------------------------------------------------------
def alternating_medians(models: dict, batches: dict, steps: int = WARMUP + TIMED,
                        losses: dict | None = None) -> dict[str, float]:
    """Median step time (forward, backward, AdamW step, fp32) of each model on its batch, the models
    taking turns step by step (so a busy machine slows them alike); the first WARMUP steps left out.
    losses: filled with each model's loss at every step."""
    import torch

    optimizers = {k: torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=0.3) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(steps):
        for name, model in models.items():
            model.train()
            start = time.perf_counter()
            loss = model(**batches[name]).loss
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)
            times[name].append(time.perf_counter() - start)
            if losses is not None:
                losses.setdefault(name, []).append(loss.item())
    return {k: statistics.median(v[WARMUP:]) for k, v in times.items()}


def _random_batch(config, batch: int, input_len: int, tasks: int = 1):
    import torch

    ids = torch.randint(2, config.vocab_size, (batch, input_len))
    out = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(2, config.vocab_size, (batch, 2))}
    return out if tasks == 1 else {**out, "task_ids": torch.arange(batch) % tasks}


def peft_comparison(model: str, batch: int, input_len: int, prompt_length: int) -> dict:
    """Our prompt tuning against PEFT's on the same random backbone, batch and prompt length."""
    import peft
    import torch
    from transformers import T5ForConditionalGeneration

    from attempt_dist.model.backbones import get_spec
    from attempt_dist.methods import prompt as prompt_method
    from attempt_dist.methods.inputs import MethodInputs

    torch.manual_seed(0)
    config = get_spec(model).config()
    models = {"ours": prompt_method.wrap(T5ForConditionalGeneration(config),
                                         prompt_method.Config(prompt_length=prompt_length), MethodInputs()),
              "peft": peft.get_peft_model(T5ForConditionalGeneration(config),
                                          peft.PromptTuningConfig(task_type="SEQ_2_SEQ_LM",
                                                                  num_virtual_tokens=prompt_length))}
    data = _random_batch(config, batch, input_len)
    median = alternating_medians(models, {k: data for k in models})
    return {"model": model, "batch": batch, "input_len": input_len, "prompt_length": prompt_length,
            "timed_steps": TIMED, "median_step_s": median, "ours_over_peft": median["ours"] / median["peft"],
            "peft_version": peft.__version__}


def attempt_comparison(model: str, batch: int, input_len: int, prompt_length: int, tasks: int = 3) -> dict:
    """ATTEMPT-MT (`tasks` target prompts, 3 random source prompts, the gate) against multi-task prompt
    tuning on the same random backbone and mixed-task batch."""
    import torch
    from transformers import T5ForConditionalGeneration

    from attempt_dist.model.backbones import get_spec
    from attempt_dist.methods import attempt as attempt_method
    from attempt_dist.methods import prompt as prompt_method
    from attempt_dist.methods.inputs import MethodInputs

    torch.manual_seed(0)
    config = get_spec(model).config()
    sources = torch.randn(3, prompt_length, config.d_model)
    models = {"prompt": prompt_method.wrap(T5ForConditionalGeneration(config),
                                           prompt_method.Config(prompt_length=prompt_length), MethodInputs(num_tasks=tasks)),
              "attempt": attempt_method.wrap(T5ForConditionalGeneration(config),
                                             attempt_method.Config(prompt_length=prompt_length),
                                             MethodInputs(num_tasks=tasks, source_prompts=sources,
                                                          source_names=["a", "b", "c"]))}
    data = _random_batch(config, batch, input_len, tasks)
    median = alternating_medians(models, {k: data for k in models})
    return {"model": model, "batch": batch, "input_len": input_len, "prompt_length": prompt_length, "tasks": tasks,
            "timed_steps": TIMED, "median_step_s": median, "attempt_over_prompt": median["attempt"] / median["prompt"]}


def attention_comparison(model: str, batch: int, input_len: int, prompt_length: int) -> dict:
    """T5's attention by sdpa (the default) against eager, in one process: prompt tuning on the same
    random backbone (copied, dropout off), batch and prompt; step times alternating, and the losses
    of both at every step (the same training in exact arithmetic)."""
    import copy

    import torch
    from transformers import T5ForConditionalGeneration

    from attempt_dist.model.backbones import get_spec, use_attention
    from attempt_dist.methods import prompt as prompt_method
    from attempt_dist.methods.inputs import MethodInputs

    torch.manual_seed(0)
    config = get_spec(model).config()
    config.dropout_rate = 0.0  # no dropout: both train on the same numbers, whose losses are compared
    sdpa = prompt_method.wrap(T5ForConditionalGeneration(config), prompt_method.Config(prompt_length=prompt_length),
                              MethodInputs())
    eager = copy.deepcopy(sdpa)
    use_attention(eager.backbone, "eager")
    data = _random_batch(config, batch, input_len)
    data["attention_mask"][1::2, input_len // 2:] = 0  # ragged rows: the mask reaches the kernels
    losses: dict[str, list[float]] = {}
    median = alternating_medians({"sdpa": sdpa, "eager": eager}, {"sdpa": data, "eager": data}, losses=losses)
    diff = max(abs(a - b) / abs(b) for a, b in zip(losses["sdpa"], losses["eager"]))
    return {"model": model, "batch": batch, "input_len": input_len, "prompt_length": prompt_length,
            "timed_steps": TIMED, "median_step_s": median, "eager_over_sdpa": median["eager"] / median["sdpa"],
            "losses": losses, "max_relative_loss_difference": diff}


def grouping_comparison(data_dir: Path, model: str = "t5-mini", batch: int = 8, prompt_length: int = 100,
                        timed: int = 2 * TIMED) -> dict:
    """Random against length-grouped batches of the mix at `data_dir`, in one process: the same
    prompt-tuning model steps on the next random batch, then on the next grouped one (the
    trainer's sampler and collator, epoch 0), `timed` steps each after WARMUP; examples/s,
    real tokens/s and padding of each."""
    import torch
    from transformers import T5ForConditionalGeneration

    from attempt_dist.model.backbones import get_spec
    from attempt_dist.data import MultiTaskSampler, Seq2SeqCollator, load_task_splits, load_tokenizer, tokenize_examples
    from attempt_dist.methods import prompt as prompt_method
    from attempt_dist.methods.inputs import MethodInputs
    from attempt_dist.tasks import get_task

    tok = load_tokenizer("t5-tiny")
    features = [tokenize_examples(load_task_splits(t, str(data_dir), seed=42)["train"], tok, i, get_task(t).max_length, 8)
                for i, t in enumerate(MIX_TASKS)]
    sizes = [len(f) for f in features]
    lengths = [[len(x["input_ids"]) for x in f] for f in features]
    samplers = {"random": MultiTaskSampler(sizes, batch, 0, 1, seed=42),
                "grouped": MultiTaskSampler(sizes, batch, 0, 1, seed=42, lengths=lengths, group_by_length=True)}
    torch.manual_seed(0)
    config = get_spec(model).config()
    wrapped = prompt_method.wrap(T5ForConditionalGeneration(config), prompt_method.Config(prompt_length=prompt_length),
                                 MethodInputs(num_tasks=len(MIX_TASKS)))
    collate = Seq2SeqCollator(tok.pad_token_id)
    batches = {k: iter(v) for k, v in samplers.items()}
    optimizer = torch.optim.AdamW([p for p in wrapped.parameters() if p.requires_grad], lr=0.3)
    totals = {k: {"seconds": 0.0, "examples": 0, "real": 0, "padded": 0} for k in samplers}
    wrapped.train()
    for step in range(WARMUP + timed):
        for name in samplers:
            items = next(batches[name])
            data = collate([features[t][i] for t, i in items])
            data.pop("indices")
            start = time.perf_counter()
            wrapped(**data).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step >= WARMUP:
                total = totals[name]
                total["seconds"] += time.perf_counter() - start
                total["examples"] += len(items)
                total["real"] += int(data["attention_mask"].sum()) + int((data["labels"] >= 0).sum())
                total["padded"] += data["input_ids"].numel() + data["labels"].numel()
    figures = {k: {"examples_per_s": t["examples"] / t["seconds"], "tokens_per_s": t["real"] / t["seconds"],
                   "padding_fraction": 1 - t["real"] / t["padded"]} for k, t in totals.items()}
    return {"model": model, "batch": batch, "prompt_length": prompt_length, "timed_steps": timed, **figures,
            "grouped_over_random": figures["grouped"]["examples_per_s"] / figures["random"]["examples_per_s"]}


# --- report -------------------------------------------------------------------------------------------
COLUMNS = [("cell", "cell"), ("status", "status"), ("step_time_s", "step s"), ("step_time_median_s", "median s"),
           ("examples_per_s", "examples/s"), ("tokens_per_s", "real tokens/s"), ("padding_fraction", "padding"),
           ("model_tflops_per_s", "model TFLOP/s"), ("mfu", "MFU"), ("hfu", "HFU")]
# The run's evaluation (the final dev and test evaluations), beside the steady training figures.
EVAL_COLUMNS = [("eval_share", "eval share of run"), ("eval_ms_per_generated_token", "eval ms / generated token")]


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def comparisons(rows: list[dict]) -> list[str]:
    """The goals, as paired ratios of cells of this run."""
    by = {(r["model"], r["method"], r["tasks"], r["data"], r["group_by_length"], r.get("attn", "sdpa")): r.get("steady")
          for r in rows}
    losses = {(r["model"], r["method"], r["tasks"], r["data"], r["group_by_length"], r.get("attn", "sdpa")):
              r.get("train_loss") for r in rows}
    lines = []
    for key, steady in by.items():
        model, method, tasks, data, grouped, attn = key
        if attn != "sdpa":
            base = by.get((*key[:5], "sdpa"))
            if steady and base:
                ours, theirs = losses.get(key) or [], losses.get((*key[:5], "sdpa")) or []
                diff = max((abs(a - b) / abs(b) for a, b in zip(ours, theirs)), default=None)
                lines.append(f"{model} {method}, attention by {attn} / sdpa: examples/s "
                             f"{steady['examples_per_s'] / base['examples_per_s']:.3f}x; training losses "
                             + (f"within {diff:.2%} of sdpa's at every one of {min(len(ours), len(theirs))} steps"
                                if diff is not None else "not recorded"))
            continue
        if method == "attempt" and steady:
            base = by.get((model, "prompt", tasks, data, grouped, "sdpa"))
            if base:
                lines.append(f"{model} ATTEMPT / prompt tuning ({tasks}): step time "
                             f"{steady['step_time_median_s'] / base['step_time_median_s']:.3f}x (median), examples/s "
                             f"{steady['examples_per_s'] / base['examples_per_s']:.3f}x")
        if grouped and steady:
            base = by.get((model, method, tasks, data, False, "sdpa"))
            if base:
                lines.append(f"{model} {method} {data} mix, --group-by-length / random batches: examples/s "
                             f"{steady['examples_per_s'] / base['examples_per_s']:.2f}x, padding "
                             f"{base['padding_fraction']:.1%} -> {steady['padding_fraction']:.1%}")
    return lines


def markdown(report: dict) -> str:
    lines = [f"# Steady-state training throughput ({report['mode']})", "",
             f"- date: {report['date']}", f"- device: {report['device']}", f"- machine: {report['machine']}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
             f"- command: `{report['command']}`",
             f"- per cell: {WARMUP} warm-up steps left out, {TIMED} timed; fixed data: every input "
             f"{report['max_length']} tokens; prompt length {report['prompt_length']}; random init, ZeRO-0 "
             "(bf16 on a GPU, fp32 on the CPU)"] + ([f"- note: {report['note']}"] if report.get("note") else []) + [""]
    heads = [h for _, h in COLUMNS + EVAL_COLUMNS]
    if report["cells"]:
        lines += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for row in report["cells"]:
        steady = row.get("steady") or {}
        values = ([row["cell"], row["status"]] + [steady.get(k) for k, _ in COLUMNS[2:]]
                  + [row.get(k) for k, _ in EVAL_COLUMNS])
        lines.append("| " + " | ".join(_fmt(v) for v in values) + " |")
    lines += ["", "## Goals, side by side", ""] + [f"- {line}" for line in report["comparisons"]]
    if report.get("peft"):
        p = report["peft"]
        lines.append(f"- our prompt tuning / PEFT {p['peft_version']} prompt tuning, {p['model']} batch {p['batch']} x "
                     f"{p['input_len']} tokens, prompt {p['prompt_length']} (plain torch, median of "
                     f"{p['timed_steps']} steps each, alternating): {p['ours_over_peft']:.3f}x step time "
                     f"({p['median_step_s']['ours']:.3f} s vs {p['median_step_s']['peft']:.3f} s)")
    if report.get("attempt_in_process"):
        p = report["attempt_in_process"]
        lines.append(f"- ATTEMPT-MT / multi-task prompt tuning in one process ({p['tasks']} tasks, 3 sources), {p['model']} "
                     f"batch {p['batch']} x {p['input_len']} tokens, prompt {p['prompt_length']} (plain torch, median of "
                     f"{p['timed_steps']} steps each, alternating): {p['attempt_over_prompt']:.3f}x step time "
                     f"({p['median_step_s']['attempt']:.3f} s vs {p['median_step_s']['prompt']:.3f} s)")
    if report.get("attention_in_process"):
        a = report["attention_in_process"]
        lines.append(f"- T5 attention by eager / by sdpa (the default) in one process, {a['model']} prompt tuning, batch "
                     f"{a['batch']} x {a['input_len']} tokens (half the rows half padding), prompt {a['prompt_length']} "
                     f"(plain torch, median of {a['timed_steps']} steps each, alternating): {a['eager_over_sdpa']:.3f}x "
                     f"step time ({a['median_step_s']['eager']:.3f} s vs {a['median_step_s']['sdpa']:.3f} s); losses "
                     f"within {a['max_relative_loss_difference']:.1e} (relative) of each other at every step")
    if report.get("grouping_in_process"):
        g = report["grouping_in_process"]
        lines.append(f"- --group-by-length / random batches of the length mix in one process, {g['model']} prompt tuning "
                     f"(prompt {g['prompt_length']}), batch {g['batch']} (plain torch, {g['timed_steps']} batches each, "
                     f"alternating): {g['grouped_over_random']:.2f}x examples/s ({g['grouped']['examples_per_s']:.2f} vs "
                     f"{g['random']['examples_per_s']:.2f}), padding {g['random']['padding_fraction']:.1%} -> "
                     f"{g['grouped']['padding_fraction']:.1%}")
    if report.get("data"):
        lines += ["", "## Training input lengths (tokens, as cut by the trainer)", ""]
        for name, tasks in report["data"].items():
            lines.append(f"- {name}: " + "; ".join(f"{t} {d['examples']} examples, {d['min']}..{d['max']} "
                                                   f"(median {d['median']})" for t, d in tasks.items()))
    lines += ["", "MFU = model FLOP/s per device / the device's dense peak (attempt_dist/planning/flops.py: forward of every "
              "layer, input-gradient backward through a frozen backbone, weight gradients only where trainable); "
              "HFU adds checkpointing's recomputation. FLOPs are counted on the padded shapes; padding = the share "
              "of input and target positions that are padding. '-' = no known peak (the CPU)."]
    profiles = [r for r in report["cells"] if r.get("profile")]
    if profiles:
        lines += ["", "Profiles (top operators/kernels by self device time, steps "
                  f"{PROFILE_STEPS[0]}..{PROFILE_STEPS[1]}, not timed): "
                  + ", ".join(f"`{r['profile']}`" for r in profiles)]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--cpu", action="store_true", help="CI-sized cells on the CPU")
    which.add_argument("--gpu", action="store_true", help="the issue's cells on one GPU")
    parser.add_argument("--cells", default=None, help="comma-separated globs of cell names (default: all)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"), help="report folder")
    parser.add_argument("--work-dir", default=None, help="data, libraries and runs (default: a temporary folder)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's peak, overriding the table")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell (default 900)")
    parser.add_argument("--deadline", type=int, default=None, help="seconds for the whole run: later cells are skipped")
    parser.add_argument("--no-peft", action="store_true", help="CPU: skip the in-process comparisons")
    parser.add_argument("--paired-only", action="store_true",
                        help="CPU: only the in-process comparisons, into <stem>-paired.json/.md")
    parser.add_argument("--pairs", default=",".join(PAIRS),
                        help=f"CPU: which in-process comparisons (comma-separated of {', '.join(PAIRS)}; default all)")
    parser.add_argument("--note", default=None, help="a line for the report: how busy the machine was, say")
    parser.add_argument("--dry-run", action="store_true", help="print the trainer commands and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    import fnmatch
    import tempfile

    args = build_parser().parse_args(argv)
    if not set(args.pairs.split(",")) <= set(PAIRS):
        raise SystemExit(f"error: --pairs {args.pairs}: each must be one of {', '.join(PAIRS)}")
    mode = CPU if args.cpu else GPU
    cells = [] if args.paired_only else list(mode.cells)
    if args.cells:
        patterns = args.cells.split(",")
        cells = [c for c in cells if any(fnmatch.fnmatch(c.name, p) for p in patterns)]
        if not cells:
            raise SystemExit(f"error: --cells {args.cells} matches none of: {', '.join(c.name for c in mode.cells)}")
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="throughput-"))
    if args.dry_run:
        for cell in cells:
            print(shlex.join(train_command(cell, mode, work)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stem = (mode.stem if args.cpu else f"{mode.stem}-{ms.slug(ms.device_name())}") + ("-paired" if args.paired_only else "")
    fixed_tasks = sorted({t for c in cells if c.data == "fixed" for t in c.tasks.split(",")})
    data = {}
    if fixed_tasks:
        write_fixed_data(work / "data-fixed", fixed_tasks, mode.max_length)
        data["fixed"] = input_lengths(fixed_tasks, work / "data-fixed", "t5-tiny", mode.max_length)
    pairs = set(args.pairs.split(","))
    if any(c.data == "mix" for c in cells) or (mode.peft_model and not args.no_peft and not args.cells
                                                and "grouping" in pairs):
        write_mix_data(work / "data-mix")
        data["mix"] = input_lengths(list(MIX_TASKS), work / "data-mix", "t5-tiny", None)
    for cell in cells:
        if cell.method == "attempt":
            ms.make_library(ms.library_dir(work, cell.model, mode.prompt_length), cell.model, mode.prompt_length)
    rows = []
    for cell in cells:
        if args.deadline and time.monotonic() - started > args.deadline:
            rows.append({**asdict(cell), "cell": cell.name, "status": "skipped (deadline)", "steady": None})
            continue
        rows.append(with_peak(run_cell(cell, mode, work, out, stem, args.timeout), args.peak_tflops))
        print(json.dumps({k: rows[-1].get(k) for k in ("cell", "status", "steady")}), flush=True)
    peft_row = paired = grouping = attention = None
    if mode.peft_model and not args.no_peft and not args.cells:
        shape = (mode.peft_model, mode.peft_batch, mode.max_length, mode.prompt_length)
        peft_row = peft_comparison(*shape) if "peft" in pairs else None
        paired = attempt_comparison(*shape) if "attempt" in pairs else None
        attention = attention_comparison(*shape) if "attention" in pairs else None
        grouping = grouping_comparison(work / "data-mix", prompt_length=mode.prompt_length) if "grouping" in pairs else None
    from attempt_dist.atomic_files import write_json_atomic, write_text_atomic
    from attempt_dist.provenance import package_versions

    report = {"mode": "cpu" if args.cpu else "gpu", "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "device": ms.device_name(), "machine": ms.machine()["description"],
              "versions": {k: v for k, v in package_versions().items() if k in ("torch", "transformers", "deepspeed", "peft")}
              | {"peft": _version("peft")},
              "command": "python benchmarks/throughput.py " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "warmup_steps": WARMUP, "timed_steps": TIMED, "max_length": mode.max_length,
              "prompt_length": mode.prompt_length, "data": data, "cells": rows, "peft": peft_row, "attempt_in_process": paired, "grouping_in_process": grouping,
              "attention_in_process": attention, "note": args.note,
              "comparisons": comparisons(rows)}
    write_json_atomic(out / f"{stem}.json", report)
    write_text_atomic(out / f"{stem}.md", markdown(report))
    print(f"wrote {out / stem}.json and .md")
    return 0 if all(r["status"] == "completed" for r in rows) else 1


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


if __name__ == "__main__":
    sys.exit(main())
