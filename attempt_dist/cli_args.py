"""Comma-separated command-line lists, one parser for every command (train, pipeline, params,
plan, the benchmarks): items are stripped and blank items dropped, so "boolq, cb," is
["boolq", "cb"]."""

from __future__ import annotations

import argparse


def split_csv(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']; None or '' -> []."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def csv_arg(text: str) -> list[str]:
    """argparse `type=`: a comma-separated list with at least one item."""
    items = split_csv(text)
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items
