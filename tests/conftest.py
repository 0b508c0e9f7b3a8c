"""Test-wide settings: never touch the network, run DeepSpeed on the CPU."""

import os

for _name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ[_name] = "1"
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Tokenised-data cache of this test session only (subprocesses inherit it).
import tempfile as _tempfile

os.environ.setdefault("ATTEMPT_DIST_CACHE", _tempfile.mkdtemp(prefix="attempt-dist-cache-"))
