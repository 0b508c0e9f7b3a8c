"""Result records of a results folder, flattened into one row per run.

Any folder works: a sweep's RUN_DIR (cells/<cell>/run/result.json with cells/<cell>/cell.json
beside it) or a tree of plain training output folders. A run's grid coordinates come from the
sweep's cell.json when there is one, else from the record's resolved config.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..results import FAILURE_FILENAME, RESULT_FILENAME, read_json


@dataclass
class Record:
    path: Path                      # the run's output folder
    model: str
    method: str
    variant: str                    # method or a named variant (e.g. attempt-no_target)
    tasks: tuple[str, ...]
    seed: int | None
    status: str                     # completed | oom | failed
    metrics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    ablation: str | None = None
    no_prior: bool = False

    @property
    def multitask(self) -> bool:
        return len(self.tasks) > 1

    def score(self, task: str, split: str = "test") -> float | None:
        """The task's headline number (mean of its own metrics, in percent) on `split`,
        falling back to dev when the record has no such split."""
        by_split = self.metrics.get(split) or self.metrics.get("dev") or {}
        values = by_split.get(task)
        if not values:
            return None
        return primary_score(task, values)


def primary_score(task: str, values: dict) -> float:
    try:
        from ..tasks import primary_score as task_primary

        return float(task_primary(task, values))
    except Exception:  # task registry absent or metric names differ: mean of what is there
        numbers = [float(v) for v in values.values() if isinstance(v, (int, float))]
        return sum(numbers) / len(numbers)


def collect(run_dir: str | Path) -> list[Record]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; pass a sweep's RUN_DIR or a folder of training runs")
    out = []
    for path in sorted(run_dir.rglob(RESULT_FILENAME)) + sorted(run_dir.rglob(FAILURE_FILENAME)):
        if path.name == FAILURE_FILENAME and (path.parent / RESULT_FILENAME).exists():
            continue
        if "library" in path.relative_to(run_dir).parts[:1]:
            continue  # library stages are inputs, not results
        record = _record(path)
        if record is not None:
            out.append(record)
    return out


def _record(path: Path) -> Record | None:
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    config = data.get("config") or {}
    cell_file = path.parent.parent / "cell.json"
    cell = read_json(cell_file) if cell_file.exists() else {}
    train = cell.get("train", {})
    model = cell.get("model") or config.get("model")
    method = cell.get("method") or config.get("method")
    tasks = cell.get("tasks") or config.get("tasks")
    if isinstance(tasks, str):
        tasks = [t for t in tasks.split(",") if t]
    if not (model and method and tasks):
        return None
    status = "completed" if path.name == RESULT_FILENAME else str(data.get("status", "failed"))
    ablation = train.get("ablation", config.get("ablation"))
    no_prior = bool(train.get("no_prior", config.get("no_prior", False)))
    return Record(
        path=path.parent, model=str(model), method=str(method),
        variant=str(cell.get("variant") or method), tasks=tuple(tasks),
        seed=cell.get("seed", config.get("seed")), status=status,
        metrics=data.get("metrics") or {}, params=data.get("params") or {},
        ablation=ablation if ablation not in ("", "none") else None, no_prior=no_prior,
    )


def model_order(models) -> list[str]:
    """Backbones smallest first (by their architecture), unknown names last, alphabetically."""
    try:
        from ..backbones import BACKBONES
    except Exception:
        BACKBONES = {}

    def size(name: str):
        spec = BACKBONES.get(name)
        if spec is None:
            return (1, 0, name)
        layers = spec.num_layers + (spec.num_decoder_layers or spec.num_layers)
        return (0, layers * spec.d_model * (spec.d_ff + 4 * spec.num_heads * spec.d_kv) + spec.vocab_size * spec.d_model, name)

    return sorted(set(models), key=size)
