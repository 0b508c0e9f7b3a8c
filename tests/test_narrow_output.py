"""Tables stay readable where rich has little room: `tasks` in an 80-column terminal cuts no
word, and `sweep --dry-run` written to a file or pipe keeps one row per cell."""

import os
import subprocess
import sys

from attempt_dist.tasks import TASKS
from tests.paths import REPO


def cli_output(*args, columns=None) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = str(columns)
    done = subprocess.run([sys.executable, "-m", "attempt_dist.cli", *map(str, args)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tasks_at_80_columns_cuts_no_word():
    out = cli_output("tasks", columns=80)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = [line for line in lines if line.startswith("│ ") and line.split("│")[1].strip()]
    assert len(rows) == len(TASKS)  # one line per task: nothing wrapped
    assert "classification" in out and "source_cls" in out and "--json" in out


def test_sweep_dry_run_into_a_file_keeps_one_row_per_cell(tmp_path):
    out = cli_output("sweep", "examples/sweeps/tiny.yaml", "--dry-run", "--output-dir", tmp_path / "sweep")
    cell_rows = [line for line in out.splitlines() if line.startswith("│ t5-")]
    assert len(cell_rows) == 12, out  # the 12 cells, each on one line with its whole name
    assert all("__s42" in line and " submit " in line and "max_steps=4" in line for line in cell_rows)
