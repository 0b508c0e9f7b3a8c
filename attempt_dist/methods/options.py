"""A method's options are the fields of its module's `Config` dataclass, and nothing else.

    @dataclass
    class Config(MethodConfig):
        gate_lr: float = option(0.3, "learning rate of the attention gate G")
        temperature: float = option(1.0, "K: ...", flag="--attention-temperature")

Everything else derives from those fields, so adding an option is a change to one file: the
train CLI's flags (`add_method_args`: one flag per option; methods whose options share a flag
share it, e.g. --prompt-length), TrainConfig.options (the values given), sweep keys (the
flags' names with underscores), `params`/`plan` and model setup (`config_from_options`). As in
PEFT's tuner configs, the help text sits on the field (`metadata["help"]`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
from dataclasses import dataclass
from typing import Any, Mapping

from .registry import METHODS, make_config, method_module


def option(default: Any, help: str, *, flag: str | None = None, choices: tuple | None = None,
           aliases: tuple[str, ...] = (), for_libraries: bool = True) -> Any:
    """A Config field that is also a command-line option.

    flag: the CLI flag when the field name alone would be unclear across methods (ATTEMPT's
    `temperature` is --attention-temperature); default --field-name. aliases: older flags
    still accepted. for_libraries: whether a sweep's source-library build inherits the sweep's
    value (False for what describes one target cell: its learning rates, an ablation, SPoT's
    start), so its prompts and prior fit the cells that read them.
    """
    return dataclasses.field(default=default, metadata={"help": help, "flag": flag, "choices": choices,
                                                        "aliases": tuple(aliases), "for_libraries": for_libraries})


@dataclass(frozen=True)
class CliOption:
    """One command-line flag and the methods' Config fields behind it."""

    dest: str
    flag: str
    kind: type
    help: str
    choices: tuple | None
    aliases: tuple[str, ...]
    fields: dict[str, str]
    """method -> the name of its Config field for this flag."""
    defaults: dict[str, Any]
    """method -> that field's default."""
    for_libraries: bool = True
    """A sweep's library build inherits the sweep's value of this option."""


def _metadata(config_cls: type, name: str) -> Mapping:
    # A subclass that only changes a default (`lr: float = 0.3`) keeps its base's help and flag.
    for klass in config_cls.__mro__:
        found = getattr(klass, "__dataclass_fields__", {}).get(name)
        if found is not None and found.metadata.get("help"):
            return found.metadata
    return {}


def _kind(annotation: Any) -> type:
    # Config modules use `from __future__ import annotations`: field types arrive as strings.
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    base = text.replace("| None", "").replace("Optional[", "").rstrip("]").strip()
    kinds = {"int": int, "float": float, "str": str, "bool": bool}
    if base not in kinds:
        raise TypeError(f"method option type {text!r} has no command-line form; use int, float, str or bool")
    return kinds[base]


@functools.cache
def cli_options() -> dict[str, CliOption]:
    """dest -> CliOption over every method's Config, in METHODS order (the one derivation)."""
    found: dict[str, dict] = {}
    for method in METHODS:
        config_cls = method_module(method).Config
        for f in dataclasses.fields(config_cls):
            meta = _metadata(config_cls, f.name)
            flag = meta.get("flag") or "--" + f.name.replace("_", "-")
            dest = flag[2:].replace("-", "_")
            entry = found.setdefault(dest, {"flag": flag, "kind": _kind(f.type), "help": meta.get("help", ""),
                                            "choices": meta.get("choices"), "aliases": meta.get("aliases", ()),
                                            "fields": {}, "defaults": {},
                                            "for_libraries": meta.get("for_libraries", True)})
            if entry["kind"] is not _kind(f.type):
                raise TypeError(f"{flag} has two types across methods ({entry['kind'].__name__}, {f.type})")
            if entry["for_libraries"] != meta.get("for_libraries", True):
                raise TypeError(f"{flag}: methods disagree on whether a library build inherits it (for_libraries)")
            entry["fields"][method] = f.name
            entry["defaults"][method] = f.default
    return {dest: CliOption(dest=dest, **entry) for dest, entry in found.items()}


def _help(opt: CliOption) -> str:
    by_default: dict[str, list[str]] = {}
    for method, default in opt.defaults.items():
        by_default.setdefault(str(default), []).append(method)
    methods = "" if len(opt.fields) == len(METHODS) else f"{', '.join(opt.fields)}: "
    if len(by_default) > 1:
        defaults = "; ".join(f"{value} for {', '.join(names)}" for value, names in by_default.items())
        return f"{methods}{opt.help} (default {defaults})"
    default = next(iter(by_default))
    return f"{methods}{opt.help}" + ("" if default == "None" else f" (default {default})")


def add_method_args(parser) -> None:
    """Add every method option as a flag defaulting to None (= the chosen method's default)."""
    for opt in cli_options().values():
        kwargs: dict[str, Any] = {"dest": opt.dest, "default": None,
                                  "help": _help(opt).replace("%", "%%")}
        if opt.kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs.update(type=opt.kind, choices=opt.choices)
        parser.add_argument(opt.flag, *opt.aliases, **kwargs)


@functools.cache
def renamed_options() -> dict[str, str]:
    """An option's older name -> its current dest (rank -> bottleneck), from the aliases its
    field declares: a saved config.json or --config file written before the rename still reads."""
    return {alias[2:].replace("-", "_"): dest for dest, opt in cli_options().items() for alias in opt.aliases}


def with_current_names(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` (dest -> value) with each older option name replaced by its current one."""
    renamed = renamed_options()
    current: dict[str, Any] = {}
    for key, value in values.items():
        new = renamed.get(key, key)
        if new != key and new in values and values[new] != value:
            from ..errors import UserError

            raise UserError(f"{key} (the old name of {new}) is {value!r} but {new} is {values[new]!r}; give only {new}")
        current.setdefault(new, value)
    return current


def given_options(namespace: argparse.Namespace) -> dict[str, Any]:
    """The method options a parsed command line sets explicitly (dest -> value)."""
    return {dest: getattr(namespace, dest) for dest in cli_options() if getattr(namespace, dest, None) is not None}


def config_from_options(method: str, options: Mapping[str, Any] | None = None):
    """Method `method`'s validated Config from flag-named options.

    Options the method does not have are ignored: one sweep or command line can set
    --prompt-length for every method it names, fine-tuning included.
    """
    table = cli_options()
    unknown = sorted(k for k in (options or {}) if k not in table)
    if unknown:
        from ..errors import UserError

        raise UserError(f"unknown method option(s) {', '.join(unknown)}; known: {', '.join(sorted(table))}")
    chosen = {table[dest].fields[method]: value for dest, value in (options or {}).items()
              if value is not None and method in table[dest].fields}
    return make_config(method, **chosen)


def options_of(method: str, method_config) -> dict[str, Any]:
    """A method's Config back as flag-named options (dest -> value): the run record's view."""
    dest_of = {opt.fields[method]: dest for dest, opt in cli_options().items() if method in opt.fields}
    return {dest_of[f.name]: getattr(method_config, f.name) for f in dataclasses.fields(method_config)}
