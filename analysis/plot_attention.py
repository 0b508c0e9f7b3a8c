"""Figure 5 (attention heatmap) from a results folder: `python analysis/plot_attention.py RUN_DIR [--split dev]`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attempt_dist.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["plot", *sys.argv[1:], "--only", "fig5"]))
