"""Launch a sweep: `python launch/sweep.py SWEEP.yaml [--output-dir RUN] [--dry-run]`
or `python launch/sweep.py status RUN`. Same as `attempt-dist sweep ...`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from attempt_dist.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
