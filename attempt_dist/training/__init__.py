"""Training a run: its options, the recipe, checkpoints, evaluation, tracking, progress."""
