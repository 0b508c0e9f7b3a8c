"""The training run's options: each one TrainConfig field, declared once (train_options.py) with
its help, flag, help section and what --resume, sweeps and library builds make of it; the argparse
parser, the same for every launcher, derives from those declarations.

    deepspeed --num_gpus 2 launch/train.py --model t5-base --method attempt --tasks boolq,cb ...
    attempt-dist train --model t5-tiny --method prompt --tasks rte --data-dir examples/data
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model.backbones import ATTN_IMPLEMENTATIONS, BACKBONES
from ..distributed.env import DEFAULT_DIST_TIMEOUT_S
from ..errors import UserError, shown_names
from ..methods import METHODS, method_hook, needs
from ..methods.options import (add_method_args, cli_options, config_from_options, given_options, options_of,
                              with_current_names)
from .config_values import checked_config_values
from .options import TrainOption, add_grouped, check_flags, declared_options, train_option

# The `train --help` sections, in order; each option names its own. Method options (one flag
# per option of any method's Config, methods/options.py) fill their section themselves.
METHOD_OPTIONS_GROUP = "method options"
RESUME_MODES = ("no", "yes", "auto")  # --resume: never, a checkpoint must exist, if one exists
GROUPS = {
    "what to train": None,
    "data": None,
    "optimisation": None,
    METHOD_OPTIONS_GROUP: "each method's own (methods/<method>.py); a flag a method lacks is ignored for it",
    "method inputs": None,
    "scale and memory": None,
    "output": None,
}
# What numpy's legacy seeding (and so every seeded generator here) accepts: a 32-bit unsigned integer.
SEED_RANGE = (0, 2**32 - 1)


@dataclass
class TrainConfig:
    """The run's options. may_change_on_resume marks the options --resume accepts a new value
    for: a longer run (max_steps, epochs: the linear schedule is re-stretched to the new length,
    never behind the checkpoint's step), when to evaluate and save, where the same files live on
    this machine, and memory settings (same arithmetic). Every other option defines the run."""

    # --- what to train
    model: str = train_option("t5-base", f"backbone ({', '.join(BACKBONES)}); default %(default)s",
                              group="what to train")
    method: str = train_option("attempt", f"method ({', '.join(METHODS)}); default %(default)s",
                               group="what to train")
    tasks: list[str] = train_option(["rte"], "comma-separated tasks; several = multi-task (default rte)",
                                    group="what to train")
    init: str = train_option(
        "auto", "backbone weights: pretrained (hub/--model-path), random (memory runs, tests); "
                "auto = random for the test backbones (t5-tiny, t5-mini), pretrained otherwise",
        group="what to train", choices=("auto", "pretrained", "random"))
    model_path: str | None = train_option(None, "local folder with the pretrained backbone", group="what to train",
                                          path=True, may_change_on_resume=True, run_setting=True)
    tokenizer: str | None = train_option(
        None, "tokenizer name or folder (default: the backbone's; e.g. t5-tiny for offline memory runs "
              "of a random-init t5-3b: its ids fit every T5 vocabulary)", group="what to train")
    # --- data
    data_dir: str | None = train_option(None, "local data folder (e.g. examples/data); default: the hub",
                                        group="data", path=True, may_change_on_resume=True)
    cache_dir: str | None = train_option(
        None, "tokenised-data cache (default $ATTEMPT_DIST_CACHE or ~/.cache/attempt-dist)", group="data",
        path=True, may_change_on_resume=True, run_setting=True)
    no_data_cache: bool = train_option(False, "tokenise from scratch, write no cache", group="data",
                                       may_change_on_resume=True, run_setting=True)
    max_length: int | None = train_option(None, "max input tokens (default: each task's own: 256/348/512)",
                                          group="data", at_least=1)
    max_target_length: int = train_option(128, "max target/generated tokens (default %(default)s)", group="data",
                                           at_least=1)
    max_train_examples: int | None = train_option(None, "cap each task's training set", group="data", at_least=1)
    max_eval_examples: int | None = train_option(None, "cap each task's dev and test sets", group="data", at_least=1)
    temperature_sampling: float = train_option(1.0, "multi-task mixing temperature (1 = proportional to size)",
                                               group="data")
    group_by_length: bool = train_option(
        False, "training batches of similar input length (sorted inside mega-batches of 50 batches, then "
               "shuffled): less padding, same examples per epoch, still seeded and resumable", group="data")
    data_seed: int = train_option(42, "seed of the dev/test splits (default %(default)s)", group="data",
                                  within=SEED_RANGE)
    # --- optimisation
    batch_size: int = train_option(32, "per-rank micro-batch (default %(default)s)", group="optimisation", at_least=1)
    eval_batch_size: int | None = train_option(
        None, "per-rank evaluation batch (default: 2x the train micro-batch; with --ds-config auto, the largest "
              "up to that which the planner fits beside the weights)", group="optimisation",
        may_change_on_resume=True, at_least=1, run_setting=True)
    grad_accum: int = train_option(1, "gradient accumulation steps (default %(default)s)", group="optimisation",
                                   at_least=1)
    epochs: float = train_option(20.0, "training epochs (default %(default)g)", group="optimisation",
                                 may_change_on_resume=True, for_libraries=False)
    max_steps: int | None = train_option(None, "optimizer steps; overrides --epochs", group="optimisation",
                                         may_change_on_resume=True, for_libraries=False, at_least=1)
    warmup_steps: int = train_option(
        500, "linear warm-up steps (default %(default)s, B.5); only a --max-steps run is capped at a "
             "tenth of its steps (a smoke run; result.json says warmup_capped)", group="optimisation", at_least=0)
    seed: int = train_option(42, "training seed (default %(default)s)", group="optimisation", within=SEED_RANGE)
    dropout: float | None = train_option(None, "backbone dropout rate (default: the backbone's own, 0.1 for T5)",
                                         group="optimisation")
    # --- method inputs: what one target cell starts from, never a source library's build
    source_prompts: str | None = train_option(None, "prompt library folder (ATTEMPT, SPoT)", group="method inputs",
                                              path=True, for_libraries=False)
    sources: list[str] | None = train_option(None, "library prompts to use (default: all)", group="method inputs")
    prior: str | None = train_option(None, "ATTEMPT: attention prior (prior.pt from the pipeline)",
                                     group="method inputs", path=True, for_libraries=False)
    no_prior: bool = train_option(False, "ATTEMPT: train the gate from scratch (ablation d)", group="method inputs",
                                  for_libraries=False)
    target_init: str = train_option(
        "auto", "ATTEMPT target prompt init: auto (MNLI prompt for classification, SQuAD for QA, if in the "
                "library), vocab, or a library prompt name", group="method inputs", for_libraries=False)
    spot_probe: str | None = train_option(None, "SPoT-t: a prompt of the target task (.pt) to rank sources by",
                                          group="method inputs", path=True, for_libraries=False)
    # --- scale and memory
    ds_config: str = train_option(
        "zero0", "DeepSpeed config: zero0, zero2_offload, zero3_offload, zero3_nvme, a .json path, or auto "
                 "(the memory planner picks ZeRO stage, offload, activation checkpointing and micro-batch x "
                 "accumulation for --batch-size x --grad-accum under --gpu-mem-cap; see `attempt-dist plan`)",
        group="scale and memory")
    nvme_path: str | None = train_option(None, "folder for zero3_nvme offload", group="scale and memory",
                                         path=True, may_change_on_resume=True, run_setting=True)
    gpu_mem_cap: str | None = train_option(
        None, "per-rank GPU memory cap, e.g. 24GiB (the paper's single 24 GB GPU)", group="scale and memory",
        may_change_on_resume=True, run_setting=True)
    dist_timeout: float = train_option(
        DEFAULT_DIST_TIMEOUT_S, "seconds a collective waits for the other ranks before the run stops with exit "
                                "code 5 (a stopped or dead rank); default %(default)g",
        group="scale and memory", may_change_on_resume=True, run_setting=True)
    attn_implementation: str = train_option(
        "sdpa", "T5's attention kernel: sdpa (default: torch's scaled_dot_product_attention, the relative "
                "position bias as its additive mask; cuDNN/efficient kernels on a GPU), eager (transformers' "
                "matmul + softmax: keeps the [batch, heads, length, length] probabilities, which the memory "
                "planner does not plan for) or flex_attention (GPU only: no backward on the CPU)",
        group="scale and memory", choices=ATTN_IMPLEMENTATIONS, may_change_on_resume=True)
    activation_checkpointing: bool = train_option(
        False, "recompute T5 blocks in backward instead of storing their activations (less memory, ~1/3 more "
               "compute)", group="scale and memory", may_change_on_resume=True, run_setting=True)
    # --- output
    output_dir: str = train_option("runs/default", "run folder (config, logs, checkpoints, result.json)",
                                   group="output", path=True, may_change_on_resume=True)
    eval_every: int | None = train_option(
        None, "evaluate on dev every N optimizer steps (default: every epoch)", group="output",
        may_change_on_resume=True, at_least=1)
    save_every: int = train_option(200, "checkpoint every N optimizer steps (default %(default)s)", group="output",
                                   may_change_on_resume=True, at_least=1, run_setting=True)
    log_every: int = train_option(
        10, "a line of RUN/metrics.jsonl (loss, learning rates, examples/s, memory) every N optimizer steps "
            "(default %(default)s)", group="output", at_least=1, run_setting=True)
    report_to: str = train_option(
        "none", "also log metrics to: none (default), tensorboard (RUN/tensorboard), wandb, or a comma-separated "
                "list", group="output", run_setting=True)
    no_checkpoints: bool = train_option(
        False, "write no checkpoints (memory and speed benchmarks: a fine-tuned t5-3b checkpoint is 34 GB); "
               "the run cannot be resumed and the last weights, not the best dev ones, are scored", group="output")
    resume: str = train_option(
        "no", "continue the run in --output-dir from its newest intact checkpoint; `--resume` (yes) refuses a "
              "folder without one, `--resume auto` starts the run there instead (sweeps, requeued jobs)",
        group="output", choices=RESUME_MODES, bare="yes", may_change_on_resume=True)
    overwrite: bool = train_option(False, "replace a finished run in --output-dir", group="output",
                                   may_change_on_resume=True)
    save_attention: bool = train_option(True, "do not write ATTEMPT attention files", group="output",
                                        flag="--no-save-attention", may_change_on_resume=True, run_setting=True)
    options: dict[str, Any] = field(default_factory=dict)
    """The method options given explicitly, by flag name ({"prompt_length": 10, "lr": 0.1}); the
    rest are the method's defaults. Each method module's Config owns them (methods/options.py)."""

    def __post_init__(self) -> None:
        self.resume = resume_mode(self.resume)  # a run's config.json from before `auto`: a bool

    def method_config(self, method: str | None = None):
        """The validated Config of `method` (default: this run's) with these options."""
        return config_from_options(method or self.method, self.options)

    def to_dict(self) -> dict:
        """config.json's "train": the run's fields, its method options resolved and flat."""
        flat = {k: v for k, v in dataclasses.asdict(self).items() if k != "options"}
        return {**flat, **options_of(self.method, self.method_config())}

    @classmethod
    def from_dict(cls, saved: dict) -> "TrainConfig":
        """The inverse of to_dict (a run's config.json "train" back into a config)."""
        saved = with_current_names(saved)
        unknown = sorted(set(saved) - set(DECLARED_OPTIONS) - set(cli_options()))
        if unknown:
            raise UserError(f"unknown training option(s) {', '.join(unknown)}")
        return cls(**{k: v for k, v in saved.items() if k in DECLARED_OPTIONS},
                   options={k: v for k, v in saved.items() if k in cli_options() and v is not None})


DECLARED_OPTIONS: dict[str, TrainOption] = declared_options(TrainConfig)
"""name -> its declaration, for every train option (TrainConfig's fields but `options`)."""
# A method option may not take a train option's flag: refused here, at import, naming both.
check_flags(DECLARED_OPTIONS, cli_options(), owner="training.config.TrainConfig")


def path_options() -> set[str]:
    """The options whose value is a file or folder (a sweep file gives them relative to itself)."""
    return {name for name, option in DECLARED_OPTIONS.items() if option.path}


def options_not_for_libraries() -> set[str]:
    """The train options a sweep's source-library build does not inherit from the sweep."""
    return {name for name, option in DECLARED_OPTIONS.items() if not option.for_libraries}


def add_train_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    add_grouped(parser, DECLARED_OPTIONS.values(), GROUPS, extra={METHOD_OPTIONS_GROUP: add_method_args})
    return parser


def config_from_args(args: argparse.Namespace, *, check: bool = True) -> TrainConfig:
    """The parsed train flags as a TrainConfig, validated unless `check` is False (the pipeline
    changes the method before it validates)."""
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in DECLARED_OPTIONS}, options=given_options(args))
    if check:
        validate(cfg)
    return cfg


