"""Peak memory and throughput of real training runs, one sweep cell (one training job) per benchmark cell.

    python benchmarks/memory_scaling.py --out benchmarks/results            # the paper's 24 GB question (GPU)
    python benchmarks/memory_scaling.py --dry-run                          # print each cell's trainer command
    python benchmarks/memory_scaling.py --models t5-tiny --cap none --steps 3 --out /tmp/bench   # CPU smoke run

The cells run through the sweep machinery (attempt_dist/sweep), as any sweep does: the benchmark
writes them as a sweep file, <work>/sweep.yaml (one grid block per cell, its options as `train:`
keys, a local executor running one cell at a time with the cell's ranks as tasks, `time` from
--timeout, no requeue), and launches it into <work>/runs with --deadline as the sweep's deadline
(cells not started by then are "skipped", the running one is cut: "timeout"). The same sweep
runs again with `attempt-dist sweep <work>/sweep.yaml --output-dir <work>/runs`; like any sweep
relaunch, a second run in the same --work-dir runs only the cells not done yet (with other
options for a cell it refuses: use a new --work-dir). --dry-run prints the trainer command of
each cell as the sweep passes it (a multi-rank cell as the DeepSpeed launcher's by-hand
equivalent; the sweep gives it that many submitit tasks instead).

Default cells: can ATTEMPT and prompt tuning train t5-large (batch 16) and t5-3b (batch 2) under
a 24 GiB cap with ZeRO-3 offload, and fine-tuning / adapters t5-large with ZeRO-2 offload? Each
cell is the normal recipe (no benchmark-only code path) on random weights (`--init random`, no
download), so a cell that runs out of memory ends in failure.json (status "oom", exit 3) and the
next cell still runs. Rows are collected from each run's result.json / failure.json into
`<out>/<name>-<device>.json` and `.md`. Throughput comes from a handful of steps, so it includes
the first steps' warm-up: compare cells of one file, not across files with other step counts.

Data: the shipped example passages are a sentence each (25 tokens), far below the task's
--max-length. Unless --data-dir is given, the example data is first copied to <work>/data with
each passage repeated past max_length (see `lengthen_rows`), so every training input is exactly
--max-length tokens and targets keep their real length; the report's settings (its "plan") name the folder.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import math
import os
import platform
import re
import shlex
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # attempt_dist, when run as a script from anywhere
from attempt_dist.methods import LIBRARY_METHODS  # noqa: E402  (needs the path above)
from attempt_dist.finished.record import FAILURE_FILENAME, RESULT_FILENAME, RecordError, read_record  # noqa: E402

GIB = 2**30
SOURCE_PROMPTS = ("mnli", "sst2", "squad")  # a small random library: ATTEMPT mixes these
SEED = 42  # the trainer's default; a sweep cell always passes its seed
SWEEP_NAME = "memory-scaling"


@dataclass(frozen=True)
class Cell:
    model: str
    method: str
    ds_config: str  # a name in ds_configs/ (without .json), or "auto": the memory planner's choice
    batch_size: int
    ranks: int = 1
    checkpointing: bool = False

    @property
    def name(self) -> str:
        return (f"{self.model}_{self.method}_{self.ds_config}_bs{self.batch_size}_r{self.ranks}"
                + ("_ckpt" if self.checkpointing else ""))


# The paper's single-24-GB-GPU question (Section 6.2, Figure 4), in priority order: the planner's
# choice (--ds-config auto, batch = micro-batch x accumulation) for what the paper could not do
# (t5-3b ATTEMPT / prompt tuning at batch 32, t5-3b fine-tuning at batch 1), then the paper's own
# setting (ZeRO-3 offload at batch 2) as the throughput reference, then t5-large.
DEFAULT_CELLS = [
    Cell("t5-3b", "attempt", "auto", 32),
    Cell("t5-3b", "prompt", "auto", 32),
    Cell("t5-3b", "finetune", "auto", 1),
    Cell("t5-3b", "attempt", "zero3_offload", 2),
    Cell("t5-large", "attempt", "auto", 32),
    Cell("t5-large", "finetune", "auto", 16),
    Cell("t5-large", "adapter", "auto", 32),
    Cell("t5-3b", "attempt", "zero0", 32, checkpointing=True),
]


@dataclass
class Settings:
    """Everything shared by the cells of one benchmark run."""
    steps: int = 5
    cap: str | None = "24GiB"
    task: str = "boolq"
    data_dir: str = "WORK/data"  # the folder the cells train on (relative to the repo, or absolute)
    data_source: str = "examples/data"  # where data_dir's rows come from
    lengthened: bool = True  # data_dir = data_source with inputs lengthened past max_length (lengthen_rows)
    max_length: int = 216
    max_target_length: int = 8  # boolq targets are one word; keeps the final evaluation cheap
    max_eval_examples: int = 2
    prompt_length: int = 100
    timeout_s: int = 3600  # per cell: the sweep executor's `time` (rounded up to minutes)
    deadline_s: int | None = None  # for the whole run (the sweep's deadline): later cells are skipped, a running one cut
    master_port: int = 29611  # only in --dry-run's by-hand command of a multi-rank cell


# --- planning -----------------------------------------------------------------------------------
def select_cells(cells: list[Cell], patterns: list[str] | None, models: list[str] | None) -> list[Cell]:
    """--models swaps every cell's backbone (keeping order, no duplicates); --cells keeps names matching a glob."""
    if models:
        swapped: list[Cell] = []
        for cell in cells:
            for model in models:
                new = replace(cell, model=model)
                if new not in swapped:
                    swapped.append(new)
        cells = swapped
    if patterns:
        kept = [c for c in cells if any(fnmatch.fnmatch(c.name, p) or c.name == p for p in patterns)]
        if not kept:
            known = ", ".join(c.name for c in cells)
            raise SystemExit(f"error: --cells {','.join(patterns)} matches no cell; cells are: {known}")
        cells = kept
    return cells


