"""Task splits as formatted Examples, from local files or the Hugging Face hub.

Local files (see data/files.py for the layout) and hub datasets go through the same steps:
rows in the hub schema -> column check -> MRQA subset filter -> task formatter -> split scheme
(tasks/registry.py) -> train caps -> index renumbering.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..tasks import Example, Task, get_task
from ..tasks import splits as S
from ..tasks.formats import FORMATTERS
from .files import EXTENSIONS, Rows, candidate_paths, read_rows

# What can go wrong inside a formatter on a malformed row; anything else is a bug.
_ROW_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError)


def load_rows(task: Task, split: str, data_dir: str | Path | None) -> Rows:
    """One hub split of a task: generated in code (the toy family), else its local file
    (local_file), else the hub."""
    if task.generator is not None:
        from ..tasks.toy import generate_rows

        origin = f"generated {task.name} split {split}"
        return Rows(generate_rows(task.generator, split), lambda i: f"{origin} row {i}", origin)
    path = local_file(task, split, data_dir)
    if path is not None:
        rows = read_rows(path, columns=(*task.columns, "subset"))
        _check_columns(task, rows)
        return rows
    looked = candidate_paths(data_dir, task.name, split, mrqa=task.mrqa_subset is not None) \
        if data_dir is not None else []
    return _hub_rows(task, split, looked)


def local_file(task: Task, split: str, data_dir: str | Path | None) -> Path | None:
    """The local file one hub split of the task reads: the one that exists in the task's own
    folder, else (MRQA) in the shared one; two in one folder (train.jsonl and train.csv) are
    refused: which one holds the data is the user's to say."""
    if data_dir is None:
        return None
    looked = candidate_paths(data_dir, task.name, split, mrqa=task.mrqa_subset is not None)
    for folder in dict.fromkeys(path.parent for path in looked):
        found = [path for path in looked if path.parent == folder and path.is_file()]
        if len(found) > 1:
            raise UserError(f"{task.name} split '{split}' has {len(found)} data files: "
                            f"{', '.join(map(str, found))}; keep one (move or delete the others)")
        if found:
            return found[0]
    return None


def local_source_files(task: Task, data_dir: str | Path | None) -> list[Path] | None:
    """The local file of each of the task's hub splits, or None when any split comes from the hub."""
    files = [local_file(task, split, data_dir) for split in task.hub_splits.values()]
    return None if None in files else files


def _hub_rows(task: Task, split: str, looked: list[Path]) -> Rows:
    import datasets

    try:
        ds = datasets.load_dataset(task.hub_id, task.hub_config, split=split)
    except Exception as err:  # offline, missing repo, unknown split: all mean "no data here"
        where = f"no local file {_patterns(looked, split)}" if looked else "no data_dir given"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"{task.name} split '{split}': {where}, and hub dataset {task.hub_id} "
            f"(config {task.hub_config}) could not be loaded: {reason}"
        ) from None
    origin = f"hub {task.hub_id} ({task.hub_config}) split {split}"
    missing = [c for c in task.columns if c not in ds.column_names]
    if missing:
        raise UserError(f"{origin}: missing columns {', '.join(missing)} needed by task {task.name}")
    if task.mrqa_subset is not None:
        ds = ds.filter(lambda s: s == task.mrqa_subset, input_columns="subset")
    # Only the needed columns: MRQA's token lists are large and unused.
    ds = ds.select_columns(list(task.columns))
    return Rows(ds, lambda i: f"{origin} row {i}", origin)


def _patterns(paths: list[Path], split: str) -> str:
    """'d/rte/validation.{jsonl,json,...}' for each folder looked in."""
    exts = ",".join(e.lstrip(".") for e in EXTENSIONS)
    folders = dict.fromkeys(p.parent for p in paths)
    return " or ".join(f"{folder}/{split}.{{{exts}}}" for folder in folders)


def _check_columns(task: Task, rows: Rows) -> None:
    if not rows.rows:
        return
    found = rows.columns if rows.columns is not None else list(rows.rows[0])
    missing = [c for c in task.columns if c not in found]
    if missing:
        raise UserError(
            f"{rows.where(0)}: missing columns {', '.join(missing)} needed by task {task.name} "
            f"(found: {', '.join(found)})"
        )


def format_rows(task: Task, rows: Rows, split: str) -> list[Example]:
    formatter = FORMATTERS[task.formatter]
    examples: list[Example] = []
    kept = 0
    for i, row in enumerate(rows.rows):
        if task.mrqa_subset is not None and row.get("subset") != task.mrqa_subset:
            continue
        kept += 1
        try:
            examples.extend(formatter(task, row))
        except _ROW_ERRORS as err:
            detail = f"missing field {err}" if isinstance(err, KeyError) else str(err)
            raise UserError(f"{rows.where(i)}: malformed {task.name} row: {detail}") from None
    if kept == 0:
        what = f"no rows with subset={task.mrqa_subset}" if task.mrqa_subset and len(rows.rows) else "no rows"
        raise UserError(f"{task.name} split '{split}' is empty: {rows.origin} has {what}")
    return examples


def load_task_splits(task: str, data_dir: str | Path | None, seed: int = 42,
                     max_train: int | None = None) -> dict[str, list[Example]]:
    """{"train", "dev", "test"} lists of Examples for one task, split as in the paper.

    seed        fixes the dev/test split and any subsampling (same seed, same splits)
    max_train   keep at most this many training examples (after the task's own cap)
    """
    spec = get_task(task)
    raw = {role: format_rows(spec, load_rows(spec, split, data_dir), split)
           for role, split in spec.hub_splits.items()}
    if spec.split_scheme == S.HALVE_SCHEME:
        train = raw["train"]
        dev, test = S.halve(raw["eval"], seed)
    elif spec.split_scheme == S.HOLDOUT_SCHEME:
        train, dev = S.holdout(raw["train"], seed, S.dev_holdout_size(len(raw["train"])))
        test = raw["test"]
    else:
        train, dev, test = raw["train"], raw["dev"], raw["test"]
    train = S.subsample(train, spec.train_cap, seed)
    train = S.subsample(train, max_train, seed)
    result = {"train": train, "dev": dev, "test": test}
    for name, examples in result.items():
        if not examples:
            raise UserError(
                f"{task}: the {name} split came out empty (scheme {spec.split_scheme}); "
                f"the source data has too few labelled rows"
            )
        S.renumber(examples)
    return result
