"""The whole ATTEMPT pipeline on one backbone, stage by stage, resumable.

    attempt-dist pipeline --model t5-base --sources mnli,sst2,qqp,qnli,squad,record \
        --targets boolq,cb,rte --data-dir D --output-dir O

    sources   prompt tuning on each source task; the best-on-dev prompt goes to the prompt
              library O/prompts/ (with backbone, d_model, length, task, dev score)
    prior     G pre-trained on the source tasks (Appendix A.1: a fresh prompt per source task
              and a shared gate, trained as ATTEMPT-MT over the sources): O/prior/prior.pt
    targets   ATTEMPT over the targets from the library and the prior: multi-task (one run,
              O/targets/mt__<tasks>/) or, with --single-task, one run per target
              (O/targets/<task>/); each leaves result.json and attention/ for Figure 5

Every training option of `attempt-dist train` applies to every stage. A stage whose output
exists is skipped and an interrupted stage resumes from its checkpoint, so re-running the same
command after a crash continues where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from . import distributed as dist
from .artifacts import read_trainable
from .cli_args import split_csv
from .errors import UserError
from .methods.options import given_options
from .methods.prompts import add_to_library, library_names
from .results import RESULT_FILENAME, atomic_path, read_json
from .train import run
from .train_config import TrainConfig, add_train_args, validate

STAGES = ("sources", "prior", "targets")
SOURCE_TASKS = ["mnli", "sst2", "qqp", "qnli", "squad", "record"]
PRIOR_FILE = "prior.pt"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attempt-dist pipeline", description=__doc__.split("\n\n")[0])
    add_train_args(parser)
    parser.set_defaults(sources=list(SOURCE_TASKS), output_dir="runs/pipeline")
    parser.add_argument("--targets", type=split_csv, default=[],
                        help="target tasks (needed by the targets stage)")
    parser.add_argument("--stages", default=",".join(STAGES), help="which stages to run (default: all three)")
    parser.add_argument("--single-task", action="store_true", help="ATTEMPT-ST: one target run per task")
    dist.add_launcher_args(parser)
    return parser


def stage_config(base: TrainConfig, **changes) -> TrainConfig:
    cfg = dataclasses.replace(base, **changes)
    cfg.resume = not base.overwrite
    validate(cfg)
    return cfg


def _main_rank() -> bool:
    return dist.ensure_distributed_env().is_main


def run_sources(base: TrainConfig, out: Path) -> int:
    library = out / "prompts"
    have = set(library_names(library)) if (library / "library.json").exists() else set()
    for task in base.sources:
        if task in have and not base.overwrite:
            continue
        stage_dir = out / "sources" / task
        if not (stage_dir / RESULT_FILENAME).exists() or base.overwrite:
            cfg = stage_config(base, method="prompt", tasks=[task], output_dir=str(stage_dir),
                               source_prompts=None, sources=None, prior=None)
            code = run(cfg)
            if code:
                return code
        if _main_rank():
            record = read_json(stage_dir / RESULT_FILENAME)
            add_to_library(library, read_trainable(stage_dir)["prompt.weight"][0], task=task, backbone=base.model,
                           extra={"dev_score": record["best"]["dev_score"], "run": str(stage_dir)})
        dist.barrier()
    return 0


def run_prior(base: TrainConfig, out: Path) -> int:
    prior = out / "prior" / PRIOR_FILE
    if prior.exists() and not base.overwrite:
        return 0
    stage_dir = out / "prior" / "run"
    if not (stage_dir / RESULT_FILENAME).exists() or base.overwrite:
        cfg = stage_config(base, method="attempt", tasks=list(base.sources), output_dir=str(stage_dir),
                           source_prompts=str(out / "prompts"), sources=list(base.sources), prior=None)
        code = run(cfg)
        if code:
            return code
    if _main_rank():
        gate = {k[len("prompt.gate."):]: v for k, v in read_trainable(stage_dir).items() if k.startswith("prompt.gate.")}
        with atomic_path(prior) as tmp:
            torch.save({"gate": gate, "meta": {"backbone": base.model, "bottleneck": base.method_config("attempt").bottleneck,
                                              "sources": list(base.sources), "run": str(stage_dir)}}, tmp)
    dist.barrier()
    return 0


def run_targets(base: TrainConfig, out: Path, targets: list[str], single_task: bool) -> int:
    prior = out / "prior" / PRIOR_FILE
    groups = [[t] for t in targets] if single_task else [targets]
    for tasks in groups:
        name = tasks[0] if single_task else "mt__" + "+".join(tasks)
        stage_dir = out / "targets" / name
        if (stage_dir / RESULT_FILENAME).exists() and not base.overwrite:
            continue
        cfg = stage_config(base, method="attempt", tasks=tasks, output_dir=str(stage_dir),
                           source_prompts=str(out / "prompts"), sources=list(base.sources),
                           prior=str(prior) if prior.exists() and not base.no_prior else None)
        code = run(cfg)
        if code:
            return code
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        stages = split_csv(args.stages)
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise UserError(f"unknown stage {', '.join(unknown) or '(none)'}; stages: {', '.join(STAGES)}")
        if "targets" in stages and not args.targets:
            raise UserError("the targets stage needs --targets (e.g. --targets boolq,cb)")
        names = {f.name for f in dataclasses.fields(TrainConfig)} - {"options"}
        base = TrainConfig(**{k: v for k, v in vars(args).items() if k in names}, options=given_options(args))
        base.method = "prompt"
        validate(base)  # model, source tasks, numbers: fail before any training starts
        for task in args.targets:
            validate(dataclasses.replace(base, tasks=[task]))
        out = Path(base.output_dir)
        steps = {"sources": lambda: run_sources(base, out), "prior": lambda: run_prior(base, out),
                 "targets": lambda: run_targets(base, out, args.targets, args.single_task)}
        for stage in STAGES:
            if stage in stages:
                code = steps[stage]()
                if code:
                    return code
        if _main_rank():
            print(f"pipeline done: {out} (stages {','.join(stages)})", flush=True)
        return 0
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 2
