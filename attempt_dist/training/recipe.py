"""The training recipe: one object with setup / train / finish, the same under every launcher.

    deepspeed --num_gpus 2 launch/train.py --model t5-base --method attempt --tasks boolq,cb \
        --source-prompts OUT/prompts --ds-config ds_configs/zero2_offload.json
    torchrun --nproc_per_node 2 launch/train.py ...        python launch/train.py ...
    torchrun --nproc_per_node 2 -m attempt_dist.train ...  deepspeed --module attempt_dist.train ...
    attempt-dist train --model t5-tiny --method prompt --tasks rte --data-dir examples/data

Exit codes: 0 done (result.json written), 2 bad input, 3-5 a run failure, 130 Ctrl-C (failure.py,
run_ending.py). One run owns its --output-dir (run_folder.py); --resume refuses a changed run
(resume_config.py).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from pathlib import Path

import torch

from . import checkpoint as ckpt, resume_config, tracking
from .. import distributed as dist
from ..finished.artifacts import artifact_meta, save_artifact, write_model_card
from ..errors import AgreedError, UserError, ends_on_ctrl_c
from .evaluate import default_eval_batch_size, evaluate
from .eval_time import EvalTime
from .faults import FaultHooks
from ..methods import needs, param_groups
from ..model.build import build_model, load_backbone
from .progress import RunProgress, score_line
from ..atomic_files import write_json_atomic
from ..finished.record import RESULT_FILENAME, RunResult
from .run_data import RunData, load_run_data
from .failure import optimizer_step, read_step_loss
from .run_ending import RunEnding
from .run_folder import check_output_dir, check_output_folder, drop_old_run, hold_output_lock, set_old_run_aside
from .logs import attach_log_file, setup_logging
from .eval_outputs import save_attention, save_predictions
from .result import completed_record
from .state import RunState
from .runlock import FolderLock
from .step_meter import StepInstruments
from .config import TrainConfig, build_parser, config_from_args, parse_train_args, warmup_steps
from ..prepare import apply_prepared

log = logging.getLogger("attempt_dist.train")


class Recipe:
    """One run: setup() (ranks, folder, plan, data, model, engine), train(), finish(state, started)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg  # --ds-config auto: setup() replaces it by the planned one
        self.requested = cfg.to_dict()  # as given, before --ds-config auto: what resume compares
        self.out = Path(cfg.output_dir)
        self.eval_time = EvalTime()  # what evaluating cost this process (the run record's throughput.eval)
        self.lock: FolderLock | None = None
        self.resume_from: ckpt.TagCheck | None = None
        # setup(): the ranks, where metrics go, the memory cap and plan, DeepSpeed's config
        self.info: dist.DistInfo | None = None
        self.nodes = 1  # how many machines the ranks run on (the record says)
        self.progress: RunProgress | None = None
        self.report_to: list[str] = []
        self.memory_cap: dict = {}
        self.plan: dict | None = None  # --ds-config auto's plan summary (config.json, result.json)
        self.ds_config: dict = {}
        # _setup_data(): tokenised tasks and their sampler, the schedule's length
        self.data: RunData | None = None
        self.total_steps = self.steps_per_epoch = 0
        # _setup_model(): the wrapped model in its engine, its parameter counts and learning rates
        self.total = self.trainable = 0  # parameters, all and trainable
        self.method_cfg = None
        self.group_lrs: dict[str, float] = {}
        self.warmup, self.warmup_capped = 0, False
        self.engine = None
        self.synced_gpus = False
        self.hooks: FaultHooks | None = None
        self.instruments: StepInstruments | None = None  # steady speed, the step's losses, the profiler
        self.tracker: tracking.Tracker | None = None  # train()

    # --- setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        self.report_to = tracking.parse_report_to(cfg.report_to)  # a missing package fails before any work
        check_output_folder(cfg.output_dir)
        self.info = dist.init_distributed(timeout_s=cfg.dist_timeout)
        self.nodes = dist.node_count()
        self.progress = RunProgress(enabled=self.info.is_main)
        self.lock = hold_output_lock(self.out, self.info)
        check_output_dir(self.out, resume=cfg.resume != "no", overwrite=cfg.overwrite)
        self.resume_from = resume_config.checkpoint_to_resume(self.out, cfg.resume, self.requested, self.info)
        setup_logging(self.out, self.info.rank, hold=cfg.overwrite)
        self.memory_cap = dist.apply_memory_cap(dist.parse_size(cfg.gpu_mem_cap) if cfg.gpu_mem_cap else None)
        ds_source = cfg.ds_config
        if cfg.ds_config == "auto":  # the planner picks layout, checkpointing, micro-batch
            from ..planning import auto

            cfg, ds_source, self.plan = auto.resolve_for_run(cfg, self.info.world_size, self.memory_cap,
                                                             announce=self.info.is_main)
            self.cfg = cfg
        self.ds_config = dist.load_ds_config(ds_source, micro_batch_size=cfg.batch_size,
                                             grad_accum=cfg.grad_accum, world_size=self.info.world_size,
                                             nvme_path=cfg.nvme_path)
        torch.manual_seed(cfg.seed)
        self._setup_data()
        self._setup_model()
        self._prepare_output_dir()
        log.info("setup done: %s %s on %s, %d trainable of %d parameters, world %d", cfg.method, cfg.model,
                 ",".join(cfg.tasks), self.trainable, self.total, self.info.world_size)

    def _prepare_output_dir(self) -> None:
        """Setup succeeded: only now does --overwrite set the old run aside; then this run's config."""
        cfg = self.cfg
        if self.info.is_main:
            if cfg.overwrite:
                set_old_run_aside(self.out)
            write_json_atomic(self.out / "config.json", {"train": cfg.to_dict(), "deepspeed": self.ds_config,
                                                         "world_size": self.info.world_size, "plan": self.plan})
        dist.barrier()
        attach_log_file(self.out, self.info.rank)

    def _setup_data(self) -> None:
        cfg = self.cfg
        self.data = load_run_data(cfg, self.info.rank, self.info.world_size)
        self.steps_per_epoch = max(1, len(self.data.sampler) // cfg.grad_accum)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        resume_config.check_continues(self.resume_from, self.total_steps, self.data.fingerprint, self.info)

    def _setup_model(self) -> None:
        cfg = self.cfg
        with dist.backbone_init_context(self.ds_config):
            backbone = load_backbone(cfg)
        self.total = sum(dist.numel(p) for p in backbone.parameters())
        model, self.method_cfg = build_model(cfg, backbone)
        self.trainable = sum(dist.numel(p) for p in model.parameters() if p.requires_grad)
        groups = param_groups(cfg.method, model, self.method_cfg)
        self.group_lrs = {g["name"]: g["lr"] for g in groups}
        optimizer = torch.optim.AdamW(groups)
        self.warmup, self.warmup_capped = warmup_steps(cfg, self.total_steps)
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(optimizer, self.warmup, self.total_steps)
        self.engine = dist.initialize_engine(model, optimizer, scheduler, self.ds_config)
        self.synced_gpus = dist.needs_synced_gpus(self.ds_config)
        self.instruments = StepInstruments.for_run(self, model)
        self.hooks = FaultHooks(self.out, self.info.rank)
        self.hooks.dump_state(self.engine.module, "initial")

    # --- training ---------------------------------------------------------------------------
    def _resume(self) -> RunState:
        state = RunState()
        if self.resume_from is None:
            return state
        tag = self.resume_from.tag
        client, per_rank = ckpt.load(self.engine, self.out, tag, rank=self.info.rank)
        state = RunState.from_dict(client["recipe"])
        self.data.sampler.load_state_dict(per_rank["sampler"])
        ckpt.set_rng_state(per_rank["rng"])
        log.info("resumed from %s at step %d", tag, self.engine.global_steps)
        if self.info.is_main:
            print(f"resumed from checkpoint {tag} (step {self.engine.global_steps})", flush=True)
        return state

    def _save(self, tag: str, state: RunState, latest: bool = True) -> None:
        client = {"recipe": state.to_dict(), "per_rank": {"sampler": self.data.sampler.state_dict()}}
        ckpt.save(self.engine, self.out, tag, client, rank=self.info.rank, config=self.requested,
                  data=self.data.fingerprint, latest=latest)
        if latest:  # a complete checkpoint to resume from: the run --overwrite replaced is no longer needed
            drop_old_run(self.out, self.info)

    def _evaluate_dev(self, state: RunState) -> None:
        step = self.engine.global_steps
        result = self._evaluate("dev", with_attention=False)
        epoch = self.epochs_done(step)
        state.history.append({"step": step, "epoch": epoch, "score": result["score"], "metrics": result["metrics"]})
        log.info("dev at step %d: %.3f %s", step, result["score"], result["metrics"])
        self.tracker.evaluation(split="dev", step=step, epoch=epoch, score=result["score"], metrics=result["metrics"])
        self.progress.note(score_line("dev", step, result["score"], result["metrics"]))
        if result["score"] > state.best_score:
            state.best_score = result["score"]
            state.best = {"step": step, "epoch": epoch, "dev_score": result["score"]}
            if not self.cfg.no_checkpoints:
                self._save("best", state, latest=False)

    def epochs_done(self, step: int) -> float:
        # Epochs done at an optimizer step (the sampler's counter moves only after an epoch's last step).
        return round(step / self.steps_per_epoch, 4)

    def _evaluate(self, split: str, with_attention: bool) -> dict:
        # The engine, not its module: under ZeRO-3 evaluate gathers the weights once per call.
        start = time.perf_counter()
        result = evaluate(self.engine, self.data.eval_data[split], split=split, tokenizer=self.data.tokenizer,
                          collator=self.data.collator,
                          batch_size=self.cfg.eval_batch_size or default_eval_batch_size(self.cfg.batch_size),
                          info=self.info, max_target_length=self.cfg.max_target_length,
                          synced_gpus=self.synced_gpus, with_attention=with_attention,
                          cap_bytes=self.memory_cap.get("cap_bytes"), progress=self.progress)
        self.eval_time.add(split, time.perf_counter() - start, result.get("generated"))
        return result

    def train(self) -> RunState:
        cfg, engine = self.cfg, self.engine
        state = self._resume()
        self.tracker = tracking.Tracker(self.out, self.report_to, cfg.to_dict(), enabled=self.info.is_main,
                                        resume_step=engine.global_steps or None)
        eval_every = cfg.eval_every or self.steps_per_epoch
        engine.train()
        device = engine.device
        with self.progress:
            self.progress.start_training(self.total_steps, engine.global_steps)
            while engine.global_steps < self.total_steps:
                for items in self.data.sampler:
                    start = time.perf_counter()
                    batch = self.data.collator([self.data.train_features[t][i] for t, i in items])
                    batch.pop("indices")
                    self.instruments.meter.micro_batch(batch)
                    batch = {k: v.to(device) for k, v in batch.items()}
                    loss = engine(**batch).loss
                    self.instruments.losses.add(loss)
                    if engine.is_gradient_accumulation_boundary():  # before backward: --dist-timeout bounds it
                        last_loss = read_step_loss(self.instruments.losses, engine.global_steps + 1)
                    engine.backward(loss)
                    before = engine.global_steps
                    optimizer_step(engine, self.group_lrs)
                    state.train_seconds += time.perf_counter() - start
                    state.examples += len(items) * self.info.world_size
                    if engine.global_steps == before:
                        continue  # inside a gradient-accumulation window
                    step = engine.global_steps
                    self.instruments.step_end(step)
                    state.losses.append(round(last_loss, 6))
                    self.tracker.step_loss(last_loss)
                    rate = state.examples_per_s
                    self.progress.train_step(step, last_loss, rate)
                    if step % cfg.log_every == 0 or step == self.total_steps:
                        log.info("step %d loss %.4f lr %s %.1f ex/s", step, last_loss,
                                 [round(g["lr"], 6) for g in engine.optimizer.param_groups], rate)
                        self._track_step(step, state)
                    if step % eval_every == 0 or step == self.total_steps:
                        self._evaluate_dev(state)
                        self.instruments.meter.restart_interval()  # evaluation is not a step's time
                    if not cfg.no_checkpoints and (step % cfg.save_every == 0 or step == self.total_steps):
                        self._save(f"step{step}", state)
                        self.hooks.after_checkpoint(step)
                        self.instruments.meter.restart_interval()
                    self.hooks.after_step(step)
                    if step >= self.total_steps:
                        break
        return state

    def _track_step(self, step: int, state: RunState) -> None:
        if not self.tracker.enabled:
            return
        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.engine.optimizer.param_groups)}
        self.tracker.train(step=step, epoch=self.epochs_done(step), lr=lrs, examples=state.examples,
                           examples_per_s=state.examples_per_s, memory=dist.memory_report(),
                           steady=self.instruments.meter.summary())

    # --- finish: best weights back, final evaluation, artefacts, the run record --------------
    def finish(self, state: RunState, started: float) -> RunResult | None:
        steps = self.engine.global_steps  # before loading "best" rewinds the step counter
        self._reload_best(state)
        attention = needs(self.cfg.method).attention and self.cfg.save_attention
        with self.progress:
            results = {split: self._evaluate(split, with_attention=attention) for split in ("dev", "test")}
        for split, res in results.items():
            self.tracker.evaluation(split=split, step=steps, epoch=self.epochs_done(steps), score=res["score"],
                                    metrics=res["metrics"], final=True)
        self.tracker.close()
        meta = artifact_meta(self.cfg, self.engine.module)
        save_artifact(self.engine.module, self.out, self.info, meta)
        self.hooks.dump_state(self.engine.module, "state")
        memory = dist.memory_report()
        record = None
        if self.info.is_main:
            self._write_outputs(results, attention)
            record = completed_record(self, state, results, steps, memory, started)
            write_model_card(self.out, meta, record.to_json())
            write_json_atomic(self.out / RESULT_FILENAME, record.to_json())
        dist.barrier()
        return record

    def _reload_best(self, state: RunState) -> None:
        if state.best is None or self.cfg.no_checkpoints:
            return
        damage = ckpt.load_best(self.engine, self.out, rank=self.info.rank)
        if damage:
            if self.info.is_main:
                print(f"warning: checkpoint best is damaged ({damage}); scoring the last weights instead", flush=True)
            state.best = None

    def _write_outputs(self, results: dict, attention: bool) -> None:
        for split, res in results.items():
            save_predictions(self.out, split, self.data.eval_data[split], res["predictions"])
            if attention:
                save_attention(self.out, split, self.engine.module, res["attention"], self.data.eval_data[split])


