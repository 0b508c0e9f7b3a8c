"""Dev evaluation under ZeRO-3 on 2 CPU ranks: weights gathered once per evaluation vs per decoding step.

    python benchmarks/eval_zero3.py --out benchmarks/results                  # 2 variants x 3 repeats, ~12 min on 2 cores
    git worktree add --detach /tmp/eval-before <commit before the change>
    python benchmarks/eval_zero3.py --before-tree /tmp/eval-before --out benchmarks/results
    python benchmarks/eval_zero3.py --dry-run                                 # print the commands

The run is issue 9's 2-rank ZeRO-3 tiny run, the normal recipe with its defaults (batch 32 per
rank, so an epoch is 2 steps and dev is evaluated 10 times in 20 steps, then dev and test once
more with the best checkpoint; prompt length 100, r 100, 16 new tokens for label tasks):

    python -m deepspeed.launcher.runner --num_gpus 2 launch/train.py --model t5-tiny --method attempt \\
        --tasks boolq,cb --data-dir examples/data --source-prompts LIB --ds-config ds_configs/zero3_offload.json \\
        --max-steps 20 --output-dir RUN

with LIB a random library (mnli, sst2, squad; 100 x 32) made here. Variants, run in turn
(A B [C] A B [C] ...) so that drift of a shared machine hits all of them alike:
  gather-once  this checkout: evaluation gathers every parameter once per call (the default)
  per-step     this checkout with ATTEMPT_DIST_EVAL_GATHER=never: ZeRO-3 all-gathers each module
               at every decoding step, the code path before the change
  before       (--before-tree) another checkout, e.g. the commit before the change; its record has
               no evaluation times, so only whole-run times are compared
Each row: the whole command's seconds (launcher start to exit), the run's wall_time_s,
training seconds, dev evaluation seconds and calls, test seconds, and the share of the run's
wall time spent in dev evaluation. The markdown holds the medians per variant.
Writes <out>/eval-zero3.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_scaling import machine, make_library  # noqa: E402  (puts the repository on sys.path)

from attempt_dist.provenance import package_versions  # noqa: E402

RUN_ARGS = ["--model", "t5-tiny", "--method", "attempt", "--tasks", "boolq,cb", "--data-dir", "examples/data",
            "--ds-config", "ds_configs/zero3_offload.json", "--max-steps", "20"]
GATHER_ENV = "ATTEMPT_DIST_EVAL_GATHER"  # attempt_dist.distributed.EVAL_GATHER_ENV


def variants(before_tree: Path | None) -> list[dict]:
    found = [{"name": "gather-once", "tree": REPO, "env": {}},
             {"name": "per-step", "tree": REPO, "env": {GATHER_ENV: "never"}}]
    if before_tree is not None:
        found.append({"name": "before", "tree": before_tree, "env": {}})
    return found


def revision(tree: Path) -> str | None:
    """The checkout's commit, with "+dirty" when it has uncommitted changes (None outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tree, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=tree,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def command(tree: Path, library: Path, run_dir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "deepspeed.launcher.runner", "--num_gpus", "2", "--master_port", str(port),
            str(tree / "launch" / "train.py"), *RUN_ARGS, "--source-prompts", str(library),
            "--output-dir", str(run_dir)]


def environment(tree: Path, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (GATHER_ENV, "RANK", "LOCAL_RANK", "WORLD_SIZE",
                                                              "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=str(tree), DS_ACCELERATOR="cpu", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false", **extra)
    return env


def row_from(record: dict, variant: str, repeat: int, command_s: float) -> dict:
    throughput = record["throughput"]
    evals = throughput.get("eval") or {}
    dev, test = evals.get("dev"), evals.get("test")
    wall = record["wall_time_s"]
    return {
        "variant": variant, "repeat": repeat, "command_s": round(command_s, 2), "wall_time_s": round(wall, 2),
        "train_s": round(throughput["examples"] / throughput["train_examples_per_s"], 2),
        "dev_eval_s": dev["seconds"] if dev else None, "dev_evals": dev["calls"] if dev else None,
        "test_eval_s": test["seconds"] if test else None,
        "dev_eval_share": round(dev["seconds"] / wall, 3) if dev else None,
        "eval_share": round((dev["seconds"] + (test["seconds"] if test else 0.0)) / wall, 3) if dev else None,
        "dev_score": record["score"]["dev"], "test_metrics": record["metrics"]["test"],
    }


def medians(rows: list[dict]) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == name and "error" not in r]
        summary = {"variant": name, "runs": len(mine)}
        for key in ("command_s", "wall_time_s", "train_s", "dev_eval_s", "dev_evals", "test_eval_s",
                    "dev_eval_share", "eval_share"):
            values = [r[key] for r in mine if r.get(key) is not None]
            summary[key] = round(statistics.median(values), 3) if values else None
            if key == "dev_eval_s" and values:
                summary["dev_eval_s_range"] = [min(values), max(values)]
        # Paired with gather-once in the same repeat: machine drift cancels in the ratio.
        for key in ("command_s", "dev_eval_s"):
            ratios = [r[key] / g[key] for r in mine for g in rows
                      if g["variant"] == "gather-once" and g["repeat"] == r["repeat"] and "error" not in g
                      and r.get(key) and g.get(key)]
            summary[f"{key}_vs_gather_once"] = round(statistics.median(ratios), 2) if ratios else None
        out.append(summary)
    return out


