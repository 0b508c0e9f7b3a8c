"""Every method behind one interface.

    cfg   = make_config("attempt", lr=0.3, gate_lr=0.1)      # validates itself
    model = apply_method("attempt", backbone, cfg, MethodInputs(num_tasks=2, ...))
    groups = param_groups("attempt", model, cfg)               # [{"name", "params", "lr", ...}]

A method is one module, attempt_dist/methods/<name>.py, named once in METHODS (registry.py). It declares

    Config          its options (options.py: flags, sweep keys, whether a library build inherits them)
    NEEDS           what it needs besides the backbone (needs.py)
    PROFILE         names, table rows, planner cost, PEFT form or why none (profile.py)
    wrap, param_groups                      the model and its optimizer groups
and, when it needs more than the defaults (nothing):
    check_backbone(cfg, model, d_model)     refuse options the backbone cannot honour (before it loads)
    training_inputs(cfg, inputs, d_model, embedding)   what `wrap` reads for a training run
    rebuilt_inputs(cfg, inputs, artifact, d_model, where)   the same, rebuilt from a saved run
    stand_in_config(method_cfg, source_names)   its config for a model built only to be counted or
                            planned, which reads no input file (SPoT-t's probe)
    library_stage(train)    what a sweep's library job builds for a cell of it (SPoT-g/t)
    table_variant(record)   the table row a result record belongs to (SPoT-g/t)
    ABLATION_ROWS           rows of an ablation table (ATTEMPT's Table 4)
    MULTITASK_OPTIONS       options its paper multi-task row trains with (SPoT MT: one shared prompt)

Nothing outside this package compares a method's name (tests/test_method_names.py).
"""

from __future__ import annotations

from ..errors import UserError
from .base import MethodConfig, WrappedT5
from .inputs import MethodInputs
from .needs import Needs
from .profile import Display, Profile
from .registry import METHODS, displays, make_config, method_hook, method_module, needs, profile

# Derived from each module's NEEDS, never restated.
PROMPT_METHODS = tuple(m for m in METHODS if needs(m).prompt)
LIBRARY_METHODS = tuple(m for m in METHODS if needs(m).library)
PRIOR_METHODS = tuple(m for m in METHODS if needs(m).prior)


def apply_method(name: str, backbone, cfg: MethodConfig, inputs: MethodInputs | None = None) -> WrappedT5:
    inputs = inputs or MethodInputs()
    if inputs.num_tasks < 1:
        raise UserError(f"the number of tasks N must be at least 1, got {inputs.num_tasks}")
    return method_module(name).wrap(backbone, cfg, inputs)


def param_groups(name: str, model: WrappedT5, cfg: MethodConfig) -> list[dict]:
    return method_module(name).param_groups(model, cfg)


__all__ = ["Display", "LIBRARY_METHODS", "METHODS", "PRIOR_METHODS", "PROMPT_METHODS", "MethodConfig", "MethodInputs",
           "Needs", "Profile", "WrappedT5", "apply_method", "displays", "make_config", "method_hook", "method_module",
           "needs", "param_groups", "profile"]
