"""How close is the memory planner to measurement? Activations on real forward/backward passes,
model states against DeepSpeed's own estimators.

    python benchmarks/plan_accuracy.py --out benchmarks/results              # CPU: fp32 + bf16, t5-tiny..t5-base
    python benchmarks/plan_accuracy.py --device cuda --models t5-large,t5-3b --dtypes bf16 --out DIR   # on a GPU

Activations: for each backbone x method x dtype x activation checkpointing, the real wrapped
model (random weights) runs one forward + backward on a padded batch under the same
instruments the planner uses (attempt_dist/planning/trace.py): bytes autograd saves for
backward (plus the inputs checkpointing keeps) and the peak of live tensor bytes. The planner's
numbers come from its meta-device trace at micro-batches 2 and 3, extrapolated to the measured
batch. On a GPU the allocator's own peak (torch.cuda.max_memory_allocated, minus what was
allocated before the step) is recorded too.

Model states: `planning.model_states` for full fine-tuning (nothing frozen) against
`estimate_zero2_model_states_mem_needs` / `estimate_zero3_model_states_mem_needs` from the
installed DeepSpeed, for each paper backbone and layout.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GIB = 2**30
DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
METHODS = ("prompt", "attempt", "adapter", "finetune")


def _err(predicted: int, measured: int) -> float | None:
    return None if not measured else round(100.0 * (predicted - measured) / measured, 3)


def activation_row(model: str, method: str, dtype_name: str, checkpointing: bool, *, batch: int,
                   input_length: int, target_length: int, prompt_length: int, device: str) -> dict:
    import torch

    from attempt_dist.model.backbones import enable_activation_checkpointing
    from attempt_dist.model.params import build_wrapped
    from attempt_dist.planning.planner import PlanRequest, trace_for
    from attempt_dist.planning.trace import attention_kernels, measure_step, synthetic_batch

    dtype = getattr(torch, DTYPES[dtype_name])
    req = PlanRequest(model, method, batch_size=batch, max_length=input_length, max_target_length=target_length,
                      options={"prompt_length": prompt_length, "bottleneck": min(100, prompt_length)},
                      device=device, gpu_mem_cap=None)
    started = time.perf_counter()
    trace = trace_for(req, checkpointing, dtype=dtype)
    plan_s = time.perf_counter() - started

    wrapped, _ = build_wrapped(model, method, device=device, **req.options)
    wrapped = wrapped.to(dtype)
    if checkpointing:
        enable_activation_checkpointing(wrapped.backbone)
    wrapped.train()
    data = synthetic_batch(batch, input_length, target_length, device, vocab=min(1000, wrapped.config.vocab_size))
    data["use_cache"] = False
    allocator = None
    with attention_kernels("cpu"):  # real kernels: whatever this device runs
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
        measured = measure_step(wrapped, data)
        if device == "cuda":
            torch.cuda.synchronize()
            allocator = torch.cuda.max_memory_allocated() - before
    measured_peak = max(measured["timeline"])
    row = {
        "model": model, "method": method, "dtype": dtype_name, "checkpointing": checkpointing, "batch": batch,
        "input_length": input_length, "target_length": target_length, "device": device,
        "saved_measured": measured["saved"], "saved_predicted": trace.saved_bytes(batch),
        "peak_measured": measured_peak, "peak_predicted": trace.peak_bytes(batch),
        "allocator_peak_measured": allocator, "plan_seconds": round(plan_s, 2),
    }
    row["saved_error_pct"] = _err(row["saved_predicted"], row["saved_measured"])
    row["peak_error_pct"] = _err(row["peak_predicted"], row["peak_measured"])
    if allocator is not None:
        row["allocator_error_pct"] = _err(row["peak_predicted"], allocator)
    del wrapped, measured
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def model_state_rows(models: list[str]) -> list[dict]:
    """Full fine-tuning, one GPU: planning.model_states vs DeepSpeed's estimators."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    from attempt_dist.planning.model_states import ZeroLayout, model_states
    from attempt_dist.planning.planner import PlanRequest, _params

    rows = []
    for model in models:
        params = _params(PlanRequest(model, "finetune", gpu_mem_cap=None))
        total, largest = params["trainable"], params["largest_layer"]
        cases = [
            (ZeroLayout(2), estimate_zero2_model_states_mem_needs(total, 1, 1, cpu_offload=False)),
            (ZeroLayout(2, True), estimate_zero2_model_states_mem_needs(total, 1, 1, cpu_offload=True)),
            (ZeroLayout(3), estimate_zero3_model_states_mem_needs(total, largest, 1, 1, cpu_offload=False,
                                                                   cpu_offload_params=False)[:2]),
            (ZeroLayout(3, True), estimate_zero3_model_states_mem_needs(total, largest, 1, 1, cpu_offload=True,
                                                                         cpu_offload_params=False)[:2]),
            (ZeroLayout(3, True, True), estimate_zero3_model_states_mem_needs(total, largest, 1, 1, cpu_offload=True,
                                                                               cpu_offload_params=True)[:2]),
        ]
        for layout, (ds_cpu, ds_gpu) in cases:
            ours = model_states(layout, trainable=total, frozen=0, largest_layer=largest)
            row = {"model": model, "layout": layout.name, "params": total,
                   "gpu_predicted": ours.device, "gpu_deepspeed": int(ds_gpu),
                   "host_predicted": ours.host, "host_deepspeed": int(ds_cpu) if layout.offload_optimizer else None}
            row["gpu_error_pct"] = _err(ours.device, int(ds_gpu))
            row["host_error_pct"] = _err(ours.host, int(ds_cpu)) if layout.offload_optimizer else None
            rows.append(row)
    return rows


