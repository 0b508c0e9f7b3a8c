"""Data at the paper's size: time to the first training step, peak host memory per rank, cache
size on disk, for the six large sources together and ReCoRD alone, on 2 ranks, t5-tiny.

    python benchmarks/make_full_size_data.py --out /tmp/full-data            # (or --scale 0.25)
    git archive <commit before> | tar -x -C /tmp/before                      # today's code, to compare
    python benchmarks/data_scale.py --data-dir /tmp/full-data --before-tree /tmp/before \
        --work-dir /tmp/data-scale --out benchmarks/results [--resume-check]

Every cell is one normal training run (launch/train.py under torchrun, 2 CPU ranks, gloo):
prompt tuning, --max-steps 1, --log-every 1, no checkpoints, 4 evaluation examples per task.
Cold: an empty --cache-dir; warm: the same run again on the cache the cold run left.
Time to first step: from starting torchrun to rank 0's log line of step 1 (the run's own log
timestamps), so it counts interpreter and torch start-up, data, model and engine setup.
Peak host memory per rank: the largest ru_maxrss of any process of the run (each run is
started from its own small wrapper process, whose RUSAGE_CHILDREN covers exactly that run's
ranks); memory-mapped pages a rank has touched count there as well, although the page cache
shares them between ranks. Cache size: the bytes under the run's cache folder after the cold run.
Data setup: rank 0's own "data ready in X s" log line (the new code only). The fixture-rows
scenario (the six tasks on the few dozen rows of examples/data) is the fixed cost of a run.
With --resume-check (on the cache the six-source cell of the same --work-dir left, if any):
the six sources, 2 ranks, 12 steps uninterrupted against 12 steps killed
after step 6 (the recipe's crash hook, an abrupt exit mid-epoch) and resumed; equal when every
trainable tensor and the loss history match exactly.
Results of every label/scale are kept side by side in <out>/data-scale.json and data-scale.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_scaling import machine  # noqa: E402

SCENARIOS = {"six sources": "mnli,qqp,qnli,sst2,squad,record", "record alone": "record",
             "fixture rows (six tasks)": "mnli,qqp,qnli,sst2,squad,record"}
# The reference scenario reads the few dozen fixture rows per task: what a run costs with almost
# no data (interpreter, torch, model and engine start-up), to set the other rows against.
FIXTURE_SCENARIO, FIXTURES = "fixture rows (six tasks)", REPO / "examples" / "data"
# The goals on this machine (six full-size sources, 2 ranks, t5-tiny).
GOAL_WARM_FIRST_STEP_S = 15.0
GOAL_PEAK_RSS_GIB = 1.5
RUN_ARGS = ["--model", "t5-tiny", "--method", "prompt", "--prompt-length", "4", "--batch-size", "8",
            "--max-target-length", "16", "--max-eval-examples", "4", "--eval-every", "1000000",
            "--log-every", "1", "--warmup-steps", "0", "--ds-config", "zero0"]
# Runs one command and prints the largest peak RSS (KiB) among the processes it waited for.
WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
           "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True); sys.exit(rc)")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tree: Path, args: list[str], out: Path, timeout: int, extra_env: dict | None = None) -> dict:
    """One 2-rank run of `tree`'s trainer: exit code, wall seconds, first-step seconds, peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(tree), "DS_ACCELERATOR": "cpu", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **(extra_env or {})}
    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
           str(free_port()), str(tree / "launch" / "train.py"), *args, "--output-dir", str(out)]
    load = round(os.getloadavg()[0], 1)  # other work on the 2 cores slows every timing here
    started = time.time()
    try:
        proc = subprocess.run([sys.executable, "-c", WRAPPER, *cmd], cwd=tree, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "timeout_s": timeout}
    wall = time.time() - started
    maxrss = next((int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("MAXRSS")), None)
    first = first_step_time(out / "logs" / "rank0.log")
    data_s = data_ready_seconds(out / "logs" / "rank0.log")
    return {"status": "ok" if proc.returncode == 0 else f"exit {proc.returncode}",
            "wall_s": round(wall, 1),
            "first_step_s": round(first - started, 1) if first else None,
            "peak_rss_gib": round(maxrss / 2**20, 2) if maxrss else None, "load_1m": load,
            **({"data_setup_s": data_s} if data_s is not None else {}),
            **({"tail": (proc.stdout + proc.stderr)[-1500:]} if proc.returncode else {})}


