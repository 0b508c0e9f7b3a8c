"""Memory planning: will a run fit under a GPU memory cap, and with which DeepSpeed layout?

planner.py ranks candidate layouts; model_states.py counts weights, gradients and optimizer
state per ZeRO layout; trace.py counts activation memory by running the real model on the
meta device.
"""

from .planner import GIB, Candidate, PlanReport, PlanRequest, plan_memory

__all__ = ["GIB", "Candidate", "PlanReport", "PlanRequest", "plan_memory"]
