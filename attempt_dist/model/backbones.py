"""The T5 family: exact architecture numbers, and three ways to build each backbone.

    pretrained  `from_pretrained` from the hub id or a local folder (real weights)
    random      from the config with random weights (tests, memory and throughput runs)
    meta        on torch.device("meta"): no memory, for counting parameters

Counting uses `with torch.device("meta")`, not accelerate's `init_empty_weights`: with
transformers 5 the latter breaks T5's input/output embedding tying and t5-small then counts
109.9M parameters instead of 60.5M.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from ..errors import UserError, shown

ASSETS = Path(__file__).resolve().parents[1] / "assets"
# What transformers' T5 accepts as its attention (5.x: sdpa and flex, no FlashAttention: the
# relative position bias is an additive mask); sdpa first, the default.
ATTN_IMPLEMENTATIONS = ("sdpa", "eager", "flex_attention")

if TYPE_CHECKING:  # imported where used: transformers takes seconds, and a run refused at its
    # arguments (and the light commands: tasks, params) should not pay for it
    from transformers import T5Config, T5ForConditionalGeneration


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    hub_id: str
    d_model: int
    d_ff: int
    d_kv: int
    num_heads: int
    num_layers: int
    num_decoder_layers: int | None = None
    vocab_size: int = 32128
    feed_forward_proj: str = "relu"
    tie_word_embeddings: bool = True
    # Weights shipped inside the package (a folder under attempt_dist/assets): a backbone
    # built here, loaded "pretrained" with no hub id and no network.
    weights: str = ""

    @property
    def pretrained_source(self) -> str:
        """Where "pretrained" loads from by default: the shipped folder, else the hub id."""
        return str(ASSETS / self.weights) if self.weights else self.hub_id

    def config(self) -> T5Config:
        from transformers import T5Config

        return T5Config(
            vocab_size=self.vocab_size,
            d_model=self.d_model,
            d_ff=self.d_ff,
            d_kv=self.d_kv,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            num_decoder_layers=self.num_decoder_layers or self.num_layers,
            feed_forward_proj=self.feed_forward_proj,
            tie_word_embeddings=self.tie_word_embeddings,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )


def _v11(name: str, hub_id: str, d: int, ff: int, heads: int, layers: int) -> BackboneSpec:
    # T5 v1.1 (LM-adapt) and flan-t5: gated-GELU feed-forward. Their checkpoints have untied
    # input/output embeddings, but transformers 5's T5Config forces tie_word_embeddings=True
    # (it keeps the flag only as `scale_decoder_outputs`), so their counts here are the tied
    # ones; the paper's backbones (T5 v1.0) are tied anyway.
    return BackboneSpec(name, hub_id, d, ff, 64, heads, layers, feed_forward_proj="gated-gelu",
                        tie_word_embeddings=False)


_SPECS = [
    # The original T5 (v1.0) checkpoints the paper uses.
    BackboneSpec("t5-small", "google-t5/t5-small", 512, 2048, 64, 8, 6),
    BackboneSpec("t5-base", "google-t5/t5-base", 768, 3072, 64, 12, 12),
    BackboneSpec("t5-large", "google-t5/t5-large", 1024, 4096, 64, 16, 24),
    BackboneSpec("t5-3b", "google-t5/t5-3b", 1024, 16384, 128, 32, 24),
    BackboneSpec("t5-11b", "google-t5/t5-11b", 1024, 65536, 128, 128, 24),
    _v11("t5-v1_1-small-lm-adapt", "google/t5-small-lm-adapt", 512, 1024, 6, 8),
    _v11("t5-v1_1-base-lm-adapt", "google/t5-base-lm-adapt", 768, 2048, 12, 12),
    _v11("t5-v1_1-large-lm-adapt", "google/t5-large-lm-adapt", 1024, 2816, 16, 24),
    _v11("t5-v1_1-xl-lm-adapt", "google/t5-xl-lm-adapt", 2048, 5120, 32, 24),
    _v11("flan-t5-small", "google/flan-t5-small", 512, 1024, 6, 8),
    _v11("flan-t5-base", "google/flan-t5-base", 768, 2048, 12, 12),
    _v11("flan-t5-large", "google/flan-t5-large", 1024, 2816, 16, 24),
    _v11("flan-t5-xl", "google/flan-t5-xl", 2048, 5120, 32, 24),
    # Test-sized T5s (random weights only, no hub id): their vocabulary matches the local
    # test tokenizer. Two sizes, so the CPU demo sweep can draw a scaling curve.
    BackboneSpec("t5-tiny", "", 32, 64, 8, 4, 2, vocab_size=1024),
    BackboneSpec("t5-mini", "", 64, 128, 16, 4, 4, vocab_size=1024),
    # A toy T5 pretrained here on the toy source tasks plus span corruption (python -m
    # attempt_dist.toy.pretrain; how exactly: assets/t5-toy/README.md), on the test tokenizer:
    # the CPU demo's backbone that has learned something.
    BackboneSpec("t5-toy", "", 64, 256, 16, 4, 2, vocab_size=1024, weights="t5-toy"),
]
BACKBONES: dict[str, BackboneSpec] = {spec.name: spec for spec in _SPECS}
# The backbones of the paper's scaling study, in size order (Figure 4).
PAPER_BACKBONES = ["t5-small", "t5-base", "t5-large", "t5-3b", "t5-11b"]
# Backbones on the committed test tokenizer, built or initialised here (no hub id): the
# random-weight t5-tiny and t5-mini, and t5-toy with its shipped weights.
TEST_BACKBONES = [spec.name for spec in _SPECS if not spec.hub_id]


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise UserError(
            f"unknown backbone {shown(name)}; known backbones: {', '.join(BACKBONES)}"
        ) from None


def build_backbone(
    name: str,
    mode: str = "random",
    *,
    dtype: torch.dtype | None = None,
    path: str | Path | None = None,
    seed: int | None = None,
) -> T5ForConditionalGeneration:
    """Build backbone `name`; mode is "pretrained", "random" or "meta".

    "pretrained" loads `path` if given (a local folder), else the spec's hub id; offline with
    no local copy it raises a UserError that names what it needs.
    """
    from transformers import T5ForConditionalGeneration

    spec = get_spec(name)
    if mode == "meta":
        with torch.device("meta"):
            model = T5ForConditionalGeneration(spec.config())
    elif mode == "random":
        if seed is not None:
            torch.manual_seed(seed)
        model = T5ForConditionalGeneration(spec.config())
    elif mode == "pretrained":
        source = str(path) if path else spec.pretrained_source
        if not source:
            raise UserError(f"{name} has no pretrained weights; use random initialisation for it")
        try:
            model = T5ForConditionalGeneration.from_pretrained(source, dtype=dtype or torch.float32)
        except OSError as err:
            raise UserError(
                f"cannot load pretrained {name} from {source!r} ({str(err).splitlines()[0]}); "
                "pass a local folder with --model-path, or go online to download it"
            ) from None
    else:
        raise UserError(f"unknown build mode {mode!r}; use pretrained, random or meta")
    if dtype is not None and mode != "pretrained":
        model = model.to(dtype)
    return model


def use_attention(model: T5ForConditionalGeneration, implementation: str, *, training: bool = True) -> None:
    """Run T5's attention with `implementation` (one of ATTN_IMPLEMENTATIONS): the same attention
    by another kernel. Without a GPU flex attention cannot train (torch has no CPU backward for
    it); a run trained with it predicts on the CPU through sdpa."""
    if implementation == "flex_attention" and not torch.cuda.is_available():
        if training:
            raise UserError("--attn-implementation flex_attention needs a GPU (torch's flex attention has no "
                            "backward on the CPU); use sdpa (the default) or eager")
        implementation = "sdpa"
    model.set_attn_implementation(implementation)


def enable_activation_checkpointing(model: T5ForConditionalGeneration) -> None:
    """Recompute every T5 block in backward instead of keeping its activations.

    Non-reentrant checkpointing (torch.utils.checkpoint, use_reentrant=False): gradients reach
    parameters inside a block (adapters, BitFit biases, fine-tuned weights) and the prompts
    upstream of it even though the frozen block's own inputs need no gradient, and dropout
    masks are replayed exactly (the RNG state is restored for the recompute). transformers
    checkpoints T5Block.forward, not __call__: the block's own hooks stay outside, and its
    submodules, which hold the weights, are called again on recompute, so ZeRO-3 re-gathers them.

    transformers (5.x) also calls `enable_input_require_grads()` here, because T5's main input
    is input_ids: forward hooks on `shared` and both stacks' `embed_tokens` force every
    embedding output to require grad, our inputs_embeds included (the wrapper embeds through
    `get_input_embeddings()`). Only reentrant checkpointing needs that; here it only adds
    backward work and saved tensors, so the hooks are removed again.
    """
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.2x
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    if getattr(model, "_require_grads_hook", None) is not None:
        model.disable_input_require_grads()


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Stop gradients to every parameter of `model` (the frozen backbone)."""
    for param in model.parameters():
        param.requires_grad_(False)
    return model


