"""PNG figures of a simulated experiment (matplotlib's Agg canvas, no pyplot global state)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.plotting import new_figure as _figure
from engine.plotting import save_figure as _save

if TYPE_CHECKING:
    from simulator.experiments.analysis import Analysis

__all__ = ["cumulative_plot", "profit_effects_plot"]


def _intervals(ax, rows, series) -> None:
    offsets = np.linspace(0.2, -0.2, len(series)) if len(series) > 1 else [0.0]
    for (est, low, high, marker, color, label), dy in zip(series, offsets, strict=True):
        if est not in rows:
            continue
        e, lo, hi = (rows[c].to_numpy(dtype=float) for c in (est, low, high))
        ok = np.isfinite(e) & np.isfinite(lo) & np.isfinite(hi) & (lo <= hi)
        if not ok.any():
            continue
        y = np.arange(len(rows))[ok] + dy
        ax.errorbar(
            e[ok],
            y,
            xerr=[e[ok] - lo[ok], hi[ok] - e[ok]],
            fmt=marker,
            color=color,
            capsize=3,
            ms=5,
            label=label,
        )


def _finish(ax, rows, truth, title: str, xlabel: str) -> None:
    ok = np.isfinite(truth)
    ax.scatter(
        truth[ok],
        np.arange(len(rows))[ok],
        marker="*",
        s=170,
        color="tab:red",
        zorder=5,
        label="true effect (simulator)",
    )
    ax.axvline(0.0, color="black", lw=0.8, ls="--")
    ax.set_yticks(np.arange(len(rows)), [str(arm) for arm in rows["arm"]])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)


def profit_effects_plot(analysis: Analysis, path: str | Path) -> Path:
    """Profit effect per cart of each arm vs control, with the true effect (red star).

    Left: the A/B test (delta-method CI, CUPED CI, always-valid CS). Right: the OPE pre-screen
    on the pre-period log (DR interval, and the true effect on those logged carts).
    """
    rows = analysis.table[analysis.table["metric"] == "profit"].reset_index(drop=True)
    level = f"{analysis.confidence:.0%}"
    has_ope = np.isfinite(rows["ope_effect"].to_numpy(dtype=float)).any()
    figure = _figure(12.0 if has_ope else 7.0, 2.6 + 0.9 * len(rows))
    axes = figure.subplots(1, 2 if has_ope else 1, squeeze=False)[0]
    _intervals(
        axes[0],
        rows,
        [
            ("abs_effect", "ci_low", "ci_high", "o", "tab:blue", f"delta method ({level} CI)"),
            (
                "cuped_abs_effect",
                "cuped_ci_low",
                "cuped_ci_high",
                "s",
                "tab:green",
                f"CUPED ({level} CI)",
            ),
            ("abs_effect", "cs_low", "cs_high", "|", "tab:gray", "always-valid CS (daily looks)"),
        ],
    )
    xlabel = f"profit per cart, arm minus {analysis.control} (USD)"
    _finish(
        axes[0],
        rows,
        rows["true_effect"].to_numpy(dtype=float),
        f"A/B test: profit effect vs control '{analysis.control}'",
        xlabel,
    )
    if has_ope:
        _intervals(
            axes[1],
            rows,
            [
                (
                    "ope_effect",
                    "ope_ci_low",
                    "ope_ci_high",
                    "D",
                    "tab:purple",
                    f"DR estimate ({level} CI)",
                )
            ],
        )
        _finish(
            axes[1],
            rows,
            rows["ope_true_effect"].to_numpy(dtype=float),
            "OPE pre-screen on the pre-period log",
            xlabel,
        )
    figure.tight_layout()
    return _save(figure, path)


def cumulative_plot(analysis: Analysis, path: str | Path) -> Path:
    """Per arm over days: cumulative profit (realised and true) and running profit per cart."""
    daily = analysis.daily
    figure = _figure(11.0, 4.2)
    left, right = figure.subplots(1, 2)
    colors = [f"C{k}" for k in range(10)]
    for k, arm in enumerate(analysis.arms.index):
        part = daily[daily["arm"] == arm].sort_values("day")
        if part.empty:
            continue
        color = colors[k % len(colors)]
        day = part["day"].to_numpy()
        cum_profit = part["profit"].cumsum().to_numpy()
        cum_true = part["true_profit"].cumsum().to_numpy()
        cum_carts = part["carts"].cumsum().to_numpy()
        left.plot(day, cum_profit, color=color, marker="o", ms=3, label=f"{arm} (realised)")
        left.plot(day, cum_true, color=color, ls="--", label=f"{arm} (true)")
        right.plot(day, cum_profit / cum_carts, color=color, marker="o", ms=3, label=f"{arm}")
        right.plot(day, cum_true / cum_carts, color=color, ls="--")
    left.set_title("Cumulative profit per arm (USD)", fontsize=11)
    left.set_xlabel("day of the test")
    left.set_ylabel("USD")
    left.legend(fontsize=8, loc="upper left")
    right.set_title("Running profit per cart (solid: realised, dashed: true)", fontsize=11)
    right.set_xlabel("day of the test")
    right.set_ylabel("USD per cart")
    right.legend(fontsize=8, loc="best")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return _save(figure, path)
