"""`python -m attempt_dist.train` (and launch/train.py): the training entry point.

The recipe lives in training/recipe.py; this module keeps the documented command.
"""

from .training.recipe import main

if __name__ == "__main__":
    from .errors import ends_on_ctrl_c

    raise SystemExit(ends_on_ctrl_c(main)())
