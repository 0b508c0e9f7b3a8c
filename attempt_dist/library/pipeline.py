"""The whole ATTEMPT pipeline on one backbone, stage by stage, resumable.

    attempt-dist pipeline --model t5-base --targets boolq,cb,rte --data-dir D --output-dir O
    attempt-dist pipeline ... --stages sources,prior,spot_g,probes     # what the baselines need too

    sources   prompt tuning on each source task (default the paper's six: MNLI, SST-2, QQP, QNLI,
              SQuAD, ReCoRD) for --source-epochs (5, B.3); the best-on-dev prompt goes to the
              prompt library O/prompts/ (with backbone, d_model, length, task, dev score)
    prior     the attention prior(s) of B.1, each G pre-trained on a subset of the library
              (A.1: a fresh prompt per source task and a shared gate, trained as ATTEMPT-MT
              over the subset, mixing the whole library): "glue" (MNLI, SST-2, QQP, QNLI) ->
              O/prior/prior.pt for every target but MRQA, "qa" (SQuAD, ReCoRD) -> O/prior/qa.pt
              for MRQA; --priors picks which
    spot_g    SPoT-g's prompt: one prompt tuned on the mixture of the GLUE source tasks (B.5),
              O/spot_g/ (a library of one prompt: `train --method spot --source-prompts O/spot_g`)
    probes    SPoT-t's probes: prompt tuning on each --targets task for 5 epochs, 20 below 10k
              examples (B.5), O/probes/ with each probe's cosine to every library prompt
              (`train --method spot --spot-mode targeted --source-prompts O/prompts --spot-probe O/probes`)
    targets   ATTEMPT over the targets from the library and the prior B.1 gives them:
              multi-task (one run, O/targets/mt__<tasks>/) or, with --single-task, one run per
              target (O/targets/<task>/); each leaves result.json and attention/ for Figure 5

Every training option of `attempt-dist train` applies to every stage; --epochs sizes the
targets stage only, and --max-steps (smoke runs) every stage. A stage whose output exists is
skipped and an interrupted stage resumes from its checkpoint, so re-running the same command
after a crash continues where it stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from .. import distributed as dist
from . import sources as lib
from ..finished.artifacts import read_trainable
from ..cli_args import split_csv
from ..errors import UserError, one_line_errors
from ..methods.prompts import add_to_library, library_names, load_library
from ..methods.spot import similarities
from ..atomic_files import atomic_path, read_json
from ..finished.record import RESULT_FILENAME
from ..prepare import apply_prepared
from ..training.recipe import run
from ..training.config import TrainConfig, add_train_args, config_from_args, validate

STAGES = ("sources", "prior", "spot_g", "probes", "targets")
DEFAULT_STAGES = ("sources", "prior", "targets")
SOURCE_TASKS = lib.default_sources()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="attempt-dist pipeline", description=__doc__.split("\n\n")[0])
    add_train_args(parser)
    parser.set_defaults(sources=list(SOURCE_TASKS), output_dir="runs/pipeline")
    parser.add_argument("--targets", type=split_csv, default=[],
                        help="target tasks (needed by the probes and targets stages)")
    parser.add_argument("--stages", default=",".join(DEFAULT_STAGES),
                        help=f"which stages to run, of {','.join(STAGES)} (default: {','.join(DEFAULT_STAGES)})")
    parser.add_argument("--single-task", action="store_true", help="ATTEMPT-ST: one target run per task")
    parser.add_argument("--source-epochs", type=float, default=lib.SOURCE_EPOCHS,
                        help=f"epochs of each source prompt, prior and SPoT-g run (default {lib.SOURCE_EPOCHS:g}, B.3)")
    parser.add_argument("--priors", type=split_csv, default=None,
                        help=f"which B.1 priors to pre-train, of {','.join(lib.PRIOR_GROUPS)} "
                             "(default: each one whose source tasks the library holds)")
    parser.add_argument("--probe-epochs", type=float, default=None,
                        help="epochs of each SPoT-t probe (default B.5: 20 below 10k training examples, else 5)")
    dist.add_launcher_args(parser)
    return parser


def stage_config(base: TrainConfig, **changes) -> TrainConfig:
    cfg = dataclasses.replace(base, **changes)
    cfg.resume = "no" if base.overwrite else "auto"  # a stage interrupted before its first checkpoint starts
    validate(cfg)
    return cfg


def _main_rank() -> bool:
    return dist.ensure_distributed_env().is_main


def _trained_state(stage_dir: Path) -> dict:
    """A finished stage run's trainable parameters (the one place the pipeline reads them)."""
    return read_trainable(stage_dir)


