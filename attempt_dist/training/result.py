"""result.json of a completed run: what the training recipe measured, in the record's schema
(record.py, which also reads it back)."""

from __future__ import annotations

import time

from .. import distributed as dist
from ..finished.record import Best, DeepSpeedUse, EvalPoint, MemoryUse, ParamCounts, RunResult, SteadyThroughput, Throughput
from ..provenance import git_revision, package_versions
from .state import RunState


def completed_record(recipe, state: RunState, results: dict, steps: int, memory: dict,
                     started: float) -> RunResult:
    """recipe: the training recipe (recipe.Recipe, not imported: it imports this) at the end of
    finish(); results: split -> the final evaluation ("score", "metrics"); steps: the optimizer steps
    trained; memory: dist.memory_report() at the end; started: the run's start (time.time())."""
    cfg = recipe.cfg
    wall_s = time.time() - started
    best = state.best or {"step": steps, "epoch": recipe.epochs_done(steps), "dev_score": results["dev"]["score"]}
    return RunResult(
        status="completed",
        config=cfg.to_dict(),
        metrics={split: res["metrics"] for split, res in results.items()},
        score={split: res["score"] for split, res in results.items()},
        best=Best(**best),
        history=[EvalPoint(**point) for point in state.history],
        train_loss=state.losses,
        params=ParamCounts(trainable=recipe.trainable, trainable_per_task=recipe.trainable / len(cfg.tasks),
                           total=recipe.total),
        learning_rates=recipe.group_lrs,
        warmup_steps=recipe.warmup,
        warmup_capped=recipe.warmup_capped,  # a --max-steps smoke run: a tenth of its steps
        steps=steps,
        memory=MemoryUse(**{**memory, "cap_bytes": recipe.memory_cap.get("cap_bytes")}),
        throughput=Throughput(train_examples_per_s=state.examples_per_s, steps=steps, examples=state.examples,
                              eval=recipe.eval_time.by_split(), eval_share=recipe.eval_time.share(wall_s),
                              steady=SteadyThroughput.of(recipe.instruments.meter.summary())),
        wall_time_s=wall_s,
        world_size=recipe.info.world_size,
        nodes=recipe.nodes,
        deepspeed=DeepSpeedUse(stage=dist.zero_stage(recipe.ds_config), config=cfg.ds_config),
        plan=recipe.plan,
        versions=package_versions(),
        git_revision=git_revision(),
    )
