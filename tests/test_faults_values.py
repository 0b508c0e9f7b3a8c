"""Values mean what they say: a value that cannot be honoured, has the wrong type or is
ambiguous is one clear line before anything heavy loads, never a silent substitute or a
traceback (issue 24, item 4). Every test calls the check in process: no training run.
"""

import gzip
import json
import shutil

import numpy as np
import pytest
import torch

from attempt_dist.errors import UserError
from attempt_dist.training.config import build_parser, config_from_args, parse_train_args
from tests.train_helpers import DATA

TINY_ARGS = ["--model", "t5-tiny", "--tasks", "rte", "--max-steps", "1"]


def parsed(*argv: str):
    return config_from_args(parse_train_args(build_parser(), [*TINY_ARGS, *argv]))


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and len(message) < 600, message
    return message


# --- options that cannot be honoured ------------------------------------------------------------

def test_a_reduction_factor_past_d_model_is_refused_not_clamped():
    with pytest.raises(UserError, match=r"--reduction-factor 1000 leaves no adapter bottleneck on t5-tiny "
                                        r"\(d_model 32 // 1000 = 0\); use at most 32") as err:
        parsed("--method", "adapter", "--reduction-factor", "1000")
    one_line(err)
    parsed("--method", "adapter", "--reduction-factor", "32")  # a bottleneck of 1: honoured


def test_the_adapter_never_builds_another_bottleneck_than_asked():
    # The backbone's own d_model decides (a --model-path folder may differ from the name's).
    from attempt_dist.methods import apply_method, make_config
    from attempt_dist.model.backbones import build_backbone

    backbone = build_backbone("t5-tiny", "meta")
    with pytest.raises(UserError, match="--reduction-factor 64 leaves no adapter bottleneck"):
        apply_method("adapter", backbone, make_config("adapter", reduction_factor=64))
    model = apply_method("adapter", backbone, make_config("adapter", reduction_factor=16))
    assert {m.down.out_features for m in model.modules() if hasattr(m, "down")} == {32 // 16}


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--seed", str(2**32)), ("--seed", str(10**30)),
                                         ("--data-seed", "-5")])
def test_a_seed_outside_32_bits_is_refused_up_front(flag, value):
    with pytest.raises(UserError, match=f"^{flag} must be between 0 and 4294967295, got {value}$"):
        parsed(flag, value)


# --- --config values against the declared types -------------------------------------------------

@pytest.mark.parametrize("text, fragment", [
    ("max_steps: true", "max_steps must be an integer, got True (bool)"),
    ("max_steps: [1, 2]", "max_steps must be an integer, got [1, 2] (list)"),
    ("max_steps: 2.5", "max_steps must be an integer, got 2.5 (float)"),
    ("tasks: 3", "tasks must be a list of names (or one comma-separated string), got 3 (int)"),
    ("lr: [1]", "lr must be a number, got [1] (list)"),
    ("no_prior: 'yes'", "no_prior must be true or false, got 'yes' (str)"),
    ("data_dir: 2024", "data_dir must be a string, got 2024 (int)"),
    ("batch_size: null", "batch_size is null but must be an integer"),
    ("init: bogus", "init must be one of auto, pretrained, random, got 'bogus'"),
])
def test_config_values_are_checked_against_the_declared_types(tmp_path, text, fragment):
    path = tmp_path / "config.yaml"
    path.write_text(text + "\n")
    with pytest.raises(UserError) as err:
        config_from_args(parse_train_args(build_parser(), ["--config", str(path), "--model", "t5-tiny"]))
    assert one_line(err).startswith(f"--config {path}: {fragment}")


