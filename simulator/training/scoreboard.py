"""The decision-quality scoreboard: several policies, several seeds, side by side.

Every run is scored against baselines computed on its own carts (see :mod:`.loop`); the
scoreboard reports per policy the mean and the spread (sample standard deviation over seeds)
of: value, gain share (``(value - none) / (full_information - none)``), regret to the oracle,
margins over the best static action and over the rule, conversion and coupon cost, all on the
last 20% of carts. With a mixture shift it also reports how fast each policy recovers (as a share
of the oracle's gain, see :func:`shift_recovery`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from policies import make_policy
from simulator.shop.config import SimConfig
from simulator.training.intent import decile_table
from simulator.training.loop import LAST_SHARE, TrainingResult, run_policy

logger = logging.getLogger(__name__)

DEFAULT_POLICIES = (
    "none",
    "rule",
    "uniform",
    "vw",
    "linucb",
    "lints",
    "full-information",
    "oracle",
)
#: Per-run metrics summarised by the scoreboard, in table order.
METRICS = (
    "value_last",
    "gain_share",
    "regret_oracle",
    "vs_best_static",
    "vs_rule",
    "none",
    "best_static",
    "rule",
    "full_information",
    "oracle",
    "conversion_last",
    "coupon_cost_last",
    "carts_per_second",
)
SHIFT_METRICS = ("oracle_share_before", "oracle_share_after", "oracle_share_end", "recovery_carts")


@dataclass
class Scoreboard:
    """Results of :func:`compare_policies`.

    ``runs``: one row per (policy, seed) with :data:`METRICS` (and :data:`SHIFT_METRICS` under a
    shift); ``curves``: the learning curves of every run (long format); ``summary``: one row per
    policy with ``<metric>_mean`` and ``<metric>_sd`` columns; ``intent``: per policy and intent
    decile (of the true ``p_return``, last 20% of carts, mean over seeds) the share of carts given
    a coupon and the profit per cart of the policy, of the rule and of the oracle on the policy's
    own carts (:func:`intent_rows`).
    """

    runs: pd.DataFrame
    curves: pd.DataFrame
    summary: pd.DataFrame
    carts: int
    seeds: tuple[int, ...]
    shift_at: int | None = None
    intent: pd.DataFrame | None = None

    def to_markdown(self) -> str:
        """The summary as a markdown table (mean ± sd over seeds)."""
        return markdown_table(self.summary, self.seeds)

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write the CSVs, ``scoreboard.md`` and ``learning_curves.png`` to ``out``.

        The CSVs: runs, summary, curves, and ``intent_deciles.csv`` when there is an intent table.
        """
        from simulator.training.plots import learning_curve_plot

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            "runs": folder / "runs.csv",
            "summary": folder / "summary.csv",
            "curves": folder / "curves.csv",
            "markdown": folder / "scoreboard.md",
            "plot": folder / "learning_curves.png",
        }
        if self.intent is not None:
            paths["intent"] = folder / "intent_deciles.csv"
            self.intent.to_csv(paths["intent"], index=False)
        self.runs.to_csv(paths["runs"], index=False)
        self.summary.to_csv(paths["summary"], index=False)
        self.curves.to_csv(paths["curves"], index=False)
        title = f"Cartwise scoreboard: {self.carts} carts, seeds {list(self.seeds)}"
        paths["markdown"].write_text(f"# {title}\n\n{self.to_markdown()}\n", encoding="utf-8")
        learning_curve_plot(self.curves, paths["plot"], shift_at=self.shift_at, title=title)
        return paths


def intent_rows(result: TrainingResult) -> pd.DataFrame:
    """:func:`~simulator.training.intent.decile_table` of one run's last 20% of carts.

    Columns ``policy_*`` for the policy, ``rule_*`` and ``oracle_*`` for those on the same carts.
    """
    trace = result.trace
    last = slice(int(np.floor(result.carts * (1.0 - LAST_SHARE))), result.carts)
    truth = trace["truth"][last]
    oracle = np.where(trace["mask"][last], truth, -np.inf).argmax(axis=1)
    chosen = {"policy": trace["action"][last], "rule": trace["rule_action"][last], "oracle": oracle}
    table = decile_table(trace["p_return"][last], truth, chosen)
    table.insert(0, "seed", result.seed)
    table.insert(0, "policy", result.policy)
    return table


