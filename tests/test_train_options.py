"""Train options: each one TrainConfig declaration; the parser, --help sections, the resume,
path and library lists derive from it, and a method flag that clashes with one fails at import."""

import dataclasses
import os
import re
import subprocess
import sys

import pytest

from attempt_dist.methods.options import CliOption
from attempt_dist.training.resume_config import MAY_CHANGE_ON_RESUME
from attempt_dist.sweep import parse_sweep
from attempt_dist.errors import UserError
from attempt_dist.training.config import (DECLARED_OPTIONS, GROUPS, METHOD_OPTIONS_GROUP, TrainConfig, build_parser,
                                       config_from_args, validate)
from attempt_dist.training.options import FlagClash, check_flags
from tests.paths import REPO



def _help_sections(text: str) -> dict[str, str]:
    """`--help` text split at its section headings ("title:" at the line start)."""
    sections, title = {}, None
    for line in text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            sections[title] = ""
        elif title is not None:
            sections[title] += line + "\n"
    return sections


def test_every_option_is_a_flag_in_its_own_help_section_in_declared_order():
    text = build_parser(prog="t").format_help()
    sections = _help_sections(text)
    titles = [t for t in sections if t in GROUPS]
    assert titles == list(GROUPS)  # every section, in the declared order
    # An option's line starts with its flag two spaces in (wrapped help lines are indented deeper).
    flags = {title: re.findall(r"^  (--[a-z-]+)", body, flags=re.M) for title, body in sections.items()}
    for title in GROUPS:
        if title != METHOD_OPTIONS_GROUP:
            assert flags[title] == [o.flag for o in DECLARED_OPTIONS.values() if o.group == title], title
    assert "--prompt-length" in flags[METHOD_OPTIONS_GROUP]  # the methods' own section is filled
    words = " ".join(text.split())  # %(default)s in a help text is filled in
    assert "per-rank micro-batch (default 32)" in words and "training epochs (default 20)" in words


def test_every_declared_option_round_trips_through_flags_and_the_record():
    """A non-default value for every option reaches the config and comes back from config.json."""
    argv, wanted = [], {}
    for option in DECLARED_OPTIONS.values():
        if option.kind is bool:
            argv.append(option.flag)
            wanted[option.name] = not option.default
        elif option.choices:
            value = next(c for c in option.choices if c != option.default)
            argv += [option.flag, value]
            wanted[option.name] = value
        elif option.kind is list:
            argv += [option.flag, "boolq,cb"]
            wanted[option.name] = ["boolq", "cb"]
        elif option.kind is str:
            value = "prompt" if option.name == "method" else f"x-{option.name}"  # the record resolves the method
            argv += [option.flag, value]
            wanted[option.name] = value
        else:
            argv += [option.flag, "3"]
            wanted[option.name] = option.kind(3)
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args, check=False)  # the values are nonsense to the trainer, not to the parser
    assert {name: getattr(cfg, name) for name in DECLARED_OPTIONS} == wanted
    assert len(wanted) == len(dataclasses.fields(TrainConfig)) - 1  # every field but `options`
    saved = cfg.to_dict()  # config.json's "train": the method options come back resolved
    again = TrainConfig.from_dict(saved)
    assert {name: getattr(again, name) for name in DECLARED_OPTIONS} == wanted and again.to_dict() == saved


def test_a_record_of_an_older_version_without_later_options_still_reads():
    # A config.json "train" block from before --dist-timeout, --log-every and --report-to existed.
    old = {"model": "t5-tiny", "method": "prompt", "tasks": ["rte"], "batch_size": 4, "max_steps": 2,
           "save_attention": False, "prompt_length": 7, "lr": 0.3}
    cfg = TrainConfig.from_dict(old)
    assert (cfg.batch_size, cfg.max_steps, cfg.save_attention) == (4, 2, False)
    assert cfg.dist_timeout == TrainConfig().dist_timeout and cfg.log_every == 10
    assert cfg.method_config().prompt_length == 7 and cfg.options == {"prompt_length": 7, "lr": 0.3}