def library_dir(work: Path, model: str, prompt_length: int) -> Path:
    return work / "libraries" / f"{model}-m{prompt_length}"


def cell_options(cell: Cell, settings: Settings, library: Path | None, tokenizer: str | None = None,
                 absolute: bool = False) -> dict:
    """The trainer options of one cell, as sweep `train:` keys (flag names with underscores).

    absolute: data_dir and a ds_configs/ file as absolute paths (the sweep file's form);
    otherwise as given, relative to the repository (the printed commands)."""
    ds = cell.ds_config if cell.ds_config == "auto" else f"ds_configs/{cell.ds_config}.json"
    options = {
        "data_dir": str(_repo_path(settings.data_dir)) if absolute else settings.data_dir, "init": "random",
        "ds_config": str(_repo_path(ds)) if absolute and ds != "auto" else ds,
        "batch_size": cell.batch_size, "max_steps": settings.steps, "warmup_steps": 0,
        "max_length": settings.max_length, "max_target_length": settings.max_target_length,
        "max_eval_examples": settings.max_eval_examples,
        # Evaluation only at the end; no checkpoints (a fine-tuned t5-3b one is 34 GB).
        "eval_every": 1000000, "no_checkpoints": True,
        "prompt_length": settings.prompt_length,
        "gpu_mem_cap": settings.cap, "activation_checkpointing": cell.checkpointing or None,
        "source_prompts": str(library) if library is not None else None, "tokenizer": tokenizer,
        # --no-save-attention stores False in save_attention: a sweep key set to false adds no flag.
        "extra_args": ["--no-save-attention"],
    }
    return {k: v for k, v in options.items() if v is not None}


def train_command(cell: Cell, settings: Settings, run_dir: Path, library: Path | None,
                  python: str = sys.executable, tokenizer: str | None = None) -> list[str]:
    """The trainer command of one cell, with the argv its sweep job passes to the trainer.

    For --dry-run: the sweep runs the trainer in its own job (a multi-rank cell as that many
    submitit tasks); a multi-rank cell is shown with the DeepSpeed launcher, its by-hand equivalent."""
    from attempt_dist.sweep.spec import options_to_argv

    if cell.ranks == 1:
        launcher = [python, "launch/train.py"]
    else:
        launcher = [python, "-m", "deepspeed.launcher.runner", "--num_gpus", str(cell.ranks),
                    "--master_port", str(settings.master_port), "launch/train.py"]
    options = {"model": cell.model, "method": cell.method, "tasks": settings.task, "seed": SEED,
               **cell_options(cell, settings, library, tokenizer), "output_dir": str(run_dir)}
    return launcher + options_to_argv(options)


