"""Each rank's log file, RUN/logs/rank<N>.log (the "attempt_dist" logger and its children)."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path


def setup_logging(out: Path, rank: int, *, hold: bool = False) -> None:
    """Log to logs/rank<N>.log; with `hold`, keep the records in memory until attach_log_file
    (an --overwrite run must not touch the old run's logs before its setup succeeded)."""
    root = logging.getLogger("attempt_dist")
    kept = [h for h in root.handlers if not isinstance(h, (logging.FileHandler, logging.handlers.MemoryHandler))]
    held = logging.handlers.MemoryHandler(capacity=1 << 20, flushLevel=logging.CRITICAL + 1) if hold else None
    root.handlers = kept + [held or _log_file(out, rank)]
    root.setLevel(logging.INFO)


def attach_log_file(out: Path, rank: int) -> None:
    """Write the records held since setup_logging(hold=True) to the log file, and the rest after them."""
    root = logging.getLogger("attempt_dist")
    for held in [h for h in root.handlers if isinstance(h, logging.handlers.MemoryHandler)]:
        held.setTarget(_log_file(out, rank))
        held.flush()
        root.removeHandler(held)
        root.addHandler(held.target)


class _RunLogFile(logging.FileHandler):
    """A record that cannot be written (a full disk) is one warning line, once, not logging's
    traceback on every record: the run's next write of its own files ends it with one line."""

    warned = False

    def handleError(self, record: logging.LogRecord) -> None:
        if not self.warned:
            self.warned = True
            error = sys.exc_info()[1]
            print(f"warning: cannot write the log file {self.baseFilename} ({getattr(error, 'strerror', error)})",
                  file=sys.stderr, flush=True)


def _log_file(out: Path, rank: int) -> logging.FileHandler:
    (out / "logs").mkdir(parents=True, exist_ok=True)
    handler = _RunLogFile(out / "logs" / f"rank{rank}.log")
    handler.setFormatter(logging.Formatter("%(asctime)s rank" + str(rank) + " %(levelname)s %(message)s"))
    return handler
