"""Everything a run or sweep downloads, fetched beforehand on a machine with internet.

    attempt-dist prepare launch/sweeps/scaling.yaml --cache /shared/hf      # on a login node
    export ATTEMPT_DIST_PREPARED=/shared/hf                                # in the jobs (executor.setup)

Compute nodes of many clusters cannot reach the hub. `prepare` fetches, into CACHE (on the
shared file system; it may be $HF_HOME, whose hub/ and datasets/ it leaves to the libraries):
- each pretrained backbone's weights, config and tokenizer -> CACHE/attempt-dist/models/<name>/
  (a folder `--model-path` reads),
- each task's hub splits -> CACHE/attempt-dist/data/<task>/<split>.jsonl (a folder `--data-dir`
  reads; MRQA tasks keep only their subset's rows),
and writes CACHE/attempt-dist/manifest.json, the list of what is there. With
ATTEMPT_DIST_PREPARED=CACHE, `train` (and so every sweep cell) and `sweep` (--dry-run too)
check the manifest before anything else, refuse in one line naming what is missing and the
`prepare` command that fetches it, and read weights and data from the cache.

Without it, a run that needs the hub while the hub cannot be reached stops in one line after
one connection attempt (`require_hub`) instead of minutes of retries.

`--mirror DIR` fetches from a folder laid out like the hub (DIR/<model hub id>/ with the
model's files, DIR/<dataset hub id>/<config>/<split>.jsonl): a site's own copy, and the tests'
stand-in for the hub.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse

from .errors import UserError

PREPARED_ENV = "ATTEMPT_DIST_PREPARED"
MANIFEST_VERSION = 1
# Files of a T5 hub repository that from_pretrained and AutoTokenizer read (not the other
# frameworks' weights: tf_model.h5, flax, onnx).
MODEL_FILES = ["*.json", "spiece.model", "*.txt"]
WEIGHT_FILES = ["*.safetensors"]  # else the PyTorch pickles, when a repository has no safetensors
LEGACY_WEIGHT_FILES = ["pytorch_model*.bin"]
HUB_PROBE_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Need:
    kind: str
    """"model" or "data"."""
    name: str
    """Backbone or task name."""
    hub_id: str
    config: str | None = None
    split: str | None = None

    @property
    def key(self) -> str:
        return f"{self.name}" if self.kind == "model" else f"{self.name}/{self.split}"

    def describe(self) -> str:
        if self.kind == "model":
            return f"{self.name}'s weights and tokenizer ({self.hub_id})"
        return f"{self.name} split {self.split} ({self.hub_id}, {self.config})"


def needs_for(models: Iterable[str], tasks: Iterable[str], *, model_path: str | None = None,
              data_dir: str | None = None, init: str = "auto") -> list[Need]:
    """What runs of these backbones and tasks fetch from the hub (none for the test backbones,
    the toy tasks, a --model-path, a --data-dir or random initialisation)."""
    from .model.backbones import get_spec
    from .tasks import get_task

    needs: list[Need] = []
    if model_path is None and init != "random":
        for model in dict.fromkeys(models):
            spec = get_spec(model)
            if spec.hub_id:
                needs.append(Need("model", model, spec.hub_id))
    if data_dir is None:
        for task in dict.fromkeys(tasks):
            spec = get_task(task)
            if not spec.hub_id:
                continue  # generated in code (the toy family): nothing to fetch
            for split in dict.fromkeys(spec.hub_splits.values()):
                needs.append(Need("data", task, spec.hub_id, spec.hub_config, split))
    return needs


def needs_of_config(cfg, tasks: Iterable[str] | None = None) -> list[Need]:
    return needs_for([cfg.model], cfg.tasks if tasks is None else tasks, model_path=cfg.model_path,
                     data_dir=cfg.data_dir, init=cfg.init)


def needs_of_sweep(sweep) -> list[Need]:
    """Every cell's and every library stage's needs (the libraries train on the source tasks)."""
    found: dict[tuple, Need] = {}
    for cell in sweep.cells:
        train = cell.train
        for need in needs_for([cell.model], cell.tasks, model_path=train.get("model_path"),
                              data_dir=train.get("data_dir"), init=train.get("init", "auto")):
            found.setdefault((need.kind, need.key), need)
    for library in sweep.libraries.values():
        train = library.train
        for need in needs_for([library.model], library.sources, model_path=train.get("model_path"),
                              data_dir=train.get("data_dir"), init=train.get("init", "auto")):
            found.setdefault((need.kind, need.key), need)
    return list(found.values())


# --- the cache and its manifest -------------------------------------------------------------------------
def cache_root(cache: str | Path) -> Path:
    return Path(cache) / "attempt-dist"


def manifest_path(cache: str | Path) -> Path:
    return cache_root(cache) / "manifest.json"


def read_manifest(cache: str | Path) -> dict:
    path = manifest_path(cache)
    if not path.is_file():
        return {"version": MANIFEST_VERSION, "models": {}, "data": {}}
    try:
        manifest = json.loads(path.read_text())
    except ValueError as err:
        raise UserError(f"{path} is not readable JSON ({err}); run `attempt-dist prepare` again") from None
    return {"version": manifest.get("version", 0), "models": manifest.get("models", {}),
            "data": manifest.get("data", {})}


def missing(needs: list[Need], cache: str | Path) -> list[Need]:
    """The needs the manifest does not list, or whose files are gone."""
    manifest = read_manifest(cache)
    root = cache_root(cache)
    gone = []
    for need in needs:
        entry = manifest["models" if need.kind == "model" else "data"].get(need.key)
        if entry is None or not (root / entry["path"]).exists():
            gone.append(need)
    return gone


def prepare_command(needs: list[Need], cache: str | Path) -> str:
    models = sorted({n.name for n in needs if n.kind == "model"})
    tasks = sorted({n.name for n in needs if n.kind == "data"})
    parts = ["attempt-dist prepare"] + ([f"--models {','.join(models)}"] if models else [])
    parts += [f"--tasks {','.join(tasks)}"] if tasks else []
    return " ".join(parts + [f"--cache {cache}"])


def check_prepared(needs: list[Need], cache: str | Path) -> None:
    """One UserError line naming what the cache lacks and the command that fetches it."""
    lacking = missing(needs, cache)
    if lacking:
        shown = ", ".join(n.describe() for n in lacking[:4]) + (f" and {len(lacking) - 4} more" if len(lacking) > 4 else "")
        raise UserError(f"{PREPARED_ENV}={cache} lacks {shown}; on a machine with internet run: "
                        f"{prepare_command(lacking, cache)}")


def check_sweep_prepared(sweep) -> None:
    cache = os.environ.get(PREPARED_ENV)
    if cache:
        check_prepared(needs_of_sweep(sweep), cache)


def apply_prepared(cfg, tasks: Iterable[str] | None = None):
    """cfg with its weights and data read from $ATTEMPT_DIST_PREPARED when that is set (after
    checking the cache holds all of it); cfg unchanged otherwise. tasks: every task the caller
    will train with cfg (the pipeline's sources and targets), default cfg.tasks."""
    import dataclasses

    cache = os.environ.get(PREPARED_ENV)
    needs = needs_of_config(cfg, tasks)
    if not cache:
        require_hub(needs)
        return cfg
    check_prepared(needs, cache)
    changes = {}
    if any(n.kind == "model" for n in needs):
        changes["model_path"] = str(cache_root(cache) / "models" / cfg.model)
    if any(n.kind == "data" for n in needs):
        changes["data_dir"] = str(cache_root(cache) / "data")
    return dataclasses.replace(cfg, **changes)


def _offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"))


def _cached_by_the_libraries(need: Need) -> bool:
    """Whether transformers would find the model without the hub (datasets: not checked)."""
    if need.kind != "model":
        return False
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(need.hub_id, "config.json"), str)
    except ImportError:
        return False


