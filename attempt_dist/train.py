"""The training recipe: one object with setup / train / finish, the same under every launcher.

    deepspeed --num_gpus 2 launch/train.py --model t5-base --method attempt --tasks boolq,cb \
        --source-prompts OUT/prompts --ds-config ds_configs/zero2_offload.json
    torchrun --nproc_per_node 2 launch/train.py ...        python launch/train.py ...
    torchrun --nproc_per_node 2 -m attempt_dist.train ...  deepspeed --module attempt_dist.train ...
    attempt-dist train --model t5-tiny --method prompt --tasks rte --data-dir examples/data

Exit codes: 0 done (result.json written), 2 bad input, 3 out of memory under the cap
(failure.json written), 4 the loss diverged (the last good checkpoint is kept), 5 a rank
stopped answering: a collective waited --dist-timeout seconds (failure.json written; rerun
with --resume).

One run owns its --output-dir (runlock.py): a second run there exits 2 naming the first.
--overwrite removes the old run's files only once the new run's setup succeeded; --resume
continues the newest complete checkpoint and refuses a changed run (resume_config.py).
"""

from __future__ import annotations

import logging
import logging.handlers
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import distributed as dist
from . import resume_config, tracking
from .data import MultiTaskSampler, Seq2SeqCollator, default_cache_dir, load_tokenizer, task_features
from .errors import AgreedError, UserError
from .evaluate import TaskEvalData, default_eval_batch_size, evaluate
from .methods import needs, param_groups
from .planning.auto import DoesNotFit
from .model_setup import build_model, load_backbone, tokenizer_source
from .progress import RunProgress, print_summary, score_line
from .record import (FAILURE_FILENAME, RESULT_FILENAME, Best, DeepSpeedUse, EvalPoint, MemoryUse, ParamCounts,
                     RunFailure, RunResult, Throughput)
from .provenance import git_revision, package_versions
from .atomic_files import write_json_atomic
from .artifacts import ARTIFACT_FILES, artifact_meta, save_artifact, write_model_card
from .checkpoint import dump_full_state
from .eval_outputs import save_attention, save_predictions
from .runlock import FolderLock
from .tasks import get_task
from .train_config import TrainConfig, build_parser, config_from_args, parse_train_args

log = logging.getLogger("attempt_dist.train")
EXIT_OOM, EXIT_DIVERGED, EXIT_STALLED = 3, 4, 5
# Test hook: exit abruptly right after the checkpoint of this optimizer step (a "kill").
CRASH_ENV = "ATTEMPT_DIST_CRASH_AFTER_STEP"
# Test hook: every rank writes its whole (gathered) model state, to compare ranks and frozen weights.
DUMP_ENV = "ATTEMPT_DIST_DUMP_STATE"
# Test hook: after this step's checkpoint, mark out/paused-rank<r> and wait (at most 10 min), so a
# test can preempt, cancel or signal a job that is surely mid-run.
PAUSE_ENV = "ATTEMPT_DIST_PAUSE_AFTER_STEP"
# Test hook "RANK:STEP": that rank stops itself (SIGSTOP) after that optimizer step, like a hung node.
STOP_ENV = "ATTEMPT_DIST_STOP_RANK_AFTER_STEP"
# Files and folders a run writes in its --output-dir: what --overwrite removes (and nothing else).
RUN_ARTIFACTS = (RESULT_FILENAME, FAILURE_FILENAME, "config.json", *ARTIFACT_FILES, tracking.METRICS_FILENAME,
                 "tensorboard", "checkpoints", "attention", "predictions", "logs", "debug")


class Diverged(RuntimeError):
    pass