def sweep_variant(cell: Cell) -> str:
    """The cell's method variant in the sweep: its name without the backbone (cells differ in more than the method)."""
    return cell.name.removeprefix(f"{cell.model}_")


def sweep_cell_name(cell: Cell, settings: Settings) -> str:
    return f"{cell.model}__{sweep_variant(cell)}__{settings.task}__s{SEED}"


def sweep_run_dir(work: Path, cell: Cell, settings: Settings) -> Path:
    """The cell's training run folder in the sweep launched into <work>/runs."""
    return Path(work) / "runs" / "cells" / sweep_cell_name(cell, settings) / "run"


def sweep_file(cells: list[Cell], settings: Settings, libraries: dict[str, Path], tokenizers: dict[str, str | None],
               cuda: bool) -> dict:
    """The sweep (schema.py's format) that runs `cells`: one grid block per cell, a local executor
    running one at a time (array_parallelism 1), each with its ranks as tasks (and as GPUs on a
    GPU machine), `time` = --timeout in minutes, no requeue (no checkpoints to resume from).
    libraries: model -> random prompt library; tokenizers: model -> --tokenizer or None."""
    grid = []
    for cell in cells:
        library = libraries.get(cell.model) if cell.method in LIBRARY_METHODS else None
        grid.append({"models": [cell.model],
                     "methods": [{"name": sweep_variant(cell), "method": cell.method}],
                     "tasks": [settings.task], "seeds": [SEED],
                     "train": cell_options(cell, settings, library, tokenizers.get(cell.model), absolute=True)})
    ranks = sorted({c.ranks for c in cells} - {1})
    overrides = [{"when": {"variant": sorted({sweep_variant(c) for c in cells if c.ranks == r})},
                  "executor": {"tasks_per_node": r, "gpus_per_node": r if cuda else 0}} for r in ranks]
    return {"name": SWEEP_NAME, "grid": grid, **({"overrides": overrides} if overrides else {}),
            "executor": {"kind": "local", "array_parallelism": 1, "tasks_per_node": 1, "gpus_per_node": int(cuda),
                         "time": max(1, math.ceil(settings.timeout_s / 60)), "requeues": 0}}


def write_sweep_file(raw: dict, work: Path) -> Path:
    import yaml

    from attempt_dist.atomic_files import write_text_atomic

    head = (f"# benchmarks/memory_scaling.py's cells as a sweep; run again (only the cells not done) with\n"
            f"#   attempt-dist sweep {work / 'sweep.yaml'} --output-dir {work / 'runs'}\n")
    return write_text_atomic(work / "sweep.yaml", head + yaml.safe_dump(raw, sort_keys=False))


# --- benchmark data -------------------------------------------------------------------------------
def lengthen_rows(rows: list[dict], field: str, min_words: int) -> list[dict]:
    """Copies of `rows` whose `field` is its own text repeated until it has more than
    `min_words` whitespace words.

    Why: memory depends on the sequence length, and the shipped example passages are a sentence
    each (every boolq input is 25 t5-tiny tokens), so runs on them were measured at 25 input
    tokens, not at the task's --max-length. Every whitespace word is at least one token, for
    T5's SentencePiece and for the t5-tiny test tokenizer alike (both start each word with a
    '▁' piece), so a field of more than max_length words makes the input longer than max_length
    whatever the tokenizer, and truncation cuts every example to exactly max_length tokens.
    Repeating the row's own text keeps the tokens in the vocabulary (no runs of <unk>) and the
    labels, so targets keep their real length.
    """
    out = []
    for row in rows:
        text = str(row[field])
        words = len(text.split())
        if words == 0:
            raise ValueError(f"cannot lengthen an empty {field!r}")
        out.append({**row, field: " ".join([text] * math.ceil((min_words + 1) / words))})
    return out


