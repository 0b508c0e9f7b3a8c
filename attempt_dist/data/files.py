"""Reading one split of one task from local files, in the hub's row schema.

Layout under a data_dir:  <data_dir>/<task>/<hub split>.<ext>
  hub split   train, validation, test, validation_matched, validation_mismatched
  ext         .jsonl  .json  .parquet  .csv  .jsonl.gz
MRQA tasks also look in <data_dir>/mrqa/<split>.<ext> (rows of every subset; filtered by
`subset` like the hub data). A .jsonl(.gz) whose first line is {"header": ...} is read as an
official MRQA 2019 file (one line per context) and flattened into hub rows.
"""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path
from typing import Callable, Iterator, Sequence

from ..errors import UserError

EXTENSIONS = (".jsonl", ".json", ".parquet", ".csv", ".jsonl.gz")


def candidate_paths(data_dir: str | Path, task_name: str, split: str, mrqa: bool = False) -> list[Path]:
    folders = [Path(data_dir) / task_name]
    if mrqa:
        folders.append(Path(data_dir) / "mrqa")
    return [folder / f"{split}{ext}" for folder in folders for ext in EXTENSIONS]


class Rows:
    """Rows of one file plus a way to name a row in messages (file and line number).
    `columns`: every column the source has, where that is known without reading a row."""

    def __init__(self, rows: Sequence[dict], where: Callable[[int], str], origin: str,
                 columns: list[str] | None = None):
        self.rows = rows
        self.where = where
        self.origin = origin
        self.columns = columns


class ArrowRows(Sequence):
    """A parquet file's rows as dicts, made one record batch at a time while iterating: Arrow
    holds the columns, so ReCoRD's 100k passages cost their Arrow size (~0.2 GiB) instead of a
    Python dict per row (1 GiB with every column, measured)."""

    BATCH = 4096

    def __init__(self, table):
        self.table = table

    def __len__(self) -> int:
        return self.table.num_rows

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        return self.table.slice(i % len(self), 1).to_pylist()[0]

    def __iter__(self) -> Iterator[dict]:
        for batch in self.table.to_batches(max_chunksize=self.BATCH):
            yield from batch.to_pylist()


def read_rows(path: Path, columns: Sequence[str] | None = None) -> Rows:
    """The file's rows (`columns`, the task's own, lets a columnar file skip the others); a file
    that cannot be read as its type (a truncated .gz, a damaged .parquet, an unreadable file) is
    one line naming it."""
    try:
        return _read_by_type(path, columns)
    except UserError:
        raise
    except (OSError, EOFError, zlib.error, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        reason = (str(err).splitlines() or [""])[0][:200]
        raise UserError(f"{path}: cannot be read ({type(err).__name__}: {reason}); "
                        "replace it with an intact copy") from None


def _read_by_type(path: Path, columns: Sequence[str] | None) -> Rows:
    name = path.name
    if name.endswith(".jsonl") or name.endswith(".jsonl.gz"):
        return _read_jsonl(path)
    if name.endswith(".json"):
        return _read_json(path)
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        present = pq.read_schema(path).names
        # Only the columns the task reads: ReCoRD's entity_spans and MRQA's token lists are large
        # and unused (the hub path selects columns the same way).
        wanted = [c for c in present if c in columns] if columns is not None else None
        return Rows(ArrowRows(pq.read_table(path, columns=wanted)), lambda i: f"{path} row {i + 1}", str(path),
                    columns=present)
    if name.endswith(".csv"):
        import pandas as pd

        import io

        rows = pd.read_csv(io.StringIO(_utf8_text(path)), keep_default_na=False).to_dict("records")
        return Rows(rows, lambda i: f"{path} row {i + 1}", str(path))
    raise UserError(f"{path}: unsupported file type; use one of {', '.join(EXTENSIONS)}")


def _read_jsonl(path: Path) -> Rows:
    opener = gzip.open if path.name.endswith(".gz") else open
    objects: list[dict] = []
    lines: list[int] = []
    with opener(path, "rb") as handle:  # bytes, decoded line by line, so a bad byte names its line
        for number, raw in enumerate(handle, start=1):
            line = _decode(raw, path, number)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{number}: malformed JSON line ({err.msg}, column {err.colno})") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{number}: expected a JSON object per line, got {type(obj).__name__}")
            objects.append(obj)
            lines.append(number)
    if objects and "header" in objects[0]:
        return _flatten_mrqa(path, objects, lines)
    return Rows(objects, lambda i: f"{path}:{lines[i]}", str(path))


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column {err.start + 1}); "
                        "re-save the file as UTF-8") from None


def _utf8_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        _decode(raw.split(b"\n")[line - 1], path, line)  # raises, naming the line and column
        raise


def _read_json(path: Path) -> Rows:
    text = _utf8_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":  # JSON lines in a .json file (the datasets convention)
            return _read_jsonl(path)
        raise UserError(f"{path}:{err.lineno}: malformed JSON ({err.msg}, column {err.colno})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"{path}: expected a JSON list of row objects (or {{\"data\": [...]}})")
    return Rows(data, lambda i: f"{path} row {i + 1}", str(path))


def _spans(spans: list) -> dict[str, list[int]]:
    return {"start": [int(s) for s, _ in spans], "end": [int(e) for _, e in spans]}


def _flatten_mrqa(path: Path, objects: list[dict], lines: list[int]) -> Rows:
    """Official MRQA file -> hub rows (one per question), the hub's nesting."""
    subset = objects[0]["header"].get("dataset")
    rows: list[dict] = []
    row_lines: list[int] = []
    for obj, number in zip(objects[1:], lines[1:]):
        try:
            context_tokens = obj.get("context_tokens", [])
            for qa in obj["qas"]:
                detected = qa.get("detected_answers", [])
                question_tokens = qa.get("question_tokens", [])
                rows.append({
                    "subset": subset,
                    "context": obj["context"],
                    "context_tokens": {"tokens": [t for t, _ in context_tokens],
                                       "offsets": [int(o) for _, o in context_tokens]},
                    "qid": qa["qid"],
                    "question": qa["question"],
                    "question_tokens": {"tokens": [t for t, _ in question_tokens],
                                        "offsets": [int(o) for _, o in question_tokens]},
                    "detected_answers": {
                        "text": [d["text"] for d in detected],
                        "char_spans": [_spans(d["char_spans"]) for d in detected],
                        "token_spans": [_spans(d["token_spans"]) for d in detected],
                    },
                    "answers": qa["answers"],
                })
                row_lines.append(number)
        except (KeyError, TypeError, ValueError) as err:
            raise UserError(f"{path}:{number}: not an MRQA context line ({type(err).__name__}: {err})") from None
    return Rows(rows, lambda i: f"{path}:{row_lines[i]}", str(path))