@dataclass
class RunState:
    """What the recipe carries from step to step and through checkpoints (as a dict)."""

    best_score: float = -math.inf
    best: dict | None = None
    """{"step", "epoch", "dev_score"} of the best dev evaluation so far."""
    history: list[dict] = field(default_factory=list)
    """One entry per dev evaluation: step, epoch, score, metrics."""
    examples: int = 0
    """Training examples seen, over all ranks."""
    train_seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    """Rank 0's last micro-batch loss at each optimizer step."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> "RunState":
        known = {f.name for f in fields(cls)}  # checkpoints of older versions carry more keys
        return cls(**{k: v for k, v in saved.items() if k in known})

    @property
    def examples_per_s(self) -> float:
        return self.examples / max(self.train_seconds, 1e-9)


class FaultHooks:
    """Fault injection and state dumps for the multi-rank tests, read once from the environment,
    so the training loop itself holds no test code."""

    def __init__(self, out: Path, rank: int) -> None:
        self.crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
        self.pause_after = int(os.environ.get(PAUSE_ENV, "0") or 0)
        self.dump = os.environ.get(DUMP_ENV) == "1"
        stop_rank, _, stop_step = os.environ.get(STOP_ENV, "").partition(":")
        self.stop_after = int(stop_step) if stop_rank and int(stop_rank) == rank else 0
        self.out, self.rank = out, rank

    def after_step(self, step: int) -> None:
        if self.stop_after and step == self.stop_after:
            os.kill(os.getpid(), signal.SIGSTOP)  # alive but silent: the others must not wait forever

    def after_checkpoint(self, step: int) -> None:
        if self.crash_after and step == self.crash_after:
            os._exit(9)  # an abrupt kill right after this step's checkpoint
        if self.pause_after and step == self.pause_after:
            (self.out / f"paused-rank{self.rank}").touch()
            time.sleep(600)

    def dump_state(self, module, when: str) -> None:
        if self.dump:
            dump_full_state(module, self.out / "debug" / f"rank{self.rank}_{when}.pt")


def numel(param: torch.Tensor) -> int:
    return int(getattr(param, "ds_numel", param.numel()))  # ZeRO-3 shards report 0 elements


def check_output_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"output folder {out} is not writable ({err.strerror}); choose another --output-dir") from None


def check_output_dir(cfg: TrainConfig) -> None:
    """Refuse to clobber a finished run or silently restart one in progress (under the folder's lock)."""
    out = Path(cfg.output_dir)
    if (out / RESULT_FILENAME).exists() and not cfg.overwrite:
        raise UserError(f"{out} already holds a finished run ({RESULT_FILENAME}); pass --overwrite to replace it "
                        "or choose another --output-dir")
    if ckpt.has_checkpoints(out) and not (cfg.resume or cfg.overwrite):
        raise UserError(f"{out} holds checkpoints of an unfinished run; pass --resume to continue it "
                        "or --overwrite to start again")


def hold_output_lock(out: Path, info) -> FolderLock | None:
    """Rank 0 locks the run folder; every rank learns the verdict, so all exit together."""
    lock, error = None, None
    if info.is_main:
        try:
            lock = FolderLock(out, "training run").acquire()
        except UserError as err:
            error = str(err)
    error = dist.broadcast_object(error)
    if error:
        raise AgreedError(error)
    return lock


def clear_for_overwrite(out: Path) -> None:
    for name in RUN_ARTIFACTS:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def setup_logging(out: Path, rank: int, *, hold: bool = False) -> None:
    """Log to logs/rank<N>.log; with `hold`, keep the records in memory until attach_log_file
    (an --overwrite run must not touch the old run's logs before its setup succeeded)."""
    root = logging.getLogger("attempt_dist")
    kept = [h for h in root.handlers if not isinstance(h, (logging.FileHandler, logging.handlers.MemoryHandler))]
    held = logging.handlers.MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1) if hold else None
    root.handlers = kept + [held or _log_file(out, rank)]
    root.setLevel(logging.INFO)


def attach_log_file(out: Path, rank: int) -> None:
    root = logging.getLogger("attempt_dist")
    for held in [h for h in root.handlers if isinstance(h, logging.handlers.MemoryHandler)]:
        held.setTarget(_log_file(out, rank))
        held.flush()
        root.removeHandler(held)
        root.addHandler(held.target)


