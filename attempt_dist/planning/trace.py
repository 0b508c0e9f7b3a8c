"""Count the activation memory of one training micro-step by running the real model code.

    trace = trace_step("t5-3b", "attempt", micro_batch=1, source_length=356, target_length=128,
                       dtype=torch.bfloat16, attention="cuda", checkpointing=True)

No formula stands in for T5: the wrapped model (backbone + method, exactly as for training) is
built on the meta device, one forward and backward run on shape-only tensors (no memory, well
under a second even for t5-11b), and three instruments count what a real run would hold:

- `SavedTensors`: every tensor autograd keeps for backward (`saved_tensors_hooks`), deduplicated
  by storage, plus the inputs that non-reentrant activation checkpointing keeps alive for the
  recompute (those bypass the hooks: checkpointing packs them into its own holders).
- `LiveTensors`: a dispatch mode that adds each new storage an op allocates and subtracts it
  when the storage dies; its timeline gives the peak over forward *and* backward, i.e. the
  transient buffers on top of the saved activations (gradient temporaries, the recompute of a
  checkpointed block, the loss's logits).

The same instruments run on real tensors in benchmarks/plan_accuracy.py (CPU, and GPU when one
is lent), which is how the meta trace is checked against measurement. Two kernels save other
tensors on a GPU than on the CPU (attention and dropout); they are replayed for "cuda" plans,
see `attention_kernels`.

Every tensor's size is affine in the micro-batch (either proportional to it or independent of
it), so two traces (micro-batches 2 and 3) give the exact timeline for any batch: see `StepTrace.at`.
"""

from __future__ import annotations

import contextlib
import functools
import weakref
from dataclasses import dataclass
from typing import Callable, Iterator
from unittest import mock

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode


def _storage_key(tensor: torch.Tensor) -> int:
    # The C++ storage's address: views share it, and it is unique on the meta device too
    # (data_ptr() is 0 for every meta tensor).
    return StorageWeakRef(tensor.untyped_storage()).cdata


class SavedTensors:
    """Bytes autograd keeps for backward, each storage once (a context manager)."""

    def __init__(self, model_state: set[int] | None = None) -> None:
        self.storages: dict[int, int] = {}
        # Weights and buffers (Linear saves a transposed view of its weight) are model state,
        # counted elsewhere: skipped by storage.
        self._skip = model_state or set()
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _add(self, tensor: torch.Tensor) -> None:
        key = _storage_key(tensor)
        if key not in self._skip:
            self.storages.setdefault(key, tensor.untyped_storage().nbytes())

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self._add(tensor)
        return tensor

    def add_held(self, tensors) -> None:
        """Tensors kept alive by a checkpointed call's closure (its inputs)."""
        for tensor in pytree.tree_leaves(tensors):
            if isinstance(tensor, torch.Tensor):
                self._add(tensor)

    @property
    def nbytes(self) -> int:
        return sum(self.storages.values())

    def __enter__(self):
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc):
        return self._hooks.__exit__(*exc)