def first_shifted_cart(shift_at: int, batch: int) -> int:
    """Index of the first cart drawn after a mixture shift at episode ``shift_at``.

    The vector env draws ``batch`` carts at a time and applies the shift before the first draw at
    or past it.
    """
    return -(-shift_at // batch) * batch


def shift_recovery(result: TrainingResult, window: int | None = None) -> dict[str, float]:
    """How a policy fares around its run's mixture shift, from the per-cart trace.

    Shares are of the *oracle's* gain, ``(value - none) / (oracle - none)`` over a window of
    carts: the oracle knows the truth, so it adapts at once and is the right yardstick for a
    change of the world (the full-information shadow is itself a learner that must re-adapt).
    ``oracle_share_before``: over the ``window`` carts before the shift; ``oracle_share_after``:
    the ``window`` carts right after it; ``oracle_share_end``: the run's last ``window`` carts;
    ``recovery_carts``: carts after the shift until the end of the first window whose share is
    back to >= 90% of ``oracle_share_before`` (0 if it never fell below; nan if not within the
    run). Windows default to 5% of the run.
    """
    if result.shift_at is None:
        raise ValueError("result has no mixture shift (shift_at is None)")
    trace = result.trace
    w = int(window or max(result.carts // 20, 1))
    start = first_shifted_cart(result.shift_at, result.batch)
    if start - w < 0 or start + w > result.carts:
        raise ValueError(
            f"shift_at == {result.shift_at}, must leave a window of {w} carts on each side"
        )

    def share(lo: int, hi: int) -> float:
        none = trace["none"][lo:hi].mean()
        gain = trace["oracle"][lo:hi].mean() - none
        return float((trace["value"][lo:hi].mean() - none) / gain) if gain > 0 else np.nan

    before, after = share(start - w, start), share(start, start + w)
    recovery = np.nan
    if after >= 0.9 * before:
        recovery = 0.0
    else:
        for lo in range(start + max(w // 4, 1), result.carts - w + 1, max(w // 4, 1)):
            if share(lo, lo + w) >= 0.9 * before:
                recovery = float(lo + w - start)
                break
    return {
        "oracle_share_before": before,
        "oracle_share_after": after,
        "oracle_share_end": share(result.carts - w, result.carts),
        "recovery_carts": recovery,
    }


def run_row(result: TrainingResult) -> dict[str, Any]:
    """The scoreboard row of one run."""
    row = {
        "policy": result.policy,
        "seed": result.seed,
        "carts": result.carts,
        "value_last": result.value_last,
        "gain_share": result.gain_share,
        "regret_oracle": result.oracle - result.value_last,
        "vs_best_static": result.value_last - result.best_static,
        "vs_rule": result.value_last - result.rule,
        "none": result.none,
        "best_static": result.best_static,
        "best_static_action": result.best_static_action,
        "rule": result.rule,
        "full_information": result.full_information,
        "oracle": result.oracle,
        "conversion_last": result.conversion_last,
        "coupon_cost_last": result.coupon_cost_last,
        "carts_per_second": result.carts_per_second,
    }
    if result.shift_at is not None:
        row.update(shift_recovery(result))
    return row


def summarise_over_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample standard deviation over seeds of every metric, one row per policy.

    Policies are in first-appearance order. ``recovery_carts`` is nan unless every seed recovered;
    ``recovered`` is the share of seeds that did.
    """
    if "recovery_carts" in runs.columns:
        runs = runs.assign(recovered=np.isfinite(runs["recovery_carts"]).astype(float))
    metrics = [m for m in (*METRICS, *SHIFT_METRICS, "recovered") if m in runs.columns]
    grouped = runs.groupby("policy", sort=False)[metrics]
    mean, sd = grouped.mean(), grouped.std(ddof=1)
    if "recovery_carts" in metrics:
        unrecovered = runs["recovery_carts"].isna().groupby(runs["policy"], sort=False).any()
        mean.loc[unrecovered, "recovery_carts"] = np.nan
        sd.loc[unrecovered, "recovery_carts"] = np.nan
    out = pd.concat([mean.add_suffix("_mean"), sd.add_suffix("_sd")], axis=1)
    out.insert(0, "seeds", grouped.size())
    order = [f"{m}_{s}" for m in metrics for s in ("mean", "sd")]
    return out[["seeds", *order]].reset_index()


def compare_policies(
    policies: Sequence[str] = DEFAULT_POLICIES,
    carts: int = 20_000,
    seeds: int | Sequence[int] = 3,
    config: SimConfig | Mapping[str, Any] | None = None,
    batch: int = 256,
    progress: bool = True,
    curve_points: int = 50,
    policy_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
) -> Scoreboard:
    """Run every policy (by registry name) on every seed and build the scoreboard.

    ``seeds``: a count ``K`` (seeds ``0..K-1``) or explicit seeds. Policy ``p`` on seed ``s`` is
    ``make_policy(p, seed=s, **policy_kwargs.get(p, {}))`` on the shop built from ``s``.

    >>> board = compare_policies(["none", "oracle"], carts=512, seeds=2, config={"n_shoppers": 300},
    ...                          progress=False, curve_points=4)
    >>> board.summary["policy"].tolist(), int(board.summary["seeds"].iloc[0])
    (['none', 'oracle'], 2)
    """
    names = list(policies)
    if not names:
        raise ValueError("policies is empty, must name at least one policy")
    seed_list = (
        list(range(seeds))
        if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool)
        else [int(s) for s in seeds]
    )
    if not seed_list:
        raise ValueError(f"seeds == {seeds!r}, must be a count >= 1 or a non-empty list of seeds")
    kwargs = dict(policy_kwargs or {})
    for name in names:
        make_policy(name, **kwargs.get(name, {}))  # fail fast on a bad name before any long run
    rows, curves, intent, shift_at = [], [], [], None
    for name in names:
        for seed in seed_list:
            result = run_policy(
                make_policy(name, seed=seed, **kwargs.get(name, {})),
                carts,
                seed,
                config=config,
                batch=batch,
                progress=progress,
                curve_points=curve_points,
            )
            shift_at = (
                result.shift_at
                if result.shift_at is None
                else first_shifted_cart(result.shift_at, result.batch)
            )
            rows.append(run_row(result))
            intent.append(intent_rows(result))
            curve = pd.DataFrame(result.curve)
            curve.insert(0, "seed", seed)
            curve.insert(0, "policy", name)
            curves.append(curve)
            logger.info(
                "%s seed %d: value %.3f, gain share %.3f",
                name,
                seed,
                result.value_last,
                result.gain_share,
            )
    runs = pd.DataFrame(rows)
    by_decile = pd.concat(intent, ignore_index=True).drop(columns="seed")
    by_decile = by_decile.groupby(["policy", "decile"], sort=False).mean().reset_index()
    return Scoreboard(
        runs,
        pd.concat(curves, ignore_index=True),
        summarise_over_seeds(runs),
        carts,
        tuple(seed_list),
        shift_at,
        by_decile,
    )


_TABLE_COLUMNS = (
    ("value_last", "value", 3),
    ("gain_share", "gain share", 3),
    ("regret_oracle", "regret to oracle", 3),
    ("vs_best_static", "vs best static", 3),
    ("vs_rule", "vs rule", 3),
    ("conversion_last", "conversion", 4),
    ("coupon_cost_last", "coupon cost", 3),
    ("oracle_share_before", "oracle share before shift", 3),
    ("oracle_share_after", "after shift", 3),
    ("oracle_share_end", "at end", 3),
    ("recovery_carts", "recovery (carts)", 0),
    ("recovered", "seeds recovered", 2),
    ("carts_per_second", "carts/s", 0),
)


def markdown_table(summary: pd.DataFrame, seeds: Sequence[int] = ()) -> str:
    """Markdown table of a :func:`summarise_over_seeds` frame: ``mean ± sd`` per metric."""
    columns = [
        (key, label, digits)
        for key, label, digits in _TABLE_COLUMNS
        if f"{key}_mean" in summary.columns
    ]
    lines = [
        "| policy | " + " | ".join(label for _, label, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for _, row in summary.iterrows():
        cells = []
        for key, _, digits in columns:
            mean, sd = row[f"{key}_mean"], row[f"{key}_sd"]
            cell = "n/a" if pd.isna(mean) else f"{mean:.{digits}f}"
            if not pd.isna(mean) and not pd.isna(sd):
                cell += f" ± {sd:.{digits}f}"
            cells.append(cell)
        lines.append(f"| {row['policy']} | " + " | ".join(cells) + " |")
    note = (
        (
            f"\nMean ± sd over {len(seeds)} seeds; last 20% of carts; "
            "values are true expected profit per cart (USD). "
            "Gain share = (value - none) / (full information - none)."
        )
        if seeds
        else ""
    )
    return "\n".join(lines) + note
