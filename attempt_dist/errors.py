"""The one exception type for mistakes a user can fix.

The CLI prints its message as one line and exits non-zero; anything else is a bug and keeps
its traceback.
"""


class UserError(Exception):
    """Bad input: the message says what is wrong and what to do."""
