"""The memory planner against measurement: real CPU passes, DeepSpeed's estimators, GPU kernels.

The planner runs the wrapped model on the meta device; here the same model runs on real CPU
tensors under the same instruments, and the two must agree. Model states are checked against
the formulas DeepSpeed ships, and the GPU-kernel replay against what an H200 saved.
"""

from __future__ import annotations

import json

import pytest
import torch

from attempt_dist.model.backbones import enable_activation_checkpointing
from attempt_dist.model.params import build_wrapped
from attempt_dist.planning import GIB, PlanRequest, plan_memory
from attempt_dist.planning.model_states import LAYOUTS, ZeroLayout, model_states
from attempt_dist.planning.planner import trace_for
from attempt_dist.planning.trace import SavedTensors, attention_kernels, measure_step, synthetic_batch

from tests.train_helpers import TINY, launch, result


def _measured(method: str, dtype: torch.dtype, checkpointing: bool, batch: int) -> dict:
    wrapped, _ = build_wrapped("t5-tiny", method, device="cpu", prompt_length=6, bottleneck=4)
    wrapped = wrapped.to(dtype)
    if checkpointing:
        enable_activation_checkpointing(wrapped.backbone)
    wrapped.train()
    data = synthetic_batch(batch, 20, 5, "cpu")  # the second example ends in padding
    data["use_cache"] = False
    return measure_step(wrapped, data)


@pytest.mark.parametrize("method", ["prompt", "attempt", "adapter", "finetune"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_meta_trace_predicts_what_a_real_cpu_step_keeps(method, dtype, checkpointing):
    """Saved activations and the live-bytes peak of a real forward + backward on t5-tiny equal
    the planner's meta-device trace, extrapolated from micro-batches 2 and 3 to 5."""
    req = PlanRequest("t5-tiny", method, batch_size=5, max_length=20, max_target_length=5,
                      options={"prompt_length": 6, "bottleneck": 4}, device="cpu", gpu_mem_cap=None)
    trace = trace_for(req, checkpointing, dtype=dtype)
    real = _measured(method, dtype, checkpointing, batch=5)
    assert real["saved"] > 0
    assert trace.saved_bytes(5) == pytest.approx(real["saved"], rel=0.01)
    assert trace.peak_bytes(5) == pytest.approx(max(real["timeline"]), rel=0.01)


def test_checkpointing_is_what_shrinks_the_trace():
    req = PlanRequest("t5-tiny", "prompt", batch_size=4, max_length=20, max_target_length=5,
                      options={"prompt_length": 6}, device="cpu", gpu_mem_cap=None)
    plain, ckpt = trace_for(req, False), trace_for(req, True)
    assert ckpt.saved_bytes(4) < plain.saved_bytes(4) / 3
    # Saved bytes grow with the batch by the same per-example amount at every batch size.
    assert plain.saved_bytes(8) - plain.saved_bytes(4) == 2 * (plain.saved_bytes(6) - plain.saved_bytes(4))


def test_gpu_kernels_are_replayed_as_an_h200_saved_them():
    """On CUDA (torch 2.11, H200) T5's biased attention ran cuDNN attention, which kept q, k, v,
    the bias, the output and a [B, H, L, 1] fp32 statistic; dropout kept a bool mask."""
    q = torch.empty(2, 3, 7, 4, device="meta", requires_grad=True)
    k, v = torch.empty(2, 3, 9, 4, device="meta"), torch.empty(2, 3, 9, 4, device="meta")
    bias = torch.empty(2, 3, 7, 9, device="meta")
    x = torch.empty(2, 7, 16, device="meta", requires_grad=True)
    kept = []
    with attention_kernels("cuda"), torch.autograd.graph.saved_tensors_hooks(
            lambda t: kept.append((tuple(t.shape), t.dtype)) or t, lambda t: t):
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=0.1)
        torch.nn.functional.dropout(x, 0.1, training=True)
    assert out.shape == (2, 3, 7, 4)
    assert sorted(kept, key=str) == sorted([((2, 3, 7, 4), torch.float32), ((2, 3, 9, 4), torch.float32),
                                            ((2, 3, 9, 4), torch.float32), ((2, 3, 7, 9), torch.float32),
                                            ((2, 3, 7, 4), torch.float32), ((2, 3, 7, 1), torch.float32),
                                            ((2, 7, 16), torch.bool)], key=str)


def test_saved_tensors_skip_weights():
    """Linear keeps a transposed view of its weight for backward: model state, not activation."""
    from attempt_dist.planning.trace import _storage_key

    layer = torch.nn.Linear(8, 8)
    x = torch.randn(3, 8, requires_grad=True)
    with SavedTensors() as everything:
        layer(x).sum()
    assert everything.nbytes == (x.numel() + layer.weight.numel()) * 4  # the weight is saved...
    with SavedTensors({_storage_key(p) for p in layer.parameters()}) as saved:
        layer(x).sum()
    assert saved.nbytes == x.numel() * 4  # ...and counted as model state, not activation


@pytest.mark.parametrize("model", ["t5-small", "t5-3b"])
def test_model_states_equal_deepspeeds_estimators_when_nothing_is_frozen(model):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    from attempt_dist.planning.planner import _params

    params = _params(PlanRequest(model, "finetune", gpu_mem_cap=None))
    total, largest = params["trainable"], params["largest_layer"]
    assert params["frozen"] == 0
    states = {layout.name: model_states(layout, trainable=total, frozen=0, largest_layer=largest) for layout in LAYOUTS}
    cpu, gpu = estimate_zero2_model_states_mem_needs(total, 1, 1, cpu_offload=False)
    assert states["zero2"].device == gpu
    cpu, gpu = estimate_zero2_model_states_mem_needs(total, 1, 1, cpu_offload=True)
    # Plus the bf16 gradients the estimator leaves out and an H200 measured (model_states.py).
    assert (states["zero2+offload(opt)"].device, states["zero2+offload(opt)"].host) == (gpu + 2 * total, cpu)
    cpu, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, 1, 1, cpu_offload=False, cpu_offload_params=False)
    assert states["zero3"].device == gpu
    cpu, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, 1, 1, cpu_offload=True, cpu_offload_params=False)
    assert (states["zero3+offload(opt)"].device, states["zero3+offload(opt)"].host) == (gpu, cpu)
    cpu, gpu, _ = estimate_zero3_model_states_mem_needs(total, largest, 1, 1, cpu_offload=True, cpu_offload_params=True)
    assert (states["zero3+offload(param,opt)"].device, states["zero3+offload(param,opt)"].host) == (gpu, cpu)


