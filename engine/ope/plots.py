"""Forest plot of off-policy estimates with their intervals (PNG, Agg canvas, no pyplot)."""

from __future__ import annotations

import math
from os import PathLike
from pathlib import Path

import pandas as pd

from engine.plotting import new_figure, save_figure

REFERENCE_ROW = "on-policy"


def forest_plot(
    table: pd.DataFrame,
    path: str | PathLike[str],
    title: str = "Off-policy estimates",
    true_value: float | None = None,
    reference: str | None = REFERENCE_ROW,
) -> Path:
    """Draw each estimator's value with its interval and save a PNG to ``path``.

    The ``reference`` row (default ``on-policy``: the logging policy's mean reward), when the
    table has it, is drawn as a dashed vertical line instead of an estimate; ``true_value``
    (e.g. a simulator's ground truth) as a solid one. Returns the path written.
    """
    for column in ("value", "ci_low", "ci_high"):
        if column not in table.columns:
            raise ValueError(f"table has no {column!r} column, pass the output of ope.evaluate")
    ref_value = None
    rows = table
    if reference is not None and reference in table.index:
        ref_value = float(table.loc[reference, "value"])
        rows = table.drop(index=reference)
    if rows.empty:
        raise ValueError("table has no estimator rows to plot")
    fig = new_figure(7.0, 0.55 * len(rows) + 1.6)  # matplotlib loads here, not on `import ope`
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    values = rows["value"].to_numpy(float)
    low = rows["ci_low"].to_numpy(float)
    high = rows["ci_high"].to_numpy(float)
    has_ci = [not (math.isnan(lo) or math.isnan(hi)) for lo, hi in zip(low, high, strict=True)]
    err = [
        [v - lo if ok else 0.0 for v, lo, ok in zip(values, low, has_ci, strict=True)],
        [hi - v if ok else 0.0 for v, hi, ok in zip(values, high, has_ci, strict=True)],
    ]
    ax.errorbar(
        values,
        ys,
        xerr=err,
        fmt="o",
        color="tab:blue",
        ecolor="tab:blue",
        capsize=4,
        label="estimate and interval",
    )
    if ref_value is not None:
        ax.axvline(
            ref_value,
            color="tab:gray",
            linestyle="--",
            label=f"{reference} (logged) = {ref_value:.4g}",
        )
    if true_value is not None:
        ax.axvline(
            float(true_value),
            color="tab:red",
            linestyle="-",
            label=f"true value = {float(true_value):.4g}",
        )
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_yticks(ys)
    ax.set_yticklabels([str(name) for name in rows.index])
    level, method = table.attrs.get("confidence"), table.attrs.get("ci", "")
    suffix = f" ({level:.0%} {method} intervals)" if level else ""
    ax.set_xlabel("estimated policy value" + suffix)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, Path(path))
