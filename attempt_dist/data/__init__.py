"""Data for training and evaluation: task splits, tokenisation, batches, multi-task sampling.

    from attempt_dist.data import load_task_splits, load_tokenizer, tokenize_examples
    splits = load_task_splits("rte", "examples/data")      # {"train","dev","test"}: [Example]
    tok = load_tokenizer("t5-tiny")
    feats = tokenize_examples(splits["train"], tok, task_id=0, max_source_length=256)
    data = task_features("rte", 0, "examples/data", 42, None, tok, 256, 128, default_cache_dir())
"""

from ..tasks import Example
from ..model.tokenizer import load_tokenizer
from .cache import TaskFeatures, default_cache_dir, task_features
from .features import LABEL_PAD, Seq2SeqCollator, tokenize_examples
from .loading import load_task_splits
from .sampler import MultiTaskSampler
from .token_arrays import Features

__all__ = [
    "Example", "Features", "LABEL_PAD", "TaskFeatures", "default_cache_dir", "MultiTaskSampler", "Seq2SeqCollator",
    "load_task_splits", "load_tokenizer", "task_features", "tokenize_examples",
]
