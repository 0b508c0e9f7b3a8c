"""Libraries shared by several sweeps (`libraries: {paper: {folder: ../paper-library}}`).

The paper has one set of source prompts, priors and SPoT-t probes per backbone for Tables 2,
3 and 4, so their sweeps name one folder for it. Each sweep's RUN/library/<key> becomes a link
to FOLDER/<key>: every other part of the sweep (planning, submission, status, the cells'
--source-prompts) reads the library where it always did, and whichever sweep launches first
builds it while the others find it done. Launch them one after another: a library another
sweep is still building counts as running, and cells of a local launch that need it fail.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from .spec import Sweep
from .state import library_dir


def shared_library_dir(run: Path, folder: str, key: str) -> Path:
    """Where a shared library lives: `folder` relative to the sweep's run folder."""
    return (Path(run) / folder).resolve() / key


def link_shared_libraries(sweep: Sweep, run: Path) -> None:
    for key, lib in sweep.libraries.items():
        if lib.folder is None:
            continue
        target = shared_library_dir(run, lib.folder, key)
        link = library_dir(run, key)
        if link.is_symlink():
            if link.resolve() == target:
                continue
            link.unlink()  # the sweep file moved its shared folder: follow it
        elif link.exists():
            raise UserError(f"{link} is a library of this run's own, but the sweep file shares it at {target}; "
                            f"move it there (or remove it) and launch again")
        target.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=True)
