"""The one exception type for mistakes a user can fix.

The CLI prints its message as one line and exits non-zero; anything else is a bug and keeps
its traceback.
"""

import functools
import sys
from typing import Callable


# 128 + SIGINT: the exit code a shell reports for a process that Ctrl-C ended.
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """Bad input: the message says what is wrong and what to do."""


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
