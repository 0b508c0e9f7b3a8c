"""Train a tiny frozen T5 + trainable soft prompt through attempt_dist.distributed.

    deepspeed --num_gpus 2 --master_port 29611 tests/dist_scripts/tiny_train.py --config zero2_offload --out /tmp/o
    torchrun --nproc_per_node 2 tests/dist_scripts/tiny_train.py --config zero3_offload --out /tmp/o
    python tests/dist_scripts/tiny_train.py --config zero0 --out /tmp/o

Self-contained on purpose (no attempt_dist.methods): the wrapper mimics the project's method
interface - its forward embeds, asks a called submodule for the prompt, concatenates, and
calls the frozen backbone with inputs_embeds - so the layer is tested on its own.
Each rank writes <out>/rank<R>.pt: losses, per-step group lrs, first-step parameter deltas
per group, digests of the frozen weights before/after, and the trainable state at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo, without pip install

from attempt_dist import distributed as dist  # noqa: E402

PROMPT_LEN = 4
TARGET = torch.tensor([[5, 6, 7]])


class SoftPrompt(nn.Module):
    """Prompt rows (group "prompts") shifted by a gate on the mean input (group "gate")."""

    def __init__(self, d_model: int):
        super().__init__()
        self.prompt = nn.Parameter(torch.randn(PROMPT_LEN, d_model) * 0.5)
        self.gate = nn.Linear(d_model, d_model)

    def forward(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(-1).to(embeds.dtype)
        pooled = (embeds * m).sum(1) / m.sum(1).clamp(min=1)
        return self.prompt.unsqueeze(0) + self.gate(pooled).unsqueeze(1)


class PromptedT5(nn.Module):
    def __init__(self, backbone: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.soft_prompt = SoftPrompt(backbone.config.d_model)

    def _encoder_inputs(self, input_ids, attention_mask):
        embeds = self.backbone.get_input_embeddings()(input_ids)
        prompt = self.soft_prompt(embeds, attention_mask)
        mask = torch.cat([attention_mask.new_ones(attention_mask.shape[0], PROMPT_LEN), attention_mask], 1)
        return torch.cat([prompt.to(embeds.dtype), embeds], 1), mask

    def forward(self, input_ids, attention_mask, labels):
        embeds, mask = self._encoder_inputs(input_ids, attention_mask)
        return self.backbone(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, **kwargs):
        embeds, mask = self._encoder_inputs(input_ids, attention_mask)
        return self.backbone.generate(inputs_embeds=embeds, attention_mask=mask, **kwargs)


def make_batch(rank: int, batch_size: int):
    # A fixed batch per rank (different across ranks, so gradient averaging matters):
    # the target is one fixed 3-token answer, which a prompt learns in a few steps.
    g = torch.Generator().manual_seed(1000 + rank)
    ids = torch.randint(2, 128, (batch_size, 8), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0  # one padded row
    return {"input_ids": ids, "attention_mask": mask, "labels": TARGET.repeat(batch_size, 1)}


def digest(params) -> str:
    h = hashlib.sha256()
    for p in params:
        h.update(p.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="zero0")
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--lr-prompt", type=float, default=0.3)
    parser.add_argument("--lr-gate", type=float, default=0.1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--prompt-outside-init", action="store_true",
                        help="build the trainable prompt after (outside) backbone_init_context")
    parser.add_argument("--from-pretrained", default=None, help="load the backbone from this folder")
    parser.add_argument("--override", type=json.loads, default=None, help="JSON merged over the DeepSpeed config")
    parser.add_argument("--generate", choices=["none", "api", "default", "unsynced"], default="none",
                        help="after training, generate with synced_gpus from needs_synced_gpus / None / False; "
                             "rank r asks for 2 + 3r new tokens so ranks finish at different times")
    dist.add_launcher_args(parser)
    args = parser.parse_args()

    from transformers import T5Config, T5ForConditionalGeneration, get_linear_schedule_with_warmup

    t0 = time.time()
    info = dist.init_distributed()
    cfg = dist.load_ds_config(args.config, micro_batch_size=args.batch_size, grad_accum=args.grad_accum,
                              world_size=info.world_size, overrides=args.override)
    torch.manual_seed(0)  # same initial weights on every rank (ZeRO-3 broadcasts anyway)
    t5cfg = T5Config(vocab_size=128, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_layers=2,
                     decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
                     dropout_rate=0.0)  # no dropout: the loss curve is then deterministic
    with dist.backbone_init_context(cfg):
        if args.from_pretrained:  # partitioned while loading: HfDeepSpeedConfig is alive
            backbone = T5ForConditionalGeneration.from_pretrained(args.from_pretrained)
        else:
            backbone = T5ForConditionalGeneration(t5cfg)
        backbone.requires_grad_(False)
        if not args.prompt_outside_init:
            model = PromptedT5(backbone)
    if args.prompt_outside_init:  # the recipe's order: backbone partitioned, method built after
        model = PromptedT5(backbone)

    frozen = [p for p in model.parameters() if not p.requires_grad]
    groups = {"prompts": [model.soft_prompt.prompt], "gate": list(model.soft_prompt.gate.parameters())}
    with dist.gathered(frozen):
        frozen_before = digest(frozen)
    with dist.gathered(model.soft_prompt.parameters()):
        start = {k: [p.detach().clone() for p in ps] for k, ps in groups.items()}

    optimizer = torch.optim.AdamW(
        [{"params": groups["prompts"], "lr": args.lr_prompt, "name": "prompts"},
         {"params": groups["gate"], "lr": args.lr_gate, "name": "gate"}],
        weight_decay=0.0,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, args.warmup, args.steps)
    engine = dist.initialize_engine(model, optimizer, scheduler, cfg)
    t_init = time.time() - t0

    batch = make_batch(info.rank, args.batch_size)
    losses, lrs, first_delta = [], [], None
    t1 = time.time()
    for step in range(args.steps):
        lrs.append([g["lr"] for g in engine.optimizer.param_groups])
        for _ in range(args.grad_accum):
            loss = engine(**batch)
            engine.backward(loss)
            engine.step()
        losses.append(loss.item())
        if step == 0:
            with dist.gathered(model.soft_prompt.parameters()):
                first_delta = {k: [(p.detach() - s).abs() for p, s in zip(ps, start[k])] for k, ps in groups.items()}
    t_train = time.time() - t1

    with dist.gathered(frozen):
        frozen_after = digest(frozen)
    with dist.gathered(model.soft_prompt.parameters()):
        trainable = {n: p.detach().clone() for n, p in model.soft_prompt.named_parameters()}

    record = {
        "rank": info.rank, "world_size": info.world_size, "stage": dist.zero_stage(cfg),
        "losses": losses, "lrs": lrs, "base_lrs": [args.lr_prompt, args.lr_gate],
        "group_names": [g.get("name") for g in engine.optimizer.param_groups],
        "first_delta": first_delta, "frozen_before": frozen_before, "frozen_after": frozen_after,
        "n_frozen": sum(p.ds_numel if hasattr(p, "ds_numel") else p.numel() for p in frozen),
        "backbone_partitioned": all(hasattr(p, "ds_id") for p in backbone.parameters()),
        "trainable": trainable, "init_s": t_init, "train_s": t_train,
        "memory": dist.memory_report(),
    }
    if args.generate != "none":
        synced = {"api": dist.needs_synced_gpus(cfg), "default": None, "unsynced": False}[args.generate]
        engine.module.eval()
        t2 = time.time()
        out = engine.module.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=2 + 3 * info.rank,
                                     min_new_tokens=2 + 3 * info.rank, do_sample=False, synced_gpus=synced)
        record["generated"] = out
        record["generate_s"] = time.time() - t2
    record["gathered_ranks"] = dist.all_gather_object(info.rank)
    os.makedirs(args.out, exist_ok=True)
    torch.save(record, Path(args.out) / f"rank{info.rank}.pt")
    dist.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