def _log_file(out: Path, rank: int) -> logging.FileHandler:
    (out / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "logs" / f"rank{rank}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s rank" + str(rank) + " %(levelname)s %(message)s"))
    return handler


class Recipe:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.requested = cfg.to_dict()  # as given, before --ds-config auto: what resume compares
        self.out = Path(cfg.output_dir)
        self.eval_time: dict[str, dict] = {}  # split -> seconds and calls, this process only
        self.lock: FolderLock | None = None
        self.resume_from: ckpt.TagCheck | None = None

    # --- setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        self.report_to = tracking.parse_report_to(cfg.report_to)  # a missing package fails before any work
        check_output_writable(self.out)
        self.info = dist.init_distributed(timeout_s=cfg.dist_timeout)
        self.progress = RunProgress(enabled=self.info.is_main)
        self.lock = hold_output_lock(self.out, self.info)
        check_output_dir(cfg)
        self.resume_from = self._find_checkpoint()
        setup_logging(self.out, self.info.rank, hold=cfg.overwrite)
        self.memory_cap = dist.apply_memory_cap(dist.parse_size(cfg.gpu_mem_cap) if cfg.gpu_mem_cap else None)
        ds_source, self.plan = cfg.ds_config, None
        if cfg.ds_config == "auto":  # the planner picks layout, checkpointing, micro-batch
            from .planning import auto

            cuda = torch.cuda.is_available()
            cap = self.memory_cap.get("cap_bytes") or self.memory_cap.get("device_total_bytes")
            if cap is None and cuda:
                cap = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
            cfg, ds_source, self.plan = auto.resolve(cfg, self.info.world_size, cap_bytes=cap,
                                                     device="cuda" if cuda else "cpu")
            self.cfg = cfg
            chosen = self.plan["chosen"]
            log.info("--ds-config auto: %s, activation checkpointing %s, micro-batch %d x %d, predicted peak %.2f GiB",
                     chosen["layout"], chosen["activation_checkpointing"], chosen["micro_batch"],
                     chosen["grad_accum"], chosen["peak_bytes"] / 2**30)
            if self.info.is_main:
                print(f"--ds-config auto: {chosen['layout']}, activation checkpointing "
                      f"{'on' if chosen['activation_checkpointing'] else 'off'}, micro-batch {chosen['micro_batch']} "
                      f"x accumulation {chosen['grad_accum']}, predicted peak {chosen['peak_bytes'] / 2**30:.2f} GiB",
                      flush=True)
        self.ds_config = dist.load_ds_config(ds_source, micro_batch_size=cfg.batch_size,
                                             grad_accum=cfg.grad_accum, world_size=self.info.world_size,
                                             nvme_path=cfg.nvme_path)
        torch.manual_seed(cfg.seed)
        self._setup_data()
        self._setup_model()
        self._prepare_output_dir()
        log.info("setup done: %s %s on %s, %d trainable of %d parameters, world %d", cfg.method, cfg.model,
                 ",".join(cfg.tasks), self.trainable, self.total, self.info.world_size)

    def _find_checkpoint(self) -> ckpt.TagCheck | None:
        """With --resume: the newest complete checkpoint, checked to continue this same run.

        Rank 0 decides (damaged tags named, the fallback said once) and every rank gets its
        verdict, so all ranks load the same tag or all exit 2.
        """
        if not self.cfg.resume:
            return None
        found, error = None, None
        if self.info.is_main:
            found, notes = ckpt.find_resumable(self.out)
            if found is None and notes:
                error = (f"--resume: no complete checkpoint in {ckpt.checkpoint_dir(self.out)} ({'; '.join(notes)}); "
                         "pass --overwrite to start again")
            elif found is not None:
                for note in notes:
                    print(f"warning: {note}; resuming from {found.tag} (step {found.marker['step']}) instead",
                          flush=True)
                error = resume_config.check(found.marker.get("config", {}), self.requested,
                                            checkpoint=str(ckpt.checkpoint_dir(self.out) / found.tag))
                saved_world = found.marker.get("world_size")
                if error is None and saved_world not in (None, self.info.world_size):
                    error = (f"--resume: {found.tag} was written by {saved_world} ranks, this run has "
                             f"{self.info.world_size}; resume with {saved_world} ranks")
        found, error = dist.broadcast_object((found, error))
        if error:
            raise AgreedError(error)
        if found is None:
            log.info("--resume: no checkpoint in %s, starting from scratch", self.out)
        return found

    def _prepare_output_dir(self) -> None:
        """Setup succeeded: only now does --overwrite remove the old run; then this run's config."""
        cfg = self.cfg
        if self.info.is_main:
            if cfg.overwrite:
                clear_for_overwrite(self.out)
            write_json_atomic(self.out / "config.json", {"train": cfg.to_dict(), "deepspeed": self.ds_config,
                                                         "world_size": self.info.world_size, "plan": self.plan})
        dist.barrier()
        attach_log_file(self.out, self.info.rank)

    def _setup_data(self) -> None:
        cfg = self.cfg
        self.tokenizer = load_tokenizer(tokenizer_source(cfg))
        self.collator = Seq2SeqCollator(self.tokenizer.pad_token_id)
        self.train_features, self.eval_data = [], {"dev": [], "test": []}
        cache = None if cfg.no_data_cache else (Path(cfg.cache_dir) / "features" if cfg.cache_dir else default_cache_dir())
        started, built = time.perf_counter(), 0
        for task_id, task in enumerate(cfg.tasks):
            max_len = cfg.max_length or get_task(task).max_length
            # Built once per node (the other ranks wait), then memory-mapped by every rank.
            data = task_features(task, task_id, cfg.data_dir, cfg.data_seed, cfg.max_train_examples,
                                 self.tokenizer, max_len, cfg.max_target_length, cache)
            self.train_features.append(data.train)
            built += data.built
            for split, examples in (("dev", data.dev_examples), ("test", data.test_examples)):
                features = getattr(data, split).head(cfg.max_eval_examples)
                self.eval_data[split].append(TaskEvalData(task, task_id, examples[:len(features)], features))
        log.info("data ready in %.1f s: %d training examples over %d tasks, %d tokenised by this rank",
                 time.perf_counter() - started, sum(len(f) for f in self.train_features), len(cfg.tasks), built)
        self.sampler = MultiTaskSampler([len(f) for f in self.train_features], cfg.batch_size,
                                        self.info.rank, self.info.world_size, cfg.seed,
                                        temperature=cfg.temperature_sampling)
        steps_per_epoch = max(1, len(self.sampler) // cfg.grad_accum)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        self.steps_per_epoch = steps_per_epoch
        resumed_at = self.resume_from.marker["step"] if self.resume_from else 0
        if resumed_at > self.total_steps:
            raise UserError(f"--resume: the checkpoint is at step {resumed_at}, past this run's {self.total_steps} "
                            "steps; give --max-steps (or --epochs) at least that")

    def _setup_model(self) -> None:
        cfg = self.cfg
        with dist.backbone_init_context(self.ds_config):
            backbone = load_backbone(cfg)
        self.total = sum(numel(p) for p in backbone.parameters())
        model, self.method_cfg = build_model(cfg, backbone)
        self.trainable = sum(numel(p) for p in model.parameters() if p.requires_grad)
        groups = param_groups(cfg.method, model, self.method_cfg)
        self.group_lrs = {g["name"]: g["lr"] for g in groups}
        optimizer = torch.optim.AdamW(groups)
        self.warmup, self.warmup_capped = warmup_steps(cfg, self.total_steps)
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(optimizer, self.warmup, self.total_steps)
        self.engine = dist.initialize_engine(model, optimizer, scheduler, self.ds_config)
        self.synced_gpus = dist.needs_synced_gpus(self.ds_config)
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
        self.sampler.load_state_dict(per_rank["sampler"])
        ckpt.set_rng_state(per_rank["rng"])
        log.info("resumed from %s at step %d", tag, self.engine.global_steps)
        if self.info.is_main:
            print(f"resumed from checkpoint {tag} (step {self.engine.global_steps})", flush=True)
        return state

    def _save(self, tag: str, state: RunState, latest: bool = True) -> None:
        client = {"recipe": state.to_dict(), "per_rank": {"sampler": self.sampler.state_dict()}}
        ckpt.save(self.engine, self.out, tag, client, rank=self.info.rank, config=self.requested, latest=latest)

    def _check_finite(self, loss: torch.Tensor) -> None:
        bad = torch.tensor([0.0 if torch.isfinite(loss.detach()).all() else 1.0])
        if self.info.world_size > 1:
            torch.distributed.all_reduce(bad)
        if bad.item() > 0:
            raise Diverged(f"the loss became {loss.item()} at step {self.engine.global_steps + 1}")

    def _step(self) -> None:
        try:
            self.engine.step()
        except RuntimeError as err:  # an update past float32's range (e.g. --lr 1e38) is a divergence
            if "without overflow" not in str(err):
                raise
            raise Diverged(f"the update overflowed at step {self.engine.global_steps + 1} "
                           f"(learning rates {sorted(set(self.group_lrs.values()))})") from None

    def _evaluate_dev(self, state: RunState) -> None:
        step = self.engine.global_steps
        result = self._evaluate("dev", with_attention=False)
        epoch = self._epochs_done(step)
        state.history.append({"step": step, "epoch": epoch, "score": result["score"], "metrics": result["metrics"]})
        log.info("dev at step %d: %.3f %s", step, result["score"], result["metrics"])
        self.tracker.evaluation(split="dev", step=step, epoch=epoch, score=result["score"], metrics=result["metrics"])
        self.progress.note(score_line("dev", step, result["score"], result["metrics"]))
        if result["score"] > state.best_score:
            state.best_score = result["score"]
            state.best = {"step": step, "epoch": epoch, "dev_score": result["score"]}
            if not self.cfg.no_checkpoints:
                self._save("best", state, latest=False)

    def _epochs_done(self, step: int) -> float:
        # Epochs completed at an optimizer step (the sampler's own counter only moves once its
        # generator is exhausted, after the step that ends the epoch).
        return round(step / self.steps_per_epoch, 4)

    def _evaluate(self, split: str, with_attention: bool) -> dict:
        # The engine, not its module: under ZeRO-3 evaluate gathers the weights once per call.
        start = time.perf_counter()
        result = evaluate(self.engine, self.eval_data[split], split=split, tokenizer=self.tokenizer,
                          collator=self.collator,
                          batch_size=self.cfg.eval_batch_size or default_eval_batch_size(self.cfg.batch_size),
                          info=self.info, max_target_length=self.cfg.max_target_length,
                          synced_gpus=self.synced_gpus, with_attention=with_attention,
                          cap_bytes=self.memory_cap.get("cap_bytes"), progress=self.progress)
        # Time spent evaluating in this process (not carried over a --resume), for the run record.
        spent = self.eval_time.setdefault(split, {"seconds": 0.0, "calls": 0})
        spent["seconds"] = round(spent["seconds"] + time.perf_counter() - start, 3)
        spent["calls"] += 1
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
                for items in self.sampler:
                    start = time.perf_counter()
                    batch = self.collator([self.train_features[t][i] for t, i in items])
                    batch.pop("indices")
                    batch = {k: v.to(device) for k, v in batch.items()}
                    loss = engine(**batch).loss
                    self._check_finite(loss)
                    engine.backward(loss)
                    before = engine.global_steps
                    self._step()
                    state.train_seconds += time.perf_counter() - start
                    state.examples += len(items) * self.info.world_size
                    if engine.global_steps == before:
                        continue  # inside a gradient-accumulation window
                    step = engine.global_steps
                    state.losses.append(round(loss.item(), 6))
                    self.tracker.step_loss(loss.item())
                    rate = state.examples_per_s
                    self.progress.train_step(step, loss.item(), rate)
                    if step % cfg.log_every == 0 or step == self.total_steps:
                        log.info("step %d loss %.4f lr %s %.1f ex/s", step, loss.item(),
                                 [round(g["lr"], 6) for g in engine.optimizer.param_groups], rate)
                        self._track_step(step, state)
                    if step % eval_every == 0 or step == self.total_steps:
                        self._evaluate_dev(state)
                    if not cfg.no_checkpoints and (step % cfg.save_every == 0 or step == self.total_steps):
                        self._save(f"step{step}", state)
                        self.hooks.after_checkpoint(step)
                    self.hooks.after_step(step)
                    if step >= self.total_steps:
                        break
        return state

    def _track_step(self, step: int, state: RunState) -> None:
        if not self.tracker.enabled:
            return
        lrs = {g.get("name", str(i)): g["lr"] for i, g in enumerate(self.engine.optimizer.param_groups)}
        self.tracker.train(step=step, epoch=self._epochs_done(step), lr=lrs, examples=state.examples,
                           examples_per_s=state.examples_per_s, memory=dist.memory_report())

    # --- finish: best weights back, final evaluation, artefacts, the run record --------------
    def finish(self, state: RunState, started: float) -> RunResult | None:
        steps = self.engine.global_steps  # before loading "best" rewinds the step counter
        self._reload_best(state)
        attention = needs(self.cfg.method).attention and self.cfg.save_attention
        with self.progress:
            results = {split: self._evaluate(split, with_attention=attention) for split in ("dev", "test")}
        for split, res in results.items():
            self.tracker.evaluation(split=split, step=steps, epoch=self._epochs_done(steps), score=res["score"],
                                    metrics=res["metrics"], final=True)
        self.tracker.close()
        meta = self._artifact_meta()
        save_artifact(self.engine.module, self.out, self.info, meta)
        self.hooks.dump_state(self.engine.module, "state")
        memory = dist.memory_report()
        record = None
        if self.info.is_main:
            self._write_outputs(results, attention)
            record = self._record(state, results, steps, memory, started)
            write_model_card(self.out, meta, record.to_json())
            write_json_atomic(self.out / RESULT_FILENAME, record.to_json())
        dist.barrier()
        return record

    def _reload_best(self, state: RunState) -> None:
        if state.best is not None and not self.cfg.no_checkpoints:
            damage = ckpt.check_tag(ckpt.checkpoint_dir(self.out), "best").problem
            if damage:
                if self.info.is_main:
                    print(f"warning: checkpoint best is damaged ({damage}); scoring the last weights instead",
                          flush=True)
                state.best = None
                return
            # With the optimizer state: under ZeRO-3 the weights live in the optimizer's fp32
            # partitions, and a module-only load leaves the last step's weights in place.
            ckpt.load(self.engine, self.out, "best", rank=self.info.rank, optimizer=True)

    def _write_outputs(self, results: dict, attention: bool) -> None:
        for split, res in results.items():
            save_predictions(self.out, split, self.eval_data[split], res["predictions"])
            if attention:
                save_attention(self.out, split, self.engine.module, res["attention"], self.eval_data[split])

    def _record(self, state: RunState, results: dict, steps: int, memory: dict, started: float) -> RunResult:
        """result.json (its schema: attempt_dist.record)."""
        best = state.best or {"step": steps, "epoch": self._epochs_done(steps), "dev_score": results["dev"]["score"]}
        return RunResult(
            status="completed",
            config=self.cfg.to_dict(),
            metrics={split: res["metrics"] for split, res in results.items()},
            score={split: res["score"] for split, res in results.items()},
            best=Best(**best),
            history=[EvalPoint(**point) for point in state.history],
            train_loss=state.losses,
            params=ParamCounts(trainable=self.trainable, trainable_per_task=self.trainable / len(self.cfg.tasks),
                               total=self.total),
            learning_rates=self.group_lrs,
            warmup_steps=self.warmup,
            warmup_capped=self.warmup_capped,  # a --max-steps smoke run: a tenth of its steps
            steps=steps,
            memory=MemoryUse(**{**memory, "cap_bytes": self.memory_cap.get("cap_bytes")}),
            throughput=Throughput(train_examples_per_s=state.examples_per_s, steps=steps, examples=state.examples,
                                  eval=self.eval_time),
            wall_time_s=time.time() - started,
            world_size=self.info.world_size,
            deepspeed=DeepSpeedUse(stage=dist.zero_stage(self.ds_config), config=self.cfg.ds_config),
            plan=self.plan,
            versions=package_versions(),
            git_revision=git_revision(),
        )

    def _artifact_meta(self) -> dict:
        return artifact_meta(self.cfg, self.engine.module)


def warmup_steps(cfg: TrainConfig, total_steps: int) -> tuple[int, bool]:
    """(warm-up steps, capped?): the paper's --warmup-steps (500, B.5), whatever the run's
    length; only a run sized by an explicit --max-steps (a smoke run) gets at most a tenth of
    its steps, so that a 20-step check still reaches its learning rate."""
    if cfg.max_steps is not None and total_steps // 10 < cfg.warmup_steps:
        return total_steps // 10, True
    return cfg.warmup_steps, False


def run(cfg: TrainConfig) -> int:
    started = time.time()
    recipe = Recipe(cfg)
    try:
        recipe.setup()
        state = recipe.train()
        record = recipe.finish(state, started)
    except DoesNotFit as err:  # --ds-config auto found no layout under the cap: before any weights loaded
        _fail(cfg, "oom", str(err))
        return EXIT_OOM
    except Diverged as err:
        tag = ckpt.latest_tag(cfg.output_dir)
        where = f"the last good checkpoint is {Path(cfg.output_dir) / 'checkpoints' / tag}" if tag else "no checkpoint was saved"
        _fail(cfg, "failed", f"{err}; training stopped, {where}; lower --lr or resume with --resume")
        return EXIT_DIVERGED
    except Exception as err:  # noqa: BLE001 - OOM and a stalled rank are reported, anything else re-raised
        if dist.is_collective_timeout(err):
            _fail(cfg, "failed", f"rank {os.environ.get('RANK', '0')} lost another rank (a collective failed or "
                                 f"waited past --dist-timeout {cfg.dist_timeout:g} s: a rank stopped or died); "
                                 "rerun with --resume to continue from the last checkpoint", any_rank=True)
            return EXIT_STALLED
        if not dist.is_oom(err):
            raise
        _fail(cfg, "oom", f"{cfg.model} {cfg.method} with batch {cfg.batch_size} {dist.OOM_HINT}")
        return EXIT_OOM
    finally:
        if recipe.lock is not None:
            recipe.lock.release()
    if record is not None:
        print_summary(record, cfg.output_dir)
        print(f"done: {cfg.output_dir}/{RESULT_FILENAME}", flush=True)
    return 0


def _fail(cfg: TrainConfig, status: str, reason: str, any_rank: bool = False) -> None:
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0 or any_rank:
        write_json_atomic(Path(cfg.output_dir) / FAILURE_FILENAME,
                          RunFailure(status=status, reason=reason, config=cfg.to_dict()).to_json())
        print(f"error: {reason}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """One run per process (launch/train.py, `attempt-dist train`, a sweep cell's job)."""
    try:
        args = parse_train_args(build_parser(), argv)
        cfg = config_from_args(args)
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
    # The importable module's main, not this __main__ copy's: one set of classes and loggers
    # for anything (sweep jobs, the pipeline) that imports attempt_dist.train in this process.
    from attempt_dist.train import main as _main

    sys.exit(_main())
