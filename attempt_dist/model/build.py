"""From a TrainConfig to the backbone and the wrapped model.

Source prompts come from a prompt library (validated against the backbone) for the methods
that need one; what else a method reads (ATTEMPT's target-prompt start and attention prior,
SPoT-t's probes) its own module builds (its training_inputs).
"""

from __future__ import annotations

import torch

from .backbones import build_backbone, enable_activation_checkpointing, freeze, get_spec, use_attention
from ..methods import MethodInputs, apply_method, method_hook, needs
from ..methods.prompts import load_library
from ..training.config import TrainConfig


def init_mode(cfg: TrainConfig) -> str:
    if cfg.init != "auto":
        return cfg.init
    return "pretrained" if get_spec(cfg.model).pretrained_source else "random"


def tokenizer_source(cfg: TrainConfig) -> str:
    """--tokenizer, else the local backbone folder a pretrained run loads, else the backbone's name."""
    if cfg.tokenizer:
        return cfg.tokenizer
    return cfg.model_path if (cfg.model_path and init_mode(cfg) == "pretrained") else cfg.model


def load_backbone(cfg: TrainConfig, dtype: torch.dtype | None = None, *, training: bool = True):
    mode = init_mode(cfg)
    backbone = freeze(build_backbone(cfg.model, mode, dtype=dtype, path=cfg.model_path, seed=cfg.seed))
    if cfg.dropout is not None:
        backbone.config.dropout_rate = cfg.dropout
        for module in backbone.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = cfg.dropout
            elif isinstance(getattr(module, "dropout", None), float):
                module.dropout = cfg.dropout  # T5Attention keeps its rate as a float
    use_attention(backbone, cfg.attn_implementation, training=training)
    if cfg.activation_checkpointing:
        enable_activation_checkpointing(backbone)
    return backbone


def method_inputs(cfg: TrainConfig, d_model: int, embedding: torch.nn.Embedding | None = None) -> MethodInputs:
    """What the method's wrap reads for a training run: the source-prompt library when it needs
    one, then whatever else the method builds itself (its training_inputs)."""
    inputs = MethodInputs(num_tasks=len(cfg.tasks), seed=cfg.seed)
    if needs(cfg.method).library:
        inputs.source_names, inputs.source_prompts = load_library(
            cfg.source_prompts, cfg.sources, backbone=cfg.model, d_model=d_model,
            prompt_length=cfg.method_config().prompt_length)
    build = method_hook(cfg.method, "training_inputs")
    return build(cfg, inputs, d_model, embedding) if build else inputs


def build_model(cfg: TrainConfig, backbone, inputs: MethodInputs | None = None):
    """(the wrapped model, its method config): `backbone` wrapped by cfg's method, from `inputs`
    (default: a training run's, method_inputs; predict passes those rebuilt from a saved run)."""
    method_cfg = cfg.method_config()
    if inputs is None:
        inputs = method_inputs(cfg, get_spec(cfg.model).d_model, backbone.get_input_embeddings())
    return apply_method(cfg.method, backbone, method_cfg, inputs), method_cfg
