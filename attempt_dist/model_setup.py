"""From a TrainConfig to the wrapped model and its optimizer groups.

Source prompts come from a prompt library (validated against the backbone), the attention
prior from the pipeline's prior.pt, and ATTEMPT's target prompts start from the MNLI source
prompt for classification tasks and the SQuAD one for QA (Appendix B.4) when the library has
them; a task whose source the library lacks starts from the real vocabulary, the others still
from their source prompt.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .backbones import build_backbone, enable_activation_checkpointing, freeze, get_spec
from .errors import UserError
from .methods import MethodInputs, apply_method, needs
from .methods.prompts import LIBRARY_INDEX, load_library, load_prompt, vocab_init
from .tasks import get_task
from .train_config import TrainConfig

# Appendix B.4: which source prompt a target task's prompt starts from, by task kind.
INIT_SOURCE_BY_KIND = {"classification": "mnli", "regression": "mnli", "qa": "squad"}


def init_mode(cfg: TrainConfig) -> str:
    if cfg.init != "auto":
        return cfg.init
    return "pretrained" if get_spec(cfg.model).hub_id else "random"


def tokenizer_source(cfg: TrainConfig) -> str:
    """--tokenizer, else the local backbone folder a pretrained run loads, else the backbone's name."""
    if cfg.tokenizer:
        return cfg.tokenizer
    return cfg.model_path if (cfg.model_path and init_mode(cfg) == "pretrained") else cfg.model


def load_backbone(cfg: TrainConfig, dtype: torch.dtype | None = None):
    mode = init_mode(cfg)
    backbone = freeze(build_backbone(cfg.model, mode, dtype=dtype, path=cfg.model_path, seed=cfg.seed))
    if cfg.dropout is not None:
        backbone.config.dropout_rate = cfg.dropout
        for module in backbone.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = cfg.dropout
            elif isinstance(getattr(module, "dropout", None), float):
                module.dropout = cfg.dropout  # T5Attention keeps its rate as a float
    if cfg.activation_checkpointing:
        enable_activation_checkpointing(backbone)
    return backbone


def load_prior(path: str | Path, cfg: TrainConfig) -> dict:
    path = Path(path)
    if not path.exists():
        raise UserError(f"attention prior {path} does not exist; train one with `attempt-dist pipeline --stages prior`")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
        meta = saved.get("meta", {})
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file is the user's to fix
        raise UserError(f"{path} is not an attention prior ({type(err).__name__}: {(str(err).splitlines() or [''])[0]}); "
                        "train it again with `attempt-dist pipeline --stages prior`") from None
    if meta.get("backbone") != cfg.model:
        raise UserError(f"attention prior {path} was trained on {meta.get('backbone')!r}, not {cfg.model!r}")
    return saved["gate"]


def method_inputs(cfg: TrainConfig, d_model: int, embedding: torch.nn.Embedding | None = None) -> MethodInputs:
    inputs = MethodInputs(num_tasks=len(cfg.tasks), seed=cfg.seed)
    if not needs(cfg.method).library:
        return inputs
    method_cfg = cfg.method_config()
    names, prompts = load_library(cfg.source_prompts, cfg.sources, backbone=cfg.model,
                                  d_model=d_model, prompt_length=method_cfg.prompt_length)
    inputs.source_names, inputs.source_prompts = names, prompts
    if cfg.method == "spot" and method_cfg.mode == "targeted":
        if not cfg.spot_probe:
            raise UserError("SPoT-t needs --spot-probe: a prompt briefly tuned on the target task")
        inputs.target_init = load_probes(cfg, d_model, method_cfg.prompt_length)
    if cfg.method == "attempt":
        inputs.target_init = target_init(cfg, names, prompts, embedding)
        if cfg.prior:
            inputs.prior = load_prior(cfg.prior, cfg)
        if cfg.spot_probe:  # the single_prompt ablation keeps the source SPoT-t selects
            inputs.probes = load_probes(cfg, d_model, method_cfg.prompt_length)
    return inputs


def load_probes(cfg: TrainConfig, d_model: int, prompt_length: int) -> torch.Tensor:
    """SPoT-t's probe prompt(s), [tasks, m, d]: one .pt file, or a probe library (the pipeline's
    probes/ folder) holding a prompt for each of the run's tasks."""
    path = Path(cfg.spot_probe)
    if (path / LIBRARY_INDEX).exists():
        return load_library(path, cfg.tasks, backbone=cfg.model, d_model=d_model, prompt_length=prompt_length)[1]
    return load_prompt(path, backbone=cfg.model, d_model=d_model, prompt_length=prompt_length)[None]


def target_init(cfg: TrainConfig, names: list[str], prompts: torch.Tensor,
                embedding: torch.nn.Embedding | None = None) -> torch.Tensor | None:
    """[tasks, m, d] from library prompts, or None for vocabulary sampling.

    With --target-init auto, a task whose source prompt (MNLI or SQuAD) the library lacks gets
    the rows vocabulary sampling would give it (`embedding`), while the others still start
    from their source prompt.
    """
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


def build_model(cfg: TrainConfig, backbone):
    method_cfg = cfg.method_config()
    inputs = method_inputs(cfg, get_spec(cfg.model).d_model, backbone.get_input_embeddings())
    return apply_method(cfg.method, backbone, method_cfg, inputs), method_cfg