def _train_stage(cfg: TrainConfig) -> int:
    """Run a stage's training unless its result exists (then 0)."""
    if (Path(cfg.output_dir) / RESULT_FILENAME).exists() and not cfg.overwrite:
        return 0
    return run(cfg)


def run_sources(base: TrainConfig, out: Path, epochs: float) -> int:
    library = out / lib.PROMPTS_DIR
    have = set(library_names(library)) if (library / "library.json").exists() else set()
    for task in base.sources:
        if task in have and not base.overwrite:
            continue
        stage_dir = out / "sources" / task
        code = _train_stage(stage_config(base, method="prompt", tasks=[task], output_dir=str(stage_dir),
                                         epochs=epochs, source_prompts=None, sources=None, prior=None))
        if code:
            return code
        if _main_rank():
            record = read_json(stage_dir / RESULT_FILENAME)
            add_to_library(library, _trained_state(stage_dir)["prompt.weight"][0], task=task, backbone=base.model,
                           extra={"dev_score": record["best"]["dev_score"], "run": str(stage_dir)})
        dist.barrier()
    return 0


def prior_names(base: TrainConfig, wanted: list[str] | None) -> list[str]:
    library = list(base.sources)
    names = list(wanted) if wanted else lib.buildable_priors(library)
    for name in names:
        if not lib.prior_sources(name, library):
            raise UserError(f"prior {name!r} trains on {lib.PRIOR_GROUPS.get(name, name)} source tasks, and the "
                            f"library ({', '.join(library)}) holds none; add them to --sources or drop it from --priors")
    return names


def run_prior(base: TrainConfig, out: Path, name: str, epochs: float) -> int:
    prior = lib.prior_file(out, name)
    if prior.exists() and not base.overwrite:
        return 0
    tasks = lib.prior_sources(name, list(base.sources))
    stage_dir = out / lib.PRIOR_DIR / "runs" / name
    code = _train_stage(stage_config(base, method="attempt", tasks=tasks, output_dir=str(stage_dir), epochs=epochs,
                                     source_prompts=str(out / lib.PROMPTS_DIR), sources=list(base.sources),
                                     prior=None))
    if code:
        return code
    if _main_rank():
        state = _trained_state(stage_dir)
        gate = {k[len("prompt.gate."):]: v for k, v in state.items() if k.startswith("prompt.gate.")}
        with atomic_path(prior) as tmp:
            torch.save({"gate": gate, "meta": {"backbone": base.model, "bottleneck": base.method_config("attempt").bottleneck,
                                              "name": name, "tasks": tasks, "sources": list(base.sources),
                                              "run": str(stage_dir)}}, tmp)
    dist.barrier()
    return 0


def run_priors(base: TrainConfig, out: Path, names: list[str], epochs: float) -> int:
    for name in names:
        code = run_prior(base, out, name, epochs)
        if code:
            return code
    return 0


def run_spot_g(base: TrainConfig, out: Path, epochs: float) -> int:
    library = out / lib.SPOT_G_DIR
    if (library / "library.json").exists() and not base.overwrite:
        return 0
    tasks = lib.spot_g_sources(list(base.sources))
    stage_dir = library / "run"
    cfg = stage_config(base, method="prompt", tasks=tasks, output_dir=str(stage_dir), epochs=epochs,
                       source_prompts=None, sources=None, prior=None,
                       options={**base.options, "shared_prompt": True})
    code = _train_stage(cfg)
    if code:
        return code
    if _main_rank():
        record = read_json(stage_dir / RESULT_FILENAME)
        add_to_library(library, _trained_state(stage_dir)["prompt.weight"][0], task=lib.SPOT_G_PROMPT,
                       backbone=base.model, extra={"tasks": tasks, "dev_score": record["best"]["dev_score"],
                                                   "run": str(stage_dir)})
    dist.barrier()
    return 0