def write_benchmark_data(source: Path, dest: Path, task: str, max_length: int) -> Path:
    """<dest>/<task>/<split>.jsonl for each hub split of the task (the layout data/files.py
    reads): the rows of `source` (the example data) with the task's longest text field
    lengthened past max_length words. Returns dest, the --data-dir of the cells."""
    from attempt_dist.data.loading import load_rows
    from attempt_dist.atomic_files import write_jsonl_atomic
    from attempt_dist.tasks import get_task

    spec = get_task(task)
    if spec.mrqa_subset is not None or not spec.text_fields:
        raise SystemExit(f"error: cannot lengthen task {task}'s inputs (no plain text field); "
                         "pass --data-dir with data whose inputs reach --max-length")
    folder = dest / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    for split in dict.fromkeys(spec.hub_splits.values()):
        rows = list(load_rows(spec, split, source).rows)
        field = max(spec.text_fields, key=lambda f: sum(len(str(r.get(f, ""))) for r in rows))
        write_jsonl_atomic(folder / f"{split}.jsonl", lengthen_rows(rows, field, max_length), default=str)
    return dest


def data_lengths(task: str, data_dir: str | Path, tokenizer: str, max_length: int, max_target_length: int) -> dict:
    """Token lengths of the training split as the runs see it: {"examples", "input_min",
    "input_max", "target_max", "targets_cut"} (targets_cut: targets truncated by max_target_length)."""
    from attempt_dist.data import load_task_splits, load_tokenizer, tokenize_examples

    tok = load_tokenizer(tokenizer)
    train = load_task_splits(task, str(_repo_path(data_dir)), seed=42)["train"]
    feats = tokenize_examples(train, tok, 0, max_length, max_target_length)
    full = tokenize_examples(train, tok, 0, max_length, 10**6)
    inputs = [len(f["input_ids"]) for f in feats]
    return {"examples": len(feats), "input_min": min(inputs), "input_max": max(inputs),
            "target_max": max(len(f["labels"]) for f in feats),
            "targets_cut": sum(len(a["labels"]) != len(b["labels"]) for a, b in zip(feats, full))}


def _repo_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else REPO / path


def cell_tokenizer(model: str) -> str:
    """The tokenizer a cell of this backbone runs with (see tokenizer_args)."""
    return "t5-tiny" if tokenizer_args(model) else model


def prepare_data(settings: Settings, models: list[str]) -> tuple[Settings, dict]:
    """Writes the lengthened data (settings.lengthened) and measures the training inputs with each
    tokenizer the cells use. Lengthened data must give exactly max_length input tokens and
    uncut targets, else SystemExit: the benchmark would measure the wrong shapes."""
    if settings.lengthened:
        write_benchmark_data(_repo_path(settings.data_source), _repo_path(settings.data_dir), settings.task, settings.max_length)
    lengths = {}
    for tokenizer in dict.fromkeys(cell_tokenizer(m) for m in models):
        got = data_lengths(settings.task, settings.data_dir, tokenizer, settings.max_length, settings.max_target_length)
        if settings.lengthened and (got["input_min"] != settings.max_length or got["input_max"] != settings.max_length
                                or got["targets_cut"]):
            raise SystemExit(f"error: lengthened data in {settings.data_dir} gives {tokenizer} inputs of "
                             f"{got['input_min']}..{got['input_max']} tokens ({got['targets_cut']} targets cut), "
                             f"not exactly {settings.max_length}")
        lengths[tokenizer] = got
    return settings, {"dir": settings.data_dir, "source": settings.data_source, "lengthened": settings.lengthened,
                  "train_lengths": lengths}