def require_hub(needs: list[Need]) -> None:
    """When something must come from the hub and the hub does not answer one connection
    attempt, stop in one line (instead of the libraries' retries, about a minute)."""
    pending = [n for n in needs if not _cached_by_the_libraries(n)]
    if not pending or _offline():
        return  # nothing to fetch, or the libraries are told they are offline: they fail fast
    endpoint, silent = _hub_silence()
    if silent:
        raise UserError(f"{pending[0].describe()} must come from {endpoint}, which does not answer "
                        f"({silent}); on a machine with internet run: "
                        f"{prepare_command(pending, '/shared/cache')} and set {PREPARED_ENV}=/shared/cache")


def _hub_silence() -> tuple[str, str | None]:
    """(the hub's address, why one connection attempt to it failed, or None when it answered)."""
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=HUB_PROBE_TIMEOUT_S).close()
    except OSError as err:
        return endpoint.geturl(), err.__class__.__name__
    return endpoint.geturl(), None


def _require_hub_for_prepare(lacking: list[Need]) -> None:
    """prepare without --mirror fetches from the hub: one line when it cannot (the libraries
    would retry for about half a minute, then end in a traceback)."""
    if not lacking:
        return
    if _offline():
        raise UserError("prepare fetches from the hub, but HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE, "
                        "HF_DATASETS_OFFLINE) is set; unset it, or pass --mirror DIR (a local copy laid out like the hub)")
    endpoint, silent = _hub_silence()
    if silent:
        raise UserError(f"prepare fetches {lacking[0].describe()} from {endpoint}, which does not answer ({silent}); "
                        "run it on a machine with internet (a login node), or pass --mirror DIR (a local copy laid out like the hub)")


