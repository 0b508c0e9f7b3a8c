"""Where the tests find the repository and what it ships: defined once for every test file."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "examples" / "data"  # real-schema sample rows of every task: the tests' data
TRAIN = REPO / "launch" / "train.py"  # the entry point the launchers run
