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

import dataclasses

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
from .profile import Profile
from .prompt import initial_prompts

ABLATIONS = ("none", "no_target", "constant_attention", "single_prompt")
SINGLE_SOURCE_AUTO = "auto"


NEEDS = Needs(prompt=True, library=True, prior=True, attention=True)
PROFILE = Profile(
    label="ATTEMPT (ours)", row="ATTEMPT-ST", multitask_row="ATTEMPT-MT",
    not_in_peft="ATTEMPT builds each input's prompt as an attention-weighted mixture of frozen source prompts "
                "and a target prompt, computed from that input by a gate; PEFT has no tuner for an input-dependent "
                "mixture of prompts (its multitask prompt tuning picks a prompt by task id, not by input)")


@dataclass
class Config(MethodConfig):
    lr: float = 0.3  # the target prompts' rate
    gate_lr: float = option(0.3, "learning rate of the attention gate G, the second speed of the two-speed "
                                 "schedule (the paper: 0.1 for SuperGLUE and the 'others' multi-task runs)",
                     for_libraries=False)
    prompt_length: int = option(100, "m, rows of every prompt")
    bottleneck: int = option(100, "r, the bottleneck of the attention gate's down/up projection",
                             aliases=("--rank",))
    temperature: float = option(1.0, "K: attention logits are scaled by 1 / (d e^K)", flag="--attention-temperature")
    ablation: str = option("none", "Table 4 ablation", choices=ABLATIONS, for_libraries=False)
    single_source: str = option(SINGLE_SOURCE_AUTO, "single_prompt ablation: the source prompt to keep; 'auto' "
                                "(default) keeps the one SPoT-t selects for the target (6.1), read from the "
                                "target's probe (--spot-probe)", for_libraries=False)

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
    """G: X^ [B, d] -> H [B, d]: down (d x r, no bias) -> SiLU -> up (r x d) -> LayerNorm, with
    r the bottleneck.

    2rd + 2d parameters; the LayerNorm affine trains (the reference code froze it)."""

    def __init__(self, d_model: int, bottleneck: int, device=None) -> None:
        super().__init__()
        self.down = nn.Linear(d_model, bottleneck, bias=False, device=device)
        self.up = nn.Linear(bottleneck, d_model, bias=False, device=device)
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
        """a [B, k] in fp32: k = t+1 with a target prompt (the target last), t without."""
        batch = embeds.shape[0]
        num_sources = self.sources.shape[0]
        if self.gate is None:  # constant attention: 1/t on every source prompt
            return embeds.new_full((batch, num_sources), 1.0 / num_sources, dtype=torch.float32)
        pooled = masked_max_pool(embeds, mask)
        hidden = self.gate(pooled.to(self.gate.down.weight.dtype)).to(embeds.dtype)  # [B, d]
        keys = self.sources.to(embeds.dtype).amax(dim=1).unsqueeze(0).expand(batch, -1, -1)  # [B, t, d]
        if targets is not None:
            keys = torch.cat([keys, targets.amax(dim=1, keepdim=True)], dim=1)   # [B, t+1, d]
        # The dot products run in the prompts' dtype (a bf16 matmul accumulates in fp32; max-pooled
        # keys are exact in bf16); the softmax and its backward run in fp32: the weights are all near
        # 1/k, and the softmax's gradient, a * (g - sum_j a_j g_j), is a difference of nearly equal
        # numbers that bf16's 8-bit mantissa would cancel away, starving the gate of its gradient.
        logits = torch.einsum("bkd,bd->bk", keys, hidden).float()
        logits = logits / (self.d_model * math.exp(self.temperature))
        return torch.softmax(logits, dim=-1)

    def forward(self, embeds, mask, task_ids):
        # In the input embeddings' dtype, which the prompt joins (bf16 under DeepSpeed's bf16, where
        # it casts this module too): no fp32 copies of the prompts per micro-step; only the
        # attention weights are fp32 (see attention) and are rounded once for the mix. In fp32
        # every .to() below is a no-op: the same operations as always, bit for bit.
        dtype = embeds.dtype
        targets = None if self.target is None else self.target[task_ids].to(dtype)  # [B, m, d]
        weights = self.attention(embeds, mask, targets)
        mix = weights.to(dtype)
        num_sources = self.sources.shape[0]
        mixed = torch.einsum("bt,tmd->bmd", mix[:, :num_sources], self.sources.to(dtype))
        if targets is None:
            return mixed, weights
        if self.gate is None:  # constant attention keeps P_target with weight 1
            return targets + mixed, weights
        return targets + mixed + mix[:, num_sources:, None] * targets, weights


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
        if keep == SINGLE_SOURCE_AUTO and len(names) == 1:
            keep = names[0]  # nothing to choose (a saved single-prompt run, rebuilt, carries its one source)
        elif keep == SINGLE_SOURCE_AUTO:
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


def stand_in_config(method_cfg: Config, source_names: list[str]) -> Config:
    """For a model built only to be counted or planned (no probe file read): the source the
    single_prompt ablation keeps (auto, or a name such as mnli) is one of the stand-in library's,
    all of one shape."""
    if method_cfg.ablation == "single_prompt" and (method_cfg.single_source or SINGLE_SOURCE_AUTO) not in source_names:
        return dataclasses.replace(method_cfg, single_source=source_names[0])
    return method_cfg


def param_groups(model: WrappedT5, cfg: Config) -> list[dict]:
    """Two speeds: target prompts at `lr`, the gate at `gate_lr` (matched by module, not by
    parameter name, so the gate's rate cannot silently fall back to the prompts' one)."""
    module = model.prompt
    prompts = [module.target] if module.target is not None else []
    gate = list(module.gate.parameters()) if module.gate is not None else []
    return parameter_groups({"prompts": prompts, "gate": gate},
                            {"prompts": cfg.lr, "gate": cfg.gate_lr}, cfg.weight_decay)


