"""SPoT (Vu et al. 2022): prompt tuning whose prompt starts from source prompts.

    generic  (SPoT-g): copy one saved source prompt (`source`): the pipeline's spot_g stage
             trains it on the mixture of the GLUE source tasks (B.5), `--source-prompts
             PIPELINE/spot_g`.
    targeted (SPoT-t): the source prompt most similar to a probe prompt (prompt-tuned on the
             target task by the pipeline's probes stage, `--spot-probe PIPELINE/probes`). B.5
             selects one source task ("to select the source task for SPoT-t"), and the authors'
             config loads one prompt, so top_k is 1; `--spot-top-k K` averages the K most
             similar, weighted by similarity. A multi-task run ranks the sources by their mean
             similarity over its tasks' probes.

Similarity (SPoT, Vu et al. 2022, section 5: prompts as task embeddings). SPoT compares two
task prompts by "cosine similarity of average tokens" (the cosine of the two prompts'
mean-pooled token vectors) or by "per-token average cosine similarity" (the mean cosine over
every pair of prompt tokens). We use the first: B.5 computes "the cosine similarity between a
target prompt and the set of the source prompts", one cosine per pair of prompts, which is the
average-token form; unlike the cosine of the flattened m x d prompts, it does not depend on
the order of the prompt rows, which prompt tuning leaves arbitrary. `per_token_similarities`
gives the other definition for comparison.

The SPoT-g MT and SPoT-t MT baselines train "a single model on a set of target tasks" (77k/N
parameters per task): --shared-prompt, which the shipped sweeps set for every SPoT cell.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from . import prompt as prompt_tuning
from .base import WrappedT5, positive_int
from .inputs import MethodInputs
from .needs import Needs
from .options import option
from .profile import Display, Profile
from .prompts import LIBRARY_INDEX, TaskPrompts, load_library, load_prompt


NEEDS = Needs(prompt=True, library=True)
# The paper's two SPoT rows, told apart by the run's own --spot-mode (see table_variant).
VARIANT_OF_MODE = {"generic": "spot-g", "targeted": "spot-t"}
PROFILE = Profile(label="SPoT", row="SPoT", peft=prompt_tuning.PROFILE.peft, variants={
    "spot-g": Display("SPoT-g", "SPoT-g", "SPoT-g MT"), "spot-t": Display("SPoT-t", "SPoT-t", "SPoT-t MT")})


# The paper's SPoT MT rows train one prompt for the whole group (Tables 2-3: 77k / 4 = 19k per task).
MULTITASK_OPTIONS = {"shared_prompt": True}


@dataclass
class Config(prompt_tuning.Config):
    mode: str = option("generic", "SPoT-g (generic) or SPoT-t (targeted)", flag="--spot-mode",
                       choices=("generic", "targeted"), for_libraries=False)
    source: str | None = option(None, "SPoT-g: the library prompt to copy (default: the first one)",
                                flag="--spot-source", for_libraries=False)
    top_k: int = option(1, "SPoT-t: how many most similar source prompts to start from (B.5 selects one; "
                           "K > 1 averages the K most similar, weighted by similarity)", flag="--spot-top-k",
                        for_libraries=False)

    def validate(self) -> None:
        super().validate()
        if self.mode not in ("generic", "targeted"):
            raise UserError(f"spot mode must be generic or targeted, got {self.mode!r}")
        positive_int("top_k", self.top_k)


def task_embedding(prompts: torch.Tensor) -> torch.Tensor:
    """SPoT's task embedding of prompt(s) [..., m, d]: the mean of the prompt tokens [..., d]."""
    return prompts.float().mean(dim=-2)


