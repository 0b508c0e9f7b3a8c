"""The light commands start without the heavy libraries: --help, `tasks` and `sweep status` must
not import torch, transformers, deepspeed, scipy, sklearn or pandas (each costs 0.5-4 s at
start-up; benchmarks/startup.py records the times). A correctness guard, not a timed test."""

import json
import os
import subprocess
import sys

from tests.paths import REPO

HEAVY = ("torch", "transformers", "deepspeed", "scipy", "sklearn", "pandas", "datasets")

PROBE = """
import contextlib, io, json, sys
from attempt_dist.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(["--help"])
    except SystemExit as done:
        assert done.code == 0, done.code
    assert main(["tasks", "--json"]) == 0
    status_code = main(["sweep", "status", sys.argv[1]])
print(json.dumps({"heavy": [m for m in %r if m in sys.modules], "status_code": status_code, "out": out.getvalue()}))
""" % (HEAVY,)


def test_help_tasks_and_sweep_status_import_no_heavy_library(tmp_path):
    run = tmp_path / "sweep"
    (run / "cells" / "t5-tiny_prompt_rte_s0" / "run").mkdir(parents=True)
    (run / "sweep.json").write_text(json.dumps({"cells": [{"name": "t5-tiny_prompt_rte_s0"}]}))
    # A schema-1 record: only its top-level fields are required.
    record = {"schema": 1, "status": "completed", "config": {"model": "t5-tiny", "method": "prompt", "tasks": ["rte"]},
              "metrics": {"dev": {"rte": {"accuracy": 50.0}}, "test": {"rte": {"accuracy": 50.0}}},
              "score": {"dev": 50.0, "test": 50.0}}
    (run / "cells" / "t5-tiny_prompt_rte_s0" / "run" / "result.json").write_text(json.dumps(record))
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-c", PROBE, str(run)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    # The commands really ran: help text, the registry's JSON, the cell's row.
    assert "usage: attempt-dist" in probe["out"]
    assert '"name": "boolq"' in probe["out"]
    assert "t5-tiny_prompt_rte_s0" in probe["out"] and probe["status_code"] == 0
    assert probe["heavy"] == []
