"""The folder an export writes, and what `export --overwrite` may remove there.

Every export leaves OUT/export-manifest.json (MANIFEST) listing the files it wrote. --overwrite
removes only the files an earlier export listed, so it never removes what an export did not
write; a non-empty OUT without a manifest is refused. OUT that is, contains or lies inside a
run or sweep folder (or the exported run itself) is refused before anything is written, with
symlinks resolved first.

    target = ExportTarget.check(out, run, overwrite)    # every refusal, nothing written yet
    with target.staged("peft") as tmp:                    # write the export into tmp
        ...                                               # -> OUT, listed in OUT's manifest
"""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..atomic_files import write_json_atomic
from ..errors import UserError
from .output_paths import json_object, check_folder_target, enclosing_protected, protected_within

MANIFEST = "export-manifest.json"
MANIFEST_FORMAT = "attempt-dist/export"


@dataclass
class ExportTarget:
    out: Path
    """OUT resolved (symlinks followed)."""
    run: Path
    previous: list[str]
    """The files an earlier export listed in OUT's manifest (empty when OUT is new or empty)."""

    @classmethod
    def check(cls, out: str | os.PathLike, run: str | os.PathLike, overwrite: bool) -> "ExportTarget":
        """Every reason to refuse OUT, before anything is read or written."""
        given = check_folder_target(out, "OUT")
        out, run = given.resolve(), Path(run).resolve()
        if out == run or run in out.parents or out in run.parents:
            where = "is" if out == run else "lies inside" if run in out.parents else "contains"
            raise UserError(f"OUT {given} {where} the exported run {run}; choose a folder outside it")
        protected = enclosing_protected(out)
        if protected:
            kind, folder = protected
            where = "is" if folder == out else "lies inside"
            raise UserError(f"OUT {given} {where} the {kind} folder {folder}, which only "
                            f"{'training' if kind == 'run' else 'the sweep'} writes; choose a folder outside it")
        if not out.is_dir() or not any(out.iterdir()):
            return cls(out, run, [])
        if not overwrite:
            raise UserError(f"{given} exists and is not empty; choose a new folder, or pass --overwrite to "
                            "replace an earlier export there")
        protected = protected_within(out)
        if protected:
            raise UserError(f"OUT {given} contains the {protected[0]} folder {protected[1]}; --overwrite "
                            "replaces only an earlier export: choose a new folder")
        return cls(out, run, previous_files(out, given))

    @contextmanager
    def staged(self, export_format: str):
        """Yield a temporary folder beside OUT; when the block succeeds its files move into OUT
        (replacing the earlier export's) and the manifest lists them."""
        tmp = self.out.with_name(f".{self.out.name}.{os.getpid()}.tmp")
        try:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        except OSError as err:
            raise UserError(f"cannot create {tmp} beside OUT ({err.strerror}); choose a writable folder") from None
        try:
            yield tmp
            files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
            manifest = {"format": MANIFEST_FORMAT, "export_format": export_format, "run": str(self.run), "files": files}
            if not self.out.exists() or not any(self.out.iterdir()):
                write_json_atomic(tmp / MANIFEST, manifest)
                os.replace(tmp, self.out)
            else:
                self._replace(tmp, manifest)
        except OSError as err:
            raise UserError(f"writing the export into {self.out} failed ({err.strerror or err}); "
                            "check the folder's space and permissions") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _replace(self, tmp: Path, manifest: dict) -> None:
        """Move the staged files into OUT, removing only the earlier export's files."""
        files = manifest["files"]
        strangers = [f for f in files if f not in self.previous and (self.out / f).exists()]
        if strangers:
            raise UserError(f"{self.out / strangers[0]} was not written by an export (it is not in {MANIFEST}); "
                            "move it away or choose a new folder")
        for name in files:
            inside(self.out, name, self.out)
        # Listing both first: an export cut off midway leaves a manifest naming every file it may have left.
        write_json_atomic(self.out / MANIFEST, {**manifest, "files": sorted(set(files) | set(self.previous))})
        for name in sorted(set(self.previous) - set(files)):
            (self.out / name).unlink(missing_ok=True)
            _remove_empty_parents(self.out / name, self.out)
        for name in files:
            (self.out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, self.out / name)
        write_json_atomic(self.out / MANIFEST, manifest)


def previous_files(out: Path, given: Path) -> list[str]:
    """The files OUT's manifest lists, each checked to lie in OUT itself (no link out of it)."""
    manifest = json_object(out / MANIFEST)
    if manifest is None:
        raise UserError(f"{given} holds no readable {MANIFEST}, so no export wrote it; --overwrite replaces "
                        "only an earlier export's files: choose a new folder")
    files = manifest.get("files")
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, list) or \
            not all(isinstance(f, str) for f in files):
        raise UserError(f"{out / MANIFEST} is not an export manifest ({MANIFEST_FORMAT}); choose a new folder")
    for name in files:
        inside(out, name, given)
    return list(files)


def inside(out: Path, name: str, given: Path) -> None:
    """Refuse a listed file whose path leaves OUT (.., absolute, or through a symlinked folder)."""
    relative = PurePosixPath(name)
    parent = (out / relative).parent
    if relative.is_absolute() or ".." in relative.parts or name == MANIFEST or \
            parent.resolve() != out / relative.parent:
        raise UserError(f"{given / MANIFEST} lists {name!r}, which is not a file inside {given}; "
                        "choose a new folder")


def _remove_empty_parents(path: Path, out: Path) -> None:
    """Remove the folders an earlier export made that its removal left empty (not OUT itself)."""
    for folder in path.parents:
        if folder == out or out not in folder.parents:
            return
        try:
            folder.rmdir()
        except OSError:  # not empty: something else is there, keep it
            return
