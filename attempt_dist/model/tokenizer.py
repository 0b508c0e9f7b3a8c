"""Tokenizers at run time: T5's from the hub (or a local folder), or the committed t5-tiny test
tokenizer (attempt_dist/assets/t5-tiny-tokenizer.json: vocab 1024, pad 0, eos 1, exact round
trips). attempt_dist/model/tokenizer_build.py builds that file from the fixtures:

    python -m attempt_dist.model.tokenizer_build --rebuild     # after examples/data/make_fixtures.py
"""

from __future__ import annotations

import os
from pathlib import Path

from .backbones import BACKBONES, TEST_BACKBONES
from ..errors import UserError

TINY_NAME = "t5-tiny"
TINY_PATH = Path(__file__).resolve().parents[1] / "assets" / "t5-tiny-tokenizer.json"


def _wrap(backend):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=1_000_000)


def tokenizer_source(model: str) -> str:
    """Where a non-test tokenizer loads from: a folder as is, a registered backbone from its hub
    id (the backbone registry is the one table of hub ids), any other name as a hub id."""
    if os.path.isdir(model):
        return model
    spec = BACKBONES.get(model)
    return spec.hub_id if spec is not None and spec.hub_id else model


def load_tokenizer(model: str):
    """t5-tiny -> the committed test tokenizer; a folder -> its tokenizer; a name -> the hub."""
    if model == TINY_NAME or model in TEST_BACKBONES:
        from tokenizers import Tokenizer

        if not TINY_PATH.is_file():
            raise UserError(f"{TINY_PATH} is missing; run `python -m attempt_dist.model.tokenizer_build --rebuild`")
        return _wrap(Tokenizer.from_file(str(TINY_PATH)))
    from transformers import AutoTokenizer

    source = tokenizer_source(model)
    try:
        return AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(
            f"cannot load the tokenizer for {model!r} from {source!r} (offline and not cached, or "
            f"not a tokenizer folder): {reason}; pass a local folder or go online once{_prepare_hint(model)}"
        ) from None


def _prepare_hint(model: str) -> str:
    """For a registered hub backbone: how a machine without internet gets it (attempt_dist/prepare.py)."""
    if model not in BACKBONES:
        return ""
    from ..prepare import PREPARED_ENV

    return f", or fetch it ahead with `attempt-dist prepare --models {model} --cache DIR` and set {PREPARED_ENV}=DIR"