def run_probes(base: TrainConfig, out: Path, targets: list[str], epochs: float | None) -> int:
    library = out / lib.PROBES_DIR
    have = set(library_names(library)) if (library / "library.json").exists() else set()
    prompt_length = base.method_config("prompt").prompt_length
    for task in targets:
        if task in have and not base.overwrite:
            continue
        stage_dir = library / "runs" / task
        code = _train_stage(stage_config(base, method="prompt", tasks=[task], output_dir=str(stage_dir),
                                         epochs=epochs or lib.probe_epochs(task), source_prompts=None,
                                         sources=None, prior=None))
        if code:
            return code
        if _main_rank():
            probe = _trained_state(stage_dir)["prompt.weight"][0]
            extra = {"run": str(stage_dir)}
            if (out / lib.PROMPTS_DIR / "library.json").exists():  # the ranking SPoT-t will use
                names, prompts = load_library(out / lib.PROMPTS_DIR, None, backbone=base.model,
                                              d_model=probe.shape[1], prompt_length=prompt_length)
                sims = similarities(prompts, probe.float())
                extra["similarity"] = {n: round(float(v), 6) for n, v in zip(names, sims)}
            add_to_library(library, probe, task=task, backbone=base.model, extra=extra)
        dist.barrier()
    return 0


def run_targets(base: TrainConfig, out: Path, targets: list[str], single_task: bool) -> int:
    built = [name for name in lib.PRIOR_GROUPS if lib.prior_file(out, name).exists()]
    groups = [[t] for t in targets] if single_task else [targets]
    for tasks in groups:
        name = tasks[0] if single_task else "mt__" + "+".join(tasks)
        stage_dir = out / "targets" / name
        if (stage_dir / RESULT_FILENAME).exists() and not base.overwrite:
            continue
        prior = lib.prior_file(out, lib.prior_for(tasks, built)) if built and not base.no_prior else None
        cfg = stage_config(base, method="attempt", tasks=tasks, output_dir=str(stage_dir),
                           source_prompts=str(out / lib.PROMPTS_DIR), sources=list(base.sources),
                           prior=str(prior) if prior else None)
        code = run(cfg)
        if code:
            return code
    return 0


@one_line_errors
@dist.leaves_process_as_found  # a sweep's library job runs in its process under the debug executor
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stages = split_csv(args.stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UserError(f"unknown stage {', '.join(unknown) or '(none)'}; stages: {', '.join(STAGES)}")
    for stage in ("probes", "targets"):
        if stage in stages and not args.targets:
            raise UserError(f"the {stage} stage needs --targets (e.g. --targets boolq,cb)")
    for flag in ("source_epochs", "probe_epochs"):
        value = getattr(args, flag)
        if value is not None and not value > 0:
            raise UserError(f"--{flag.replace('_', '-')} must be positive, got {value}")
    base = config_from_args(args, check=False)
    base.method = "prompt"
    validate(base)  # model, source tasks, numbers: fail before any training starts
    for task in args.targets:
        validate(dataclasses.replace(base, tasks=[task]))
    base = apply_prepared(base, tasks=[*(base.sources or []), *(args.targets or [])])  # the prepared cache, or the hub
    priors = prior_names(base, args.priors) if "prior" in stages else []
    out = Path(base.output_dir)
    steps = {"sources": lambda: run_sources(base, out, args.source_epochs),
             "prior": lambda: run_priors(base, out, priors, args.source_epochs),
             "spot_g": lambda: run_spot_g(base, out, args.source_epochs),
             "probes": lambda: run_probes(base, out, args.targets, args.probe_epochs),
             "targets": lambda: run_targets(base, out, args.targets, args.single_task)}
    for stage in STAGES:
        if stage in stages:
            code = steps[stage]()
            if code:
                return code
    if _main_rank():
        print(f"pipeline done: {out} (stages {','.join(stages)})", flush=True)
    return 0
