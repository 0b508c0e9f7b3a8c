"""ATTEMPT (Asai et al. 2022): an instance-wise mixture of frozen source prompts and a
trainable target prompt, weighted by a small attention gate G shared across target tasks.

For input embeddings X [l, d] (padding masked out), source prompts P_1..P_t and the
example's own target prompt P_target = P_{t+1}:

    X^      = max-pool of X over tokens                               [d]
    H       = LayerNorm(W_up^T SiLU(W_down^T X^))                     [d]   (G; eq. under 3.2.1)
    P^_j    = max-pool of P_j over its m rows                         [d]
    a_j     = softmax_j( P^_j . H / (d * e^K) ),  j = 1..t+1          (eq. 3, with temperature K)
    P_inst  = P_target + sum_{j=1}^{t+1} a_j P_j                       (eq. 4)

Source prompts are buffers: frozen, saved with the model, never seen by the optimizer.
Ablations (Table 4): no_target (no P_target: softmax over the t sources, P_inst = sum a_j P_j),
constant_attention (no G: a_j = 1/t over the sources, P_inst = P_target + mean_j P_j) and
single_prompt (one source prompt only: by default the one SPoT-t selects for the target, as
section 6.1 describes it, "similar to SPoT-t except that ... we keep the source prompt frozen";
`single_source NAME` names it instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .base import MethodConfig, WrappedT5, parameter_groups, positive_int
from .inputs import MethodInputs
from .needs import Needs
from .options import option
from . import spot
from .prompt import initial_prompts

ABLATIONS = ("none", "no_target", "constant_attention", "single_prompt")
SINGLE_SOURCE_AUTO = "auto"


NEEDS = Needs(prompt=True, library=True, prior=True, attention=True)


@dataclass
class Config(MethodConfig):
    lr: float = 0.3  # the target prompts' rate
    gate_lr: float = option(0.3, "learning rate of the attention gate G, the second speed of the two-speed "
                                 "schedule (the paper: 0.1 for SuperGLUE and the 'others' multi-task runs)")
    prompt_length: int = option(100, "m, rows of every prompt")
    bottleneck: int = option(100, "r, the bottleneck of the attention gate's down/up projection",
                             aliases=("--rank",))
    temperature: float = option(1.0, "K: attention logits are scaled by 1 / (d e^K)", flag="--attention-temperature")
    ablation: str = option("none", "Table 4 ablation", choices=ABLATIONS)
    single_source: str = option(SINGLE_SOURCE_AUTO, "single_prompt ablation: the source prompt to keep; 'auto' "
                                "(default) keeps the one SPoT-t selects for the target (6.1), read from the "
                                "target's probe (--spot-probe)")

    def validate(self) -> None:
        super().validate()
        if not (isinstance(self.gate_lr, (int, float)) and math.isfinite(self.gate_lr) and self.gate_lr > 0):
            raise UserError(f"gate_lr must be a positive finite number, got {self.gate_lr!r}")
        positive_int("prompt_length", self.prompt_length)
        positive_int("bottleneck", self.bottleneck)
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)):
            raise UserError(f"temperature K must be a finite number, got {self.temperature!r}")
        if self.ablation not in ABLATIONS:
            raise UserError(f"unknown ATTEMPT ablation {self.ablation!r}; known: {', '.join(ABLATIONS)}")


class AttentionGate(nn.Module):
    """G: X^ [B, d] -> H [B, d]: down (d x r, no bias) -> SiLU -> up (r x d) -> LayerNorm.

    2rd + 2d parameters; the LayerNorm affine trains (the reference code froze it)."""

    def __init__(self, d_model: int, rank: int, device=None) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, rank, bias=False, device=device)
        self.up = nn.Linear(rank, d_model, bias=False, device=device)
        self.norm = nn.LayerNorm(d_model, device=device)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.norm(self.up(nn.functional.silu(self.down(pooled))))


def masked_max_pool(embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over tokens where mask is 1: padding can never win the max."""
    fill = torch.finfo(embeds.dtype).min
    return embeds.masked_fill(~mask.bool().unsqueeze(-1), fill).amax(dim=1)