def first_step_time(log: Path) -> float | None:
    """Epoch seconds of rank 0's 'step 1 loss' line (asctime is local time, milliseconds)."""
    if not log.is_file():
        return None
    for line in log.read_text().splitlines():
        if " step 1 loss " in line:
            stamp = " ".join(line.split()[:2])
            return time.mktime(time.strptime(stamp.split(",")[0], "%Y-%m-%d %H:%M:%S")) + \
                int(stamp.split(",")[1]) / 1000
    return None


def data_ready_seconds(log: Path) -> float | None:
    """Rank 0's own 'data ready in X s' (the new code logs it; today's code does not)."""
    if not log.is_file():
        return None
    for line in log.read_text().splitlines():
        if " data ready in " in line:
            return float(line.split(" data ready in ")[1].split(" s")[0])
    return None


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(label: str, tree: Path, scenario: str, data_dir: Path, work: Path, timeout: int,
            states: tuple[str, ...] = ("cold", "warm")) -> dict:
    cell = work / label / scenario.replace(" ", "-")
    for state in states:  # warm alone reuses the cache an earlier cold run left
        shutil.rmtree(cell / state, ignore_errors=True)
    if "cold" in states:
        shutil.rmtree(cell, ignore_errors=True)
    cache = cell / "cache"
    data_dir = FIXTURES if scenario == FIXTURE_SCENARIO else data_dir
    args = [*RUN_ARGS, "--tasks", SCENARIOS[scenario], "--data-dir", str(data_dir), "--cache-dir", str(cache),
            "--no-checkpoints", "--max-steps", "1"]
    row = {"label": label, "scenario": scenario}
    for state in states:
        print(f"[{label}] {scenario}, {state} cache ...", flush=True)
        row[state] = launch(tree, args, cell / state, timeout)
        print(f"    {row[state]}", flush=True)
        if state == "cold":
            row["cache_mib"] = round(folder_bytes(cache) / 2**20, 1) if cache.exists() else None
        if row[state]["status"] != "ok":
            break
    return row


def resume_check(tree: Path, data_dir: Path, work: Path, timeout: int) -> dict:
    import torch

    sys.path.insert(0, str(REPO))
    from attempt_dist.finished.artifacts import read_trainable

    folder = work / "resume-check"
    shutil.rmtree(folder, ignore_errors=True)
    args = [*RUN_ARGS, "--tasks", SCENARIOS["six sources"], "--data-dir", str(data_dir),
            "--cache-dir", str(work / "new" / "six-sources" / "cache"), "--max-steps", "12", "--save-every", "2", "--lr", "0.3"]
    straight = launch(tree, args, folder / "straight", timeout)
    killed = launch(tree, args, folder / "resumed", timeout, {"ATTEMPT_DIST_CRASH_AFTER_STEP": "6"})
    resumed = launch(tree, [*args, "--resume"], folder / "resumed", timeout)
    a = read_trainable(folder / "straight") if straight["status"] == "ok" else {}
    b = read_trainable(folder / "resumed") if resumed["status"] == "ok" else {}
    loss = [json.loads((folder / run / "result.json").read_text()).get("train_loss")
            for run in ("straight", "resumed") if (folder / run / "result.json").is_file()]
    same = bool(a) and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a) and \
        len(loss) == 2 and loss[0] == loss[1]
    return {"straight": straight, "killed_after_step_6": killed["status"], "resumed": resumed, "identical": same}


