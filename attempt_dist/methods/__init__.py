"""Every method behind one interface.

    cfg   = make_config("attempt", lr=0.3, gate_lr=0.1)      # validates itself
    model = apply_method("attempt", backbone, cfg, MethodInputs(num_tasks=2, ...))
    groups = param_groups("attempt", model, cfg)               # [{"name", "params", "lr", ...}]
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from ..errors import UserError
from .base import MethodConfig, WrappedT5
from .inputs import MethodInputs
from .needs import Needs

METHODS = ("finetune", "bitfit", "adapter", "prompt", "spot", "attempt")


def method_module(name: str) -> ModuleType:
    if name not in METHODS:
        raise UserError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return importlib.import_module(f"attempt_dist.methods.{name}")


def needs(name: str) -> Needs:
    """What method `name` needs (prompt, library, prior, attention): its module's NEEDS."""
    return method_module(name).NEEDS


# Derived from each module's NEEDS, never restated.
PROMPT_METHODS = tuple(m for m in METHODS if needs(m).prompt)
LIBRARY_METHODS = tuple(m for m in METHODS if needs(m).library)
PRIOR_METHODS = tuple(m for m in METHODS if needs(m).prior)


def make_config(name: str, **options) -> MethodConfig:
    """The method's config from keyword options; unknown options are an error (named)."""
    config_cls = method_module(name).Config
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(k for k in options if k not in known)
    if unknown:
        raise UserError(f"method {name} has no option {', '.join(unknown)}; "
                        f"its options: {', '.join(sorted(known))}")
    return config_cls(**options)


def apply_method(name: str, backbone, cfg: MethodConfig, inputs: MethodInputs | None = None) -> WrappedT5:
    inputs = inputs or MethodInputs()
    if inputs.num_tasks < 1:
        raise UserError(f"the number of tasks N must be at least 1, got {inputs.num_tasks}")
    return method_module(name).wrap(backbone, cfg, inputs)


def param_groups(name: str, model: WrappedT5, cfg: MethodConfig) -> list[dict]:
    return method_module(name).param_groups(model, cfg)


__all__ = ["LIBRARY_METHODS", "METHODS", "PRIOR_METHODS", "PROMPT_METHODS", "MethodConfig", "MethodInputs",
           "Needs", "WrappedT5", "apply_method", "make_config", "method_module", "needs", "param_groups"]
