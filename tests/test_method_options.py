"""Method options: each method's Config is their one owner; flags, sweep keys and configs derive."""

import dataclasses

import pytest
import torch

from attempt_dist.errors import UserError
from attempt_dist.methods import METHODS, method_module
from attempt_dist.methods.adapter import Adapter
from attempt_dist.methods.options import cli_options, config_from_options, options_of
from attempt_dist.sweep.spec import TRAIN_OPTIONS
from attempt_dist.training.config import TrainConfig, build_parser, config_from_args, parse_train_args


def _parse(*argv: str) -> TrainConfig:
    return config_from_args(build_parser().parse_args(["--model", "t5-tiny", *argv]))


def test_every_config_field_is_a_flag_and_a_sweep_key():
    for method in METHODS:
        fields = {f.name for f in dataclasses.fields(method_module(method).Config)}
        owned = {opt.fields[method] for opt in cli_options().values() if method in opt.fields}
        assert owned == fields, method
    assert set(cli_options()) <= TRAIN_OPTIONS
    help_text = build_parser().format_help()
    for opt in cli_options().values():
        assert opt.flag in help_text


def test_a_flag_reaches_the_method_config_and_the_record():
    cfg = _parse("--method", "adapter", "--adapter-activation", "relu", "--reduction-factor", "16",
                 "--prompt-length", "7")  # prompt_length: an option adapters lack, ignored
    assert cfg.method_config().activation == "relu" and cfg.method_config().reduction_factor == 16
    saved = cfg.to_dict()
    assert saved["adapter_activation"] == "relu" and "prompt_length" not in saved
    again = TrainConfig.from_dict(saved)
    assert again.method_config() == cfg.method_config() and again.to_dict() == saved


def test_defaults_are_the_methods_own():
    cfg = _parse("--method", "attempt", "--source-prompts", "LIB")
    assert cfg.options == {}
    assert options_of("attempt", cfg.method_config())["lr"] == 0.3
    assert config_from_options("finetune", {}).lr == 3e-4  # B.5 garbled; the authors' config (issue 19)
    assert _parse("--method", "attempt", "--source-prompts", "LIB", "--rank", "7").method_config().bottleneck == 7  # the old flag


def test_a_saved_config_of_the_old_name_rank_reads_as_bottleneck(tmp_path):
    saved = _parse("--method", "attempt", "--source-prompts", "LIB", "--bottleneck", "7").to_dict()
    old = {("rank" if k == "bottleneck" else k): v for k, v in saved.items()}
    assert "rank" in old and "bottleneck" not in old
    assert TrainConfig.from_dict(old).method_config().bottleneck == 7  # artefacts of older runs (predict, export)
    config = tmp_path / "config.yaml"
    config.write_text("rank: 9\n")
    args = parse_train_args(build_parser(), ["--model", "t5-tiny", "--config", str(config), "--method", "attempt",
                                             "--source-prompts", "LIB"])
    assert config_from_args(args).method_config().bottleneck == 9  # --config FILE of the old name
    with pytest.raises(UserError, match="rank .the old name of bottleneck. is 9 but bottleneck is 7"):
        TrainConfig.from_dict({**saved, "rank": 9})


@pytest.mark.parametrize("name, function", [("gelu", torch.nn.functional.gelu), ("relu", torch.nn.functional.relu),
                                            ("swish", torch.nn.functional.silu)])
def test_adapter_activation_is_the_one_asked_for(name, function):
    torch.manual_seed(0)
    adapter = Adapter(8, 3, activation=name)
    for p in adapter.parameters():
        torch.nn.init.normal_(p)
    y = torch.randn(2, 5, 8)
    expected = y + adapter.up(function(adapter.down(y)))
    torch.testing.assert_close(adapter(y), expected, rtol=0, atol=0)
    other = Adapter(8, 3, activation="relu" if name != "relu" else "gelu")
    other.load_state_dict(adapter.state_dict())
    assert not torch.equal(other(y), adapter(y))


def test_bad_option_values_are_refused_with_the_flag():
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--adapter-activation", "tanh"])
    with pytest.raises(UserError, match="reduction_factor must be a positive integer"):
        _parse("--method", "adapter", "--reduction-factor", "0")
