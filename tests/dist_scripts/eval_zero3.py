"""Evaluation under ZeRO-3 through the recipe: gather once vs gather per decoding step.

    deepspeed --num_gpus 2 tests/dist_scripts/eval_zero3.py --out /tmp/o -- --model t5-tiny --method attempt \
        --tasks rte,cb --data-dir examples/data --source-prompts LIB --ds-config zero3_offload --output-dir /tmp/o/run

Sets up the real training recipe (everything after `--` is train.py's command line), then on
every rank: evaluates dev through Recipe._evaluate with the parameters gathered once, again
with ATTEMPT_DIST_EVAL_GATHER=never (today's per-step gathers), and once more unsorted;
counts the ZeRO-3 pre-forward fetches each evaluation made; generates a different number of
tokens per rank inside gathered_for_generation with synced_gpus=False (a collective left in
generate would hang or abort); checks the hooks and partitions are back (same hook counts,
every parameter released, a forward gives the same loss as before); takes one training step
(run it with --warmup-steps 0 so that the step moves the trainable parameters).
Each rank writes <out>/rank<R>.pt.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, without pip install

from attempt_dist import distributed as dist  # noqa: E402
from attempt_dist.training.evaluate import evaluate  # noqa: E402
from attempt_dist.training.recipe import Recipe  # noqa: E402
from attempt_dist.training.config import build_parser, config_from_args  # noqa: E402


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    dist.add_launcher_args(parser)
    args = parser.parse_args(argv[:split])
    cfg = config_from_args(build_parser().parse_args(argv[split + 1:]))

    recipe = Recipe(cfg)
    recipe.setup()
    engine, module, rank = recipe.engine, recipe.engine.module, recipe.info.rank
    offload = engine.optimizer.parameter_offload
    hooks_before = (len(offload.forward_hooks), len(offload.backward_hooks))

    # A random tiny T5 generates nothing but padding; weights x3 make it say varied words (so
    # predictions that came out of a wrong path would differ).
    frozen = [p for p in module.parameters() if not p.requires_grad]
    with dist.gathered(frozen, modifier_rank=0), torch.no_grad():
        for p in frozen:
            p.mul_(3)

    fetches = [0]
    pre_forward = offload.pre_sub_module_forward_function

    def counting(sub_module):  # the hooks look the method up on every call
        fetches[0] += 1
        return pre_forward(sub_module)

    offload.pre_sub_module_forward_function = counting

    feats = recipe.data.train_features[0][:2]
    batch = recipe.data.collator(feats)
    batch.pop("indices")

    def loss_now() -> float:
        module.eval()
        with torch.no_grad():
            value = engine(**batch).loss.item()
        module.train()
        return value

    def timed(fn):
        fetches[0] = 0
        start = time.perf_counter()
        out = fn()
        return out, fetches[0], time.perf_counter() - start

    loss_before = loss_now()
    once, once_fetches, once_s = timed(lambda: recipe._evaluate("dev", with_attention=True))
    os.environ[dist.EVAL_GATHER_ENV] = "never"
    per_step, per_step_fetches, per_step_s = timed(lambda: recipe._evaluate("dev", with_attention=True))
    del os.environ[dist.EVAL_GATHER_ENV]
    unsorted = evaluate(engine, recipe.data.eval_data["dev"], split="dev", tokenizer=recipe.data.tokenizer,
                        collator=recipe.data.collator, batch_size=cfg.eval_batch_size or 2 * cfg.batch_size,
                        info=recipe.info, max_target_length=cfg.max_target_length,
                        synced_gpus=recipe.synced_gpus, with_attention=True, sort_by_length=False)

    # Ranks stop at different lengths: with a collective left inside generate, rank 0 (done
    # first) would leave rank 1 waiting on it.
    new_tokens = 2 + 3 * rank
    fetches[0] = 0
    with dist.gathered_for_generation(engine) as whole:
        module.eval()
        generated = module.generate(batch["input_ids"], batch["attention_mask"], task_ids=batch["task_ids"],
                                    max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                    synced_gpus=False)
    uneven_fetches = fetches[0]
    hooks_after = (len(offload.forward_hooks), len(offload.backward_hooks))
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    released = all(p.ds_status == ZeroParamStatus.NOT_AVAILABLE or p.ds_persist for p in module.parameters())
    loss_after = loss_now()

    trainable = [p for p in module.parameters() if p.requires_grad]
    with dist.gathered(trainable):
        start = [p.detach().clone() for p in trainable]
    engine.train()
    fetches[0] = 0
    loss = engine(**{k: v.to(engine.device) for k, v in batch.items()}).loss
    engine.backward(loss)
    engine.step()
    train_fetches = fetches[0]
    with dist.gathered(trainable):
        moved = [not torch.equal(p.detach(), s) for p, s in zip(trainable, start)]

    record = {
        "rank": rank, "world_size": recipe.info.world_size, "stage": dist.zero_stage(recipe.ds_config),
        "once": once, "per_step": per_step, "unsorted": unsorted,
        "fetches": {"once": once_fetches, "per_step": per_step_fetches, "uneven": uneven_fetches,
                    "train_step": train_fetches},
        "seconds": {"once": once_s, "per_step": per_step_s},
        "gathered": whole, "generated": generated, "new_tokens": new_tokens,
        "hooks_before": hooks_before, "hooks_after": hooks_after, "released": released,
        "loss_before": loss_before, "loss_after": loss_after, "moved": moved,
        "gathered_ranks": dist.all_gather_object(rank),
    }
    os.makedirs(args.out, exist_ok=True)
    torch.save(record, Path(args.out) / f"rank{rank}.pt")
    dist.barrier()
    return 0


if __name__ == "__main__":
    sys.exit(main())