def _pct(value) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def _mib(value) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _gib(value) -> str:
    return "-" if value is None else f"{value / GIB:.2f}"


def markdown_table(head: list[str], rows: list[list]) -> list[str]:
    """Lines of a markdown table (the reports of this folder share it)."""
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + \
        ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def markdown(report: dict) -> str:
    lines = [f"# Planner accuracy on {report['device_name']}", "",
             f"- date: {report['date']}", f"- machine: {report['machine']}",
             f"- versions: {report['versions']}", f"- command: `{report['command']}`",
             f"- worst activation error: {report['worst_activation_error_pct']:.3f}% "
             f"(saved and peak); worst model-state error: {report['worst_state_error_pct']:.3f}%", "",
             "## Activations: measured on real tensors vs the planner's meta-device trace", ""]
    lines += markdown_table(
        ["model", "method", "dtype", "ckpt", "batch", "saved MiB measured", "predicted", "error", "peak MiB measured",
         "predicted", "error", "allocator MiB", "error"],
        [[r["model"], r["method"], r["dtype"], "on" if r["checkpointing"] else "off", r["batch"],
          _mib(r["saved_measured"]), _mib(r["saved_predicted"]), _pct(r["saved_error_pct"]),
          _mib(r["peak_measured"]), _mib(r["peak_predicted"]), _pct(r["peak_error_pct"]),
          _mib(r["allocator_peak_measured"]), _pct(r.get("allocator_error_pct"))] for r in report["activations"]])
    if report["model_states"]:
        lines += ["", "## Model states (full fine-tuning, 1 GPU): planner vs DeepSpeed's estimators", ""]
        lines += markdown_table(
            ["model", "layout", "GPU GiB planner", "DeepSpeed", "error", "host GiB planner", "DeepSpeed", "error"],
            [[r["model"], r["layout"], _gib(r["gpu_predicted"]), _gib(r["gpu_deepspeed"]), _pct(r["gpu_error_pct"]),
              _gib(r["host_predicted"]), _gib(r["host_deepspeed"]), _pct(r["host_error_pct"])]
             for r in report["model_states"]])
    lines += ["", "Saved = bytes autograd keeps for backward plus the inputs activation checkpointing keeps; "
              "peak = the highest live bytes of tensors created during forward + backward (parameter gradients "
              "are handed to DeepSpeed's buffers, counted as model state). Errors are (predicted - measured) / measured."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--models", default="t5-tiny,t5-small,t5-base")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--input-length", type=int, default=128)
    parser.add_argument("--target-length", type=int, default=8)
    parser.add_argument("--prompt-length", type=int, default=100)
    parser.add_argument("--extra", default="", help="more cases as model:method:dtype:batch, e.g. t5-large:prompt:bf16:1")
    parser.add_argument("--state-models", default="t5-small,t5-base,t5-large,t5-3b,t5-11b",
                        help="backbones for the model-state check ('' to skip)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="plan-accuracy")
    args = parser.parse_args(argv)
    os.environ.setdefault("DS_ACCELERATOR", "cpu" if args.device == "cpu" else "cuda")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but no CUDA device is visible")
    from attempt_dist.cli_args import split_csv

    cases = [(m, meth, dt, args.batch) for m in split_csv(args.models) for meth in split_csv(args.methods)
             for dt in split_csv(args.dtypes)]
    for extra in split_csv(args.extra):
        m, meth, dt, b = extra.split(":")
        cases.append((m, meth, dt, int(b)))
    rows = []
    for model, method, dtype_name, batch in cases:
        for checkpointing in (False, True):
            row = activation_row(model, method, dtype_name, checkpointing, batch=batch, input_length=args.input_length,
                                 target_length=args.target_length, prompt_length=args.prompt_length, device=args.device)
            print(json.dumps({k: row[k] for k in ("model", "method", "dtype", "checkpointing", "batch",
                                                  "saved_error_pct", "peak_error_pct")}
                             | {"allocator_error_pct": row.get("allocator_error_pct")}), flush=True)
            rows.append(row)
    states = model_state_rows(split_csv(args.state_models)) if args.state_models else []
    from attempt_dist.provenance import package_versions

    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    errors = [abs(r[k]) for r in rows for k in ("saved_error_pct", "peak_error_pct") if r[k] is not None]
    state_errors = [abs(r[k]) for r in states for k in ("gpu_error_pct", "host_error_pct") if r[k] is not None]
    report = {
        "name": args.name, "device_name": device_name,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.platform()}, {os.cpu_count()} cores",
        "versions": ", ".join(f"{p} {v}" for p, v in package_versions().items()),
        "command": "python benchmarks/plan_accuracy.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "worst_activation_error_pct": max(errors, default=0.0), "worst_state_error_pct": max(state_errors, default=0.0),
        "activations": rows, "model_states": states,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
