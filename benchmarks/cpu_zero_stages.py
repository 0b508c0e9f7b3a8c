"""ATTEMPT training throughput per ZeRO stage on the CPU, with 1 and 2 ranks (random-init T5s).

    python benchmarks/cpu_zero_stages.py --out benchmarks/results          # ~8 minutes on 2 cores
    python benchmarks/cpu_zero_stages.py --models t5-tiny --dry-run

The same cells as memory_scaling.py (run through the sweep machinery, one local job each; 2 ranks
as the job's two submitit tasks, with DS_ACCELERATOR=cpu), but the question is
the cost of each ZeRO stage, not fit: zero0, zero2_offload and zero3_offload for t5-tiny and
t5-small, no memory cap. Writes <out>/cpu-zero-stages.json and .md. On a 2-core machine two ranks
share the two cores, so 2-rank numbers show communication overhead, not scaling.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_scaling import Cell, build_parser, main as run_benchmark  # noqa: E402

MODELS = ("t5-tiny", "t5-small")
STAGES = ("zero0", "zero2_offload", "zero3_offload")
BATCH_SIZE = 4

CELLS = [Cell(model, "attempt", stage, BATCH_SIZE, ranks) for model in MODELS for ranks in (1, 2) for stage in STAGES]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(prog="cpu_zero_stages.py", description=__doc__.split("\n\n")[0])
    parser.set_defaults(cap="none", steps=4, name="cpu-zero-stages", timeout=600)
    return run_benchmark(argv, cells=CELLS, stem="cpu-zero-stages", parser=parser,
                         notes=["Two ranks on 2 cores share (and oversubscribe) them, so 2-rank examples/s measures "
                                "gloo communication and contention overhead, not scaling. Examples/s counts both ranks' examples."])


if __name__ == "__main__":
    sys.exit(main())