def test_a_config_type_fault_ends_the_train_command_in_one_line(tmp_path, capsys):
    from attempt_dist.training.recipe import main

    path = tmp_path / "config.yaml"
    path.write_text("max_steps: true\ntasks: [rte]\nmodel: t5-tiny\nmethod: prompt\n")
    out = tmp_path / "run"
    assert main(["--config", str(path), "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: --config {path}: max_steps must be an integer, got True (bool)"]
    assert not out.exists()


def test_config_values_in_their_written_forms_still_read(tmp_path):
    # Guards the checks above against refusing what the file format gives: YAML reads 1e-3 as a
    # string, a list may be one comma-separated string, a number may be quoted.
    path = tmp_path / "config.yaml"
    path.write_text("lr: 1e-3\ntasks: 'rte, cb'\nbatch_size: '8'\nepochs: 3\nmax_steps: null\nmodel: t5-tiny\n"
                    "method: prompt\n")
    cfg = config_from_args(parse_train_args(build_parser(), ["--config", str(path)]))
    assert (cfg.tasks, cfg.batch_size, cfg.epochs, cfg.max_steps) == (["rte", "cb"], 8, 3.0, None)
    assert cfg.method_config().lr == 1e-3


@pytest.mark.parametrize("method", ["finetune", "adapter", "bitfit", "prompt", "spot", "attempt"])
def test_a_recorded_config_of_each_method_passes_the_type_checks(tmp_path, method):
    # Guards the checks above against refusing what a run records (config.json's "train").
    from attempt_dist.training.config import TrainConfig, load_config_file

    recorded = TrainConfig(model="t5-tiny", method=method, tasks=["rte", "cb"], source_prompts="lib").to_dict()
    (tmp_path / "config.json").write_text(json.dumps({"train": recorded}))
    assert load_config_file(tmp_path) == recorded


# --- data files ---------------------------------------------------------------------------------

def test_two_data_files_for_one_split_are_refused_naming_both(tmp_path):
    from attempt_dist.data.loading import load_rows
    from attempt_dist.tasks import get_task

    shutil.copytree(DATA / "rte", tmp_path / "rte")
    (tmp_path / "rte" / "train.csv").write_text("sentence1,sentence2,label,idx\na,b,0,0\n")
    with pytest.raises(UserError) as err:
        load_rows(get_task("rte"), "train", tmp_path)
    message = one_line(err)
    assert str(tmp_path / "rte" / "train.jsonl") in message and str(tmp_path / "rte" / "train.csv") in message


@pytest.mark.parametrize("name, content", [
    ("train.jsonl.gz", gzip.compress(b'{"a": 1}\n' * 50)[:30]),
    ("train.jsonl.gz", b"not gzip at all"),
    ("train.parquet", b"PAR1 not really parquet PAR1"),
], ids=["gz-cut-short", "gz-not-gzip", "parquet-garbage"])
def test_a_corrupt_compressed_or_parquet_file_is_one_line_naming_it(tmp_path, name, content):
    from attempt_dist.data.files import read_rows

    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(UserError) as err:
        read_rows(path)
    assert one_line(err).startswith(f"{path}: cannot be read (")


def test_a_stale_cache_entry_with_an_empty_split_is_rebuilt(tmp_path):
    from attempt_dist.data import load_tokenizer, task_features
    from attempt_dist.data.cache import DONE_FILENAME
    from attempt_dist.data.token_arrays import ARRAY_NAMES, save_arrays

    tok = load_tokenizer("t5-tiny")
    first = task_features("rte", 0, DATA, 42, None, tok, 64, 8, tmp_path)
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # The entry a stale build left: complete, counts consistent, and no training examples.
    empty = {name: np.zeros(1 if name.endswith("offsets") else 0, np.int64) for name in ARRAY_NAMES}
    save_arrays(empty, entry, "train")
    done = json.loads((entry / DONE_FILENAME).read_text())
    (entry / DONE_FILENAME).write_text(json.dumps({**done, "counts": {**done["counts"], "train": 0}}))
    again = task_features("rte", 0, DATA, 42, None, tok, 64, 8, tmp_path)
    assert again.built and len(again.train) == len(first.train) > 0


# --- prompt libraries and priors ----------------------------------------------------------------

@pytest.mark.parametrize("index, fragment", [
    ({}, 'it holds no "prompts" mapping'),
    ([], "it holds a JSON list"),
    ({"prompts": []}, 'it holds no "prompts" mapping'),
    ({"prompts": {}}, "holds no prompts"),
])
def test_a_damaged_or_empty_library_index_is_one_line(tmp_path, index, fragment):
    from attempt_dist.methods.prompts import load_library

    (tmp_path / "library.json").write_text(json.dumps(index))
    with pytest.raises(UserError, match=fragment) as err:
        load_library(tmp_path, None, backbone="t5-tiny", d_model=32, prompt_length=4)
    assert "attempt-dist pipeline --stages sources" in one_line(err)


@pytest.mark.parametrize("saved, fragment", [
    ({"meta": {"backbone": "t5-tiny"}}, 'it has no "gate" key'),
    (torch.zeros(3), "holds a bare Tensor, not an attention prior"),
    ({"meta": {"backbone": "t5-tiny"}, "gate": torch.zeros(3)}, 'a "gate" that is a Tensor, not a state dict'),
])
def test_a_prior_without_its_gate_is_one_line(tmp_path, saved, fragment):
    from attempt_dist.methods.attempt import load_prior
    from attempt_dist.training.config import TrainConfig

    torch.save(saved, tmp_path / "prior.pt")
    with pytest.raises(UserError, match=fragment) as err:
        load_prior(tmp_path / "prior.pt", TrainConfig(model="t5-tiny"))
    assert "attempt-dist pipeline --stages prior" in one_line(err)


# --- sweeps -------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    # beside an option only the grid may set
    {"grid": {"models": ["t5-tiny"], "tasks": ["rte"],
              "methods": [{"name": "adapter", "train": {"seed": 1, "reduction_factr": 4}}]}},
    # beside a fault in a field read earlier
    {"trainer": "no_colon", "grid": {"models": ["t5-tiny"], "tasks": ["rte"], "methods": ["adapter"],
                                     "train": {"reduction_factr": 4}}},
])
def test_a_method_option_typo_in_a_sweep_is_named_first(raw):
    from attempt_dist.sweep import parse_sweep

    with pytest.raises(UserError, match=r"unknown key\(s\) reduction_factr;"):
        parse_sweep(raw)


# --- long values in messages --------------------------------------------------------------------

def test_a_long_task_list_is_shortened_in_the_message():
    with pytest.raises(UserError) as err:
        parsed("--tasks", ",".join(["rte"] * 5000))
    assert one_line(err) == "--tasks lists rte more than once (5000 entries in all); list each task once"


@pytest.mark.parametrize("flag, what", [("--tasks", "task"), ("--model", "backbone"), ("--method", "method")])
def test_a_long_unknown_name_is_shortened_in_the_message(flag, what):
    with pytest.raises(UserError, match=f"^unknown {what} 'xxx.*\\.\\.\\. \\(3002 characters\\);") as err:
        parsed(flag, "x" * 3000)
    one_line(err)


def test_a_long_config_value_is_shortened_in_the_message(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"model: {json.dumps(['t5-tiny'] * 5000)}\n")
    with pytest.raises(UserError, match=r"model must be a string, got \['t5-tiny', .*\(5000 in all\)\] \(list\)") as err:
        parse_train_args(build_parser(), ["--config", str(path)])
    one_line(err)