def run(cfg: TrainConfig) -> int:
    """Train one run in this process; 0 when done, else the failure's exit code (failure.py).
    Ctrl-C raises Interrupted after its one line (run_ending.py)."""
    started = time.time()
    recipe = Recipe(cfg)
    with RunEnding(recipe) as ending:
        recipe.setup()
        state = recipe.train()
        ending.record = recipe.finish(state, started)
    return ending.code


@dist.leaves_process_as_found  # the debug executor runs a sweep's cells one after another in its process
def main(argv: list[str] | None = None) -> int:
    """One run (launch/train.py, `attempt-dist train`, a sweep cell's job)."""
    try:
        args = parse_train_args(build_parser(), argv)
        cfg = apply_prepared(config_from_args(args))  # weights and data: the prepared cache, or the hub
        code = run(cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        code = 2
        if isinstance(err, AgreedError):
            dist.shutdown()  # every rank is here: all have printed before any exits
    if code == 0:
        dist.shutdown()  # after a failure a rank may be gone: the process exits without it
    return code


if __name__ == "__main__":  # python -m attempt_dist.train, torchrun -m, deepspeed --module, accelerate launch -m
    # The importable module's main, not this __main__ copy's: one set of classes and loggers.
    from attempt_dist.training.recipe import main as _main

    sys.exit(ends_on_ctrl_c(_main)())
