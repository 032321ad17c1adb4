"""Analysis of a simulated experiment with :mod:`engine.abtest`, beside the simulator's truth.

The estimates are what a growth team would see (delta-method effects per cart, CUPED on the
pre-period profit, always-valid confidence sequences over daily looks, SRM, ship decisions).
Next to them, for profit, :data:`TRUE_EFFECT_NOTE` says what the TRUE effect column is, and the
OPE pre-screen's estimate of the same effect from the pre-period log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine import abtest

if TYPE_CHECKING:
    from simulator.experiments.experiment import ExperimentResult

__all__ = ["TRUE_EFFECT_NOTE", "Analysis", "analyse", "true_effects"]

logger = logging.getLogger(__name__)

TRUE_EFFECT_NOTE = (
    "True effect (profit only): the arm's mean of true_profit per cart minus the control's, "
    "where true_profit is the simulator's expected profit of the action actually chosen for that "
    "cart, given the cart and the shopper's state at that moment. It removes the purchase "
    "(outcome) noise but keeps which shoppers and carts each arm received, the policies' own "
    "randomisation and everything the arms did to shoppers' later carts (fatigue, coupon "
    "conditioning). The delta-method interval targets the population effect, so it also allows "
    "for who fell in which arm: it should cover this value at least as often as its level."
)


@dataclass(frozen=True)
class Analysis:
    """Everything the report shows.

    - ``table``: :func:`engine.abtest.compare` (one row per metric and treatment arm, CUPED and
      confidence-sequence columns) plus ``true_effect``, ``true_in_ci``, ``true_in_cs`` and the
      pre-screen's ``ope_effect``, ``ope_ci_low``, ``ope_ci_high``, ``ope_true_effect`` (profit
      rows; NaN elsewhere).
    - ``sequence``: :func:`engine.abtest.confidence_sequence` of profit over days.
    - ``srm``: the sample-ratio check; ``verdicts`` (fixed horizon, CUPED, Holm) and
      ``sequential_verdicts`` (always-valid sequence): :func:`engine.abtest.ship_verdicts`.
    - ``arms``: per arm ``units, carts, profit, true_profit``; ``daily``: per arm and day
      ``carts, profit, true_profit`` sums.
    """

    table: pd.DataFrame
    sequence: pd.DataFrame
    srm: dict
    verdicts: dict[str, abtest.Verdict]
    sequential_verdicts: dict[str, abtest.Verdict]
    arms: pd.DataFrame
    daily: pd.DataFrame
    prescreen: pd.DataFrame | None
    control: str
    confidence: float
    covariates: tuple[str, ...]


def true_effects(carts: pd.DataFrame, control: str) -> pd.Series:
    """Mean ``true_profit`` per cart of each arm minus the control's (indexed by arm).

    >>> carts = pd.DataFrame({"arm": ["a", "a", "b"], "true_profit": [1.0, 3.0, 5.0]})
    >>> true_effects(carts, "a").to_dict()
    {'b': 3.0}
    """
    means = carts.groupby("arm", sort=False)["true_profit"].mean()
    if control not in means.index:
        raise ValueError(f"control == {control!r} has no carts; arms are {list(means.index)!r}")
    return (means - means[control]).drop(control)


def _usable_covariates(carts: pd.DataFrame, covariates: Iterable[str]) -> tuple[str, ...]:
    usable = []
    for name in covariates:
        if name not in carts.columns:
            raise ValueError(f"covariates names {name!r}, not a column of the carts")
        if carts[name].nunique() > 1:
            usable.append(name)
        else:
            logger.warning("covariate %r is constant (no pre-period?): CUPED skipped for it", name)
    return tuple(usable)


def analyse(
    result: ExperimentResult,
    confidence: float = 0.95,
    covariates: str | Iterable[str] | None = "pre_profit",
    metrics: Iterable[str] = abtest.DEFAULT_METRICS,
    guardrails: Mapping[str, Any] | None = None,
) -> Analysis:
    """Analyse ``result``: effects, SRM, decisions, the true effect and the OPE pre-screen.

    Compares the arms (CUPED on ``covariates``, sequential over days), checks the sample ratio
    against the planned weights, decides on profit at level ``1 - confidence``, and puts the true
    effect and the OPE pre-screen side by side.
    """
    carts, control = result.carts, result.control
    if carts.empty:
        raise ValueError("result.carts has no rows: the test saw no carts")
    names = [covariates] if isinstance(covariates, str) else list(covariates or ())
    usable = _usable_covariates(carts, names)
    expected = {arm: share for arm, share in result.weights.items()}
    table = abtest.compare(
        carts,
        arm="arm",
        control=control,
        metrics=list(metrics),
        confidence=confidence,
        covariates=list(usable) or None,
        sequential=True,
        look="day",
        primary="profit",
        expected=expected,
    )
    sequence = abtest.confidence_sequence(
        carts, control=control, metrics="profit", look="day", confidence=confidence
    )
    alpha = 1.0 - confidence
    verdicts = abtest.ship_verdicts(table, primary="profit", guardrails=guardrails, alpha=alpha)
    seq_verdicts = abtest.ship_verdicts(
        table, primary="profit", guardrails=guardrails, alpha=alpha, sequential=True
    )
    truth = true_effects(carts, control)
    profit = table["metric"] == "profit"
    table["true_effect"] = np.where(profit, table["arm"].map(truth), np.nan)
    table["true_in_ci"] = np.where(
        profit,
        (table["ci_low"] <= table["true_effect"]) & (table["true_effect"] <= table["ci_high"]),
        np.nan,
    )
    table["true_in_cs"] = np.where(
        profit,
        (table["cs_low"] <= table["true_effect"]) & (table["true_effect"] <= table["cs_high"]),
        np.nan,
    )
    for column in ("ope_effect", "ope_ci_low", "ope_ci_high", "ope_true_effect"):
        table[column] = np.nan
    screen = result.prescreen
    if screen is not None and "effect" in screen:
        by_arm = screen.set_index("arm")
        for source, column in (
            ("effect", "ope_effect"),
            ("effect_ci_low", "ope_ci_low"),
            ("effect_ci_high", "ope_ci_high"),
            ("true_effect", "ope_true_effect"),
        ):
            table.loc[profit, column] = table.loc[profit, "arm"].map(by_arm[source]).to_numpy()
    grouped = carts.groupby("arm", sort=False)
    arms = pd.DataFrame(
        {
            "units": grouped["user_id"].nunique(),
            "carts": grouped.size(),
            "profit": grouped["profit"].mean(),
            "true_profit": grouped["true_profit"].mean(),
            "converted": grouped["converted"].mean(),
        }
    ).reindex(list(result.arms))
    daily = (
        carts.groupby(["arm", "day"])
        .agg(carts=("profit", "size"), profit=("profit", "sum"), true_profit=("true_profit", "sum"))
        .reset_index()
    )
    return Analysis(
        table=table,
        sequence=sequence,
        srm=table.attrs["srm"],
        verdicts=verdicts,
        sequential_verdicts=seq_verdicts,
        arms=arms,
        daily=daily,
        prescreen=screen,
        control=control,
        confidence=float(confidence),
        covariates=usable,
    )