def validate(cfg: TrainConfig) -> None:
    from ..model.backbones import get_spec
    from ..methods import method_module
    from ..tasks import get_task

    get_spec(cfg.model)
    method_module(cfg.method)
    for task in cfg.tasks:
        get_task(task)
    twice = sorted(task for task, count in Counter(cfg.tasks).items() if count > 1)
    if twice:
        raise UserError(f"--tasks lists {shown_names(twice)} more than once ({len(cfg.tasks)} entries in all); "
                        "list each task once")
    for option in DECLARED_OPTIONS.values():
        value = getattr(cfg, option.name)
        if option.at_least is not None and value is not None and value < option.at_least:
            raise UserError(f"{option.flag} must be at least {option.at_least}, got {value}")
        if option.within is not None and value is not None and not option.within[0] <= value <= option.within[1]:
            raise UserError(f"{option.flag} must be between {option.within[0]} and {option.within[1]}, got {value}")
    fits = method_hook(cfg.method, "check_backbone")
    if fits is not None:  # what the method's options ask of the backbone (adapter: a bottleneck of 1 or more)
        fits(cfg.method_config(), cfg.model, get_spec(cfg.model).d_model)
    if cfg.max_steps is None and not cfg.epochs > 0:
        raise UserError(f"--epochs must be positive, got {cfg.epochs}")
    if cfg.dropout is not None and not 0.0 <= cfg.dropout < 1.0:
        raise UserError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if not (math.isfinite(cfg.temperature_sampling) and cfg.temperature_sampling > 0):
        raise UserError(f"--temperature-sampling must be positive (1 = proportional to task size), "
                        f"got {cfg.temperature_sampling}")
    if not cfg.dist_timeout > 0:
        raise UserError(f"--dist-timeout must be positive seconds, got {cfg.dist_timeout}")
    if cfg.resume not in RESUME_MODES:
        raise UserError(f"--resume must be one of {', '.join(RESUME_MODES)}, got {cfg.resume!r}")
    if cfg.resume != "no" and cfg.no_checkpoints:
        raise UserError("--resume needs checkpoints; drop --no-checkpoints")
    if cfg.resume != "no" and cfg.overwrite:
        raise UserError("--resume and --overwrite contradict each other; pick one")
    if cfg.gpu_mem_cap is not None:
        from ..distributed import parse_size

        parse_size(cfg.gpu_mem_cap)  # a typo fails here, before any rank starts work
    if cfg.no_prior and cfg.prior:
        raise UserError("--no-prior and --prior contradict each other; pick one")
    cfg.method_config()  # the method's own checks (positive lr, known ablation, ...)
    if needs(cfg.method).library and not cfg.source_prompts:
        raise UserError(f"{cfg.method} needs --source-prompts LIBRARY "
                        "(build one with `attempt-dist pipeline --stages sources`)")