def similarities(sources: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    """[t]: SPoT's cosine similarity of average tokens between each source [t, m, d] and the
    probe(s) [m, d] or [n, m, d], averaged over the probes."""
    probes = probes.reshape(-1, *sources.shape[1:])
    cos = torch.nn.functional.cosine_similarity(task_embedding(sources)[:, None], task_embedding(probes)[None], dim=-1)
    return cos.mean(dim=1)


def per_token_similarities(sources: torch.Tensor, probes: torch.Tensor) -> torch.Tensor:
    """[t]: SPoT's per-token average cosine similarity (mean cosine over all token pairs),
    averaged over the probes; not used for selection (see the module's note)."""
    probes = probes.reshape(-1, *sources.shape[1:]).float()
    src = torch.nn.functional.normalize(sources.float(), dim=-1)
    prb = torch.nn.functional.normalize(probes, dim=-1)
    return torch.einsum("tid,njd->tnij", src, prb).mean(dim=(1, 2, 3))


def most_similar(names: list[str], sources: torch.Tensor, probes: torch.Tensor) -> str:
    """The source SPoT-t selects for the probe(s): the single prompt it would start from."""
    return names[int(torch.argmax(similarities(sources, probes)))]


def targeted_init(sources: torch.Tensor, probe: torch.Tensor, top_k: int) -> torch.Tensor:
    """Similarity-weighted mean of the top-k sources [t, m, d] most similar to the probe(s)
    ([m, d], or [n, m, d] for a multi-task run: mean similarity over its tasks)."""
    sims = similarities(sources, probe)
    k = min(top_k, sources.shape[0])
    top = torch.topk(sims, k)
    weights = top.values.clamp_min(0)
    if weights.sum() <= 0:  # no positively similar source: plain mean of the top-k
        weights = torch.ones_like(weights)
    weights = weights / weights.sum()
    return torch.einsum("k,kmd->md", weights, sources[top.indices])


def wrap(backbone, cfg: Config, inputs: MethodInputs) -> WrappedT5:
    if inputs.source_prompts is None:
        raise UserError("spot needs source prompts: pass --source-prompts LIBRARY")
    names = inputs.source_names or [str(i) for i in range(inputs.source_prompts.shape[0])]
    if cfg.mode == "generic":
        source = cfg.source or names[0]
        if source not in names:
            raise UserError(f"spot source {source!r} is not in the library: {', '.join(names)}")
        init = inputs.source_prompts[names.index(source)]
    else:
        if inputs.target_init is None:
            raise UserError("spot targeted needs a probe prompt of the target task (--spot-probe)")
        probes = inputs.target_init.reshape(-1, *inputs.source_prompts.shape[1:])
        init = targeted_init(inputs.source_prompts, probes, cfg.top_k)
    for param in backbone.parameters():
        param.requires_grad_(False)
    init = init.unsqueeze(0).expand(inputs.num_tasks, -1, -1)
    return WrappedT5(backbone, TaskPrompts(init, shared=cfg.shared_prompt), method="spot",
                     num_tasks=inputs.num_tasks)


param_groups = prompt_tuning.param_groups


def training_inputs(cfg, inputs: MethodInputs, d_model: int, embedding=None) -> MethodInputs:
    """SPoT-t starts from the probe prompt(s) of its target task(s) (--spot-probe)."""
    method_cfg = cfg.method_config()
    if method_cfg.mode == "targeted":
        if not cfg.spot_probe:
            raise UserError("SPoT-t needs --spot-probe: a prompt briefly tuned on the target task")
        inputs.target_init = load_probes(cfg, d_model, method_cfg.prompt_length)
    return inputs


def load_probes(cfg, d_model: int, prompt_length: int) -> torch.Tensor:
    """SPoT-t's probe prompt(s), [tasks, m, d]: one .pt file, or a probe library (the pipeline's
    probes/ folder) holding a prompt for each of the run's tasks."""
    path = Path(cfg.spot_probe)
    if (path / LIBRARY_INDEX).exists():
        return load_library(path, cfg.tasks, backbone=cfg.model, d_model=d_model, prompt_length=prompt_length)[1]
    return load_prompt(path, backbone=cfg.model, d_model=d_model, prompt_length=prompt_length)[None]


def rebuilt_inputs(cfg, inputs: MethodInputs, artifact, d_model: int, where) -> MethodInputs:
    """The library only chose the starting point, which the trained prompt overwrites: stand-ins
    of the right shape do."""
    method_cfg = cfg.method_config()
    shape = (method_cfg.prompt_length, d_model)
    if inputs.source_prompts is None:
        inputs.source_names = inputs.source_names or [method_cfg.source or "source"]
        inputs.source_prompts = torch.zeros(len(inputs.source_names), *shape)
        if method_cfg.mode == "targeted":
            inputs.target_init = torch.zeros(shape)
    return inputs


def stand_in_config(method_cfg: Config, source_names: list[str]) -> Config:
    """For a model built only to be counted or planned (meta device, no probe file read): SPoT-t's
    model is SPoT-g's in every shape, only its prompt's starting point differs; a named source
    (--spot-source mnli) is any of the stand-in library's, all of one shape."""
    if method_cfg.mode == "targeted":
        method_cfg = dataclasses.replace(method_cfg, mode="generic")
    if method_cfg.source is not None and method_cfg.source not in source_names:
        method_cfg = dataclasses.replace(method_cfg, source=source_names[0])
    return method_cfg


def library_stage(train: dict) -> str | None:
    """What a sweep cell's library job builds for it besides the source prompts: "spot_g" (the
    prompt trained on the GLUE source mixture), "probes" (SPoT-t), or None (SPoT-g copying a
    named library prompt)."""
    if train.get("spot_mode") == "targeted":
        return "probes"
    return None if train.get("spot_source") else "spot_g"


def table_variant(record) -> str:
    """The paper's SPoT row of a result record: SPoT-g or SPoT-t by the run's own spot_mode."""
    if record.variant in ("spot", *PROFILE.variants) and record.spot_mode:
        return VARIANT_OF_MODE.get(record.spot_mode, "spot-g")
    return record.variant
