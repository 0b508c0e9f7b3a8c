"""What a run shows on its terminal (rank 0): training and evaluation progress, dev scores, and
a summary table at the end.

On a terminal, rich's live bars. Anywhere else (a SLURM job's .out file, `> run.log`), a live
bar prints nothing until the end, so plain lines are written instead: one when training starts,
one each time another tenth of the steps is done or LINE_INTERVAL_S seconds have passed, and
one at the end; an evaluation prints one line when it ends and, while it runs, one every
LINE_INTERVAL_S seconds. Other ranks show nothing.

    progress = RunProgress(enabled=info.is_main)
    with progress:
        progress.start_training(total_steps, done)
        progress.train_step(step, loss, examples_per_s)
        progress.eval_start("dev", batches); progress.eval_advance(); progress.eval_end()
        progress.note("dev at step 10: 71.2 ...")
    print_summary(record, out_dir)
"""

from __future__ import annotations

import os
import sys
import time

# Non-terminal output: a progress line at least this often (seconds) while something moves.
LINE_INTERVAL_S = float(os.environ.get("ATTEMPT_DIST_PROGRESS_INTERVAL", "60"))
LINE_PARTS = 10  # ... and each time another tenth of the steps is done


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Lines:
    """When to print the next plain progress line for one counter (steps or batches)."""

    def __init__(self, total: int, done: int = 0) -> None:
        self.total, self.started = max(total, 1), time.monotonic()
        self.last_time, self.last_part = self.started, self._part(done)

    def _part(self, done: int) -> int:
        return done * LINE_PARTS // self.total  # integers: 6/20 is exactly 3 tenths

    def due(self, done: int, by_part: bool = True) -> bool:
        now, part = time.monotonic(), self._part(done)
        if done >= self.total or now - self.last_time >= LINE_INTERVAL_S or (by_part and part > self.last_part):
            self.last_time, self.last_part = now, part
            return True
        return False

    def elapsed(self) -> str:
        return _clock(time.monotonic() - self.started)


class RunProgress:
    def __init__(self, enabled: bool, live: bool | None = None) -> None:
        """enabled: this process shows progress (rank 0). live: rich bars (default: stdout is a terminal)."""
        self.enabled = enabled
        self.live = sys.stdout.isatty() if live is None else live
        self._bars = None
        self._train = self._eval = None
        self._train_lines = self._eval_lines = None
        self._eval_done, self._eval_split = 0, ""
        if enabled and self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bars = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[info]}"), TimeElapsedColumn())

    def __enter__(self) -> "RunProgress":
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bars is not None:
            self._bars.stop()

    def _line(self, text: str) -> None:
        print(text, flush=True)

    def note(self, text: str) -> None:
        """A message (e.g. dev scores) above the live bars, or a plain line."""
        if not self.enabled:
            return
        if self._bars is not None:
            self._bars.console.print(text, highlight=False, soft_wrap=True)
        else:
            self._line(text)

    # --- training -----------------------------------------------------------------------------
    def start_training(self, total: int, done: int = 0) -> None:
        if not self.enabled:
            return
        self._total = total
        if self._bars is not None:
            self._train = self._bars.add_task("train", total=total, completed=done, info="")
        else:
            self._train_lines = _Lines(total, done)
            self._line(f"train: {done}/{total} steps done, {total - done} to go")

    def train_step(self, step: int, loss: float, examples_per_s: float) -> None:
        if not self.enabled:
            return
        if self._bars is not None:
            self._bars.update(self._train, completed=step, info=f"loss {loss:.4f}  {examples_per_s:.1f} ex/s")
        elif self._train_lines.due(step):
            self._line(f"train step {step}/{self._total} ({100 * step / self._total:.0f}%)  loss {loss:.4f}  "
                       f"{examples_per_s:.1f} ex/s  elapsed {self._train_lines.elapsed()}")

    # --- evaluation ---------------------------------------------------------------------------
    def eval_start(self, split: str, batches: int) -> None:
        if not self.enabled:
            return
        self._eval_done, self._eval_split, self._eval_total = 0, split, batches
        if self._bars is not None:
            self._eval = self._bars.add_task(f"eval {split}", total=batches, info="generating")
        else:
            self._eval_lines = _Lines(batches)

    def eval_advance(self) -> None:
        if not self.enabled:
            return
        self._eval_done += 1
        if self._bars is not None:
            self._bars.advance(self._eval)
        elif self._eval_done < self._eval_total and self._eval_lines.due(self._eval_done, by_part=False):
            self._line(f"eval {self._eval_split}: {self._eval_done}/{self._eval_total} batches  "
                       f"elapsed {self._eval_lines.elapsed()}")

    def eval_end(self) -> None:
        if not self.enabled:
            return
        if self._bars is not None:
            self._bars.remove_task(self._eval)
        else:
            self._line(f"eval {self._eval_split}: {self._eval_total} batches in {self._eval_lines.elapsed()}")


def score_line(split: str, step: int, score: float, metrics: dict) -> str:
    """'dev at step 10: 71.20 (rte accuracy 71.20; cb accuracy 80.00, f1 62.50)'."""
    parts = "; ".join(f"{task} " + ", ".join(f"{name} {value:.2f}" for name, value in values.items())
                      for task, values in metrics.items())
    return f"{split} at step {step}: {score:.2f} ({parts})"


def print_summary(record, out_dir) -> None:
    """The end of a run (a record.RunResult): every task's dev and test metrics, the best step."""
    from rich.console import Console
    from rich.table import Table

    cfg = record.config
    table = Table()
    for name in ("task", "metric", "dev", "test"):
        table.add_column(name, justify="left" if name in ("task", "metric") else "right")
    dev, test = record.metrics.get("dev", {}), record.metrics.get("test", {})
    for task in test:
        for metric, value in test[task].items():
            table.add_row(task, metric, f"{dev.get(task, {}).get(metric, float('nan')):.2f}", f"{value:.2f}")
    table.add_row("[bold]score[/]", "mean headline", f"{record.score['dev']:.2f}", f"{record.score['test']:.2f}")
    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(f"{cfg['method']} on {cfg['model']} ({', '.join(cfg['tasks'])}): {record.steps} steps, "
                  f"world size {record.world_size}, {record.wall_time_s:.0f} s", highlight=False)
    console.print(table)
    console.print(f"best dev {record.best.dev_score:.2f} at step {record.best.step}; "
                  f"trainable parameters {record.params.trainable:,}; "
                  f"{record.throughput.train_examples_per_s:.1f} train examples/s", highlight=False)