def markdown(results: dict) -> str:
    lines = ["# Data at the paper's size: first step, host memory, cache (2 CPU ranks, t5-tiny)", "",
             f"Machine: {results['machine']['description']}. Goals (six full-size sources): warm-cache first "
             f"step <= {GOAL_WARM_FIRST_STEP_S:.0f} s, peak host memory per rank <= {GOAL_PEAK_RSS_GIB} GiB. "
             "Load at start: the 1-minute load average when the run began; above ~2 other work shared the "
             "two cores and slowed the timings (memory and cache size do not depend on it).", ""]
    for key, block in sorted(results["runs"].items()):
        lines += [f"## {key}", "", *(f"Command: `{c}`  " for c in block.get("commands") or [block["command"]]),
                  f"Last measured {block['when']}; data: {block['data']}", ""]
        if not block["rows"]:
            lines = lines[:-1]
        else:
            lines += ["| code | sources | cold first step (s) | warm first step (s) | cold peak RSS/rank (GiB) | "
                      "warm peak RSS/rank (GiB) | cache on disk (MiB) | data setup cold / warm (s) | load at start cold / warm |",
                      "|---|---|---|---|---|---|---|---|---|"]
        for row in block["rows"]:
            cold, warm = row.get("cold", {}), row.get("warm", {})
            cell = lambda run, k: run.get(k) if run.get("status") == "ok" else run.get("status", "-")  # noqa: E731
            lines.append(f"| {row['label']} | {row['scenario']} | {cell(cold, 'first_step_s')} | "
                         f"{cell(warm, 'first_step_s')} | {cell(cold, 'peak_rss_gib')} | {cell(warm, 'peak_rss_gib')} | "
                         f"{row.get('cache_mib')} | {cold.get('data_setup_s', '-')} / {warm.get('data_setup_s', '-')} | "
                         f"{cold.get('load_1m', '-')} / {warm.get('load_1m', '-')} |")
        notes = dict.fromkeys(row["cold"]["note"] for row in block["rows"] if row.get("cold", {}).get("note"))
        lines += [f"\nCold runs: {note}." for note in notes]
        if block.get("resume_check"):
            lines += ["", f"Resume after an abrupt exit at step 6 of 12 (six sources): identical to the "
                      f"uninterrupted run: **{block['resume_check']['identical']}**"]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="made by make_full_size_data.py")
    parser.add_argument("--data-label", default="full size", help="how the data was made, for the table")
    parser.add_argument("--before-tree", help="a checkout of the code to compare against (today's code)")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma list of: {', '.join(SCENARIOS)}")
    parser.add_argument("--labels", default="new,today", help="which code to run: new (this checkout), today (--before-tree)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per run")
    parser.add_argument("--resume-check", action="store_true")
    parser.add_argument("--states", default="cold,warm",
                        help="cold,warm (default) or warm alone: rerun on the cache a previous cold run left")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios.split(",") if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {', '.join(SCENARIOS)}")
    data_dir, work = Path(args.data_dir).resolve(), Path(args.work_dir).resolve()
    labels = args.labels.split(",")
    trees = ([("new", REPO)] if "new" in labels else []) + \
        ([("today", Path(args.before_tree).resolve())] if args.before_tree and "today" in labels else [])
    states = tuple(args.states.split(","))
    rows = [measure(label, tree, scenario, data_dir, work, args.timeout, states)
            for scenario in args.scenarios.split(",") for label, tree in trees]
    block = {"command": shlex.join(["python", "benchmarks/data_scale.py", *(argv if argv is not None else sys.argv[1:])]),
             "when": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "data": args.data_label,
             "rows": rows}
    if args.resume_check:
        block["resume_check"] = resume_check(REPO, data_dir, work, args.timeout)
        print(f"resume check: {block['resume_check']}", flush=True)
    out = Path(args.out)
    path = out / "data-scale.json"
    results = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    results["machine"] = machine()
    key = args.data_label
    previous = results["runs"].get(key, {}).get("rows", [])
    for row in rows:  # a warm-only rerun keeps the cold numbers of the row it updates
        earlier = next((r for r in previous if (r["label"], r["scenario"]) == (row["label"], row["scenario"])), {})
        row.update({k: v for k, v in earlier.items() if k not in row})
    done = {(r["label"], r["scenario"]) for r in rows}
    block["rows"] = [r for r in previous if (r["label"], r["scenario"]) not in done] + rows
    if "resume_check" not in block and "resume_check" in results["runs"].get(key, {}):
        block["resume_check"] = results["runs"][key]["resume_check"]
    earlier = results["runs"].get(key, {})
    earlier_commands = earlier.get("commands") or ([earlier["command"]] if "command" in earlier else [])
    block["commands"] = [*earlier_commands, block.pop("command")]
    results["runs"][key] = block
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    (out / "data-scale.md").write_text(markdown(results))
    print(f"wrote {path} and data-scale.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
