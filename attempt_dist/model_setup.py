"""From a TrainConfig to the wrapped model and its optimizer groups.

Source prompts come from a prompt library (validated against the backbone), the attention
prior from the pipeline's prior.pt, and ATTEMPT's target prompts start from the MNLI source
prompt for classification tasks and the SQuAD one for QA (Appendix B.4) when the library has
them, else from the real vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .backbones import build_backbone, enable_activation_checkpointing, freeze, get_spec
from .errors import UserError
from .methods import MethodInputs, apply_method, needs
from .methods.prompts import load_library, load_prompt
from .tasks import get_task
from .train_config import TrainConfig

# Appendix B.4: which source prompt a target task's prompt starts from, by task kind.
INIT_SOURCE_BY_KIND = {"classification": "mnli", "regression": "mnli", "qa": "squad"}


def init_mode(cfg: TrainConfig) -> str:
    if cfg.init != "auto":
        return cfg.init
    return "pretrained" if get_spec(cfg.model).hub_id else "random"


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


def method_inputs(cfg: TrainConfig, d_model: int) -> MethodInputs:
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
        inputs.target_init = load_prompt(cfg.spot_probe, backbone=cfg.model, d_model=d_model,
                                          prompt_length=method_cfg.prompt_length)
    if cfg.method == "attempt":
        inputs.target_init = target_init(cfg, names, prompts)
        if cfg.prior:
            inputs.prior = load_prior(cfg.prior, cfg)
    return inputs


def target_init(cfg: TrainConfig, names: list[str], prompts: torch.Tensor) -> torch.Tensor | None:
    """[tasks, m, d] from library prompts, or None for vocabulary sampling."""
    if cfg.target_init == "vocab":
        return None
    chosen = []
    for task in cfg.tasks:
        name = cfg.target_init if cfg.target_init != "auto" else INIT_SOURCE_BY_KIND[get_task(task).kind]
        if name not in names:
            if cfg.target_init != "auto":
                raise UserError(f"--target-init {name!r} is not in the library: {', '.join(names)}")
            return None  # auto and the library lacks MNLI/SQuAD: vocabulary init for all
        chosen.append(prompts[names.index(name)])
    return torch.stack(chosen)


def build_model(cfg: TrainConfig, backbone):
    method_cfg = cfg.method_config()
    inputs = method_inputs(cfg, get_spec(cfg.model).d_model)
    return apply_method(cfg.method, backbone, method_cfg, inputs), method_cfg
