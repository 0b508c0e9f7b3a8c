"""Paper-size synthetic data for the six large sources, in the hub schemas, as parquet.

    python benchmarks/make_full_size_data.py --out /tmp/full-data               # real row counts
    python benchmarks/make_full_size_data.py --out /tmp/small --scale 0.001     # a test-sized copy
    python -m attempt_dist.train ... --tasks mnli,qqp,qnli,sst2,squad,record --data-dir /tmp/full-data

Rows follow docs/hub_schemas.md field for field (the fixtures in examples/data are the same
schemas at a few dozen rows), written as `<out>/<task>/<hub split>.parquet`, the layout
data/files.py reads, so training reads them through the same loading path as any local data.
Row counts are the hub's (MNLI 392,702 train, ReCoRD 100,730, ...) times --scale. Text lengths
are drawn from log-normal distributions around the datasets' published mean lengths in words
(MNLI premise ~22 / hypothesis ~11, QQP questions ~11, QNLI sentence ~30, SST-2 ~9,
SQuAD context ~120, ReCoRD passage ~270 with 200-400 typical), over a vocabulary of a few
thousand made-up words and names, so tokenised lengths and truncation at max_length look like
the real data's. Byte-identical for the same --seed and --scale.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

# (task, hub split) -> hub row count (docs/hub_schemas.md).
ROW_COUNTS = {
    "mnli": {"train": 392_702, "validation_matched": 9_815, "validation_mismatched": 9_832},
    "qqp": {"train": 363_846, "validation": 40_430},
    "qnli": {"train": 104_743, "validation": 5_463},
    "sst2": {"train": 67_349, "validation": 872},
    "squad": {"train": 87_599, "validation": 10_570},
    "record": {"train": 100_730, "validation": 10_000},
}
FIXTURES = Path(__file__).resolve().parents[1] / "examples" / "data"


def fixture_words() -> tuple[list[str], list[str]]:
    """Words of the fixture rows (most frequent first) and their capitalised names: the t5-tiny
    tokenizer was built from these, so text made of them tokenises at realistic tokens per word."""
    import collections
    import json
    import re

    counts: collections.Counter = collections.Counter()
    for path in sorted(FIXTURES.glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            for value in json.loads(line).values():
                if isinstance(value, str):
                    counts.update(re.findall(r"[A-Za-z]+", value))
    words = sorted(counts, key=lambda w: (-counts[w], w))
    names = [w for w in words if w[0].isupper() and w.lower() not in counts]
    return [w for w in words if w.islower()], names


class Words:
    """Seeded draws of words (Zipf-like rates over the fixture vocabulary) and names."""

    def __init__(self, rng: np.random.Generator):
        vocab, names = fixture_words()
        self.vocab = np.array(vocab)
        ranks = np.arange(1, len(self.vocab) + 1)
        self.p = (1.0 / ranks) / (1.0 / ranks).sum()
        self.names = np.array(names)
        self.rng = rng

    def lengths(self, n: int, mean_words: float, sigma: float = 0.45, low: int = 1, high: int = 2000) -> np.ndarray:
        mu = np.log(mean_words) - sigma ** 2 / 2  # log-normal with this mean
        return np.clip(np.rint(self.rng.lognormal(mu, sigma, n)), low, high).astype(int)

    def text(self, n_words: int, end: str = ".") -> str:
        words = self.vocab[self.rng.choice(len(self.vocab), size=n_words, p=self.p)]
        return " ".join(words).capitalize() + end

    def texts(self, n: int, mean_words: float, end: str = ".", **kw) -> list[str]:
        return [self.text(k, end) for k in self.lengths(n, mean_words, **kw)]

    def name(self) -> str:
        return str(self.names[self.rng.integers(len(self.names))])


def labels(rng, n: int, classes: int, labelled: bool = True) -> list[int]:
    return rng.integers(0, classes, n).tolist() if labelled else [-1] * n


def glue_pairs(words: Words, n: int, first: str, second: str, means: tuple[float, float], classes: int,
               end2: str = ".") -> dict:
    return {first: words.texts(n, means[0]), second: words.texts(n, means[1], end=end2),
            "label": labels(words.rng, n, classes), "idx": list(range(n))}


def mnli(words, n):
    return glue_pairs(words, n, "premise", "hypothesis", (22, 11), 3)


def qqp(words, n):
    return {"question1": words.texts(n, 11, end="?"), "question2": words.texts(n, 11, end="?"),
            "label": labels(words.rng, n, 2), "idx": list(range(n))}


def qnli(words, n):
    return {"question": words.texts(n, 10, end="?"), "sentence": words.texts(n, 30),
            "label": labels(words.rng, n, 2), "idx": list(range(n))}


def sst2(words, n):
    return {"sentence": [s.lower().rstrip(".") + " ." for s in words.texts(n, 9)],
            "label": labels(words.rng, n, 2), "idx": list(range(n))}


def squad(words, n):
    """Contexts shared by ~5 questions (as in SQuAD); each answer a span of its context."""
    rows = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    context, title = "", ""
    for i in range(n):
        if i % 5 == 0:
            title = words.name()
            context = " ".join(words.texts(int(words.rng.integers(4, 8)), 20))
        tokens = context.split(" ")
        span = int(words.rng.integers(1, 4))
        start_word = int(words.rng.integers(0, max(1, len(tokens) - span)))
        answer = " ".join(tokens[start_word:start_word + span])
        start = len(" ".join(tokens[:start_word])) + (1 if start_word else 0)
        copies = int(words.rng.integers(1, 4))
        rows["id"].append(f"{i:024x}")
        rows["title"].append(title)
        rows["context"].append(context)
        rows["question"].append(words.text(int(words.lengths(1, 10)[0]), end="?"))
        rows["answers"].append({"text": [answer] * copies, "answer_start": [start] * copies})
    return rows


def record(words, n):
    """News passages (~270 words, '@highlight' lines), ~12 entity mentions, cloze queries."""
    rows = {"passage": [], "query": [], "entities": [], "entity_spans": [], "answers": [], "idx": []}
    passage_id = -1
    passage, mentions = "", []
    for i in range(n):
        if i % 3 == 0:  # ReCoRD has ~1.5-3 queries per passage
            passage_id += 1
            cast = [words.name() for _ in range(int(words.rng.integers(3, 7)))]
            body = words.texts(1, 230, sigma=0.25, low=120, high=600)[0]
            parts, mentions, pos = [], [], 0
            for k, chunk in enumerate(body.split(" ")):
                if k % 20 == 0:  # an entity mention every ~20 words
                    chunk = cast[k // 20 % len(cast)]
                    mentions.append((chunk, pos))
                parts.append(chunk)
                pos += len(chunk) + 1
            passage = " ".join(parts)
            for _ in range(3):
                highlight = f"{cast[0]} {words.text(int(words.lengths(1, 12)[0]))}"
                mentions.append((cast[0], len(passage) + len("\n@highlight\n")))
                passage += "\n@highlight\n" + highlight
        answer = mentions[int(words.rng.integers(len(mentions)))][0]
        order = words.rng.permutation(len(mentions))  # the hub's entity order is arbitrary
        rows["passage"].append(passage)
        rows["query"].append(f"@placeholder {words.text(int(words.lengths(1, 22)[0]))}")
        rows["entities"].append([mentions[k][0] for k in order])
        rows["entity_spans"].append({"text": [m for m, _ in mentions], "start": [s for _, s in mentions],
                                     "end": [s + len(m) for m, s in mentions]})
        rows["answers"].append([answer] * int(words.rng.integers(1, 3)))
        rows["idx"].append({"passage": passage_id, "query": i})
    return rows


MAKERS = {"mnli": mnli, "qqp": qqp, "qnli": qnli, "sst2": sst2, "squad": squad, "record": record}


def write_split(out: Path, task: str, split: str, n: int, seed: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # One generator per (task, split): a split's rows do not depend on which other splits exist.
    rng = np.random.default_rng([seed, sorted(MAKERS).index(task), sorted(ROW_COUNTS[task]).index(split)])
    words = Words(rng)
    columns = MAKERS[task](words, n)
    path = out / task / f"{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(columns)
    if "idx" in columns and not isinstance(columns["idx"][0], dict):
        table = table.set_column(table.schema.get_field_index("idx"), "idx", pa.array(columns["idx"], pa.int32()))
    pq.write_table(table, path, compression="zstd")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="data folder to write (<out>/<task>/<split>.parquet)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real row counts (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default=",".join(MAKERS), help=f"comma list out of {','.join(MAKERS)}")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in MAKERS]
    if unknown or args.scale <= 0:
        print(f"error: {'unknown tasks ' + ','.join(unknown) if unknown else '--scale must be > 0'}", file=sys.stderr)
        return 2
    out = Path(args.out)
    for task in tasks:
        for split, count in ROW_COUNTS[task].items():
            n = max(10, round(count * args.scale))
            started = time.perf_counter()
            path = write_split(out, task, split, n, args.seed)
            print(f"{path}: {n} rows, {path.stat().st_size / 2**20:.1f} MiB, {time.perf_counter() - started:.1f} s",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