class AttemptPrompt(nn.Module):
    def __init__(self, sources: torch.Tensor, target_init: torch.Tensor | None, cfg: Config,
                 source_names: list[str] | None = None) -> None:
        super().__init__()
        self.source_names = list(source_names or [str(i) for i in range(sources.shape[0])])
        self.ablation = cfg.ablation
        self.temperature = cfg.temperature
        d_model = sources.shape[-1]
        self.d_model = d_model
        # Frozen source prompts [t, m, d]: a buffer, so no optimizer ever sees them.
        self.register_buffer("sources", sources.detach().clone().float())
        self.target = None if target_init is None else nn.Parameter(target_init.clone().float())
        self.gate = None if cfg.ablation == "constant_attention" else AttentionGate(
            d_model, cfg.bottleneck, device=sources.device)

    def attention(self, embeds, mask, targets):
        """a [B, k]: k = t+1 with a target prompt (the target last), t without."""
        batch = embeds.shape[0]
        num_sources = self.sources.shape[0]
        if self.gate is None:  # constant attention: 1/t on every source prompt
            return embeds.new_full((batch, num_sources), 1.0 / num_sources, dtype=torch.float32)
        pooled = masked_max_pool(embeds, mask)
        # G runs in its own dtype (bf16 under DeepSpeed on GPU); the attention in fp32.
        hidden = self.gate(pooled.to(self.gate.down.weight.dtype)).float()       # [B, d]
        keys = self.sources.amax(dim=1).unsqueeze(0).expand(batch, -1, -1)       # [B, t, d]
        if targets is not None:
            keys = torch.cat([keys, targets.amax(dim=1, keepdim=True)], dim=1)   # [B, t+1, d]
        logits = torch.einsum("bkd,bd->bk", keys.float(), hidden)
        logits = logits / (self.d_model * math.exp(self.temperature))
        return torch.softmax(logits, dim=-1)

    def forward(self, embeds, mask, task_ids):
        targets = None if self.target is None else self.target[task_ids].float()  # [B, m, d]
        weights = self.attention(embeds, mask, targets)
        num_sources = self.sources.shape[0]
        # Mixed in fp32: DeepSpeed's bf16 casts the source buffer to bf16, the weights are fp32.
        mixed = torch.einsum("bt,tmd->bmd", weights[:, :num_sources], self.sources.float())
        if targets is None:
            return mixed, weights
        if self.gate is None:  # constant attention keeps P_target with weight 1
            return targets + mixed, weights
        return targets + mixed + weights[:, num_sources:, None] * targets, weights


def wrap(backbone, cfg: Config, inputs: MethodInputs) -> WrappedT5:
    if inputs.source_prompts is None:
        raise UserError("attempt needs source prompts: pass --source-prompts LIBRARY "
                        "(build one with `attempt-dist pipeline --stages sources`)")
    sources = inputs.source_prompts
    d_model = backbone.config.d_model
    expected = (cfg.prompt_length, d_model)
    if sources.dim() != 3 or tuple(sources.shape[1:]) != expected:
        raise UserError(f"source prompts have shape {tuple(sources.shape)}, expected "
                        f"[t, {expected[0]}, {expected[1]}] (prompt length x d_model)")
    names = list(inputs.source_names or [str(i) for i in range(sources.shape[0])])
    if cfg.ablation == "single_prompt":
        keep = cfg.single_source or SINGLE_SOURCE_AUTO
        if keep == SINGLE_SOURCE_AUTO:
            if inputs.probes is None:
                raise UserError("the single_prompt ablation keeps the source SPoT-t selects: pass the target's "
                                "probe (--spot-probe PIPELINE/probes) or name a source (--single-source NAME)")
            keep = spot.most_similar(names, sources, inputs.probes)
        if keep not in names:
            raise UserError(f"single_source {keep!r} is not among the sources: {', '.join(names)}")
        sources = sources[names.index(keep)].unsqueeze(0)
        names = [keep]
    for param in backbone.parameters():
        param.requires_grad_(False)
    target = None if cfg.ablation == "no_target" else initial_prompts(backbone, cfg, inputs)
    module = AttemptPrompt(sources.to(backbone.get_input_embeddings().weight.device), target, cfg, names)
    if inputs.prior is not None:
        if module.gate is None:
            raise UserError("an attention prior cannot be used with the constant_attention ablation")
        try:
            module.gate.load_state_dict(inputs.prior)
        except RuntimeError as err:
            raise UserError(f"attention prior does not fit this gate (d={d_model}, r={cfg.bottleneck}): "
                            f"{str(err).splitlines()[0]}") from None
    return WrappedT5(backbone, module, method="attempt", num_tasks=inputs.num_tasks)


def param_groups(model: WrappedT5, cfg: Config) -> list[dict]:
    """Two speeds: target prompts at `lr`, the gate at `gate_lr` (matched by module, not by
    parameter name, so the gate's rate cannot silently fall back to the prompts' one)."""
    module = model.prompt
    prompts = [module.target] if module.target is not None else []
    gate = list(module.gate.parameters()) if module.gate is not None else []
    return parameter_groups({"prompts": prompts, "gate": gate},
                            {"prompts": cfg.lr, "gate": cfg.gate_lr}, cfg.weight_decay)