def markdown(report: dict) -> str:
    lines = [f"# {report['title']}", "", f"- date: {report['date']}", f"- machine: {report['machine']['description']}",
             f"- versions: {report['versions']}", f"- command: `{report['command']}`",
             f"- each run: `{report['run_command']}`", f"- repeats: {report['repeats']} per variant, run in turn"]
    lines += [f"- {v['name']}: code at {v.get('revision')}" + (f", {v['env']}" if v.get("env") else "")
              for v in report.get("variants", [])]
    lines.append("")
    head = ["variant", "runs", "whole command s", "run wall s", "train s", "dev eval s (range)", "dev evals",
            "test eval s", "dev eval share of wall", "all eval share of wall", "whole command / gather-once",
            "dev eval / gather-once"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for m in report["medians"]:
        rng = m.get("dev_eval_s_range")
        dev = "-" if m["dev_eval_s"] is None else f"{m['dev_eval_s']:.1f} ({rng[0]:.1f}-{rng[1]:.1f})"
        share = lambda v: "-" if v is None else f"{100 * v:.0f}%"  # noqa: E731
        num = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
        ratio = lambda v: "-" if v is None else f"{v:.2f}x"  # noqa: E731
        lines.append(f"| {m['variant']} | {m['runs']} | {num(m['command_s'])} | {num(m['wall_time_s'])} | "
                     f"{num(m['train_s'])} | {dev} | {m['dev_evals'] if m['dev_evals'] is not None else '-'} | "
                     f"{num(m['test_eval_s'])} | {share(m['dev_eval_share'])} | {share(m['eval_share'])} | "
                     f"{ratio(m.get('command_s_vs_gather_once'))} | {ratio(m.get('dev_eval_s_vs_gather_once'))} |")
    lines += ["", "Medians over the runs; the ratios are medians of each repeat's pair with gather-once. "
              "Every run is in the JSON."]
    lines += [""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"


NOTES = [
    "whole command s: the launcher's start to its exit (imports, DeepSpeed start-up, setup included); "
    "run wall s: the recipe's wall_time_s (setup, training, evaluations, saving).",
    "dev eval s: all dev evaluations of the run (10 during training + 1 after loading the best checkpoint), "
    "timed around Recipe._evaluate on rank 0; train s: training examples / examples per second.",
    "per-step is the code path before the change (evaluate() on the module, ZeRO-3 hooks fetching each module "
    "per forward call); with batch 32 and 10 dev examples per task each rank generates one batch per task, so "
    "length sorting and the larger default eval batch change nothing here: the difference is the gathering.",
    "Two ranks share two cores and the machine is shared, so single runs vary; compare medians of one file.",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None, help="folder for eval-zero3.json/.md (default: print only)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per variant (default 3)")
    parser.add_argument("--before-tree", type=Path, default=None,
                        help="a checkout of the code before the change (e.g. a git worktree) to time as 'before'")
    parser.add_argument("--work-dir", type=Path, default=None, help="run folders, logs, library (default: a temp folder)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per run (default 900)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    args = parser.parse_args(argv)
    work = args.work_dir or (Path("WORK") if args.dry_run else Path(tempfile.mkdtemp(prefix="eval-zero3-")))
    library = work / "library"
    chosen = variants(args.before_tree)
    if args.dry_run:
        for v in chosen:
            env = " ".join(f"{k}={v_}" for k, v_ in v["env"].items())
            print(f"{v['name']}: {env + ' ' if env else ''}PYTHONPATH={v['tree']} "
                  f"{shlex.join(command(v['tree'], library, work / 'runs' / v['name'], 29700))}")
        return 0
    work.mkdir(parents=True, exist_ok=True)
    make_library(library, "t5-tiny", 100)
    rows = []
    for repeat in range(args.repeats):
        for i, v in enumerate(chosen):
            run_dir = work / "runs" / f"{v['name']}-{repeat}"
            cmd = command(v["tree"], library, run_dir, 29700 + 10 * repeat + i)
            print(f"[{repeat + 1}/{args.repeats}] {v['name']}: {shlex.join(cmd)}", flush=True)
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            with open(work / "runs" / f"{v['name']}-{repeat}.log", "w") as log:
                code = subprocess.run(cmd, cwd=v["tree"], env=environment(v["tree"], v["env"]), stdout=log,
                                      stderr=subprocess.STDOUT, timeout=args.timeout).returncode
            elapsed = time.perf_counter() - start
            result = run_dir / "result.json"
            if code != 0 or not result.exists():
                rows.append({"variant": v["name"], "repeat": repeat, "error": f"exit {code}", "log": str(log.name)})
                print(f"    -> failed (exit {code}), see {log.name}", flush=True)
                continue
            row = row_from(json.loads(result.read_text()), v["name"], repeat, elapsed)
            rows.append(row)
            print(f"    -> {row['command_s']:.1f} s whole, dev eval {row['dev_eval_s']} s", flush=True)
    report = {
        "title": "Dev evaluation under ZeRO-3, 2 CPU ranks: gather once vs per decoding step",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(), "versions": package_versions(), "repeats": args.repeats,
        "command": "python benchmarks/eval_zero3.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "run_command": shlex.join(["python", "-m", "deepspeed.launcher.runner", "--num_gpus", "2",
                                   "launch/train.py", *RUN_ARGS, "--source-prompts", "LIB", "--output-dir", "RUN"]),
        "variants": [{"name": v["name"], "tree": str(v["tree"]), "revision": revision(v["tree"]), "env": v["env"]}
                     for v in chosen],
        "work_dir": str(work), "rows": rows, "medians": medians(rows), "notes": NOTES,
    }
    text = markdown(report)
    print(text)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval-zero3.json").write_text(json.dumps(report, indent=2) + "\n")
        (out / "eval-zero3.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
