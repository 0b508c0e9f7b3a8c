"""The registry of method names and what is asked of a method by name.

A method is the module attempt_dist/methods/<name>.py, named once in METHODS; everything else
about it is read from that module (see the package's docstring for what it declares). This
module imports no method (they are found by name, importlib), so the methods' own helpers
(options.py) can ask the registry without an import circle.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from ..errors import UserError, shown
from .needs import Needs
from .profile import Display, Profile

# The registry of names, in the paper's order of its tables' rows.
METHODS = ("finetune", "adapter", "bitfit", "prompt", "spot", "attempt")


def method_module(name: str) -> ModuleType:
    if name not in METHODS:
        raise UserError(f"unknown method {shown(name)}; known methods: {', '.join(METHODS)}")
    return importlib.import_module(f"attempt_dist.methods.{name}")


def needs(name: str) -> Needs:
    """What method `name` needs (prompt, library, prior, attention): its module's NEEDS."""
    return method_module(name).NEEDS


def profile(name: str) -> Profile:
    """Method `name`'s names, rows, planner cost and PEFT form: its module's PROFILE."""
    return method_module(name).PROFILE


def displays() -> dict[str, Display]:
    """variant -> its Display, for every method and its named variants, in the paper's order."""
    out: dict[str, Display] = {}
    for name in METHODS:
        out[name] = profile(name).display
        out.update(profile(name).variants)
    return out


def method_hook(name: str, hook: str):
    """Method `name`'s optional declaration `hook` (a function or a constant: the package's
    docstring lists them), or None where it has none or `name` is not a method of this package
    (a sweep or a result record may name others)."""
    return getattr(method_module(name), hook, None) if name in METHODS else None


def make_config(name: str, **options):
    """The method's Config (a base.MethodConfig) from keyword options; unknown options are an
    error (named)."""
    config_cls = method_module(name).Config
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(k for k in options if k not in known)
    if unknown:
        raise UserError(f"method {name} has no option {', '.join(unknown)}; "
                        f"its options: {', '.join(sorted(known))}")
    return config_cls(**options)