# --- fetching -------------------------------------------------------------------------------------------
def _fetch_model(need: Need, dest: Path, mirror: Path | None) -> None:
    if mirror is not None:
        source = mirror / need.hub_id
        if not source.is_dir():
            raise UserError(f"the mirror {mirror} has no {need.hub_id}/")
        shutil.copytree(source, dest, dirs_exist_ok=True)
        return
    from fnmatch import fnmatch

    from huggingface_hub import list_repo_files, snapshot_download

    files = list_repo_files(need.hub_id)
    weights = WEIGHT_FILES if any(fnmatch(f, WEIGHT_FILES[0]) for f in files) else LEGACY_WEIGHT_FILES
    snapshot_download(need.hub_id, local_dir=str(dest), allow_patterns=MODEL_FILES + weights)


def _fetch_split(need: Need, dest: Path, mirror: Path | None, cache: Path) -> None:
    from .atomic_files import atomic_path
    from .tasks import get_task

    task = get_task(need.name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if mirror is not None:
        source = mirror / need.hub_id / str(need.config) / f"{need.split}.jsonl"
        if not source.is_file():
            raise UserError(f"the mirror {mirror} has no {source.relative_to(mirror)}")
        rows = [json.loads(line) for line in source.read_text().splitlines() if line.strip()]
        if task.mrqa_subset is not None:
            rows = [row for row in rows if row.get("subset") == task.mrqa_subset]
        with atomic_path(dest) as tmp:
            tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return
    import datasets

    ds = datasets.load_dataset(need.hub_id, need.config, split=need.split, cache_dir=str(cache / "datasets"))
    if task.mrqa_subset is not None:
        ds = ds.filter(lambda s: s == task.mrqa_subset, input_columns="subset")
    with atomic_path(dest) as tmp:
        ds.to_json(str(tmp), lines=True)


def prepare(needs: list[Need], cache: str | Path, *, mirror: str | Path | None = None, log=print) -> dict:
    """Fetch what the manifest lacks into `cache`; returns the manifest written."""
    from .atomic_files import write_json_atomic

    cache = Path(cache)
    root = cache_root(cache)
    mirror = Path(mirror) if mirror else None
    manifest = read_manifest(cache)
    lacking = missing(needs, cache)
    if mirror is None:
        _require_hub_for_prepare(lacking)
    for need in lacking:
        log(f"fetching {need.describe()}")
        if need.kind == "model":
            relative = Path("models") / need.name
            _fetch_model(need, root / relative, mirror)
            manifest["models"][need.key] = {"hub_id": need.hub_id, "path": str(relative)}
        else:
            relative = Path("data") / need.name / f"{need.split}.jsonl"
            _fetch_split(need, root / relative, mirror, cache)
            manifest["data"][need.key] = {"hub_id": need.hub_id, "config": need.config, "path": str(relative)}
        write_json_atomic(manifest_path(cache), {**manifest, "version": MANIFEST_VERSION})  # kept as it grows
    write_json_atomic(manifest_path(cache), {**manifest, "version": MANIFEST_VERSION})
    return manifest
