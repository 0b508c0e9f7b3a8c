"""attempt-dist: ATTEMPT and its baselines over frozen T5 backbones, from one CPU to a SLURM cluster."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `attempt_dist.load_run` without importing torch and transformers with the package.
    if name == "load_run":
        from .finished.predict import load_run

        return load_run
    raise AttributeError(f"module 'attempt_dist' has no attribute {name!r}")
