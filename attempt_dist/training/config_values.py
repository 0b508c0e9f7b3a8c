"""A --config file's values checked against the options' declared types, before any run starts.

argparse checks a flag's text with the flag's type, but a --config value becomes the flag's
default, and argparse passes non-string defaults through unchecked: `max_steps: true` trained
one step (True == 1) and recorded `true`, `tasks: 3` and `max_steps: [1, 2]` ended in
tracebacks. Here each value must be what its declaration says (training/options.py for the
train options, methods/options.py for the method options):

    int     an integer (not a bool, not 2.5), or a string that reads as one ("8")
    float   a number (not a bool), or a string that reads as one (YAML reads `1e-3` as a string)
    str     a string
    bool    true or false
    list    a list of strings, or one comma-separated string ("rte, cb")

None (YAML's null) is accepted where the option allows it: a train option declared `X | None`,
and every method option (None = the method's own default). Declared choices are checked too:
argparse checks them only on the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from ..cli_args import split_csv
from ..errors import UserError, shown

_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list of names (or one comma-separated string)"}


def checked_config_values(values: Mapping[str, Any], path: str | Path,
                          train_options: Mapping[str, Any], method_options: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (option name -> value, every name known) with each checked against its declared
    type and choices (`train_options` and `method_options`: name -> declaration), numbers given as
    strings converted; UserError naming the first bad one."""
    out = {}
    for name, value in values.items():
        if name in train_options:
            option = train_options[name]
            kind, optional, choices = option.kind, option.optional, option.choices
        else:
            option = method_options[name]
            kind, optional, choices = option.kind, True, option.choices
        if value is None:
            if not optional:
                raise UserError(f"--config {path}: {name} is null but must be {_KIND_NAMES[kind]}; "
                                "give a value or leave the key out (its default)")
            out[name] = None
            continue
        converted = _as_kind(value, kind)
        if converted is None:
            raise UserError(f"--config {path}: {name} must be {_KIND_NAMES[kind]}, got {shown(value)} "
                            f"({type(value).__name__})")
        if choices is not None and converted not in choices:
            raise UserError(f"--config {path}: {name} must be one of {', '.join(map(str, choices))}, "
                            f"got {shown(value)}")
        out[name] = converted
    return out


def _as_kind(value: Any, kind: type) -> Any:
    """`value` as `kind`, or None when it is not one (bool is never a number: True == 1)."""
    if kind is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if kind is str:
        return value if isinstance(value, str) else None
    if kind is list:
        if isinstance(value, str):
            items = split_csv(value)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            items = [item.strip() for item in value if item.strip()]
        else:
            return None
        return items or None  # an empty list names nothing: leave the key out for the default
    if isinstance(value, str):
        try:
            return kind(value.strip())
        except ValueError:
            return None
    if kind is int:
        return value if isinstance(value, int) else None
    return float(value) if isinstance(value, (int, float)) else None
