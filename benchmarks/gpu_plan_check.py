"""The planner's predictions beside GPU measurements recorded earlier (no GPU needed to run).

    python benchmarks/gpu_plan_check.py --results benchmarks/results/gpu-h200-2026-11-26 [more folders] --out benchmarks/results

A lent GPU's time is short, so its runs record measurements only (plan_accuracy.py --device
cuda, memory_scaling.py); this script re-predicts each measured case with the current planner,
at the shapes the GPU really ran: the activation cases at their synthetic batch, the training
runs at the token lengths of the data they trained on (the shipped example data is short, so
those runs are far below the task's max length). Writes <name>.json and <name>.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _path in (REPO, REPO / "benchmarks"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from memory_scaling import data_lengths as measured_lengths  # noqa: E402  (same folder)
from plan_accuracy import _err, _mib, _pct, markdown_table  # noqa: E402  (one error and table convention)

GIB = 2**30
SHIPPED_LAYOUTS = {"zero0": (0, False, False), "zero2_offload": (2, True, False), "zero3_offload": (3, True, True)}


def activation_rows(report: dict) -> list[dict]:
    import torch

    from attempt_dist.planning.planner import PlanRequest, trace_for

    rows = []
    for m in report["activations"]:
        req = PlanRequest(m["model"], m["method"], batch_size=m["batch"], max_length=m["input_length"],
                          max_target_length=m["target_length"], device="cuda", gpu_mem_cap=None)
        trace = trace_for(req, m["checkpointing"], dtype=getattr(torch, {"bf16": "bfloat16", "fp32": "float32"}[m["dtype"]]))
        saved, peak = trace.saved_bytes(m["batch"]), trace.peak_bytes(m["batch"])
        rows.append({**{k: m[k] for k in ("model", "method", "dtype", "checkpointing", "batch", "input_length", "target_length")},
                     "saved_measured": m["saved_measured"], "saved_predicted": saved,
                     "saved_error_pct": _err(saved, m["saved_measured"]),
                     "allocator_measured": m["allocator_peak_measured"], "peak_predicted": peak,
                     "allocator_error_pct": _err(peak, m["allocator_peak_measured"])})
    return rows


def data_lengths(task: str, data_dir: str, tokenizer: str, max_length: int, max_target_length: int) -> dict:
    """memory_scaling.py's own measurement of a report's training data, re-run here."""
    # plan["data_dir"] is the folder the cells trained on: relative to the repo (the shipped
    # examples/data) or absolute (memory_scaling.py's lengthened copy under its work dir).
    folder = Path(data_dir) if Path(data_dir).is_absolute() else REPO / data_dir
    if not folder.is_dir():
        raise SystemExit(f"error: {folder} (the report's plan data_dir) does not exist here; copy that run's "
                         "data folder to this path, or rewrite it with memory_scaling.write_benchmark_data")
    return measured_lengths(task, folder, tokenizer, max_length, max_target_length)


def run_rows(report: dict) -> list[dict]:
    from attempt_dist.distributed.memory import parse_size
    from attempt_dist.planning.model_states import ZeroLayout
    from attempt_dist.planning.planner import PlanRequest, _params, evaluate_candidate, trace_for

    plan = report["plan"]
    rows = []
    for r in report["rows"]:
        if r.get("status") != "completed":
            rows.append({"cell": r["cell"], "status": r.get("status"), "reason": r.get("reason")})
            continue
        tokenizer = "t5-tiny" if str(r.get("tokenizer", "")).startswith("t5-tiny") else r["model"]
        # Measured by memory_scaling.py on the machine that ran the cells (reports before it did: here).
        got = ((report.get("data") or {}).get("train_lengths", {}).get(tokenizer)
               or data_lengths(plan["task"], plan["data_dir"], tokenizer, plan["max_length"], plan["max_target_length"]))
        lengths = {"input": got["input_max"], "target": got["target_max"], "padded": got["input_min"] != got["input_max"]}
        layout_name = r.get("planned_layout")
        if layout_name:
            stage = int(layout_name[4])
            layout = ZeroLayout(stage, "opt" in layout_name, "param" in layout_name)
        else:
            layout = ZeroLayout(*SHIPPED_LAYOUTS[r["ds_config"]])
        micro, accum = r["micro_batch"], r["grad_accum"]
        req = PlanRequest(r["model"], r["method"], batch_size=micro * accum, max_length=lengths["input"],
                          max_target_length=lengths["target"], options={"prompt_length": plan["prompt_length"]},
                          device="cuda", gpu_mem_cap=parse_size(plan["cap"]) if plan.get("cap") else None,
                          padded_batches=lengths["padded"], max_eval_examples=plan.get("max_eval_examples"))
        cand = evaluate_candidate(req, _params(req), layout, bool(r["checkpointing"]), micro,
                                  trace_for(req, bool(r["checkpointing"])))
        allocator = cand.peak_bytes - cand.components["cuda_context"]
        measured = r["peak_allocated_gib"] * GIB
        rows.append({"cell": r["cell"], "status": "completed", "layout": layout.name, "checkpointing": r["checkpointing"],
                     "micro_batch": micro, "grad_accum": accum, "input_tokens": lengths["input"],
                     "prompt_tokens": plan["prompt_length"] if req.prompted else 0, "target_tokens": lengths["target"],
                     "allocator_measured_gib": r["peak_allocated_gib"], "allocator_predicted_gib": round(allocator / GIB, 3),
                     "allocator_error_pct": _err(allocator, measured),
                     "device_measured_gib": r["device_peak_gib"], "device_predicted_gib": round(cand.peak_bytes / GIB, 3),
                     "device_error_pct": _err(cand.peak_bytes, (r["device_peak_gib"] or 0) * GIB),
                     "examples_per_s": r["examples_per_s"],
                     "predicted_components_gib": {k: round(v / GIB, 3) for k, v in cand.components.items()}})
    return rows


def markdown(out: dict) -> str:
    lines = [f"# Planner vs GPU measurements ({out['device']})", "",
             f"- measurements: {', '.join(out['sources'])}", f"- command: `{out['command']}`", "",
             "## Activations of one step (bf16, real CUDA kernels vs the planner's meta-device replay)", ""]
    lines += markdown_table(
        ["model", "method", "ckpt", "batch", "tokens in+prompt/target", "saved MiB measured", "predicted", "error",
         "allocator peak MiB", "predicted", "error"],
        [[r["model"], r["method"], "on" if r["checkpointing"] else "off", r["batch"],
          f"{r['input_length']}+100/{r['target_length']}", _mib(r["saved_measured"]), _mib(r["saved_predicted"]),
          _pct(r["saved_error_pct"]), _mib(r["allocator_measured"]), _mib(r["peak_predicted"]),
          _pct(r["allocator_error_pct"])] for r in out["activations"]])
    head = ["cell", "layout", "ckpt", "micro x acc", "tokens in+prompt/target", "allocator GiB measured", "predicted",
            "error", "device GiB measured", "predicted", "error", "examples/s"]
    rows = []
    for r in out["runs"]:
        if r["status"] != "completed":
            rows.append([r["cell"], f"{r['status']}: {r.get('reason') or ''}"] + [""] * (len(head) - 2))
            continue
        rows.append([r["cell"], r["layout"], "on" if r["checkpointing"] else "off", f"{r['micro_batch']} x {r['grad_accum']}",
                     f"{r['input_tokens']}+{r['prompt_tokens']}/{r['target_tokens']}", f"{r['allocator_measured_gib']:.2f}",
                     f"{r['allocator_predicted_gib']:.2f}", _pct(r["allocator_error_pct"]), f"{r['device_measured_gib']:.2f}",
                     f"{r['device_predicted_gib']:.2f}", _pct(r["device_error_pct"]), f"{r['examples_per_s']:.2f}"])
    lines += ["", "## Whole training runs under a 24 GiB cap (launch/train.py, 4 steps)", ""] + markdown_table(head, rows)
    lines += ["", "Allocator = torch.cuda.max_memory_allocated over the whole process (setup, 4 steps, final evaluation); "
              "device = NVML's device-wide use (adds the CUDA context), sampled. The planner predicts the allocator peak "
              "as weights + optimizer state + the traced step, and the device peak as that + its CUDA-context constant."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", required=True, nargs="+",
                        help="folders of GPU runs, each with plan-accuracy-gpu.json and/or memory-scaling*.json")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="gpu-plan-check")
    args = parser.parse_args(argv)
    folders = [Path(f) for f in args.results]
    accuracy_files = [f / "plan-accuracy-gpu.json" for f in folders if (f / "plan-accuracy-gpu.json").exists()]
    scaling_files = [p for f in folders for p in sorted(f.glob("memory-scaling*.json"))]
    accuracy = [json.loads(p.read_text()) for p in accuracy_files]
    scaling = [json.loads(p.read_text()) for p in scaling_files]
    devices = sorted({a["device_name"] for a in accuracy} | {s["device"] for s in scaling})
    out = {"device": ", ".join(devices), "sources": [str(p) for p in accuracy_files + scaling_files],
           "command": "python benchmarks/gpu_plan_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "activations": [row for a in accuracy for row in activation_rows(a)],
           "runs": [row for rep in scaling for row in run_rows(rep)]}
    target = Path(args.out)
    (target / f"{args.name}.json").write_text(json.dumps(out, indent=1) + "\n")
    (target / f"{args.name}.md").write_text(markdown(out))
    print(markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
