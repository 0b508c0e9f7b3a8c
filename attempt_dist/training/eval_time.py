"""What evaluating costs a run, for its record (result.json `throughput.eval`, `eval_share`).

    clock = EvalTime()
    clock.add("dev", seconds, result["generated"])   # after each evaluate() call
    clock.by_split()      # split -> seconds, calls, generated tokens, decoding steps, ms per each
    clock.share(wall_s)   # evaluation's share of the run's wall time (issue 17's goal: <= 20%)

Figures are this process's (rank 0's, which writes the record), not carried over a --resume.
A generated token is one position of one example that the decoder produced (greedy decoding
runs every example of a batch to the batch's longest output, so ended rows count too: the
device computed them); a decoding step is one decoder pass over a whole batch. ms per generated
token is what a larger evaluation batch lowers; ms per decoding step is the decoder's latency.
"""

from __future__ import annotations


class EvalTime:
    def __init__(self) -> None:
        self._splits: dict[str, dict] = {}

    def add(self, split: str, seconds: float, generated: dict | None = None) -> None:
        """One evaluate() call on `split` took `seconds`; generated: its {"tokens", "steps"} on this rank."""
        spent = self._splits.setdefault(split, {"seconds": 0.0, "calls": 0, "generated_tokens": 0, "decode_steps": 0})
        spent["seconds"] += seconds
        spent["calls"] += 1
        spent["generated_tokens"] += (generated or {}).get("tokens", 0)
        spent["decode_steps"] += (generated or {}).get("steps", 0)

    def seconds(self) -> float:
        return sum(spent["seconds"] for spent in self._splits.values())

    def by_split(self) -> dict[str, dict[str, float]]:
        out = {}
        for split, spent in self._splits.items():
            row = {**spent, "seconds": round(spent["seconds"], 3)}
            for count, rate in (("generated_tokens", "ms_per_generated_token"), ("decode_steps", "ms_per_decode_step")):
                if spent[count]:
                    row[rate] = round(1000 * spent["seconds"] / spent[count], 4)
            out[split] = row
        return out

    def share(self, wall_s: float) -> float | None:
        """Evaluation seconds (every split) over the run's wall time in this process."""
        return round(self.seconds() / wall_s, 4) if wall_s > 0 else None
