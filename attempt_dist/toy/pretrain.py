"""Pretrain t5-toy: a T5 of under a million parameters on the test tokenizer, trained from a
seed on a text-to-text mixture of the toy source tasks and T5-style span corruption.

    python -m attempt_dist.toy.pretrain                       # writes attempt_dist/assets/t5-toy
    python -m attempt_dist.toy.pretrain --steps 5 --output-dir /tmp/toy   # a quick check

Deterministic: the same seed, steps and thread count give byte-identical weights (every
random draw comes from the seed; torch runs its CPU kernels with --threads threads, which is
what fixes the order of floating-point sums). The original T5 checkpoints were pretrained on
span corruption mixed with supervised tasks; this is the same recipe at toy scale, and only
the *source* tasks are in it, so the toy targets stay new to the backbone.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch

from ..model.backbones import ASSETS, get_spec
from ..data.loading import load_task_splits
from ..tasks.toy import SOURCES
from ..model.tokenizer import load_tokenizer

NAME = "t5-toy"
DEFAULTS = {"seed": 0, "steps": 3000, "batch_size": 16, "lr": 3e-3, "warmup": 100, "threads": 1}
# Each batch row is drawn from one of these, equally often.
MIXTURE = (*SOURCES, "span_corruption")
NOISE_DENSITY, MEAN_SPAN = 0.15, 3.0
EOS = 1


def _sentinel(k: int, vocab_size: int) -> int:
    # As in T5, sentinels are the top ids of the model's vocabulary: the test tokenizer's 601
    # tokens leave ids 601..1023 unused, so they never collide with real text.
    return vocab_size - 1 - k


def span_corrupt(ids: list[int], rng: random.Random, vocab_size: int) -> tuple[list[int], list[int]]:
    """(input, target) ids: ~15% of the tokens, in spans of mean length 3, replaced by sentinels
    in the input; the target lists each sentinel followed by the tokens it hides."""
    n = len(ids)
    noise = max(1, round(n * NOISE_DENSITY))
    spans = max(1, min(noise, round(noise / MEAN_SPAN)))
    starts = sorted(rng.sample(range(n), spans))
    inputs, target, masked_until, k = [], [], -1, 0
    for i, tok in enumerate(ids):
        if i in starts and i > masked_until:
            length = max(1, min(round(rng.expovariate(1 / MEAN_SPAN)), n - i))
            sentinel = _sentinel(k, vocab_size)
            inputs.append(sentinel)
            target.extend([sentinel, *ids[i:i + length]])
            masked_until, k = i + length - 1, k + 1
        elif i > masked_until:
            inputs.append(tok)
    return inputs + [EOS], target + [EOS]


def encode_pairs(tokenizer) -> dict[str, list[tuple[list[int], list[int]]]]:
    """Every source task's training pairs, and the plain texts span corruption reads."""
    def encode(texts: list[str]) -> list[list[int]]:
        # as the harness tokenises (data/features.py): no special tokens, then EOS
        return [list(ids) for ids in tokenizer(texts, add_special_tokens=False).input_ids]

    pairs, texts = {}, []
    for task in SOURCES:
        examples = load_task_splits(task, None)["train"]
        src = encode([e.source for e in examples])
        tgt = encode([e.target for e in examples])
        pairs[task] = [(s + [EOS], t + [EOS]) for s, t in zip(src, tgt)]
        texts.extend(src)
    pairs["span_corruption"] = texts
    return pairs


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows])


def make_batch(pairs, rng: random.Random, batch_size: int, vocab_size: int) -> dict[str, torch.Tensor]:
    sources, targets = [], []
    for _ in range(batch_size):
        kind = rng.choice(MIXTURE)
        if kind == "span_corruption":
            src, tgt = span_corrupt(rng.choice(pairs[kind]), rng, vocab_size)
        else:
            src, tgt = rng.choice(pairs[kind])
        sources.append(src)
        targets.append(tgt)
    input_ids = _pad(sources, 0)
    return {"input_ids": input_ids, "attention_mask": (input_ids != 0).long(), "labels": _pad(targets, -100)}


def build_model(seed: int):
    from transformers import T5ForConditionalGeneration

    config = get_spec(NAME).config()
    config.dropout_rate = 0.0  # tiny model, short run: nothing to regularise
    torch.manual_seed(seed)
    return T5ForConditionalGeneration(config)


