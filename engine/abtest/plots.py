"""PNG figures for A/B results (matplotlib's Agg canvas; no pyplot global state).

matplotlib is imported when a figure is drawn, so importing the package stays light.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.plotting import new_figure as _figure
from engine.plotting import save_figure as _save

from ._checks import as_name_list

if TYPE_CHECKING:
    pass


def _require(table: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    if not isinstance(table, pd.DataFrame) or table.empty:
        raise ValueError(f"{name} must be a non-empty DataFrame")
    for column in columns:
        if column not in table.columns:
            raise ValueError(f"column {column!r} not found in {name}")


def effects_plot(
    table: pd.DataFrame, path: str | Path, metrics: str | Iterable[str] | None = None
) -> Path:
    """Forest plot of each arm's effect per metric with its interval (CUPED too, if present)."""
    _require(table, ["metric", "arm", "abs_effect", "ci_low", "ci_high"], "table")
    names = as_name_list(metrics, "metrics") or list(dict.fromkeys(table["metric"]))
    figure = _figure(6.5, 1.2 + 1.3 * len(names) * max(1, table["arm"].nunique()) ** 0.5)
    axes = figure.subplots(len(names), 1, squeeze=False)[:, 0]
    level = table.attrs.get("confidence")
    for ax, metric in zip(axes, names, strict=True):
        rows = table[table["metric"] == metric]
        if rows.empty:
            raise ValueError(f"metric {metric!r} not found in table")
        ypos = np.arange(len(rows))
        ax.errorbar(
            rows["abs_effect"],
            ypos,
            fmt="o",
            color="tab:blue",
            capsize=3,
            xerr=[rows["abs_effect"] - rows["ci_low"], rows["ci_high"] - rows["abs_effect"]],
            label="delta method",
        )
        if "cuped_abs_effect" in rows and rows["cuped_abs_effect"].notna().any():
            est = rows["cuped_abs_effect"]
            ax.errorbar(
                est,
                ypos - 0.25,
                fmt="s",
                color="tab:green",
                capsize=3,
                xerr=[est - rows["cuped_ci_low"], rows["cuped_ci_high"] - est],
                label="CUPED",
            )
        ax.axvline(0.0, color="grey", lw=1, ls="--")
        ax.set_yticks(ypos, [str(arm) for arm in rows["arm"]])
        ax.set_ylim(-0.8, len(rows) - 0.2)
        ax.set_title(f"{metric}: effect per cart vs control", fontsize=10)
    axes[0].legend(fontsize=8, loc="best")
    suffix = f" ({level:.0%} intervals)" if level else ""
    axes[-1].set_xlabel(f"treatment - control{suffix}")
    figure.tight_layout()
    return _save(figure, path)


def sequence_plot(sequence: pd.DataFrame, path: str | Path, metric: str | None = None) -> Path:
    """Estimate, always-valid CS and fixed-horizon CI over looks, one panel per arm.

    ``sequence`` is the output of :func:`engine.abtest.confidence_sequence`; ``metric``
    defaults to its first metric.
    """
    columns = ["look", "metric", "arm", "estimate", "cs_low", "cs_high", "ci_low", "ci_high"]
    _require(sequence, columns, "sequence")
    metric = metric or sequence["metric"].iloc[0]
    rows = sequence[sequence["metric"] == metric]
    if rows.empty:
        raise ValueError(f"metric {metric!r} not found in sequence")
    arms = list(dict.fromkeys(rows["arm"]))
    figure = _figure(7.0, 2.6 * len(arms))
    axes = figure.subplots(len(arms), 1, squeeze=False)[:, 0]
    for ax, arm in zip(axes, arms, strict=True):
        part = rows[rows["arm"] == arm]
        x = np.arange(len(part))
        finite = np.isfinite(part["cs_low"].to_numpy()) & np.isfinite(part["cs_high"].to_numpy())
        ax.fill_between(
            x[finite],
            part["cs_low"][finite],
            part["cs_high"][finite],
            color="tab:blue",
            alpha=0.25,
            label="confidence sequence (always valid)",
        )
        ax.plot(
            x,
            part["ci_low"],
            color="tab:orange",
            ls=":",
            label="fixed-horizon CI (not peeking-safe)",
        )
        ax.plot(x, part["ci_high"], color="tab:orange", ls=":")
        ax.plot(x, part["estimate"], color="tab:blue", marker="o", ms=3, label="estimate")
        ax.axhline(0.0, color="grey", lw=1, ls="--")
        step = max(1, len(x) // 10)
        ax.set_xticks(x[::step], [str(v) for v in part["look"].to_numpy()[::step]])
        ax.set_title(f"{metric}: {arm} - control", fontsize=10)
        ax.set_ylabel("effect per cart")
    axes[0].legend(fontsize=8, loc="best")
    axes[-1].set_xlabel("look")
    figure.tight_layout()
    return _save(figure, path)
