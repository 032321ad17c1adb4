"""Plots of the main job (matplotlib, Agg: no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.plotting import new_figure
from engine.plotting import save_figure as _save
from simulator.shop.constants import SHOPPER_TYPES


def engine_learning_curve(decisions: pd.DataFrame, path: Path, window: int = 1000) -> Path:
    """Rolling true expected profit per cart of the engine's choices, of none and of the oracle."""
    fig = new_figure(8, 4.2)
    ax = fig.add_subplot()
    x = np.arange(1, len(decisions) + 1)
    for column, label, style in (
        ("oracle", "oracle (best eligible action)", "--"),
        ("value", "Cartwise engine", "-"),
        ("none", "no action", ":"),
    ):
        ax.plot(
            x,
            decisions[column].rolling(window, min_periods=window // 5).mean(),
            style,
            label=label,
            lw=2,
        )
    ax.set_xlabel("abandoned carts served")
    ax.set_ylabel(f"expected profit per cart, USD\n(rolling mean of {window} carts)")
    ax.set_title("The embedded engine learning online on simulated checkout traffic")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, path, tight=True)


def profit_by_type(decisions: pd.DataFrame, path: Path, last_share: float = 0.2) -> Path:
    """Expected profit per cart by hidden shopper type over the last carts: engine, none, oracle."""
    tail = decisions.iloc[-max(int(len(decisions) * last_share), 1) :]
    means = tail.groupby("type")[["none", "value", "oracle"]].mean().reindex(list(SHOPPER_TYPES))
    fig = new_figure(8, 4.2)
    ax = fig.add_subplot()
    width = 0.27
    pos = np.arange(len(means))
    for k, (column, label) in enumerate(
        (("none", "no action"), ("value", "Cartwise engine"), ("oracle", "oracle"))
    ):
        ax.bar(pos + (k - 1) * width, means[column], width, label=label)
    ax.set_xticks(pos, [t.replace("_", "-") for t in means.index])
    ax.set_ylabel("expected profit per cart, USD")
    ax.set_title(f"Profit by hidden shopper type (last {int(last_share * 100)}% of carts)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _save(fig, path, tight=True)


def ope_truth_plot(table: pd.DataFrame, path: Path) -> Path:
    """Forest plot: each target policy's off-policy estimates with intervals, and its true value."""
    targets = list(dict.fromkeys(table["target"]))
    estimators = list(dict.fromkeys(table["estimator"]))
    fig = new_figure(8, 0.6 + 0.32 * len(table) + 0.3 * len(targets))
    ax = fig.add_subplot()
    colours = {
        e: c
        for e, c in zip(
            estimators,
            ("#1f77b4", "#ff7f0e", "#7f7f7f", "#2ca02c", "#9467bd", "#8c564b"),
            strict=False,  # one colour per estimator, from a longer palette
        )
    }
    y, ticks, labels = 0.0, [], []
    for target in targets:
        rows = table[table["target"] == target]
        top = y
        for _, r in rows.iterrows():
            ax.errorbar(
                r["value"],
                y,
                xerr=None
                if np.isnan(r["ci_low"])  # an estimate without an interval (DM): a dot
                else [[r["value"] - r["ci_low"]], [r["ci_high"] - r["value"]]],
                fmt="o",
                color=colours[r["estimator"]],
                capsize=3,
                label=r["estimator"] if target == targets[0] else None,
            )
            ticks.append(y)
            labels.append(f"{target} · {r['estimator']}")
            y += 1
        truth = rows["true_value"].iloc[0]
        ax.plot(
            [truth, truth],
            [top - 0.4, y - 0.6],
            color="black",
            lw=2,
            label="true value" if target == targets[0] else None,
        )
        y += 0.8
    ax.set_yticks(ticks, labels)
    ax.invert_yaxis()
    ax.set_xlabel("expected profit per cart, USD")
    ax.set_title("Off-policy estimates on the engine's decision log vs the truth")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path, tight=True)


def profit_by_policy(scoreboard: pd.DataFrame, path: Path) -> Path:
    """Expected profit per cart of every policy (last 20% of its run).

    Its run's no-action and oracle values are drawn as ticks (each run shapes its own shop, so its
    baselines are its own).
    """
    board = scoreboard.reset_index(drop=True)
    fig = new_figure(8, 4.2)
    ax = fig.add_subplot()
    pos = np.arange(len(board))
    ax.bar(pos, board["value_last"], 0.6, label="policy", color="#1f77b4")
    ax.scatter(
        pos, board["none"], marker="_", s=600, color="black", label="no action (same run)", zorder=3
    )
    ax.scatter(
        pos,
        board["full_information"],
        marker="_",
        s=600,
        color="#2ca02c",
        label="full-information ceiling",
        zorder=3,
    )
    ax.scatter(pos, board["oracle"], marker="_", s=600, color="#d62728", label="oracle", zorder=3)
    ax.set_xticks(pos, board["policy"])
    ax.set_ylabel("expected profit per cart, USD")
    ax.set_title("Profit by policy (last 20% of carts of each run)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    return _save(fig, path, tight=True)


def risk_reliability(warmup: Any, path: Path) -> Path:
    """Reliability diagram of the warm-up's abandonment-risk model on held-out carts.

    Mean predicted probability against the observed unprompted-return rate, per equal-count bin.
    """
    table = warmup.reliability
    fig = new_figure(5.5, 4.5)
    ax = fig.add_subplot()
    top = float(max(table["predicted"].max(), table["observed"].max())) * 1.1
    ax.plot([0, top], [0, top], ":", color="grey", label="perfect calibration")
    ax.plot(
        table["predicted"], table["observed"], "o-", lw=2, label="risk model (equal-count bins)"
    )
    ax.set_xlim(0, top)
    ax.set_ylim(0, top)
    ax.set_xlabel("predicted P(return and buy, no action)")
    ax.set_ylabel("observed return rate")
    ax.set_title(
        f"Risk model on held-out carts: ECE {warmup.risk_ece:.3f}, "
        f"AUC {warmup.risk_auc:.2f} (truth {warmup.truth_auc:.2f})"
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return _save(fig, path, tight=True)
