"""A training option is one TrainConfig field, declared once with everything said about it.

    batch_size: int = train_option(32, "per-rank micro-batch (default %(default)s)", group="optimisation")
    data_dir: str | None = train_option(None, "local data folder", group="data", path=True,
                                        may_change_on_resume=True)

The train parser (flags, types, defaults, help groups) and the lists other modules keep about
options (what --resume may change: resume_config.py; which values are paths a sweep resolves
against its file, which a sweep's source-library build does not inherit: sweep/spec.py) all
derive from these declarations, as method options derive from their Config (methods/options.py).
Help texts may say %(default)s: argparse fills in the declared default.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..cli_args import csv_arg


def train_option(default: Any, help: str, *, group: str, flag: str | None = None, choices: tuple | None = None,
                 bare: str | None = None, at_least: int | None = None, within: tuple[int, int] | None = None,
                 may_change_on_resume: bool = False, path: bool = False, for_libraries: bool = True,
                 run_setting: bool = False) -> Any:
    """A TrainConfig field that is also a train flag.

    group: the `train --help` section. flag: default --field-name; a bool defaulting to True
    needs its negative flag (--no-save-attention). bare: the value of a str option's flag given
    without one (`--resume` alone means `--resume yes`). at_least: the smallest value validate()
    accepts (None, when the option allows it, always passes). within: the inclusive (lowest,
    highest) value validate() accepts (a seed: what numpy and torch take). may_change_on_resume: --resume accepts a new
    value (everything else defines the run: resume_config.py). path: a file or folder, which a
    sweep file gives relative to itself. for_libraries: a sweep's source-library build inherits
    the sweep's value (False: it describes one target cell or the library's own schedule).
    run_setting: says how and where the run executes, not what it trains (memory settings, as an
    out-of-memory retry changes them; where weights, caches and offload live; when to checkpoint
    and log; how long a rank may wait): a sweep relaunch may change it (sweep/configuration.py).
    """
    meta = {"help": help, "group": group, "flag": flag, "choices": choices, "bare": bare, "at_least": at_least,
            "within": within, "run_setting": run_setting,
            "may_change_on_resume": may_change_on_resume, "path": path, "for_libraries": for_libraries}
    if isinstance(default, (list, dict)):  # a mutable default: each config gets its own copy
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class TrainOption:
    """One declared training option, as the parser and the option lists see it."""

    name: str
    flag: str
    kind: type
    """int, float, str, bool or list (a comma-separated list of strings on the command line)."""
    optional: bool
    """None is a value (the field is declared `X | None`)."""
    default: Any
    help: str
    group: str
    choices: tuple | None
    bare: str | None
    at_least: int | None
    within: tuple[int, int] | None
    may_change_on_resume: bool
    path: bool
    for_libraries: bool
    run_setting: bool

    def add_to(self, group) -> None:
        kwargs: dict[str, Any] = {"dest": self.name, "default": self.default, "help": self.help}
        if self.kind is bool:
            kwargs["action"] = "store_false" if self.default else "store_true"
        else:
            if self.kind is not str:
                kwargs["type"] = csv_arg if self.kind is list else self.kind
            if self.choices is not None:
                kwargs["choices"] = self.choices
            if self.bare is not None:
                kwargs.update(nargs="?", const=self.bare)
        group.add_argument(self.flag, **kwargs)


def _kind(annotation: Any) -> type:
    # `from __future__ import annotations`: field types arrive as strings ("int | None").
    base = str(annotation).replace("| None", "").strip()
    kinds = {"int": int, "float": float, "str": str, "bool": bool, "list[str]": list}
    if base not in kinds:
        raise TypeError(f"train option type {annotation!r} has no command-line form; "
                        "use int, float, str, bool or list[str]")
    return kinds[base]


def declared_options(config_cls: type) -> dict[str, TrainOption]:
    """name -> TrainOption for each field of `config_cls` declared with train_option, in order."""
    out = {}
    for f in dataclasses.fields(config_cls):
        meta = f.metadata
        if "group" not in meta:
            continue  # not a train option (TrainConfig.options holds the method options)
        kind = _kind(f.type)
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        if kind is bool and default and not meta["flag"]:
            raise TypeError(f"{config_cls.__name__}.{f.name} defaults to True: declare its negative flag "
                            f"(flag='--no-{f.name.replace('_', '-')}')")
        out[f.name] = TrainOption(
            name=f.name, flag=meta["flag"] or "--" + f.name.replace("_", "-"), kind=kind,
            optional="None" in str(f.type), default=default, help=meta["help"], group=meta["group"],
            choices=meta["choices"], bare=meta["bare"], at_least=meta["at_least"], within=meta["within"],
            may_change_on_resume=meta["may_change_on_resume"], path=meta["path"],
            for_libraries=meta["for_libraries"], run_setting=meta["run_setting"])
    return out


def add_grouped(parser: argparse.ArgumentParser, options: Iterable[TrainOption],
                groups: Mapping[str, str | None], extra: Mapping[str, Any] | None = None) -> None:
    """One argument group per title of `groups` (title -> description), in that order, holding
    the options declared in it; `extra[title](group)` fills a group the options do not."""
    options = list(options)
    unknown = sorted({o.group for o in options} - set(groups))
    if unknown:
        raise TypeError(f"train option group(s) {', '.join(unknown)} are not among {', '.join(groups)}")
    for title, description in groups.items():
        group = parser.add_argument_group(title, description)
        if extra and title in extra:
            extra[title](group)
        for option in options:
            if option.group == title:
                option.add_to(group)


class FlagClash(TypeError):
    """Two declarations ask for the same command-line flag (or the same parsed name)."""


def check_flags(train: Mapping[str, TrainOption], method_options: Mapping[str, Any], owner: str) -> None:
    """Refuse a method option whose flag or parsed name is a train option's: argparse would
    otherwise fail with a traceback at `train --help`, far from either declaration.

    method_options: methods/options.py's cli_options() (dest -> CliOption).
    """
    train_names = {}
    for option in train.values():
        train_names[option.flag] = option
        train_names[option.name] = option
    for dest, method_option in method_options.items():
        for key in (method_option.flag, *method_option.aliases, dest):
            clash = train_names.get(key)
            if clash is not None:
                fields = ", ".join(f"methods/{m}.py Config.{name}" for m, name in method_option.fields.items())
                raise FlagClash(f"method option {fields} (flag {method_option.flag}) clashes with train option "
                                f"{owner}.{clash.name} (flag {clash.flag}); give the method field its own "
                                f"flag: option(..., flag='--<method>-{dest.replace('_', '-')}')")
