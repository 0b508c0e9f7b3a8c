"""--overwrite without loss: the old run is moved aside, inside its own folder, and removed only
once the new run has written its first complete checkpoint or finished; a new run that ends
before that gets the old one back.

    RUN/.replaced-run/          the old run's files while the new run has no checkpoint
    RUN/.replaced-run.moving/   files on their way out of or back into RUN (a move cut short)
    RUN/.replaced-run.dropped/  the old run once the new one has a checkpoint, being removed

Only the names a run writes (run_folder.RUN_ARTIFACTS) are moved, and moved as they are: a
symlinked subfolder moves as a link and is unlinked, never followed, when the old run goes.
Every step that decides is one rename inside RUN (the old run is dropped by renaming its folder
first), so a process killed at any point leaves a state the next run in RUN (under the folder's
lock) completes before anything else: .replaced-run or .moving restored, .dropped removed.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import UserError

ASIDE = ".replaced-run"
MOVING = ".replaced-run.moving"
DROPPED = ".replaced-run.dropped"


def set_old_run_aside(out: Path, names: tuple[str, ...]) -> None:
    """Move the old run's files (those of `names` that exist) into RUN/.replaced-run."""
    present = [name for name in names if os.path.lexists(out / name)]
    if not present:
        return
    moving = out / MOVING
    try:
        moving.mkdir()
        for name in present:
            os.rename(out / name, moving / name)
        os.rename(moving, out / ASIDE)
    except OSError as err:
        _move_back(out)
        raise UserError(f"--overwrite could not set the old run in {out} aside ({err.strerror}: {err.filename}); "
                        "nothing was removed") from None


def drop_old_run(out: Path) -> None:
    """The new run has a checkpoint (or finished): the old run set aside goes, links unfollowed."""
    aside = out / ASIDE
    if aside.is_dir() and not aside.is_symlink():
        os.rename(aside, out / DROPPED)  # from here on nothing restores it, even if the removal is cut
    _remove_dropped(out)


def restore_old_run(out: Path, names: tuple[str, ...]) -> bool:
    """The new run ended before its first checkpoint: its files go, the old run's come back.
    Returns whether an old run was restored (on an I/O fault it stays aside, said in a line,
    and the next run in RUN restores it)."""
    aside = out / ASIDE
    if not aside.is_dir() or aside.is_symlink():
        return False
    try:
        for name in names:
            remove_path(out / name)
        os.rename(aside, out / MOVING)
        _move_back(out)
    except OSError as err:
        print(f"warning: restoring the run --overwrite replaced failed ({err.strerror}); it is kept in "
              f"{out / ASIDE} or {out / MOVING}, and the next run in {out} restores it", file=sys.stderr, flush=True)
        return False
    return True


def finish_cut_moves(out: Path, names: tuple[str, ...]) -> None:
    """An --overwrite run in `out` was killed before its first checkpoint (or mid-move): put
    the old run back; a dropped old run cut mid-removal goes. First thing under the lock."""
    _remove_dropped(out)
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


def _remove_dropped(out: Path) -> None:
    dropped = out / DROPPED
    if dropped.is_dir() and not dropped.is_symlink():
        shutil.rmtree(dropped, ignore_errors=True)  # what is left is removed by the next run here


def remove_path(path: Path) -> None:
    """Remove a file, a folder or a link; a link is unlinked, never followed."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