def data_note(data: dict, settings: Settings) -> str:
    parts = [f"{tok}: {d['examples']} training inputs of "
             + (f"{d['input_min']}" if d["input_min"] == d["input_max"] else f"{d['input_min']}..{d['input_max']}")
             + f" tokens, targets up to {d['target_max']}"
             + (f" ({d['targets_cut']} cut at {settings.max_target_length})" if d["targets_cut"] else "")
             for tok, d in data["train_lengths"].items()]
    if data["lengthened"]:
        head = (f"Data: {data['dir']}, written from {data['source']}/{settings.task} with each passage repeated past "
                f"max_length={settings.max_length} words, so truncation makes every input exactly {settings.max_length} "
                f"tokens; targets at their real length")
    else:
        head = f"Data: {data['dir']} as given by --data-dir (not lengthened)"
    return head + " (" + "; ".join(parts) + ")."


# --- environment for the runs ---------------------------------------------------------------------
def make_library(folder: Path, model: str, prompt_length: int) -> Path:
    """Random source prompts: memory and speed do not depend on their values."""
    import torch

    from attempt_dist.model.backbones import get_spec
    from attempt_dist.methods.prompts import add_to_library

    if (folder / "index.json").exists() or any(folder.glob("*.pt")):
        return folder
    d_model = get_spec(model).d_model
    generator = torch.Generator().manual_seed(0)
    for name in SOURCE_PROMPTS:
        add_to_library(folder, torch.randn(prompt_length, d_model, generator=generator), task=name, backbone=model)
    return folder


def tokenizer_args(model: str) -> list[str]:
    """[] when the backbone's real tokenizer loads (offline cache or local), else
    ["--tokenizer", "t5-tiny"]: the test tokenizer's ids fit every T5 vocabulary and inputs are
    cut to --max-length tokens either way, so memory is measured at the same sequence length."""
    from attempt_dist.model.backbones import get_spec
    from attempt_dist.errors import UserError
    from attempt_dist.model.tokenizer import load_tokenizer

    if not get_spec(model).hub_id:
        return []
    try:
        load_tokenizer(model)
        return []
    except UserError:
        return ["--tokenizer", "t5-tiny"]


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.setdefault(name, "1")  # benchmarks never download
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if not _cuda_available():
        env.setdefault("DS_ACCELERATOR", "cpu")
    return env