def build_parser(prog: str = "attempt-dist train", parser_class: type = argparse.ArgumentParser) -> argparse.ArgumentParser:
    from ..distributed import add_launcher_args

    parser = parser_class(prog=prog, description="Train one method on one or more tasks.")
    parser.add_argument("--config", metavar="FILE",
                        help="training options from a YAML or JSON file (keys: the flags' names, e.g. batch_size, "
                             "lr); a run's config.json (or its folder) reproduces that run; flags given on the "
                             "command line override the file")
    add_train_args(parser)
    add_launcher_args(parser)
    return parser


def resume_mode(value: Any) -> Any:
    """--resume's value; a bool (`resume: true` in a config file, a run's config.json written
    when --resume was a switch) is the same run as yes / no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Training options from a YAML or JSON file, by dest name (dashes read as underscores).

    A run's config.json ({"train": {...}, "deepspeed": ...}), or the run folder holding it,
    gives its "train" block: the run's fields with its method options resolved and flat, as
    TrainConfig.to_dict writes them, but `resume` reads as "no": it says how that run was started
    in its folder (a resumed run's "yes" would refuse a new folder), not what it trains.
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
        data = {**data["train"], "resume": "no"}
    if not isinstance(data, dict):
        raise UserError(f"--config {path} must hold a mapping of option: value (e.g. batch_size: 8)")
    values = with_current_names({str(k).replace("-", "_"): v for k, v in data.items()})
    if "resume" in values:
        values["resume"] = resume_mode(values["resume"])
    known = set(DECLARED_OPTIONS) | set(cli_options())
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(f"--config {path}: unknown option(s) {shown_names(unknown)}; "
                        "keys are the train flags' names (see `attempt-dist train --help`)")
    return checked_config_values(values, path, DECLARED_OPTIONS, cli_options())


def parse_train_args(parser: argparse.ArgumentParser, argv: list[str] | None = None) -> argparse.Namespace:
    """Parse `argv`; with --config FILE the file's values become the defaults, so any flag given
    on the command line overrides them."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config")
    known, _ = pre.parse_known_args(argv)
    if known.config:
        parser.set_defaults(**load_config_file(known.config))
    return parser.parse_args(argv)


def warmup_steps(cfg: TrainConfig, total_steps: int) -> tuple[int, bool]:
    """(warm-up steps, capped?): the paper's --warmup-steps (500, B.5), whatever the run's
    length; only a run sized by an explicit --max-steps (a smoke run) gets at most a tenth of
    its steps, so that a 20-step check still reaches its learning rate."""
    if cfg.max_steps is not None and total_steps // 10 < cfg.warmup_steps:
        return total_steps // 10, True
    return cfg.warmup_steps, False