class LiveTensors(TorchDispatchMode):
    """Live bytes of the storages created inside the block, sampled after every op."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.timeline: list[int] = []
        self._tracked: set[int] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        # An output sharing an input's storage is a view or an in-place result: nothing new.
        inputs = {_storage_key(t) for t in pytree.tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor)}
        for tensor in pytree.tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self._track(tensor, inputs)
        self.timeline.append(self.live)
        return out

    def _track(self, tensor: torch.Tensor, inputs: set[int]) -> None:
        storage = tensor.untyped_storage()
        key = _storage_key(tensor)
        if key in self._tracked or key in inputs:
            return
        nbytes = storage.nbytes()
        self._tracked.add(key)
        self.live += nbytes
        weakref.finalize(storage, self._free, key, nbytes)

    def _free(self, key: int, nbytes: int) -> None:
        if key in self._tracked:
            self._tracked.discard(key)
            self.live -= nbytes

    def mark(self) -> int:
        """The live bytes now (e.g. at the end of the forward)."""
        return self.live


TRACED_BATCHES = (2, 3)


@dataclass
class StepTrace:
    """What one micro-step holds, traced at TRACED_BATCHES (sizes are affine in the batch)."""

    saved: tuple[int, int]
    """Bytes saved for backward (incl. checkpoint inputs) at the two traced batches."""
    forward_end: tuple[int, int]
    """Live bytes when the forward has returned (saved activations + the loss's outputs)."""
    timelines: tuple[list[int], list[int]]
    """Live bytes after each op of forward + backward, at the two traced batches."""
    ops: int = 0

    @staticmethod
    def _affine(pair, batch: int) -> int:
        (b0, b1), (v0, v1) = TRACED_BATCHES, pair
        return int(v0 + (batch - b0) * (v1 - v0) // (b1 - b0))

    def saved_bytes(self, batch: int) -> int:
        return self._affine(self.saved, batch)

    def forward_end_bytes(self, batch: int) -> int:
        return self._affine(self.forward_end, batch)

    def peak_bytes(self, batch: int) -> int:
        """Peak live bytes over forward and backward: exact, op by op."""
        return max(self._affine(pair, batch) for pair in self._peak_candidates)

    @functools.cached_property
    def _peak_candidates(self) -> list[tuple[int, int]]:
        # Of the ops whose bytes grow alike with the batch (same v1 - v0), only the largest can
        # be the peak at any batch: tens of thousands of ops reduce to a few hundred lines.
        largest: dict[int, tuple[int, int]] = {}
        for v0, v1 in zip(*self.timelines):
            if v1 - v0 not in largest or v0 > largest[v1 - v0][0]:
                largest[v1 - v0] = (v0, v1)
        return list(largest.values())

    def to_dict(self) -> dict:
        return {"saved": list(self.saved), "forward_end": list(self.forward_end),
                "timelines": [list(t) for t in self.timelines], "ops": self.ops}

    @classmethod
    def from_dict(cls, data: dict) -> "StepTrace":
        return cls(saved=tuple(data["saved"]), forward_end=tuple(data["forward_end"]),
                   timelines=tuple(list(t) for t in data["timelines"]), ops=data["ops"])


# --- kernels that exist only on a GPU -------------------------------------------------------------------
# Checked on an H200 with torch 2.11 (benchmarks/results/gpu-h200-2026-11-26/diag.txt): for T5's
# attention with its additive position bias, SDPA runs cuDNN attention, which keeps q, k, v, the
# bias as given, the output and a [B, H, L, 1] fp32 softmax statistic for backward (the CPU's
# math path keeps the softmax probabilities instead); and dropout keeps a bool mask (one byte an
# element, where the CPU keeps a mask in the activations' dtype). On the meta device these two
# are replayed by the autograd functions below, which save exactly those tensors.


class _CudnnAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, query, key, value, bias):
        batch, heads, length, _ = query.shape
        out = query.new_empty(batch, heads, length, value.shape[-1])
        stats = torch.empty(batch, heads, length, 1, dtype=torch.float32, device=query.device)
        ctx.save_for_backward(query, key, value, bias, out, stats)
        return out

    @staticmethod
    def backward(ctx, grad):
        query, key, value, bias, _, _ = ctx.saved_tensors
        grad_bias = torch.empty_like(bias) if bias is not None and ctx.needs_input_grad[3] else None
        return torch.empty_like(query), torch.empty_like(key), torch.empty_like(value), grad_bias


class _CudaDropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor):
        ctx.save_for_backward(torch.empty(tensor.shape, dtype=torch.bool, device=tensor.device))
        return torch.empty_like(tensor)

    @staticmethod
    def backward(ctx, grad):
        return torch.empty_like(grad)


def _cuda_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                    enable_gqa=False):
    bias = attn_mask
    if bias is not None and bias.dtype == torch.bool:
        bias = torch.zeros(bias.shape, dtype=query.dtype, device=query.device).masked_fill(~bias, float("-inf"))
    return _CudnnAttention.apply(query, key, value, bias)


def _cuda_dropout(input, p=0.5, training=True, inplace=False):
    return _CudaDropout.apply(input) if training and p > 0 else input


@contextlib.contextmanager
def attention_kernels(device: str) -> Iterator[None]:
    """Run attention and dropout as they would run on `device` ("cuda" or "cpu")."""
    if device == "cuda":
        with mock.patch.object(torch.nn.functional, "scaled_dot_product_attention", _cuda_attention), \
                mock.patch.object(torch.nn.functional, "dropout", _cuda_dropout):
            yield
    elif device == "cpu":
        yield
    else:
        raise ValueError(f"unknown attention device {device!r}; use cuda or cpu")