@contextmanager
def _environment(env: dict[str, str]):
    """os.environ = env while the sweep runs (its local jobs inherit it), then as it was."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


# --- collecting results --------------------------------------------------------------------------
def collect_row(cell: Cell, run_dir: Path, exit_code: int | None = None) -> dict:
    """One table row from a run folder: result.json (completed) or failure.json (oom / failed)."""
    row = {**asdict(cell), "cell": cell.name, "status": "missing", "peak_allocated_gib": None,
           "planned_layout": None, "predicted_allocator_gib": None, "predicted_peak_gib": None,
           "device_peak_gib": None, "cap_gib": None, "examples_per_s": None, "steps": None,
           "world_size": None, "zero_stage": None, "trainable_params": None, "reason": None,
           "exit_code": exit_code}
    result, failure = run_dir / RESULT_FILENAME, run_dir / FAILURE_FILENAME
    if result.exists() or failure.exists():
        try:
            record = read_record(result if result.exists() else failure)
        except RecordError as err:  # a row that says so, never a row that looks like a missing run
            row.update(status="failed", reason=str(err))
            return row
    if result.exists():
        memory, speed = record.memory, record.throughput
        row.update(status=record.status,
                   peak_allocated_gib=_gib(memory and memory.peak_allocated_bytes),
                   device_peak_gib=_gib(memory and memory.device_peak_bytes),
                   cap_gib=_gib(memory and memory.cap_bytes),
                   examples_per_s=speed and speed.train_examples_per_s, steps=speed and speed.steps,
                   world_size=record.world_size,
                   zero_stage=record.deepspeed and record.deepspeed.stage,
                   trainable_params=record.params and record.params.trainable)
        chosen = (record.plan or {}).get("chosen")
        config = record.config
        row.update(micro_batch=config.get("batch_size"), grad_accum=config.get("grad_accum"),
                   checkpointing=config.get("activation_checkpointing", cell.checkpointing))
        if chosen:  # --ds-config auto: what the planner predicted for the layout it chose
            row.update(planned_layout=chosen["layout"], predicted_peak_gib=_gib(chosen["peak_bytes"]),
                       predicted_allocator_gib=_gib(chosen["peak_bytes"] - chosen["components"]["cuda_context"]),
                       predicted_components_gib={k: _gib(v) for k, v in chosen["components"].items()})
    elif failure.exists():
        row.update(status=record.status, reason=record.reason)
    elif exit_code not in (None, 0):
        row.update(status="failed", reason=f"exit code {exit_code}, no result.json or failure.json; see the log")
    return row


def _gib(value) -> float | None:
    return None if value is None else round(value / GIB, 3)


COLUMNS = [("model", "model"), ("method", "method"), ("ds_config", "config"), ("planned_layout", "planned layout"),
           ("checkpointing", "ckpt"), ("ranks", "ranks"), ("batch_size", "batch"), ("micro_batch", "micro"),
           ("peak_allocated_gib", "peak allocator GiB"), ("predicted_allocator_gib", "predicted GiB"),
           ("device_peak_gib", "device peak GiB"), ("predicted_peak_gib", "predicted device GiB"),
           ("examples_per_s", "examples/s"), ("status", "status")]


def _cell_text(key: str, value) -> str:
    if value is None:
        return "-"
    if key == "examples_per_s":
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def table_rows(rows: list[dict]) -> list[list[str]]:
    return [[_cell_text(key, row.get(key)) for key, _ in COLUMNS] for row in rows]


def markdown(report: dict) -> str:
    head = [title for _, title in COLUMNS]
    lines = [f"# {report['name']} on {report['device']}", "",
             f"- date: {report['date']}",
             f"- machine: {report['machine']['description']}",
             f"- versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
             f"- command: `{report['command']}`",
             f"- per cell: {report['plan']['steps']} steps, task {report['plan']['task']}, "
             f"max_length {report['plan']['max_length']}, cap {report['plan']['cap'] or 'none'}, random init"
             + (f", data {report['plan']['data_dir']}" if report['plan'].get('data_dir') else "")
             + (" (inputs lengthened to max_length)" if report['plan'].get('lengthened') else ""),
             "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(report["rows"])]
    if report.get("notes"):
        lines += [""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


# --- running ------------------------------------------------------------------------------------
def device_name() -> str:
    if _cuda_available():
        import torch

        return torch.cuda.get_device_name(0)
    return "cpu"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def machine() -> dict:
    info = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "cpu_model": platform.processor() or None}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        mem_kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        info["host_memory_gib"] = round(mem_kib / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    gpu = device_name()
    info["description"] = (f"{gpu}, " if gpu != "cpu" else "") + \
        f"{info['cpu_count']} CPU cores ({info.get('cpu_model')}), {info.get('host_memory_gib')} GiB host memory"
    return info


def run_cells(cells: list[Cell], settings: Settings, work: Path, log=print) -> list[dict]:
    """Run the cells as one local sweep in <work>/runs (see sweep_file) and collect a row per cell."""
    from attempt_dist.errors import UserError
    from attempt_dist.sweep import load_sweep, run_sweep

    work = Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cuda = _cuda_available()
    libraries = {m: make_library(library_dir(work, m, settings.prompt_length), m, settings.prompt_length)
                 for m in dict.fromkeys(c.model for c in cells if c.method in LIBRARY_METHODS)}
    tokenizers = {m: ("t5-tiny" if tokenizer_args(m) else None) for m in dict.fromkeys(c.model for c in cells)}
    path = write_sweep_file(sweep_file(cells, settings, libraries, tokenizers, cuda), work)
    run = work / "runs"
    try:
        sweep = load_sweep(path)
        _refuse_other_options(sweep, run)
        log(f"{len(cells)} cell(s) as the sweep {path} -> {run}")
        with _environment(base_env()):
            run_sweep(sweep, run, deadline_s=settings.deadline_s)
    except UserError as err:
        raise SystemExit(f"error: {err}") from None
    rows = []
    for cell in cells:
        row = cell_row(cell, settings, run, tokenized=bool(tokenizers[cell.model]))
        log(f"{cell.name} -> {row['status']}, peak allocator {row['peak_allocated_gib']} GiB, "
            f"{_cell_text('examples_per_s', row['examples_per_s'])} examples/s")
        rows.append(row)
    return rows


def _refuse_other_options(sweep, run: Path) -> None:
    """A done cell of an earlier run in this work dir is kept by the sweep: only if its options were these."""
    from attempt_dist.atomic_files import read_json

    if not (run / "sweep.json").exists():
        return
    before = {c["name"]: c.get("train") for c in read_json(run / "sweep.json").get("cells", [])}
    for cell in sweep.cells:
        if cell.name in before and before[cell.name] != cell.train:
            changed = sorted(k for k in set(cell.train) | set(before[cell.name] or {})
                             if cell.train.get(k) != (before[cell.name] or {}).get(k))
            raise SystemExit(f"error: {run} already holds cell {cell.name} run with other options "
                             f"({', '.join(changed)}); pass a new --work-dir")


def cell_row(cell: Cell, settings: Settings, run: Path, tokenized: bool = False) -> dict:
    """collect_row of the cell's sweep run folder; a cell the sweep's deadline kept from starting
    is "skipped", one cut by the deadline or its time limit "timeout"."""
    from attempt_dist.sweep.state import cell_dir, run_state

    name = sweep_cell_name(cell, settings)
    job = _read_json_or_empty(cell_dir(run, name) / "job.json")
    row = collect_row(cell, sweep_run_dir(run.parent, cell, settings))
    reason = row.get("reason") or ""
    if row["status"] == "failed" and reason.startswith("not started:"):
        row["status"] = "skipped"
    elif row["status"] == "failed" and ("--deadline" in reason or "timed-out" in reason):
        row["status"] = "timeout"
        if "timed-out" in reason:
            row["reason"] = f"cut by its time limit (--timeout {settings.timeout_s} s): {reason}"
    elif row["status"] == "missing" and job:  # a job that ended without a record: the sweep's verdict
        state = run_state(cell_dir(run, name) / "run", cell_dir(run, name) / "job.json")
        if state.status != "pending":
            row.update(status="failed" if state.status == "running" else state.status, reason=state.detail)
    row["tokenizer"] = "t5-tiny test tokenizer" if tokenized else "real"
    row["log"] = job.get("stderr")
    row["stdout"] = job.get("stdout")
    row["sweep_cell"] = name
    return row


def _read_json_or_empty(path: Path) -> dict:
    from attempt_dist.atomic_files import read_json

    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_report(report: dict, out: Path, stem: str) -> tuple[Path, Path]:
    from attempt_dist.atomic_files import write_json_atomic, write_text_atomic

    return write_json_atomic(out / f"{stem}.json", report), write_text_atomic(out / f"{stem}.md", markdown(report))


def build_parser(prog: str | None = None, description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description or __doc__.split("\n\n")[0])
    d = Settings()
    parser.add_argument("--cells", default=None, help="comma-separated cell names or globs, e.g. 't5-3b_*' (default: all)")
    parser.add_argument("--models", default=None, help="comma-separated backbones replacing each cell's, e.g. t5-tiny for a CPU smoke run")
    parser.add_argument("--ranks", type=int, default=None, help="ranks per cell (default: each cell's own, 1)")
    parser.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps per cell (default {d.steps})")
    parser.add_argument("--cap", default=d.cap, help=f"--gpu-mem-cap of every cell, or 'none' (default {d.cap})")
    parser.add_argument("--task", default=d.task, help=f"training task (default {d.task})")
    parser.add_argument("--data-dir", default=None,
                        help=f"data folder, used as is (default: {d.data_source} with inputs lengthened to "
                             "--max-length, written to <work-dir>/data)")
    parser.add_argument("--max-length", type=int, default=d.max_length, help=f"input tokens (default {d.max_length})")
    parser.add_argument("--prompt-length", type=int, default=d.prompt_length, help=f"prompt rows m (default {d.prompt_length})")
    parser.add_argument("--timeout", type=int, default=d.timeout_s,
                        help=f"seconds before a cell is cut: its sweep job's `time`, rounded up to minutes (default {d.timeout_s})")
    parser.add_argument("--deadline", type=int, default=None,
                        help="seconds for the whole run (the sweep's --deadline): cells not started by then are skipped, "
                             "the running one is cut (lent GPU time)")
    parser.add_argument("--out", default="benchmarks/results", help="folder for <name>-<device>.json/.md (default benchmarks/results)")
    parser.add_argument("--name", default="memory-scaling", help="report name (default memory-scaling)")
    parser.add_argument("--work-dir", default=None, help="folder for run folders, logs and the prompt library (default: a new temp folder)")
    parser.add_argument("--dry-run", action="store_true", help="print each cell's trainer command and exit")
    return parser


def settings_from_args(args, work: Path | None = None) -> Settings:
    """work: the work dir, for the lengthened data's folder (None: the placeholder WORK/data)."""
    given = args.data_dir is not None
    data_dir = args.data_dir if given else str((work or Path("WORK")) / "data")
    return Settings(steps=args.steps, cap=None if str(args.cap).lower() == "none" else args.cap, task=args.task,
                    data_dir=data_dir, data_source=data_dir if given else Settings.data_source, lengthened=not given,
                    max_length=args.max_length, prompt_length=args.prompt_length,
                    timeout_s=args.timeout, deadline_s=args.deadline)


