"""The one exception type for mistakes a user can fix.

The CLI prints its message as one line and exits non-zero; anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """Bad input: the message says what is wrong and what to do."""


class AgreedError(UserError):
    """A UserError every rank raises at the same point (the verdict was broadcast), so the
    ranks can wait for one another before exiting: the deepspeed launcher kills the other
    ranks as soon as one exits non-zero, which could cut a rank off before its message."""
