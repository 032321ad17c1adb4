"""Ship / do-not-ship decisions from a :func:`engine.abtest.compare` table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.validation import check_confidence

from .multiple import holm

SHIP, NO_SHIP, INCONCLUSIVE = "ship", "do not ship", "inconclusive"


@dataclass(frozen=True)
class MetricGuardrail:
    """A metric that must not get worse by more than ``margin`` (>= 0).

    ``margin`` is in the metric's units per cart, or a fraction of the control mean when
    ``relative``; ``higher_is_better`` says which direction is "worse".
    """

    margin: float
    higher_is_better: bool = True
    relative: bool = False


@dataclass(frozen=True)
class Verdict:
    """Decision for one arm: ``decision`` is "ship", "do not ship" or "inconclusive"."""

    arm: object
    decision: str
    reasons: tuple[str, ...]

    @property
    def ship(self) -> bool:
        """True when the arm should ship."""
        return self.decision == SHIP


def _guardrail(
    metric: str, spec: float | MetricGuardrail, lower_is_better: set[str]
) -> MetricGuardrail:
    if not isinstance(spec, MetricGuardrail):
        spec = MetricGuardrail(margin=float(spec), higher_is_better=metric not in lower_is_better)
    if not np.isfinite(spec.margin) or spec.margin < 0:
        raise ValueError(f"guardrails[{metric!r}] margin == {spec.margin!r}, must be >= 0")
    return spec


def _interval(
    row: pd.Series, use_cuped: bool, relative: bool = False
) -> tuple[float, float, float, str]:
    """(estimate, low, high, label) preferring CUPED columns when asked and available."""
    if relative:
        return row["rel_effect"], row["rel_ci_low"], row["rel_ci_high"], "relative"
    if use_cuped and np.isfinite(row.get("cuped_abs_effect", np.nan)):
        return row["cuped_abs_effect"], row["cuped_ci_low"], row["cuped_ci_high"], "CUPED"
    return row["abs_effect"], row["ci_low"], row["ci_high"], "delta-method"


def _rows(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    rows = table[table["metric"] == metric]
    if rows.empty:
        known = table["metric"].unique().tolist()
        raise ValueError(f"metric {metric!r} not found in table; metrics are {known!r}")
    return rows.set_index("arm")


def _guardrail_check(
    name: str, spec: MetricGuardrail, row: pd.Series, use_cuped: bool, level_text: str
) -> tuple[bool, str]:
    """(harmed, reason): harmed when the interval lies wholly past the margin."""
    estimate, low, high, _ = _interval(row, use_cuped, spec.relative)
    limit = -spec.margin if spec.higher_is_better else spec.margin
    harmed = high < limit if spec.higher_is_better else low > limit
    clear = low > limit if spec.higher_is_better else high < limit
    status = (
        "significantly worse beyond the margin"
        if harmed
        else "within the margin"
        if clear
        else "not shown to be within the margin"
    )
    scale = " (relative)" if spec.relative else ""
    reason = (
        f"guardrail {name}{scale}: {estimate:+.4g} ({level_text}CI {low:.4g} to {high:.4g}), "
        f"margin {limit:+.4g}: {status}"
    )
    return bool(harmed), reason


def ship_verdicts(
    table: pd.DataFrame,
    primary: str = "profit",
    guardrails: Mapping[str, float | MetricGuardrail] | None = None,
    alpha: float = 0.05,
    lower_is_better: Iterable[str] = ("coupon_cost",),
    use_cuped: bool = True,
    sequential: bool = False,
) -> dict[object, Verdict]:
    """Decide, per arm, whether to ship it instead of control.

    Ship when the ``primary`` metric is significantly better (Holm-adjusted over the arms at
    level ``alpha``; with ``sequential``, when the always-valid ``cs_low``/``cs_high`` exclude
    zero) and no guardrail is significantly worse beyond its margin (its interval lies wholly
    past the margin). A guardrail given as a number is a margin with the direction taken from
    ``lower_is_better``. A significantly worse primary, a harmed guardrail or a sample-ratio
    mismatch recorded in ``table.attrs`` means "do not ship"; otherwise "inconclusive".

    >>> import pandas as pd
    >>> t = pd.DataFrame({"metric": ["profit"], "arm": ["B"], "abs_effect": [0.5],
    ...                   "ci_low": [0.2], "ci_high": [0.8], "p_value": [0.001]})
    >>> ship_verdicts(t)["B"].decision
    'ship'
    """
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table must be a pandas DataFrame, found {type(table).__name__}")
    check_confidence(alpha, "alpha")
    for column in ("metric", "arm", "abs_effect", "ci_low", "ci_high", "p_value"):
        if column not in table.columns:
            raise ValueError(f"column {column!r} not found in table")
    if sequential and not {"cs_low", "cs_high"} <= set(table.columns):
        raise ValueError(
            "sequential=True needs columns 'cs_low' and 'cs_high' (compare(..., sequential=True))"
        )
    lower = set(lower_is_better)
    specs = {name: _guardrail(name, spec, lower) for name, spec in (guardrails or {}).items()}
    main = _rows(table, primary)
    guard_rows = {name: _rows(table, name) for name in specs}
    level = table.attrs.get("confidence")
    level_text = f"{level:.0%} " if level else ""
    sign = -1.0 if primary in lower else 1.0
    use_cuped_p = use_cuped and "cuped_p_value" in main and main["cuped_p_value"].notna().all()
    p_holm = holm(main["cuped_p_value" if use_cuped_p else "p_value"].to_numpy(dtype=float))
    srm_result = table.attrs.get("srm") or {}

    verdicts = {}
    for (arm, row), p_adj in zip(main.iterrows(), p_holm, strict=True):
        if sequential:
            estimate, low, high = row["abs_effect"], row["cs_low"], row["cs_high"]
            label = "delta-method"
            above, below = bool(low > 0), bool(high < 0)
            evidence = f"always-valid CS {low:.4g} to {high:.4g}"
        else:
            estimate, low, high, label = _interval(row, use_cuped)
            above, below = p_adj < alpha and estimate > 0, p_adj < alpha and estimate < 0
            evidence = f"{level_text}CI {low:.4g} to {high:.4g}, Holm-adjusted p = {p_adj:.3g}"
        better, worse = (above, below) if sign > 0 else (below, above)
        verdict_word = (
            "significantly better than"
            if better
            else "significantly worse than"
            if worse
            else "not significantly different from"
        )
        reasons = [
            f"{primary} ({label}): {estimate:+.4g} per cart ({evidence}): {verdict_word} control"
        ]
        harmed = False
        for name, spec in specs.items():
            if arm not in guard_rows[name].index:
                raise ValueError(f"guardrail metric {name!r} has no row for arm {arm!r}")
            row_g = guard_rows[name].loc[arm]
            hit, reason = _guardrail_check(name, spec, row_g, use_cuped, level_text)
            harmed = harmed or hit
            reasons.append(reason)
        if srm_result.get("flagged"):
            reasons.append(
                f"sample ratio mismatch (p = {srm_result['p_value']:.2g}): "
                "results are not trustworthy"
            )
        if worse or harmed or srm_result.get("flagged"):
            decision = NO_SHIP
        elif better:
            decision = SHIP
        else:
            decision = INCONCLUSIVE
        verdicts[arm] = Verdict(arm=arm, decision=decision, reasons=tuple(reasons))
    return verdicts
