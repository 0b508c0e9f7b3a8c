"""What the package asks a method by name: each answer comes from the method's own module."""

import pytest

from attempt_dist.errors import UserError
from attempt_dist.finished.export import peft_form
from attempt_dist.methods import METHODS, method_hook, method_module, profile
from attempt_dist.methods.options import cli_options
from attempt_dist.plots.names import method_label, order_methods, table_row
from attempt_dist.sweep.spec import NOT_FOR_LIBRARIES


def test_every_method_declares_what_is_asked_of_it():
    for method in METHODS:
        module = method_module(method)
        for name in ("Config", "NEEDS", "PROFILE", "wrap", "param_groups"):
            assert hasattr(module, name), f"{method} lacks {name}"


def test_the_papers_row_names_and_order():
    rows = {v: (table_row(v, False), table_row(v, True)) for v in
            ("finetune", "adapter", "bitfit", "prompt", "spot", "spot-g", "spot-t", "attempt", "attempt-no_target")}
    assert rows == {"finetune": ("FT", "FT-MT"), "adapter": ("Adapter", "Adapter-MT"),
                    "bitfit": ("BitFit", "BitFit-MT"), "prompt": ("PT", "PT-MT"), "spot": ("SPoT", "SPoT-MT"),
                    "spot-g": ("SPoT-g", "SPoT-g MT"), "spot-t": ("SPoT-t", "SPoT-t MT"),
                    "attempt": ("ATTEMPT-ST", "ATTEMPT-MT"), "attempt-no_target": ("attempt-no_target",
                                                                                   "attempt-no_target-MT")}
    assert order_methods({"attempt", "zzz", "spot-t", "bitfit", "finetune", "adapter"}) == [
        "finetune", "adapter", "bitfit", "spot-t", "attempt", "zzz"]
    assert method_label("prompt") == "Prompt tuning" and method_label("attempt") == "ATTEMPT (ours)"
    assert method_label("mine") == "mine"


def test_peft_export_is_the_methods_say():
    assert [m for m in METHODS if profile(m).peft is not None] == ["prompt", "spot"]
    for method in ("finetune", "adapter", "bitfit", "attempt"):
        with pytest.raises(UserError) as err:
            peft_form(method)
        assert f"{method} runs have no PEFT form: {profile(method).not_in_peft}; " in str(err.value)
        assert "PEFT export works for prompt, spot runs" in str(err.value)


def test_backward_cost_only_fine_tuning_pays_weight_gradients():
    assert {m: profile(m).backward_factor for m in ("finetune", "adapter", "bitfit", "prompt", "spot", "attempt")} == {
        "finetune": 2.0, "adapter": 1.0, "bitfit": 1.0, "prompt": 1.0, "spot": 1.0, "attempt": 1.0}


def test_method_options_a_library_build_does_not_inherit():
    not_inherited = {dest for dest, opt in cli_options().items() if not opt.for_libraries}
    assert not_inherited == {"lr", "gate_lr", "ablation", "single_source", "shared_prompt", "spot_mode",
                             "spot_source", "spot_top_k"}
    assert not_inherited <= NOT_FOR_LIBRARIES
    assert {"prompt_length", "bottleneck", "attention_temperature", "weight_decay"}.isdisjoint(NOT_FOR_LIBRARIES)


def test_spot_asks_its_library_for_its_start():
    stage = method_hook("spot", "library_stage")
    assert [stage({}), stage({"spot_source": "mnli"}), stage({"spot_mode": "targeted"})] == ["spot_g", None, "probes"]
    single = method_hook("attempt", "library_stage")  # the single prompt keeps SPoT-t's choice (6.1)
    assert [single({}), single({"ablation": "no_target"}), single({"ablation": "single_prompt"}),
            single({"ablation": "single_prompt", "single_source": "auto"}),
            single({"ablation": "single_prompt", "single_source": "mnli"})] == [None, None, "probes", "probes", None]
    assert method_hook("a-trainer-of-its-own", "library_stage") is None
