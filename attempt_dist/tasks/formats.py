"""Row -> text-to-text formatting, one function per input layout.

Each formatter takes a hub row (a dict in exactly the hub schema, see docs/hub_schemas.md)
and the task, and returns a list of `Example`s (one per row, except that it may return none
for a row whose gold is missing). Raising ValueError marks the row as malformed; the loader
reports it with its file and row number.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

from .example import Example

if TYPE_CHECKING:  # pragma: no cover
    from .registry import Task


def join_fields(prefix: str, pairs: list[tuple[str, str]]) -> str:
    """'mnli premise: ... hypothesis: ...' — the compacter/ATTEMPT input layout."""
    parts = [prefix]
    for name, value in pairs:
        parts.append(f"{name}: {_clean(value)}")
    return " ".join(parts)


def _clean(text) -> str:
    if not isinstance(text, str):
        raise ValueError(f"expected a string, got {type(text).__name__}")
    return " ".join(text.split())


def class_label(task: "Task", row: dict) -> int:
    """The row's label as a class index, accepting the hub's ints or its string class names."""
    raw = row["label"]
    if isinstance(raw, bool):
        raw = int(raw)
    if isinstance(raw, str) and task.label_aliases:
        if raw not in task.label_aliases:
            raise ValueError(f"label {raw!r} is not one of {sorted(task.label_aliases)}")
        return task.label_aliases[raw]
    if not isinstance(raw, int):
        raise ValueError(f"label must be an int, got {raw!r}")
    if not 0 <= raw < len(task.label_words):
        # GLUE/SuperGLUE test rows carry -1: they cannot be trained on or scored.
        raise ValueError(f"label {raw} outside 0..{len(task.label_words) - 1} (unlabelled row?)")
    return raw


def classification(task: "Task", row: dict) -> list[Example]:
    label = class_label(task, row)
    word = task.label_words[label]
    source = join_fields(task.name, [(name, row[name]) for name in task.text_fields])
    return [Example(task.name, source, word, [word], _group(task, row), label=label)]


def stsb_target(score: float) -> str:
    """Round to the 0.2 grid (half up) and print with one decimal: 3.1 -> '3.2', 3.4 -> '3.4'.

    The epsilon keeps float32 values such as 3.2999999523 on the grid point they denote.
    """
    return f"{math.floor(score * 5 + 0.5 + 1e-6) / 5:.1f}"


def regression(task: "Task", row: dict) -> list[Example]:
    raw = row["label"]
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 5:
        raise ValueError(f"label must be a score in [0, 5], got {raw!r}")
    target = stsb_target(float(raw))
    source = join_fields(task.name, [(name, row[name]) for name in task.text_fields])
    # Scored against the exact gold score; the rounded string is only the training target.
    return [Example(task.name, source, target, [target], None, label=float(raw))]


def squad(task: "Task", row: dict) -> list[Example]:
    """SQuAD rows: answers {text: [...], answer_start: [...]}; target = first answer text."""
    answers = row["answers"]
    if not isinstance(answers, dict) or not isinstance(answers.get("text"), list):
        raise ValueError("answers must be {'text': [...], 'answer_start': [...]}")
    texts = [_clean(t) for t in answers["text"]]
    if not texts:
        return []
    source = join_fields(task.name, [("question", row["question"]), ("context", row["context"])])
    return [Example(task.name, source, texts[0], texts, None)]


def mrqa(task: "Task", row: dict) -> list[Example]:
    """MRQA hub rows (answers: list[str]), already filtered to the task's subset."""
    answers = row["answers"]
    if not isinstance(answers, list):
        raise ValueError("answers must be a list of strings")
    texts = [_clean(t) for t in answers]
    if not texts:
        return []
    source = join_fields(task.name, [("question", row["question"]), ("context", row["context"])])
    return [Example(task.name, source, texts[0], texts, None)]


