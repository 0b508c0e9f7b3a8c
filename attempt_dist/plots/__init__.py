"""Figures and tables from a results folder (matplotlib, Agg backend).

    from attempt_dist.plots import plot_run
    plot_run("runs/scaling")   # -> runs/scaling/figures/{fig4a_params, fig4b_boolq, ..., fig5_attention}
                               #    .png/.pdf/.csv and table{2,3,4}_<model>.{md,tex,csv}, with
                               #    table{2,3,4}_<model>_vs_paper.{md,csv} beside the paper's
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..finished.output_paths import check_folder_target
from .records import Record, collect, model_order


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None, *, split: str = "test",
             counter=None, figures: tuple[str, ...] = ("fig4", "fig5", "tables")) -> list[Path]:
    """Write every figure and table the results support; UserError when there is nothing."""
    from . import tables as tables_lib
    from .attention import fig5
    from .compare import write_comparisons
    from .scaling import fig4_tasks, fig4a

    run_dir = Path(run_dir)
    out = check_folder_target(Path(out_dir) if out_dir else run_dir / "figures", "--out")
    records = collect(run_dir)
    if not records:
        raise UserError(f"{run_dir} holds no result.json or failure.json records; nothing to plot "
                        f"(run a sweep or training into it first)")
    written: list[Path] = []
    if "fig4" in figures:
        written += fig4a(records, out, counter=counter)
        written += fig4_tasks(records, out, split)
    if "fig5" in figures:
        models = model_order({r.model for r in records})
        for model in models:
            stem = "fig5_attention" if len(models) == 1 else f"fig5_attention_{model}"
            written += fig5([r for r in records if r.model == model], out, split, stem=stem)
    if "tables" in figures:
        tables = tables_lib.build_tables(records, split)
        written += tables_lib.write_tables(tables, out)
        written += write_comparisons(tables, out)
    return written


__all__ = ["Record", "collect", "plot_run"]
