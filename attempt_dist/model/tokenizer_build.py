"""Building the committed t5-tiny test tokenizer (attempt_dist/assets/t5-tiny-tokenizer.json).

Not used at run time: attempt_dist.model.tokenizer.load_tokenizer only reads the committed file.
t5-tiny pairs with the random test backbone (vocab 1024, pad 0, eos 1): a WordPiece model over
a Metaspace pre-tokenizer ('▁' marks a word start, like T5's SentencePiece), so decoding gives
back the text exactly (e.g. '3.4', 'not_entailment'). Its vocabulary is built by counting, not
by a learned trainer, so rebuilding from the same fixtures gives the same file:

    python -m attempt_dist.model.tokenizer_build --rebuild     # after examples/data/make_fixtures.py
"""

from __future__ import annotations

import argparse
import re
import string
from collections import Counter
from pathlib import Path
from typing import Iterable

from .tokenizer import TINY_PATH

TINY_VOCAB_SIZE = 1024
SPECIALS = ("<pad>", "</s>", "<unk>")  # ids 0, 1, 2 as in T5
WORD_START = "\u2581"  # '▁'

_PIECES = re.compile(r"\w+|[^\w\s]")


def _pieces(text: str) -> Iterable[str]:
    """'▁word' for a piece that starts a whitespace word, the bare piece inside a word."""
    for word in text.split():
        for k, piece in enumerate(_PIECES.findall(word)):
            yield (WORD_START + piece) if k == 0 else piece


def build_tiny_vocab(texts: Iterable[str], vocab_size: int = TINY_VOCAB_SIZE) -> dict[str, int]:
    """Specials, '▁' and every printable ASCII character (so any ASCII text encodes without
    <unk>), then the most frequent multi-character pieces (ties broken alphabetically)."""
    base = list(SPECIALS) + [WORD_START]
    base += [c for c in string.printable if not c.isspace()]
    base += [WORD_START + c for c in string.printable if not c.isspace()]
    counts = Counter(p for text in texts for p in _pieces(text) if len(p.lstrip(WORD_START)) > 1)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    vocab = list(dict.fromkeys(base))
    for piece, _ in ranked:
        if len(vocab) >= vocab_size:
            break
        if piece not in vocab:
            vocab.append(piece)
    return {piece: i for i, piece in enumerate(vocab)}


def tiny_backend(vocab: dict[str, int]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    tok = Tokenizer(models.WordPiece(vocab, unk_token="<unk>", continuing_subword_prefix="",
                                     max_input_chars_per_word=200))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=WORD_START, prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement=WORD_START, prepend_scheme="always")
    return tok


def fixture_texts(data_dir: str | Path) -> list[str]:
    """Every source and target text of every task's fixtures, in registry order."""
    from ..data.loading import load_task_splits
    from ..tasks import TASKS

    texts: list[str] = []
    for name in TASKS:
        if TASKS[name].generator is not None:
            continue  # the toy family is built on this vocabulary, not part of it
        for examples in load_task_splits(name, data_dir).values():
            for e in examples:
                texts.append(e.source)
                texts.extend([e.target, *e.answers])
    return texts


def rebuild_tiny(data_dir: str | Path = "examples/data", path: Path = TINY_PATH) -> Path:
    backend = tiny_backend(build_tiny_vocab(fixture_texts(data_dir)))
    path.parent.mkdir(parents=True, exist_ok=True)
    backend.save(str(path), pretty=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m attempt_dist.model.tokenizer_build",
                                     description="Rebuild the t5-tiny test tokenizer from fixtures.")
    parser.add_argument("--rebuild", action="store_true", help="write attempt_dist/assets/t5-tiny-tokenizer.json")
    parser.add_argument("--data-dir", default="examples/data")
    parser.add_argument("--out", type=Path, default=TINY_PATH, help="where to write it (default: the committed file)")
    args = parser.parse_args(argv)
    if not args.rebuild:
        parser.print_help()
        return 0
    print(rebuild_tiny(args.data_dir, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
