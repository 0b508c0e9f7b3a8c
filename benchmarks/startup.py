"""How long the light commands take to start: `attempt-dist --help`, `tasks`, `sweep status RUN`.

    python benchmarks/startup.py --label after --out benchmarks/results           # this checkout
    python benchmarks/startup.py --label before --tree /tmp/before --out benchmarks/results

Each command runs as a whole new process (the `attempt-dist` console script, with PYTHONPATH
set to the tree measured, so the tree's own attempt_dist is imported), --repeats times after
one unrecorded warm-up run (the first start reads the files from disk). `sweep status` reads a
small sweep folder made here (one done, one failed and one pending cell). `import torch` alone
is timed too, as the reference for what a command that imports torch cannot go below.
Results of every label are kept side by side in <out>/startup.json and startup.md (min and
median seconds); a run with an existing label replaces that label's numbers.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_scaling import machine  # noqa: E402

# The target: each light command under this many seconds on the project's CPU machine.
TARGET_S = 1.5


def make_sweep_folder(root: Path) -> Path:
    """A sweep folder as `attempt-dist sweep` leaves it: three cells, done / failed / pending."""
    run = root / "sweep"
    names = ["t5-tiny_prompt_rte_s0", "t5-tiny_attempt_rte_s0", "t5-tiny_spot_rte_s0"]
    (run / "cells").mkdir(parents=True)
    (run / "sweep.json").write_text(json.dumps({"cells": [{"name": n} for n in names]}))
    done = run / "cells" / names[0] / "run"
    done.mkdir(parents=True)
    (done / "result.json").write_text(json.dumps({"status": "completed", "score": {"test": 0.5}}))
    failed = run / "cells" / names[1] / "run"
    failed.mkdir(parents=True)
    (failed / "failure.json").write_text(json.dumps({"status": "failed", "reason": "the loss became nan"}))
    return run


def commands(sweep_run: Path) -> dict[str, list[str]]:
    script = shutil.which("attempt-dist")
    cli = [script] if script else [sys.executable, "-m", "attempt_dist.cli"]
    return {"attempt-dist --help": [*cli, "--help"],
            "attempt-dist tasks": [*cli, "tasks"],
            "attempt-dist sweep status RUN": [*cli, "sweep", "status", str(sweep_run)],
            "python -c 'import torch' (reference)": [sys.executable, "-c", "import torch"]}


def time_once(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # `sweep status` exits 1 when a cell failed, as here
        raise SystemExit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return seconds


def measure(tree: Path, repeats: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "DS_ACCELERATOR": "cpu", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    rows = []  # a list, not a dict: the JSON writer sorts keys, the table keeps this order
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in commands(make_sweep_folder(Path(tmp))).items():
            time_once(argv, env)  # warm-up, not recorded
            times = [time_once(argv, env) for _ in range(repeats)]
            rows.append({"name": name, "argv": [Path(argv[0]).name, *argv[1:]], "seconds": [round(t, 3) for t in times],
                         "min_s": round(min(times), 3), "median_s": round(statistics.median(times), 3)})
            print(f"{name}: min {rows[-1]['min_s']:.2f} s, median {rows[-1]['median_s']:.2f} s", flush=True)
    return rows


def load_uptime() -> str | None:
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return None


def render_md(report: dict) -> str:
    labels = list(report["runs"])
    lines = ["# Startup time of the light commands", "",
             f"Whole-process seconds, min / median of each label's repeats; target under {TARGET_S} s.",
             "Command: `python benchmarks/startup.py --label LABEL [--tree TREE] --out benchmarks/results`.", "",
             "| command | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    by_label = {label: {row["name"]: row for row in run["commands"]} for label, run in report["runs"].items()}
    names = list(dict.fromkeys(name for rows in by_label.values() for name in rows))
    for name in names:
        cells = []
        for label in labels:
            row = by_label[label].get(name)
            cells.append(f"{row['min_s']:.2f} / {row['median_s']:.2f}" if row else "-")
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    lines.append("")
    for label, run in report["runs"].items():
        lines.append(f"- **{label}**: {run['date']}, git {run['git_revision'] or '?'}, {run['repeats']} repeats, "
                     f"load average {run['load_average']} at the start; {run['machine']['description']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", required=True, help="name of this measurement, e.g. before or after")
    parser.add_argument("--tree", type=Path, default=REPO, help="the checkout whose attempt_dist is timed (default: this one)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args(argv)
    from attempt_dist.provenance import git_revision
    from attempt_dist.atomic_files import write_json_atomic, write_text_atomic

    tree = args.tree.resolve()
    path = args.out / "startup.json"
    report = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    report["runs"][args.label] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tree": str(tree), "git_revision": git_revision(tree / "attempt_dist"), "repeats": args.repeats,
        "load_average": load_uptime(), "machine": machine(), "commands": measure(tree, args.repeats)}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, report)
    write_text_atomic(args.out / "startup.md", render_md(report))
    print(args.out / "startup.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