def main(argv: list[str] | None = None, *, cells: list[Cell] = DEFAULT_CELLS, stem: str | None = None,
         parser: argparse.ArgumentParser | None = None, notes: list[str] | None = None) -> int:
    from attempt_dist.cli_args import split_csv

    args = (parser or build_parser()).parse_args(argv)
    work = Path(args.work_dir) if args.work_dir else None
    settings = settings_from_args(args, work)
    chosen = select_cells(list(cells), split_csv(args.cells) if args.cells else None,
                          split_csv(args.models) if args.models else None)
    if args.ranks:
        chosen = list(dict.fromkeys(replace(c, ranks=args.ranks) for c in chosen))
    if args.dry_run:
        where = work or Path("WORK")
        for cell in chosen:
            library = library_dir(where, cell.model, settings.prompt_length) if cell.method in LIBRARY_METHODS else None
            print(shlex.join(train_command(cell, settings, sweep_run_dir(where, cell, settings), library)))
        return 0
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ.setdefault(name, "1")  # the tokenizer check below must not wait on the network
    work = (work or Path(tempfile.mkdtemp(prefix="attempt-bench-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if settings.lengthened:
        settings = replace(settings, data_dir=str(work / "data"))
    settings, data = prepare_data(settings, list(dict.fromkeys(c.model for c in chosen)))
    print(data_note(data, settings))
    from attempt_dist.provenance import package_versions

    started = _dt.datetime.now(_dt.timezone.utc)
    rows = run_cells(chosen, settings, work)
    device = device_name()
    report = {
        "name": args.name, "device": device, "machine": machine(), "versions": package_versions(),
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", os.path.relpath(sys.argv[0], REPO) if sys.argv[0] else "benchmarks/memory_scaling.py",
                               *(sys.argv[1:] if argv is None else argv)]),
        "plan": asdict(settings),  # the key recorded reports use
        "data": data, "work_dir": str(work), "rows": rows,
        "notes": (notes or []) + [data_note(data, settings)] + _standard_notes(rows, device),
    }
    json_path, md_path = write_report(report, Path(args.out), stem or f"{args.name}-{slug(device)}")
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0 if all(r["status"] in ("completed", "oom", "skipped") for r in rows) else 1


def _standard_notes(rows: list[dict], device: str) -> list[str]:
    notes = ["examples/s = training examples / training seconds over all steps (includes the first steps' warm-up; "
             "excludes setup and evaluation)."]
    if device == "cpu":
        notes.append("On a CPU 'peak allocator GiB' is the peak resident memory of rank 0 (ru_maxrss), "
                     "not a GPU allocator peak; 'device peak' does not exist.")
    if any(r.get("tokenizer", "").startswith("t5-tiny") for r in rows):
        notes.append("The T5 tokenizer was not available offline: runs used --tokenizer t5-tiny "
                     "(token ids fit T5's vocabulary; inputs truncated to max_length either way).")
    return notes


if __name__ == "__main__":
    sys.exit(main())
