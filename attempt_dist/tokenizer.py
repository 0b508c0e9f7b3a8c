"""Tokenizers at run time: T5's from the hub (or a local folder), or the committed t5-tiny test
tokenizer (attempt_dist/assets/t5-tiny-tokenizer.json: vocab 1024, pad 0, eos 1, exact round
trips). attempt_dist/tokenizer_build.py builds that file from the fixtures:

    python -m attempt_dist.tokenizer_build --rebuild     # after examples/data/make_fixtures.py
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import UserError

TINY_NAME = "t5-tiny"
TINY_PATH = Path(__file__).resolve().parent / "assets" / "t5-tiny-tokenizer.json"

# Short names -> hub repos (the canonical org since the t5-* ids moved).
HUB_IDS = {name: f"google-t5/{name}" for name in ("t5-small", "t5-base", "t5-large", "t5-3b", "t5-11b")}


def _wrap(backend):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=1_000_000)


def _test_backbones() -> list[str]:
    from .backbones import TEST_BACKBONES

    return TEST_BACKBONES


def load_tokenizer(model: str):
    """t5-tiny -> the committed test tokenizer; a folder -> its tokenizer; a name -> the hub."""
    if model == TINY_NAME or model in _test_backbones():
        from tokenizers import Tokenizer

        if not TINY_PATH.is_file():
            raise UserError(f"{TINY_PATH} is missing; run `python -m attempt_dist.tokenizer_build --rebuild`")
        return _wrap(Tokenizer.from_file(str(TINY_PATH)))
    from transformers import AutoTokenizer

    source = model if os.path.isdir(model) else HUB_IDS.get(model, model)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"cannot load the tokenizer for {model!r} from {source!r} (offline and not cached, or "
            f"not a tokenizer folder): {reason}; pass a local folder or go online once"
        ) from None