@contextlib.contextmanager
def padded_batch_masks(padded: bool = True) -> Iterator[None]:
    """Plan for batches with padding (the usual case and the larger one: the position bias is
    then materialised per example in every layer) or without. transformers skips the attention
    mask when a batch has no padding, which it decides by reading the mask's values; meta
    tensors have none to read, so the answer is given here."""
    import transformers.masking_utils as masking

    with mock.patch.object(masking, "_ignore_bidirectional_mask_sdpa", lambda *a, **k: not padded), \
            mock.patch.object(masking, "_ignore_causal_mask_sdpa", lambda *a, **k: False):
        yield


@contextlib.contextmanager
def counting_checkpoint_inputs(model: torch.nn.Module, saved: SavedTensors) -> Iterator[None]:
    """Count the inputs of each checkpointed block: non-reentrant checkpointing keeps them alive
    for the recompute without passing them through the saved-tensor hooks."""
    patched = []
    for module in model.modules():
        func = getattr(module, "_gradient_checkpointing_func", None)
        if func is None or not getattr(module, "gradient_checkpointing", False):
            continue

        def counted(function, *args, _func=func, **kwargs):
            saved.add_held(args)
            saved.add_held(getattr(function, "keywords", {}))  # functools.partial(forward, **kwargs)
            return _func(function, *args, **kwargs)

        patched.append((module, func))
        module._gradient_checkpointing_func = counted
    try:
        yield
    finally:
        for module, func in patched:
            module._gradient_checkpointing_func = func


def synthetic_batch(batch: int, source_length: int, target_length: int, device, vocab: int = 1000) -> dict:
    """A batch of the given shape; on a real device its second example ends in padding."""
    input_ids = torch.full((batch, source_length), 5, dtype=torch.long, device=device)
    attention_mask = torch.ones(batch, source_length, dtype=torch.long, device=device)
    if str(device) != "meta" and batch > 1:
        attention_mask[1, source_length // 2:] = 0
        input_ids[1, source_length // 2:] = 0
    labels = torch.full((batch, target_length), 7 % vocab, dtype=torch.long, device=device)
    task_ids = torch.zeros(batch, dtype=torch.long, device=device)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels, "task_ids": task_ids}


def measure_step(model: torch.nn.Module, batch: dict, *, drop_param_grads: bool = True) -> dict:
    """One forward + backward of `model` on `batch` under the instruments.

    Returns {"saved", "forward_end", "timeline"} in bytes. Parameter gradients are dropped as
    soon as they are accumulated (drop_param_grads): DeepSpeed moves them into its own buffers,
    which the planner counts as model state, not activation memory.
    """
    hooks = []
    if drop_param_grads:
        for param in model.parameters():
            if param.requires_grad:
                hooks.append(param.register_post_accumulate_grad_hook(lambda p: setattr(p, "grad", None)))
    model_state = {_storage_key(t) for t in (*model.parameters(), *model.buffers())}
    saved = SavedTensors(model_state)
    try:
        with LiveTensors() as live:
            with saved, counting_checkpoint_inputs(model, saved):
                loss = model(**batch).loss
            forward_end = live.mark()
            loss.backward()
            timeline = list(live.timeline)
            del loss
    finally:
        for hook in hooks:
            hook.remove()
    return {"saved": saved.nbytes, "forward_end": forward_end, "timeline": timeline}


def trace_step(build: Callable[[], torch.nn.Module], *, input_length: int, target_length: int,
               attention: str = "cuda", vocab: int = 1000, padded: bool = True) -> StepTrace:
    """Meta-device traces of the model that `build()` returns (already in its training dtype,
    with or without checkpointing) at two micro-batches, 2 and 3 (at 1 some broadcasts become
    no-op views and the op sequence differs slightly; sizes stay affine either way)."""
    model = build()
    model.train()
    results = []
    with attention_kernels(attention), padded_batch_masks(padded):
        for batch_size in TRACED_BATCHES:
            batch = synthetic_batch(batch_size, input_length, target_length, "meta", vocab)
            batch["use_cache"] = False  # what training does anyway (silences transformers' warning)
            results.append(measure_step(model, batch))
    one, two = results
    if len(one["timeline"]) != len(two["timeline"]):
        raise RuntimeError("the traced step ran different ops at two batch sizes; cannot extrapolate")
    return StepTrace(saved=(one["saved"], two["saved"]), forward_end=(one["forward_end"], two["forward_end"]),
                     timelines=(one["timeline"], two["timeline"]), ops=len(one["timeline"]))
