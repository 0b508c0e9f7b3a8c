"""What `sweep --dry-run` says of the sweep's data folders, before any job reads them.

A cell reads each split of its tasks from `data_dir` when the file is there and from the hub
otherwise (data/loading.py), so a missing folder or file is no error at launch: on the cluster
it becomes a download, or, offline, a failed job. The dry run names it, in one line per folder,
on the machine that launches (which on most clusters sees the compute nodes' file system).
"""

from __future__ import annotations

from pathlib import Path

from .spec import Sweep

SHOWN = 4  # splits named per line; the rest are counted


def data_lines(sweep: Sweep) -> list[str]:
    """One line per data folder the sweep's cells or library sources read that is missing, or
    that lacks the local file of some split (those come from the hub)."""
    from ..data.loading import local_file
    from ..tasks import get_task

    tasks_by_folder: dict[str, dict[str, None]] = {}
    for cell in sweep.cells:
        if cell.train.get("data_dir"):
            tasks_by_folder.setdefault(cell.train["data_dir"], {}).update(dict.fromkeys(cell.tasks))
    for library in sweep.libraries.values():
        if library.train.get("data_dir"):
            tasks_by_folder.setdefault(library.train["data_dir"], {}).update(dict.fromkeys(library.sources))
    lines = []
    for folder, tasks in tasks_by_folder.items():
        if not Path(folder).is_dir():
            lines.append(f"data: {folder} does not exist here; every split of its {len(tasks)} task(s) would come "
                         "from the hub at run time (offline: the jobs fail); check --data-dir")
            continue
        splits = [(task, split) for task in tasks for split in dict.fromkeys(get_task(task).hub_splits.values())
                  if get_task(task).generator is None]
        lacking = [f"{task} {split}" for task, split in splits if local_file(get_task(task), split, folder) is None]
        if lacking:
            more = f" and {len(lacking) - SHOWN} more" if len(lacking) > SHOWN else ""
            lines.append(f"data: {folder} has no file for {len(lacking)} of {len(splits)} split(s) "
                         f"({', '.join(lacking[:SHOWN])}{more}): those come from the hub at run time "
                         f"(offline: the jobs fail); a split's file is {folder}/<task>/<split>.jsonl (or .parquet, "
                         ".csv, ...; split names: `attempt-dist tasks --json`)")
    return lines