# Appendix B.4: which source prompt a target task's prompt starts from, by task kind.
INIT_SOURCE_BY_KIND = {"classification": "mnli", "regression": "mnli", "qa": "squad"}


def training_inputs(cfg, inputs: MethodInputs, d_model: int, embedding=None) -> MethodInputs:
    """Target prompts start from the MNLI source prompt for classification tasks and the SQuAD
    one for QA (Appendix B.4) when the library has them; the gate from the prior (--prior); the
    targets' SPoT-t probes (--spot-probe), by which the single_prompt ablation picks its source."""
    inputs.target_init = target_init(cfg, inputs.source_names, inputs.source_prompts, embedding)
    if cfg.prior:
        inputs.prior = load_prior(cfg.prior, cfg)
    if cfg.spot_probe:
        inputs.probes = spot.load_probes(cfg, d_model, cfg.method_config().prompt_length)
    return inputs


def library_stage(train: dict) -> str | None:
    """What a sweep cell's library job builds for it besides the source prompts and priors:
    "probes" for the single_prompt ablation keeping the source SPoT-t selects (single_source
    auto), else nothing."""
    auto = train.get("single_source", SINGLE_SOURCE_AUTO) == SINGLE_SOURCE_AUTO
    return "probes" if train.get("ablation") == "single_prompt" and auto else None


def target_init(cfg, names: list[str], prompts: torch.Tensor,
                embedding: torch.nn.Embedding | None = None) -> torch.Tensor | None:
    """[tasks, m, d] from library prompts, or None for vocabulary sampling.

    With --target-init auto, a task whose source prompt (MNLI or SQuAD) the library lacks gets
    the rows vocabulary sampling would give it (`embedding`), while the others still start
    from their source prompt.
    """
    from ..tasks import get_task
    from .prompts import vocab_init

    if cfg.target_init == "vocab":
        return None
    chosen: list[torch.Tensor | None] = []
    for task in cfg.tasks:
        name = cfg.target_init if cfg.target_init != "auto" else INIT_SOURCE_BY_KIND[get_task(task).kind]
        if name not in names and cfg.target_init != "auto":
            raise UserError(f"--target-init {name!r} is not in the library: {', '.join(names)}")
        chosen.append(prompts[names.index(name)] if name in names else None)
    if all(row is None for row in chosen):
        return None
    if any(row is None for row in chosen):
        if embedding is None:
            raise ValueError("target_init needs the backbone's input embedding to sample vocabulary rows")
        # The same generator and draw as prompt.initial_prompts: a task's vocabulary rows do
        # not depend on whether its neighbours found a source prompt.
        vocab = vocab_init(embedding, len(cfg.tasks), prompts.shape[1],
                           generator=torch.Generator().manual_seed(cfg.seed))
        chosen = [vocab[i] if row is None else row for i, row in enumerate(chosen)]
    return torch.stack(chosen)


def load_prior(path, cfg) -> dict:
    """A pre-trained attention gate (the pipeline's prior.pt) for a run on backbone cfg.model."""
    from pathlib import Path

    path = Path(path)
    if not path.exists():
        raise UserError(f"attention prior {path} does not exist; train one with `attempt-dist pipeline --stages prior`")
    again = "train it again with `attempt-dist pipeline --stages prior`"
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file is the user's to fix
        raise UserError(f"{path} is not an attention prior ({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); "
                        f"{again}") from None
    if not isinstance(saved, dict):
        raise UserError(f"{path} holds a bare {type(saved).__name__}, not an attention prior "
                        f"({{\"gate\": the gate's weights, \"meta\": {{\"backbone\": ...}}}}); {again}")
    gate, meta = saved.get("gate"), saved.get("meta")
    if not isinstance(gate, dict) or not all(isinstance(v, torch.Tensor) for v in gate.values()):
        held = "no \"gate\" key" if gate is None else f"a \"gate\" that is a {type(gate).__name__}, not a state dict"
        raise UserError(f"{path} is not an attention prior: it has {held} (the attention gate's weights); {again}")
    backbone = meta.get("backbone") if isinstance(meta, dict) else None
    if backbone != cfg.model:
        raise UserError(f"attention prior {path} was trained on {backbone!r}, not {cfg.model!r}")
    return gate


def rebuilt_inputs(cfg, inputs: MethodInputs, artifact, d_model: int, where) -> MethodInputs:
    """The frozen source prompts travel in the artefact; an older run (trainable.pt) reads them
    from its library again."""
    from pathlib import Path

    from .prompts import LIBRARY_INDEX, load_library

    inputs.source_prompts = artifact.state.get("prompt.sources")
    if inputs.source_prompts is not None:
        return inputs
    library = cfg.source_prompts
    if not library or not (Path(library) / LIBRARY_INDEX).exists():
        raise UserError(f"{where} is an older ATTEMPT run (trainable.pt) that does not carry its source "
                        f"prompts, and its prompt library {library} is gone; restore that folder, "
                        "or retrain to get a self-contained run")
    inputs.source_names, inputs.source_prompts = load_library(
        library, cfg.sources, backbone=cfg.model, d_model=d_model, prompt_length=cfg.method_config().prompt_length)
    return inputs


# The paper's Table 4: (row, multi-task, ablation, no prior transfer) of ATTEMPT's ablation runs.
ABLATION_ROWS = [
    ("ATTEMPT-ST", False, None, False), ("no target", False, "no_target", False),
    ("no attention", False, "constant_attention", False), ("single prompt", False, "single_prompt", False),
    ("no prior transfer", False, None, True),
    ("ATTEMPT-MT", True, None, False), ("no prior transfer", True, None, True),
]
