"""attempt-dist: ATTEMPT and its baselines over frozen T5 backbones, from one CPU to a SLURM cluster."""

__version__ = "0.1.0"