def test_a_frozen_backbone_costs_its_weights_only():
    frozen_only = model_states(ZeroLayout(0), trainable=0, frozen=1000, largest_layer=10)
    assert frozen_only.device == 2 * 1000 and frozen_only.host == 0
    sharded = model_states(ZeroLayout(3), trainable=0, frozen=1000, largest_layer=10, world_size=4)
    assert sharded.frozen_weights == 2 * 1000 // 4


def test_plan_recommends_the_fastest_fitting_and_says_when_nothing_fits():
    report = plan_memory(PlanRequest("t5-tiny", "attempt", batch_size=4, max_length=32, max_target_length=4,
                              options={"prompt_length": 8, "bottleneck": 4}, gpu_mem_cap=24 * GIB))
    best = report.recommended
    assert best is not None and best.fits and best.relative_cost == 1.0
    assert best.stage == 0 and not best.offload_param  # a tiny backbone stays whole on the GPU
    assert all(c.step_seconds >= best.step_seconds for c in report.candidates if c.fits)
    assert best.micro_batch * best.grad_accum == 4
    # The CUDA context alone exceeds a 1 GiB cap: nothing fits, and the plan says what would.
    none = plan_memory(PlanRequest("t5-tiny", "attempt", batch_size=4, max_length=32, max_target_length=4,
                            options={"prompt_length": 8, "bottleneck": 4}, gpu_mem_cap=1 * GIB))
    assert none.recommended is None and none.smallest_fitting_cap > 1 * GIB
    assert "smallest cap that fits" in none.notes[0]