@pytest.mark.parametrize("name", sorted(n for n, o in DECLARED_OPTIONS.items() if o.at_least is not None))
def test_each_declared_lower_bound_is_enforced_with_the_flag(name):
    option = DECLARED_OPTIONS[name]
    base = {"model": "t5-tiny", "method": "prompt", "tasks": ["rte"], "max_steps": 5}
    validate(TrainConfig(**{**base, name: option.at_least}))  # the bound itself passes
    with pytest.raises(UserError, match=f"^{option.flag} must be at least {option.at_least}, got {option.at_least - 1}$"):
        validate(TrainConfig(**{**base, name: option.at_least - 1}))


def test_the_bounded_options_are_the_counts():
    bounded = {n: o.at_least for n, o in DECLARED_OPTIONS.items() if o.at_least is not None}
    assert bounded == {**dict.fromkeys(("max_target_length", "max_length", "max_train_examples", "max_eval_examples",
                                        "batch_size", "eval_batch_size", "grad_accum", "max_steps", "eval_every",
                                        "save_every", "log_every"), 1), "warmup_steps": 0}


def test_mutable_defaults_are_not_shared():
    one, two = TrainConfig(), TrainConfig()
    one.tasks.append("cb")
    assert two.tasks == ["rte"]


def test_the_resume_list_is_read_from_the_declarations():
    assert MAY_CHANGE_ON_RESUME == {n for n, o in DECLARED_OPTIONS.items() if o.may_change_on_resume}
    # The run-defining core stays run-defining; the schedule's length and the folders may change.
    assert not MAY_CHANGE_ON_RESUME & {"model", "method", "tasks", "batch_size", "grad_accum", "seed", "ds_config"}
    assert {"max_steps", "epochs", "output_dir", "data_dir", "resume"} <= MAY_CHANGE_ON_RESUME


def test_a_sweep_resolves_path_options_and_keeps_target_options_from_its_libraries(tmp_path):
    raw = {"train": {"model_path": "models/t5", "data_dir": "data", "prior": "priors/glue.pt", "epochs": 3,
                     "max_length": 64, "target_init": "vocab"},
           "grid": {"models": ["t5-tiny"], "methods": ["attempt"], "tasks": ["rte"], "library": "glue"},
           "libraries": {"glue": {"sources": ["mnli"]}}}
    sweep = parse_sweep(raw, source=tmp_path / "sweep.yaml")
    cell = sweep.cells[0]
    for key, relative in (("model_path", "models/t5"), ("data_dir", "data"), ("prior", "priors/glue.pt")):
        assert cell.train[key] == str((tmp_path / relative).resolve()), key
    library = next(iter(sweep.libraries.values()))
    assert library.train["max_length"] == 64 and library.train["model_path"] == cell.train["model_path"]
    assert not {"prior", "epochs", "target_init"} & set(library.train)


def _method_option(flag: str, aliases: tuple[str, ...] = ()) -> dict[str, CliOption]:
    dest = flag[2:].replace("-", "_")
    return {dest: CliOption(dest=dest, flag=flag, kind=float, help="h", choices=None, aliases=aliases,
                            fields={"prompt": "dropout"}, defaults={"prompt": 0.0})}


@pytest.mark.parametrize("flag, aliases", [("--dropout", ()), ("--prompt-dropout", ("--dropout",)),
                                           ("--save-attention", ())])
def test_a_method_flag_or_name_taken_by_a_train_option_names_both(flag, aliases):
    with pytest.raises(FlagClash) as err:
        check_flags(DECLARED_OPTIONS, _method_option(flag, aliases), owner="TrainConfig")
    assert "methods/prompt.py Config.dropout" in str(err.value)
    assert ("TrainConfig.dropout" in str(err.value)) != (flag == "--save-attention")
    check_flags(DECLARED_OPTIONS, _method_option("--prompt-dropout"), owner="TrainConfig")  # its own flag: fine


CLASH = """
import dataclasses
from attempt_dist.methods import prompt
from attempt_dist.methods.options import option

@dataclasses.dataclass
class Config(prompt.Config):
    dropout: float = option(0.0, "dropout on the soft prompt")

prompt.Config = Config
import attempt_dist.training.config
"""


def test_a_clashing_method_option_fails_at_import_not_at_help():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", CLASH], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("attempt_dist.training.options.FlagClash: method option methods/prompt.py Config.dropout")
    assert "training.config.TrainConfig.dropout (flag --dropout)" in last