def record_passage(passage: str) -> str:
    """CNN/DailyMail highlights are separated by '@highlight' lines; turn them into sentences."""
    passage = re.sub(r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ", passage)
    return re.sub(r"\n@highlight\n", ". ", passage)


def record(task: "Task", row: dict) -> list[Example]:
    """One example per query; every gold answer kept for max-over-golds scoring.

    The hub's `entities` order is arbitrary, so they are sorted (and de-duplicated) first:
    the same row always yields the same input text.
    """
    entities = row["entities"]
    answers = row["answers"]
    if not isinstance(entities, list) or not isinstance(answers, list):
        raise ValueError("entities and answers must be lists of strings")
    if not answers:
        return []
    entity_text = ", ".join(sorted(set(entities)))
    source = join_fields(task.name, [
        ("query", row["query"]), ("entities", entity_text), ("passage", record_passage(row["passage"])),
    ])
    texts = [_clean(a) for a in answers]
    return [Example(task.name, source, texts[0], texts, _group(task, row))]


def multirc_paragraph(paragraph: str) -> str:
    """The hub paragraph carries '<b>Sent 1: </b>' and '<br>' markup: drop the tags."""
    return re.sub(r"<[^>]+>", " ", paragraph)


def multirc(task: "Task", row: dict) -> list[Example]:
    label = class_label(task, row)
    word = task.label_words[label]
    source = join_fields(task.name, [
        ("question", row["question"]), ("answer", row["answer"]),
        ("paragraph", multirc_paragraph(row["paragraph"])),
    ])
    return [Example(task.name, source, word, [word], _group(task, row), label=label)]


def _mark_span(words: list[str], start: int, length: int, marker: str) -> list[str]:
    if start < 0 or start + length > len(words):
        raise ValueError(f"span {start}..{start + length} outside the text's {len(words)} words")
    return words[:start] + [marker] + words[start:start + length] + [marker] + words[start + length:]


def wsc(task: "Task", row: dict) -> list[Example]:
    """Mark the candidate noun with *...* and the pronoun with #...# (word indices)."""
    label = class_label(task, row)
    words = row["text"].split()
    i1, i2 = int(row["span1_index"]), int(row["span2_index"])
    n1, n2 = len(row["span1_text"].split()), len(row["span2_text"].split())
    # Mark the later span first so the earlier index stays valid.
    spans = sorted([(i1, n1, "*"), (i2, n2, "#")], reverse=True)
    for start, length, marker in spans:
        words = _mark_span(words, start, length, marker)
    source = join_fields(task.name, [("text", " ".join(words))])
    word = task.label_words[label]
    return [Example(task.name, source, word, [word], None, label=label)]


def copa(task: "Task", row: dict) -> list[Example]:
    label = class_label(task, row)
    if row["question"] not in ("cause", "effect"):
        raise ValueError(f"question must be 'cause' or 'effect', got {row['question']!r}")
    source = join_fields(task.name, [
        ("premise", row["premise"]), ("question", row["question"]),
        ("choice1", row["choice1"]), ("choice2", row["choice2"]),
    ])
    word = task.label_words[label]
    return [Example(task.name, source, word, [word], None, label=label)]


def winogrande(task: "Task", row: dict) -> list[Example]:
    """Each option is shown once (the reference showed option1 twice)."""
    answer = row["answer"]
    if answer not in ("1", "2"):
        raise ValueError(f"answer must be '1' or '2', got {answer!r}")
    label = int(answer) - 1
    source = join_fields(task.name, [
        ("sentence", row["sentence"]), ("option1", row["option1"]), ("option2", row["option2"]),
    ])
    word = task.label_words[label]
    return [Example(task.name, source, word, [word], None, label=label)]


def yelp(task: "Task", row: dict) -> list[Example]:
    """Yelp texts hold literal backslash-n sequences for line breaks."""
    row = dict(row, text=row["text"].replace("\\n", " ") if isinstance(row["text"], str) else row["text"])
    return classification(task, row)


def toy(task: "Task", row: dict) -> list[Example]:
    """Generated rows (tasks/toy.py): {"text", "label"} for classification, {"text", "answer"}
    for generation; the input is shown under the task's one text field."""
    source = join_fields(task.name, [(task.text_fields[0], row["text"])])
    if task.label_words:
        label = class_label(task, row)
        word = task.label_words[label]
        return [Example(task.name, source, word, [word], None, label=label)]
    answer = _clean(row["answer"])
    return [Example(task.name, source, answer, [answer], None)]


def _group(task: "Task", row: dict) -> str | None:
    """Group key from the row's structured idx (MultiRC question, ReCoRD query)."""
    if not task.group_by:
        return None
    idx = row.get("idx")
    if not isinstance(idx, dict) or any(k not in idx for k in task.group_by):
        raise ValueError(f"idx must be a dict with {', '.join(task.group_by)}")
    return "-".join(str(idx[k]) for k in task.group_by)


FORMATTERS = {
    "classification": classification,
    "regression": regression,
    "squad": squad,
    "mrqa": mrqa,
    "record": record,
    "multirc": multirc,
    "wsc": wsc,
    "copa": copa,
    "winogrande": winogrande,
    "yelp": yelp,
    "toy": toy,
}

# Gold fields each formatter reads, set to a stand-in when formatting a row to predict on: the
# input text never depends on them, and unlabelled rows (GLUE test rows carry -1) format too.
GOLD_PLACEHOLDERS = {
    "classification": {"label": 0},
    "regression": {"label": 0.0},
    "squad": {"answers": {"text": [""], "answer_start": [0]}},
    "mrqa": {"answers": [""]},
    "record": {"answers": [""]},
    "multirc": {"label": 0},
    "wsc": {"label": 0},
    "copa": {"label": 0},
    "winogrande": {"answer": "1"},
    "yelp": {"label": 0},
    "toy": {"label": 0, "answer": ""},
}


def input_text(task: "Task", row: dict) -> str:
    """The text the model reads for a hub-schema row, exactly as training formats it; the row's
    gold fields (label, answers) may be absent."""
    row = {**row, **GOLD_PLACEHOLDERS[task.formatter]}
    idx = row.get("idx")
    if task.group_by and not (isinstance(idx, dict) and all(key in idx for key in task.group_by)):
        row["idx"] = {key: 0 for key in task.group_by}  # the split group: irrelevant to one prediction
    return FORMATTERS[task.formatter](task, row)[0].source