def test_plan_command_json_and_exit_codes(capsys):
    from attempt_dist.cli import main

    assert main(["plan", "--model", "t5-tiny", "--method", "prompt", "--batch-size", "4", "--max-length", "32",
                 "--max-target-length", "4", "--prompt-length", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recommended"]["fits"] and report["params"]["trainable"] == 8 * 32
    assert main(["plan", "--model", "t5-tiny", "--method", "prompt", "--batch-size", "4", "--max-length", "32",
                 "--gpu-mem-cap", "1GiB"]) == 3
    assert "smallest cap that fits" in capsys.readouterr().out
    assert main(["plan", "--model", "t5-huge", "--method", "prompt"]) == 2


def test_train_auto_uses_and_records_the_plan(tmp_path):
    out = tmp_path / "run"
    launch([*TINY, "--method", "prompt", "--tasks", "rte", "--ds-config", "auto", "--batch-size", "4",
            "--max-steps", "2", "--no-checkpoints", "--output-dir", str(out)])
    record = result(out)
    chosen = record["plan"]["chosen"]
    assert chosen["fits"] and record["config"]["ds_config"] == "auto"
    assert record["config"]["batch_size"] * record["config"]["grad_accum"] == 4
    assert record["deepspeed"]["stage"] == chosen["stage"]
    assert not (out / "checkpoints").exists()


def test_train_auto_that_cannot_fit_exits_3_before_loading_weights(tmp_path, monkeypatch, capsys):
    """t5-small fine-tuning under 1 GiB needs offload, and offload needs more host memory than
    this (pretend) machine has: exit 3, failure.json, no weights ever built."""
    from attempt_dist.training import recipe as train
    from attempt_dist.distributed import DistInfo
    from attempt_dist.planning import auto
    from attempt_dist.training.failure import EXIT_OOM

    monkeypatch.setattr(auto, "host_memory_bytes", lambda: 1 * GIB)
    # In-process: no process group for this one rank (nothing collective happens before the plan).
    monkeypatch.setattr(train.dist, "init_distributed", lambda **_: DistInfo(rank=0, local_rank=0, world_size=1, is_main=True))
    monkeypatch.setattr(train.dist, "barrier", lambda: None)
    monkeypatch.setattr(train, "load_backbone", lambda cfg: pytest.fail("weights were loaded"))
    out = tmp_path / "run"
    code = train.main([*TINY, "--model", "t5-small", "--tokenizer", "t5-tiny", "--init", "random",
                       "--method", "finetune", "--tasks", "rte", "--ds-config", "auto", "--gpu-mem-cap", "1GiB",
                       "--max-steps", "1", "--output-dir", str(out)])
    assert code == EXIT_OOM
    failure = json.loads((out / "failure.json").read_text())
    assert failure["status"] == "oom" and "host memory" in failure["reason"]
    err = capsys.readouterr().err
    assert "fits under 1.0 GiB in no configuration" in err and "Traceback" not in err


def test_evaluation_batch_shrinks_until_generation_fits():
    """The default evaluation batch (2x the micro-batch) is halved while the decoder's caches
    for it would not fit beside the weights; auto passes the result as --eval-batch-size."""
    import dataclasses

    from attempt_dist.planning.planner import _eval_batch, _evaluation_peak, _params, generation_bytes

    req = PlanRequest("t5-tiny", "prompt", batch_size=8, max_length=32, max_target_length=4,
                      options={"prompt_length": 8}, gpu_mem_cap=None, context_bytes=0)
    assert generation_bytes(req, 16) == 2 * generation_bytes(req, 8)
    params = _params(req)
    layout = ZeroLayout(0)
    states = model_states(layout, trainable=params["trainable"], frozen=params["frozen"],
                          largest_layer=params["largest_layer"], weight_bytes=2)
    at16, at8 = (_evaluation_peak(req, params, layout, states, b) for b in (16, 8))
    capped = dataclasses.replace(req, gpu_mem_cap=int((at16 + at8) / 2 / (1 - req.headroom)))
    assert _eval_batch(capped, params, layout, states, micro=8) == (8, at8)
    assert _eval_batch(req, params, layout, states, micro=8) == (16, at16)  # no cap: 2x the micro-batch
