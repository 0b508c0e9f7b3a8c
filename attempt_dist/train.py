"""The training recipe: one object with setup / train / finish, the same under every launcher.

    deepspeed --num_gpus 2 launch/train.py --model t5-base --method attempt --tasks boolq,cb \
        --source-prompts OUT/prompts --ds-config ds_configs/zero2_offload.json
    torchrun --nproc_per_node 2 launch/train.py ...        python launch/train.py ...
    attempt-dist train --model t5-tiny --method prompt --tasks rte --data-dir examples/data

Exit codes: 0 done (result.json written), 2 bad input, 3 out of memory under the cap
(failure.json written), 4 the loss diverged (the last good checkpoint is kept).
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from . import checkpoint as ckpt
from . import distributed as dist
from .data import MultiTaskSampler, Seq2SeqCollator, cached_tokenize, default_cache_dir, load_task_splits, load_tokenizer
from .errors import UserError
from .evaluate import TaskEvalData, default_eval_batch_size, evaluate
from .methods import needs, param_groups
from .planning.auto import DoesNotFit
from .model_setup import build_model, init_mode, load_backbone
from .results import (FAILURE_FILENAME, RESULT_FILENAME, SCHEMA_VERSION, git_revision,
                      package_versions, write_json_atomic)
from .run_outputs import dump_full_state, save_attention, save_predictions, save_trainable
from .tasks import get_task
from .train_config import TrainConfig, build_parser, config_from_args

log = logging.getLogger("attempt_dist.train")
EXIT_OOM, EXIT_DIVERGED = 3, 4
# Test hook: exit abruptly right after the checkpoint of this optimizer step (a "kill").
CRASH_ENV = "ATTEMPT_DIST_CRASH_AFTER_STEP"
# Test hook: every rank writes its whole (gathered) model state, to compare ranks and frozen weights.
DUMP_ENV = "ATTEMPT_DIST_DUMP_STATE"
# Test hook: after this step's checkpoint, mark out/paused-rank<r> and wait (at most 10 min), so a
# test can preempt, cancel or signal a job that is surely mid-run.
PAUSE_ENV = "ATTEMPT_DIST_PAUSE_AFTER_STEP"


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
        self.out, self.rank = out, rank

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


def check_output_dir(cfg: TrainConfig) -> None:
    """Refuse to clobber a finished run or silently restart one in progress."""
    out = Path(cfg.output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"output folder {out} is not writable ({err.strerror}); choose another --output-dir") from None
    if (out / RESULT_FILENAME).exists() and not cfg.overwrite:
        raise UserError(f"{out} already holds a finished run ({RESULT_FILENAME}); pass --overwrite to replace it "
                        "or choose another --output-dir")
    if ckpt.latest_tag(out) and not (cfg.resume or cfg.overwrite):
        raise UserError(f"{out} holds checkpoints of an unfinished run; pass --resume to continue it "
                        "or --overwrite to start again")


def clear_for_overwrite(out: Path) -> None:
    for name in (RESULT_FILENAME, FAILURE_FILENAME):
        (out / name).unlink(missing_ok=True)
    for folder in ("checkpoints", "attention", "predictions"):
        shutil.rmtree(out / folder, ignore_errors=True)


def setup_logging(out: Path, rank: int) -> None:
    (out / "logs").mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out / "logs" / f"rank{rank}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s rank" + str(rank) + " %(levelname)s %(message)s"))
    root = logging.getLogger("attempt_dist")
    root.handlers = [h for h in root.handlers if not isinstance(h, logging.FileHandler)] + [handler]
    root.setLevel(logging.INFO)


class Recipe:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.out = Path(cfg.output_dir)
        self.eval_time: dict[str, dict] = {}  # split -> seconds and calls, this process only

    # --- setup ------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        check_output_dir(cfg)
        self.info = dist.init_distributed()
        if self.info.is_main and cfg.overwrite:
            clear_for_overwrite(self.out)
        dist.barrier()
        setup_logging(self.out, self.info.rank)
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
        if self.info.is_main:
            write_json_atomic(self.out / "config.json", {"train": cfg.to_dict(), "deepspeed": self.ds_config,
                                                         "world_size": self.info.world_size, "plan": self.plan})
        torch.manual_seed(cfg.seed)
        self._setup_data()
        self._setup_model()
        log.info("setup done: %s %s on %s, %d trainable of %d parameters, world %d", cfg.method, cfg.model,
                 ",".join(cfg.tasks), self.trainable, self.total, self.info.world_size)

    def _setup_data(self) -> None:
        cfg = self.cfg
        tokenizer_source = cfg.tokenizer or (cfg.model_path if (cfg.model_path and init_mode(cfg) == "pretrained")
                                             else cfg.model)
        self.tokenizer = load_tokenizer(tokenizer_source)
        self.collator = Seq2SeqCollator(self.tokenizer.pad_token_id)
        self.train_features, self.eval_data = [], {"dev": [], "test": []}
        cache = None if cfg.no_data_cache else (Path(cfg.cache_dir) / "features" if cfg.cache_dir else default_cache_dir())
        for task_id, task in enumerate(cfg.tasks):
            splits = load_task_splits(task, cfg.data_dir, seed=cfg.data_seed, max_train=cfg.max_train_examples)
            max_len = cfg.max_length or get_task(task).max_length
            feats = lambda exs: cached_tokenize(exs, self.tokenizer, task_id, max_len, cfg.max_target_length, cache)  # noqa: E731
            self.train_features.append(feats(splits["train"]))
            for split in ("dev", "test"):
                examples = splits[split][: cfg.max_eval_examples] if cfg.max_eval_examples else splits[split]
                self.eval_data[split].append(TaskEvalData(task, task_id, examples, feats(examples)))
        self.sampler = MultiTaskSampler([len(f) for f in self.train_features], cfg.batch_size,
                                        self.info.rank, self.info.world_size, cfg.seed,
                                        temperature=cfg.temperature_sampling)
        steps_per_epoch = max(1, len(self.sampler) // cfg.grad_accum)
        self.total_steps = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
        self.steps_per_epoch = steps_per_epoch

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
        # The paper warms up for 500 steps; a short run gets at most a tenth of its steps.
        self.warmup = min(cfg.warmup_steps, self.total_steps // 10)
        from transformers import get_linear_schedule_with_warmup

        scheduler = get_linear_schedule_with_warmup(optimizer, self.warmup, self.total_steps)
        self.engine = dist.initialize_engine(model, optimizer, scheduler, self.ds_config)
        self.synced_gpus = dist.needs_synced_gpus(self.ds_config)
        self.hooks = FaultHooks(self.out, self.info.rank)
        self.hooks.dump_state(self.engine.module, "initial")

    # --- training ---------------------------------------------------------------------------
    def _resume(self) -> RunState:
        state = RunState()
        tag = ckpt.latest_tag(self.out) if self.cfg.resume else None
        if tag is None:
            if self.cfg.resume:
                log.info("--resume: no checkpoint in %s, starting from scratch", self.out)
            return state
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
        ckpt.save(self.engine, self.out, tag, client, rank=self.info.rank, latest=latest)

    def _check_finite(self, loss: torch.Tensor) -> None:
        bad = torch.tensor([0.0 if torch.isfinite(loss.detach()).all() else 1.0])
        if self.info.world_size > 1:
            torch.distributed.all_reduce(bad)
        if bad.item() > 0:
            raise Diverged(f"the loss became {loss.item()} at step {self.engine.global_steps + 1}")

    def _evaluate_dev(self, state: RunState) -> None:
        step = self.engine.global_steps
        result = self._evaluate("dev", with_attention=False)
        epoch = self._epochs_done(step)
        state.history.append({"step": step, "epoch": epoch, "score": result["score"], "metrics": result["metrics"]})
        log.info("dev at step %d: %.3f %s", step, result["score"], result["metrics"])
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
                          cap_bytes=self.memory_cap.get("cap_bytes"))
        # Time spent evaluating in this process (not carried over a --resume), for the run record.
        spent = self.eval_time.setdefault(split, {"seconds": 0.0, "calls": 0})
        spent["seconds"] = round(spent["seconds"] + time.perf_counter() - start, 3)
        spent["calls"] += 1
        return result

    def train(self) -> RunState:
        cfg, engine = self.cfg, self.engine
        state = self._resume()
        eval_every = cfg.eval_every or self.steps_per_epoch
        engine.train()
        progress = _progress(self.info.is_main, self.total_steps, engine.global_steps)
        device = engine.device
        with progress:
            task = progress.add_task("train", total=self.total_steps, completed=engine.global_steps, loss=float("nan"), rate=0.0)
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
                    engine.step()
                    state.train_seconds += time.perf_counter() - start
                    state.examples += len(items) * self.info.world_size
                    if engine.global_steps == before:
                        continue  # inside a gradient-accumulation window
                    step = engine.global_steps
                    state.losses.append(round(loss.item(), 6))
                    rate = state.examples_per_s
                    progress.update(task, completed=step, loss=loss.item(), rate=rate)
                    if step % 10 == 0 or step == self.total_steps:
                        log.info("step %d loss %.4f lr %s %.1f ex/s", step, loss.item(),
                                 [round(g["lr"], 6) for g in engine.optimizer.param_groups], rate)
                    if step % eval_every == 0 or step == self.total_steps:
                        self._evaluate_dev(state)
                    if not cfg.no_checkpoints and (step % cfg.save_every == 0 or step == self.total_steps):
                        self._save(f"step{step}", state)
                        self.hooks.after_checkpoint(step)
                    if step >= self.total_steps:
                        break
        return state

    # --- finish: best weights back, final evaluation, artefacts, the run record --------------
    def finish(self, state: RunState, started: float) -> dict | None:
        steps = self.engine.global_steps  # before loading "best" rewinds the step counter
        self._reload_best(state)
        attention = needs(self.cfg.method).attention and self.cfg.save_attention
        results = {split: self._evaluate(split, with_attention=attention) for split in ("dev", "test")}
        save_trainable(self.engine.module, self.out / "trainable.pt", self.info, meta=self._artifact_meta())
        self.hooks.dump_state(self.engine.module, "state")
        memory = dist.memory_report()
        record = None
        if self.info.is_main:
            self._write_outputs(results, attention)
            record = self._record(state, results, steps, memory, started)
            write_json_atomic(self.out / RESULT_FILENAME, record)
        dist.barrier()
        return record

    def _reload_best(self, state: RunState) -> None:
        if state.best is not None and not self.cfg.no_checkpoints:
            # With the optimizer state: under ZeRO-3 the weights live in the optimizer's fp32
            # partitions, and a module-only load leaves the last step's weights in place.
            ckpt.load(self.engine, self.out, "best", rank=self.info.rank, optimizer=True)

    def _write_outputs(self, results: dict, attention: bool) -> None:
        for split, res in results.items():
            save_predictions(self.out, split, self.eval_data[split], res["predictions"])
            if attention:
                save_attention(self.out, split, self.engine.module, res["attention"], self.eval_data[split])

    def _record(self, state: RunState, results: dict, steps: int, memory: dict, started: float) -> dict:
        """result.json (schema in results.py)."""
        return {
            "schema": SCHEMA_VERSION,
            "status": "completed",
            "config": self.cfg.to_dict(),
            "metrics": {split: res["metrics"] for split, res in results.items()},
            "score": {split: res["score"] for split, res in results.items()},
            "best": state.best or {"step": steps, "epoch": self._epochs_done(steps), "dev_score": results["dev"]["score"]},
            "history": state.history,
            "train_loss": state.losses,
            "params": {"trainable": self.trainable, "trainable_per_task": self.trainable / len(self.cfg.tasks),
                       "total": self.total},
            "learning_rates": self.group_lrs,
            "warmup_steps": self.warmup,
            "steps": steps,
            "memory": {**memory, "cap_bytes": self.memory_cap.get("cap_bytes")},
            "throughput": {"train_examples_per_s": state.examples_per_s, "steps": steps, "examples": state.examples,
                           "eval": self.eval_time},
            "wall_time_s": time.time() - started,
            "world_size": self.info.world_size,
            "deepspeed": {"stage": dist.zero_stage(self.ds_config), "config": self.cfg.ds_config},
            "plan": self.plan,
            "versions": package_versions(),
            "git_revision": git_revision(),
        }

    def _artifact_meta(self) -> dict:
        return {"backbone": self.cfg.model, "method": self.cfg.method, "tasks": self.cfg.tasks,
                "prompt_length": self.cfg.prompt_length, "rank": self.cfg.rank}


def _progress(enabled: bool, total: int, done: int):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]:.4f}"), TextColumn("{task.fields[rate]:.1f} ex/s"),
                    TimeElapsedColumn(), disable=not enabled)


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
    except Exception as err:  # noqa: BLE001 - OOM is reported, anything else re-raised
        if not dist.is_oom(err):
            raise
        _fail(cfg, "oom", f"{cfg.model} {cfg.method} with batch {cfg.batch_size} {dist.OOM_HINT}")
        return EXIT_OOM
    if record is not None:
        scores = ", ".join(f"{t}: {m}" for t, m in record["metrics"]["test"].items())
        print(f"done: {cfg.output_dir}/{RESULT_FILENAME}  test {scores}", flush=True)
    return 0


def _fail(cfg: TrainConfig, status: str, reason: str) -> None:
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        write_json_atomic(Path(cfg.output_dir) / FAILURE_FILENAME,
                          {"schema": SCHEMA_VERSION, "status": status, "reason": reason, "config": cfg.to_dict()})
        print(f"error: {reason}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """One run per process (launch/train.py, `attempt-dist train`, a sweep cell's job)."""
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        code = run(cfg)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        code = 2
    if code == 0:
        dist.shutdown()  # after a failure a rank may be gone: the process exits without it
    return code
