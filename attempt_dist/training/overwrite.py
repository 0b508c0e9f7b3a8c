"""--overwrite without loss: the old run is moved aside, inside its own folder, and removed only
once the new run has written its first complete checkpoint or finished; a new run that ends
before that gets the old one back.

    RUN/.replaced-run/         the old run's files while the new run has no checkpoint
    RUN/.replaced-run.moving/  files on their way out of or back into RUN (moves cut short)

Only the names a run writes (run_folder.RUN_ARTIFACTS) are moved, and moved as they are: a
symlinked subfolder moves as a link and is unlinked, never followed, when the old run goes.
Each step is a rename inside RUN, and a process killed between them leaves one of the two
folders: the next run in RUN (which holds the folder's lock) finishes the restore first.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import UserError

ASIDE = ".replaced-run"
MOVING = ".replaced-run.moving"


def set_old_run_aside(out: Path, names: tuple[str, ...]) -> None:
    """Move the old run's files (those of `names` that exist) into RUN/.replaced-run."""
    present = [name for name in names if os.path.lexists(out / name)]
    if not present:
        return
    moving = out / MOVING
    moving.mkdir()
    try:
        for name in present:
            os.rename(out / name, moving / name)
    except OSError as err:
        _move_back(out)
        raise UserError(f"--overwrite could not set the old run in {out} aside ({err.strerror}: {err.filename}); "
                        "nothing was removed") from None
    os.rename(moving, out / ASIDE)


def drop_old_run(out: Path) -> None:
    """The new run has a checkpoint (or finished): the old run set aside goes, links unfollowed."""
    aside = out / ASIDE
    if aside.is_dir() and not aside.is_symlink():
        shutil.rmtree(aside)


def restore_old_run(out: Path, names: tuple[str, ...]) -> bool:
    """The new run ended before its first checkpoint: its files go, the old run's come back.
    Returns whether there was an old run to restore."""
    aside = out / ASIDE
    if not aside.is_dir() or aside.is_symlink():
        return False
    for name in names:
        remove_path(out / name)
    os.rename(aside, out / MOVING)
    _move_back(out)
    return True


def finish_cut_restore(out: Path, names: tuple[str, ...]) -> None:
    """A run that was replacing this folder's old run was killed before its first checkpoint
    (or while moving files): put the old run back before anything else happens here."""
    if restore_old_run(out, names) or (out / MOVING).is_dir():
        _move_back(out)
        print(f"note: an --overwrite run in {out} ended before its first checkpoint; the run it was replacing "
              "is restored", file=sys.stderr, flush=True)


def _move_back(out: Path) -> None:
    moving = out / MOVING
    if not moving.is_dir():
        return
    for entry in sorted(os.listdir(moving)):
        if os.path.lexists(out / entry):
            raise UserError(f"{out / entry} and {moving / entry} both exist (an --overwrite was cut short); "
                            f"keep the one you want in {out} and remove the other by hand")
        os.rename(moving / entry, out / entry)
    moving.rmdir()


def remove_path(path: Path) -> None:
    """Remove a file, a folder or a link; a link is unlinked, never followed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
