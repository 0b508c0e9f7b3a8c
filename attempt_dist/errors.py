"""The one exception type for mistakes a user can fix, and how its message repeats a user's value.

The CLI prints its message as one line and exits non-zero; anything else is a bug and keeps
its traceback. A message quotes the value it refuses through shown/shown_names, so a long one
(thousands of task names, a pasted file) stays one readable line.
"""

import functools
import sys
from typing import Any, Callable

# How much of a user's value a message repeats: enough to recognise it, never a screenful
# (a --tasks list of 5,000 entries once made a 20,000-character line).
SHOWN_CHARACTERS = 120
SHOWN_ITEMS = 8


# 128 + SIGINT: the exit code a shell reports for a process that Ctrl-C ended.
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input: the message says what is wrong and what to do."""


def shown(value: Any, limit: int = SHOWN_CHARACTERS) -> str:
    """A user's value as a message repeats it: its repr (a string's quotes included), a list
    or tuple as its first items and how many there are in all, cut to about `limit` characters."""
    if isinstance(value, (list, tuple)):
        return f"[{shown_names([shown(item, limit) for item in value], limit)}]"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 30]}... ({len(text)} characters)"


def shown_names(names, limit: int = SHOWN_CHARACTERS) -> str:
    """Names joined by commas ("rte, cb"), at most SHOWN_ITEMS of them and about `limit`
    characters, then how many there are in all."""
    names = [str(name) for name in names]
    kept = names[:SHOWN_ITEMS]
    while len(kept) > 1 and len(", ".join(kept)) > limit:
        kept.pop()
    text = ", ".join(kept)
    if len(text) > limit:
        text = f"{text[:limit]}..."
    return text if len(kept) == len(names) else f"{text}, ... ({len(names)} in all)"


class AgreedError(UserError):
    """A UserError every rank raises at the same point (the verdict was broadcast), so the
    ranks can wait for one another before exiting: the deepspeed launcher kills the other
    ranks as soon as one exits non-zero, which could cut a rank off before its message."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, already told in one line (where the run stopped, how to go on): an entry point
    adds nothing to it. Still a KeyboardInterrupt, so whoever called the command in its own
    process (a sweep's job) stops too."""


def ends_on_ctrl_c(main: Callable[..., int]) -> Callable[..., int]:
    """A process's entry point: Ctrl-C ends it with exit code 130 and one line, not a traceback."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except KeyboardInterrupt as err:
            if not isinstance(err, Interrupted):
                print("interrupted (Ctrl-C)", file=sys.stderr, flush=True)
            return EXIT_INTERRUPTED

    return wrapper


def one_line_errors(main: Callable[..., int]) -> Callable[..., int]:
    """A command's entry point: a UserError becomes its one `error: ...` line on stderr and exit 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            return 2

    return wrapper
