"""The training run's options: one dataclass, one argparse parser, the same for every launcher.

    deepspeed --num_gpus 2 launch/train.py --model t5-base --method attempt --tasks boolq,cb ...
    attempt-dist train --model t5-tiny --method prompt --tasks rte --data-dir examples/data
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .backbones import BACKBONES
from .cli_args import csv_arg
from .distributed.env import DEFAULT_DIST_TIMEOUT_S
from .errors import UserError
from .methods import METHODS, needs
from .methods.options import add_method_args, cli_options, given_options, options_of, resolve


@dataclass
class TrainConfig:
    model: str = "t5-base"
    method: str = "attempt"
    tasks: list[str] = field(default_factory=lambda: ["rte"])
    data_dir: str | None = None
    cache_dir: str | None = None
    no_data_cache: bool = False
    output_dir: str = "runs/default"
    init: str = "auto"
    model_path: str | None = None
    tokenizer: str | None = None
    ds_config: str = "zero0"
    nvme_path: str | None = None
    gpu_mem_cap: str | None = None
    activation_checkpointing: bool = False
    batch_size: int = 32
    eval_batch_size: int | None = None
    grad_accum: int = 1
    epochs: float = 20.0
    max_steps: int | None = None
    warmup_steps: int = 500
    max_length: int | None = None
    max_target_length: int = 128
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    temperature_sampling: float = 1.0
    group_by_length: bool = False
    seed: int = 42
    data_seed: int = 42
    eval_every: int | None = None
    save_every: int = 200
    log_every: int = 10
    report_to: str = "none"
    no_checkpoints: bool = False
    resume: bool = False
    overwrite: bool = False
    source_prompts: str | None = None
    sources: list[str] | None = None
    prior: str | None = None
    no_prior: bool = False
    target_init: str = "auto"
    spot_probe: str | None = None
    save_attention: bool = True
    dropout: float | None = None
    dist_timeout: float = DEFAULT_DIST_TIMEOUT_S
    options: dict[str, Any] = field(default_factory=dict)
    """The method options given explicitly, by flag name ({"prompt_length": 10, "lr": 0.1}); the
    rest are the method's defaults. Each method module's Config owns them (methods/options.py)."""

    def method_config(self, method: str | None = None):
        """The validated Config of `method` (default: this run's) with these options."""
        return resolve(method or self.method, self.options)

    def to_dict(self) -> dict:
        """config.json's "train": the run's fields, its method options resolved and flat."""
        flat = {k: v for k, v in dataclasses.asdict(self).items() if k != "options"}
        return {**flat, **options_of(self.method, self.method_config())}

    @classmethod
    def from_dict(cls, saved: dict) -> "TrainConfig":
        """The inverse of to_dict (a run's config.json "train" back into a config)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"options"}
        unknown = sorted(set(saved) - names - set(cli_options()))
        if unknown:
            raise UserError(f"unknown training option(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in saved.items() if k in names},
                   options={k: v for k, v in saved.items() if k in cli_options() and v is not None})


def add_train_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    d = TrainConfig()
    a = parser.add_argument
    g = parser.add_argument_group("what to train")
    g.add_argument("--model", default=d.model, help=f"backbone ({', '.join(BACKBONES)}); default {d.model}")
    g.add_argument("--method", default=d.method, help=f"method ({', '.join(METHODS)}); default {d.method}")
    g.add_argument("--tasks", type=csv_arg, default=d.tasks, help="comma-separated tasks; several = multi-task (default rte)")
    g.add_argument("--init", default=d.init, choices=["auto", "pretrained", "random"],
                   help="backbone weights: pretrained (hub/--model-path), random (memory runs, tests); "
                        "auto = random for the test backbones (t5-tiny, t5-mini), pretrained otherwise")
    g.add_argument("--model-path", default=None, help="local folder with the pretrained backbone")
    g.add_argument("--tokenizer", default=None,
                   help="tokenizer name or folder (default: the backbone's; e.g. t5-tiny for offline memory runs "
                        "of a random-init t5-3b: its ids fit every T5 vocabulary)")
    g = parser.add_argument_group("data")
    g.add_argument("--data-dir", default=None, help="local data folder (e.g. examples/data); default: the hub")
    g.add_argument("--cache-dir", default=None, help="tokenised-data cache (default $ATTEMPT_DIST_CACHE or ~/.cache/attempt-dist)")
    g.add_argument("--no-data-cache", action="store_true", help="tokenise from scratch, write no cache")
    g.add_argument("--max-length", type=int, default=None, help="max input tokens (default: each task's own: 256/348/512)")
    g.add_argument("--max-target-length", type=int, default=d.max_target_length, help="max target/generated tokens (default 128)")
    g.add_argument("--max-train-examples", type=int, default=None, help="cap each task's training set")
    g.add_argument("--max-eval-examples", type=int, default=None, help="cap each task's dev and test sets")
    g.add_argument("--temperature-sampling", type=float, default=d.temperature_sampling,
                   help="multi-task mixing temperature (1 = proportional to size)")
    g.add_argument("--group-by-length", action="store_true",
                   help="training batches of similar input length (sorted inside mega-batches of 50 batches, "
                        "then shuffled): less padding, same examples per epoch, still seeded and resumable")
    g.add_argument("--data-seed", type=int, default=d.data_seed, help="seed of the dev/test splits (default 42)")
    g = parser.add_argument_group("optimisation")
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="per-rank micro-batch (default 32)")
    g.add_argument("--eval-batch-size", type=int, default=None, help="per-rank evaluation batch (default: 2x the train micro-batch; with --ds-config auto, the largest "
                        "up to that which the planner fits beside the weights)")
    g.add_argument("--grad-accum", type=int, default=d.grad_accum, help="gradient accumulation steps (default 1)")
    g.add_argument("--epochs", type=float, default=d.epochs, help="training epochs (default 20)")
    g.add_argument("--max-steps", type=int, default=None, help="optimizer steps; overrides --epochs")
    g.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="linear warm-up steps (default 500, B.5); only a --max-steps run is capped at a "
                        "tenth of its steps (a smoke run; result.json says warmup_capped)")
    g.add_argument("--seed", type=int, default=d.seed, help="training seed (default 42)")
    g.add_argument("--dropout", type=float, default=None, help="backbone dropout rate (default: the backbone's own, 0.1 for T5)")
    add_method_args(parser.add_argument_group(
        "method options", "each method's own (methods/<method>.py); a flag a method lacks is ignored for it"))
    g = parser.add_argument_group("method inputs")
    g.add_argument("--source-prompts", default=None, help="prompt library folder (ATTEMPT, SPoT)")
    g.add_argument("--sources", type=csv_arg, default=None, help="library prompts to use (default: all)")
    g.add_argument("--prior", default=None, help="ATTEMPT: attention prior (prior.pt from the pipeline)")
    g.add_argument("--no-prior", action="store_true", help="ATTEMPT: train the gate from scratch (ablation d)")
    g.add_argument("--target-init", default=d.target_init,
                   help="ATTEMPT target prompt init: auto (MNLI prompt for classification, SQuAD for QA, if in the library), vocab, or a library prompt name")
    g.add_argument("--spot-probe", default=None, help="SPoT-t: a prompt of the target task (.pt) to rank sources by")
    g = parser.add_argument_group("scale and memory")
    g.add_argument("--ds-config", default=d.ds_config, help="DeepSpeed config: zero0, zero2_offload, zero3_offload, zero3_nvme, a .json path, or auto "
                        "(the memory planner picks ZeRO stage, offload, activation checkpointing and micro-batch x "
                        "accumulation for --batch-size x --grad-accum under --gpu-mem-cap; see `attempt-dist plan`)")
    g.add_argument("--nvme-path", default=None, help="folder for zero3_nvme offload")
    g.add_argument("--gpu-mem-cap", default=None, help="per-rank GPU memory cap, e.g. 24GiB (the paper's single 24 GB GPU)")
    g.add_argument("--dist-timeout", type=float, default=d.dist_timeout,
                   help="seconds a collective waits for the other ranks before the run stops with exit code 5 "
                        f"(a stopped or dead rank); default {d.dist_timeout:g}")
    g.add_argument("--activation-checkpointing", action="store_true",
                   help="recompute T5 blocks in backward instead of storing their activations (less memory, ~1/3 more compute)")
    g = parser.add_argument_group("output")
    g.add_argument("--output-dir", default=d.output_dir, help="run folder (config, logs, checkpoints, result.json)")
    g.add_argument("--eval-every", type=int, default=None, help="evaluate on dev every N optimizer steps (default: every epoch)")
    g.add_argument("--save-every", type=int, default=d.save_every, help="checkpoint every N optimizer steps (default 200)")
    g.add_argument("--log-every", type=int, default=d.log_every,
                   help="a line of RUN/metrics.jsonl (loss, learning rates, examples/s, memory) every N optimizer steps (default 10)")
    g.add_argument("--report-to", default=d.report_to,
                   help="also log metrics to: none (default), tensorboard (RUN/tensorboard), wandb, or a comma-separated list")
    g.add_argument("--no-checkpoints", action="store_true",
                   help="write no checkpoints (memory and speed benchmarks: a fine-tuned t5-3b checkpoint is 34 GB); "
                        "the run cannot be resumed and the last weights, not the best dev ones, are scored")
    g.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output-dir")
    g.add_argument("--overwrite", action="store_true", help="replace a finished run in --output-dir")
    g.add_argument("--no-save-attention", dest="save_attention", action="store_false", help="do not write ATTEMPT attention files")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"options"}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names}, options=given_options(args))
    validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    from .backbones import get_spec
    from .methods import method_module
    from .tasks import get_task

    get_spec(cfg.model)
    method_module(cfg.method)
    for task in cfg.tasks:
        get_task(task)
    if len(set(cfg.tasks)) != len(cfg.tasks):
        raise UserError(f"--tasks lists a task twice: {','.join(cfg.tasks)}")
    for name in ("batch_size", "grad_accum", "save_every", "log_every", "max_target_length"):
        if getattr(cfg, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    for name in ("max_steps", "eval_every", "max_length", "max_train_examples", "max_eval_examples", "eval_batch_size"):
        value = getattr(cfg, name)
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if cfg.max_steps is None and not cfg.epochs > 0:
        raise UserError(f"--epochs must be positive, got {cfg.epochs}")
    if cfg.dropout is not None and not 0.0 <= cfg.dropout < 1.0:
        raise UserError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if not (math.isfinite(cfg.temperature_sampling) and cfg.temperature_sampling > 0):
        raise UserError(f"--temperature-sampling must be positive (1 = proportional to task size), "
                        f"got {cfg.temperature_sampling}")
    if not cfg.dist_timeout > 0:
        raise UserError(f"--dist-timeout must be positive seconds, got {cfg.dist_timeout}")
    if cfg.warmup_steps < 0:
        raise UserError(f"--warmup-steps must be >= 0, got {cfg.warmup_steps}")
    if cfg.resume and cfg.no_checkpoints:
        raise UserError("--resume needs checkpoints; drop --no-checkpoints")
    if cfg.resume and cfg.overwrite:
        raise UserError("--resume and --overwrite contradict each other; pick one")
    if cfg.gpu_mem_cap is not None:
        from .distributed import parse_size

        parse_size(cfg.gpu_mem_cap)  # a typo fails here, before any rank starts work
    if cfg.no_prior and cfg.prior:
        raise UserError("--no-prior and --prior contradict each other; pick one")
    cfg.method_config()  # the method's own checks (positive lr, known ablation, ...)
    if needs(cfg.method).library and not cfg.source_prompts:
        raise UserError(f"{cfg.method} needs --source-prompts LIBRARY "
                        "(build one with `attempt-dist pipeline --stages sources`)")


def build_parser(prog: str = "attempt-dist train", parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    from .distributed import add_launcher_args

    parser = parser_class(prog=prog, description="Train one method on one or more tasks.")
    parser.add_argument("--config", metavar="FILE",
                        help="training options from a YAML or JSON file (keys: the flags' names, e.g. batch_size, "
                             "lr); a run's config.json (or its folder) reproduces that run; flags given on the "
                             "command line override the file")
    add_train_args(parser)
    add_launcher_args(parser)
    return parser


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Training options from a YAML or JSON file, by dest name (dashes read as underscores).

    A run's config.json ({"train": {...}, "deepspeed": ...}), or the run folder holding it,
    gives its "train" block: the run's fields with its method options resolved and flat, as
    TrainConfig.to_dict writes them.
    """
    import yaml

    path = Path(path)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise UserError(f"--config {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())  # YAML reads JSON too
    except yaml.YAMLError as err:
        raise UserError(f"--config {path} is not valid YAML or JSON: {str(err).splitlines()[0]}") from None
    if isinstance(data, dict) and isinstance(data.get("train"), dict):
        data = data["train"]
    if not isinstance(data, dict):
        raise UserError(f"--config {path} must hold a mapping of option: value (e.g. batch_size: 8)")
    values = {str(k).replace("-", "_"): v for k, v in data.items()}
    known = ({f.name for f in dataclasses.fields(TrainConfig)} - {"options"}) | set(cli_options())
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"--config {path}: unknown option(s) {', '.join(unknown)}; "
                        "keys are the train flags' names (see `attempt-dist train --help`)")
    return values


def parse_train_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse `argv`; with --config FILE the file's values become the defaults, so any flag given
    on the command line overrides them."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config:
        parser.set_defaults(**load_config_file(known.config))
    return parser.parse_args(argv)