def source_accuracy(model, tokenizer, per_task: int = 100) -> dict[str, float]:
    """Exact-match accuracy (percent) of greedy decoding on each source task's dev split."""
    model.eval()
    out = {}
    with torch.no_grad():
        for task in SOURCES:
            examples = load_task_splits(task, None)["dev"][:per_task]
            ids = [list(x) + [EOS] for x in tokenizer([e.source for e in examples], add_special_tokens=False).input_ids]
            input_ids = _pad(ids, 0)
            generated = model.generate(input_ids=input_ids, attention_mask=(input_ids != 0).long(),
                                       max_new_tokens=16, do_sample=False, num_beams=1)
            texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
            out[task] = round(100 * sum(t.strip() == e.target for t, e in zip(texts, examples)) / len(examples), 1)
    model.train()
    return out


def pretrain(output_dir: Path, seed: int, steps: int, batch_size: int, lr: float, warmup: int,
             threads: int, log_every: int = 100) -> dict:
    torch.set_num_threads(threads)
    tokenizer = load_tokenizer(NAME)
    vocab_size = get_spec(NAME).vocab_size
    pairs = encode_pairs(tokenizer)
    model = build_model(seed)
    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
    started = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        loss = model(**make_batch(pairs, rng, batch_size, vocab_size)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if step % log_every == 0 or step == steps:
            print(f"step {step}/{steps} loss {loss.item():.4f} ({time.perf_counter() - started:.0f}s)", flush=True)
    seconds = time.perf_counter() - started
    accuracy = source_accuracy(model, tokenizer)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir, safe_serialization=True)
    recipe = {"seed": seed, "steps": steps, "batch_size": batch_size, "lr": lr, "warmup": warmup,
              "threads": threads, "mixture": list(MIXTURE), "noise_density": NOISE_DENSITY,
              "mean_span": MEAN_SPAN, "parameters": sum(p.numel() for p in model.parameters()),
              "final_loss": round(loss.item(), 4), "source_dev_exact_match": accuracy,
              "train_seconds": round(seconds)}
    print(json.dumps(recipe, indent=2))
    write_card(output_dir, recipe)
    return recipe


def write_card(output_dir: Path, recipe: dict) -> Path:
    """The model card beside the weights: what the backbone is and exactly how it was made."""
    spec = get_spec(NAME)
    flags = " ".join(f"--{k.replace('_', '-')} {recipe[k]}" for k in DEFAULTS)
    card = f"""# t5-toy

A T5 (v1.0 layout: ReLU feed-forward, tied embeddings) of {recipe['parameters']:,} parameters,
pretrained on two CPU cores by this repository for its CPU demo; not a model of language.

- Architecture: d_model {spec.d_model}, d_ff {spec.d_ff}, {spec.num_heads} heads of {spec.d_kv},
  {spec.num_layers} encoder + {spec.num_layers} decoder layers, vocabulary {spec.vocab_size} (the
  committed test tokenizer, attempt_dist/assets/t5-tiny-tokenizer.json, whose 601 tokens leave
  the top ids free: span-corruption sentinels are ids {spec.vocab_size - 1}, {spec.vocab_size - 2}, ...).
- Data: an equal mixture, per batch row, of {', '.join(recipe['mixture'])}. The three tasks are
  the toy *source* tasks (attempt_dist/tasks/toy.py, train splits, generated in code); span
  corruption masks {recipe['noise_density']:.0%} of the tokens of those tasks' inputs in spans of
  mean length {recipe['mean_span']:g}. The toy *target* tasks are not in it.
- Training: seed {recipe['seed']}, {recipe['steps']} steps of batch {recipe['batch_size']}, AdamW
  (lr {recipe['lr']}, weight decay 0.01, {recipe['warmup']} warm-up steps then linear decay to 0,
  gradient clipping 1.0), dropout 0, fp32, {recipe['threads']} torch thread(s).
- Result: final batch loss {recipe['final_loss']}; greedy exact match on 100 dev examples of each
  source task: {json.dumps(recipe['source_dev_exact_match'])}.
- Time: {recipe['train_seconds']} s of training on a 2-core machine shared with other jobs.

Made by

    python -m attempt_dist.toy.pretrain {flags}

which rewrites model.safetensors byte for byte (same seed, steps and thread count; the torch
version of constraints.txt), config.json and this card (whose time line will differ).
"""
    path = output_dir / "README.md"
    path.write_text(card)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attempt_dist.toy.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", type=Path, default=ASSETS / NAME)
    for key, value in DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    pretrain(args.output_dir, args.seed, args.steps, args.batch_size, args.lr, args.warmup, args.threads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
