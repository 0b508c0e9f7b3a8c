"""ATTEMPT's prompt on the bf16 path (issue 17): no fp32 copies of the prompts per micro-step, the
softmax still in fp32; fp32 results unchanged bit for bit, bf16 losses within bf16's tolerance of
the former fp32-island computation."""

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from attempt_dist.methods.attempt import AttemptPrompt, masked_max_pool
from tests.model_helpers import PROMPT_LENGTH, batch, wrap

BF16_RTOL = 2e-2  # a few bf16 roundings (8-bit mantissa) of the loss's inputs
BF16_GRAD_RTOL = 2e-2  # relative (norm) error of a bf16 gradient


def former_forward(self, embeds, mask, task_ids):
    """AttemptPrompt.forward as it was before: the prompts cast to fp32 every call, both einsums in fp32."""
    targets = None if self.target is None else self.target[task_ids].float()
    batch_size, num_sources = embeds.shape[0], self.sources.shape[0]
    if self.gate is None:
        weights = embeds.new_full((batch_size, num_sources), 1.0 / num_sources, dtype=torch.float32)
    else:
        hidden = self.gate(masked_max_pool(embeds, mask).to(self.gate.down.weight.dtype)).float()
        keys = self.sources.amax(dim=1).unsqueeze(0).expand(batch_size, -1, -1)
        if targets is not None:
            keys = torch.cat([keys, targets.amax(dim=1, keepdim=True)], dim=1)
        logits = torch.einsum("bkd,bd->bk", keys.float(), hidden) / (self.d_model * math.exp(self.temperature))
        weights = torch.softmax(logits, dim=-1)
    mixed = torch.einsum("bt,tmd->bmd", weights[:, :num_sources], self.sources.float())
    if targets is None:
        return mixed, weights
    if self.gate is None:
        return targets + mixed, weights
    return targets + mixed + weights[:, num_sources:, None] * targets, weights


def _loss_and_grads(model, data):
    model.zero_grad(set_to_none=True)
    loss = model(**data).loss
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def _both(ablation, dtype, monkeypatch):
    """(loss, gradients) of one ATTEMPT-MT step now and with the former forward, on the same model."""
    model, _ = wrap("attempt", num_tasks=2, ablation=ablation)
    model = model.to(dtype)  # what DeepSpeed's bf16 does to the module, buffers included
    data = batch(batch_size=4, num_tasks=2)
    now = _loss_and_grads(model, data)
    monkeypatch.setattr(AttemptPrompt, "forward", former_forward)
    return now, _loss_and_grads(model, data)


@pytest.mark.parametrize("ablation", ["none", "no_target", "constant_attention"])
def test_fp32_loss_and_gradients_are_unchanged_bit_for_bit(ablation, monkeypatch):
    (loss, grads), (former_loss, former_grads) = _both(ablation, torch.float32, monkeypatch)
    assert torch.equal(loss, former_loss)
    assert grads.keys() == former_grads.keys() and all(torch.equal(grads[n], former_grads[n]) for n in grads)


@pytest.mark.parametrize("ablation", ["none", "no_target"])
def test_bf16_loss_stays_within_bf16_tolerance(ablation, monkeypatch):
    (loss, _), (former_loss, _) = _both(ablation, torch.bfloat16, monkeypatch)
    assert torch.allclose(loss.float(), former_loss.float(), rtol=BF16_RTOL)


def _prompt_grads(model, data, upstream):
    """The prompt module's gradients for a fixed upstream gradient of its output (no backbone
    backward, whose own bf16 noise would hide the module's)."""
    model.zero_grad(set_to_none=True)
    embeds = model.backbone.get_input_embeddings()(data["input_ids"])
    prompt, _ = model.prompt(embeds, data["attention_mask"], data["task_ids"])
    (prompt.float() * upstream).sum().backward()
    return {n: p.grad.float().clone() for n, p in model.prompt.named_parameters()}


@pytest.mark.parametrize("ablation", ["none", "no_target"])
def test_bf16_gradients_are_as_close_to_fp32_as_before(ablation, monkeypatch):
    model, _ = wrap("attempt", num_tasks=2, ablation=ablation)
    data = batch(batch_size=8, num_tasks=2)
    upstream = torch.randn(8, PROMPT_LENGTH, model.config.d_model, generator=torch.Generator().manual_seed(0))
    exact = _prompt_grads(model, data, upstream)
    model = model.to(torch.bfloat16)
    now = _prompt_grads(model, data, upstream)
    monkeypatch.setattr(AttemptPrompt, "forward", former_forward)
    former = _prompt_grads(model, data, upstream)

    def error(grads, name):
        return ((grads[name] - exact[name]).norm() / exact[name].norm()).item()

    for name in exact:  # bf16's rounding: about 1% (an 8-bit mantissa), as with the fp32 islands
        assert error(now, name) <= max(2 * error(former, name), BF16_GRAD_RTOL), (name, error(now, name),
                                                                                 error(former, name))


class Fp32Tensors(TorchDispatchMode):
    """The sizes of the fp32 tensors the ops inside it create."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32:
                self.sizes.append(tensor.numel())
        return out


def test_bf16_prompt_makes_no_fp32_copies_of_the_prompts():
    model, cfg = wrap("attempt", num_tasks=2)
    model = model.to(torch.bfloat16)
    data = batch(batch_size=4, num_tasks=2)
    embeds = model.backbone.get_input_embeddings()(data["input_ids"])
    with Fp32Tensors() as seen:
        prompt, weights = model.prompt(embeds, data["attention_mask"], data["task_ids"])
    assert prompt.dtype == torch.bfloat16 and weights.dtype == torch.float32
    # Only the attention logits and weights ([B, t+1]) are fp32; before, every call also made fp32
    # copies of the source prompts [t, m, d], the batch's target prompts and the mix [B, m, d].
    assert seen.sizes and max(seen.sizes) <= weights.numel()
