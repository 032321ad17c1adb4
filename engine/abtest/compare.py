"""``compare``: the per-metric, per-arm effect table of an A/B test on cart data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from engine.validation import check_confidence

from ._checks import as_name_list, check_columns, check_frame, treatment_arms
from .cuped import cuped_difference
from .delta import normal_interval, ratio_difference, two_sided_p
from .multiple import holm
from .sequential import sequence_table
from .srm import srm_from_counts
from .units import UnitData, aggregate

DEFAULT_METRICS = ("profit", "converted", "revenue", "coupon_cost")

CovariateSpec = str | Sequence[str] | Mapping[str, str | Sequence[str]] | None


def _covariate_map(covariates: CovariateSpec, metrics: list[str]) -> dict[str, list[str]]:
    """Metric -> covariate columns. A name or list applies to every metric; a dict per metric."""
    if covariates is None:
        return {}
    if isinstance(covariates, Mapping):
        unknown = [name for name in covariates if name not in metrics]
        if unknown:
            raise ValueError(f"covariates names metric(s) {unknown!r} not in metrics {metrics!r}")
        mapping = {
            name: as_name_list(spec, f"covariates[{name!r}]") for name, spec in covariates.items()
        }
    else:
        names = as_name_list(covariates, "covariates")
        mapping = {name: names for name in metrics}
    return {name: columns for name, columns in mapping.items() if columns}


def _effect_row(
    data: UnitData,
    metric: str,
    control: object,
    level: object,
    confidence: float,
    covariates: list[str],
) -> dict:
    in_t, in_c = data.in_arm(level), data.in_arm(control)
    y, n = data.sums[metric][-1], data.carts[-1]
    diff = ratio_difference(y[in_t], n[in_t], y[in_c], n[in_c])
    ci_low, ci_high = normal_interval(diff.abs_effect, diff.abs_se, confidence)
    rel_low, rel_high = normal_interval(diff.rel_effect, diff.rel_se, confidence)
    row = {
        "metric": metric,
        "arm": level,
        "n_units": int(in_t.sum()),
        "n_units_control": int(in_c.sum()),
        "control_mean": float(diff.control_mean),
        "treatment_mean": float(diff.treatment_mean),
        "abs_effect": float(diff.abs_effect),
        "ci_low": float(ci_low),
        "ci_high": float(ci_high),
        "rel_effect": float(diff.rel_effect),
        "rel_ci_low": float(rel_low),
        "rel_ci_high": float(rel_high),
        "p_value": float(two_sided_p(diff.abs_effect, diff.abs_se)),
    }
    if covariates:
        x = np.column_stack([data.covariates[name] for name in covariates])
        for name in covariates:
            values = data.covariates[name]
            if np.ptp(values[in_t]) == 0 and np.ptp(values[in_c]) == 0:
                raise ValueError(
                    f"covariate column {name!r} is constant within arms {level!r} and "
                    f"{control!r}; CUPED needs variation"
                )
        adjusted = cuped_difference(y[in_t], n[in_t], x[in_t], y[in_c], n[in_c], x[in_c])
        low, high = normal_interval(adjusted.abs_effect, adjusted.abs_se, confidence)
        row.update(
            {
                "cuped_abs_effect": float(adjusted.abs_effect),
                "cuped_ci_low": float(low),
                "cuped_ci_high": float(high),
                "cuped_p_value": float(two_sided_p(adjusted.abs_effect, adjusted.abs_se)),
                "variance_reduction": float(adjusted.variance_reduction),
            }
        )
    return row


def compare(
    df: pd.DataFrame,
    arm: str = "arm",
    control: object = "control",
    metrics: str | Iterable[str] = DEFAULT_METRICS,
    unit: str = "user_id",
    confidence: float = 0.95,
    covariates: CovariateSpec = None,
    sequential: bool = False,
    look: str | None = None,
    t_opt: float | None = None,
    primary: str | Iterable[str] | None = None,
    expected: Mapping[object, float] | None = None,
) -> pd.DataFrame:
    """Effects of every arm against ``control`` on per-cart metrics, by the delta method.

    ``df`` has one row per cart; ``unit`` is the randomisation unit. Each metric is a ratio
    over units (sum of the metric / number of carts), so intervals account for the
    correlation of one user's carts. Returns one row per (metric, arm != control) with
    ``metric, arm, n_units, n_units_control, control_mean, treatment_mean, abs_effect,
    ci_low, ci_high, rel_effect, rel_ci_low, rel_ci_high, p_value, p_value_holm``.

    - ``covariates``: a per-unit pre-experiment column (or list, or dict metric -> columns)
      adds ``cuped_abs_effect, cuped_ci_low, cuped_ci_high, cuped_p_value,
      variance_reduction`` (NaN for metrics without covariates).
    - ``sequential``: adds the always-valid ``cs_low, cs_high`` of the absolute effect (see
      :func:`engine.abtest.confidence_sequence`); with ``look`` (e.g. ``"day"``) it is the
      running-intersected sequence at the last look.
    - ``primary``: the metrics whose rows form the Holm family (default: the first metric);
      ``p_value_holm`` uses ``cuped_p_value`` where available and is NaN outside the family.
    - the split of units is checked for sample-ratio mismatch against ``expected`` (see
      :func:`engine.abtest.srm`), logging a warning when it fails.

    The table's ``attrs`` record ``confidence``, ``control`` and the SRM result.
    """
    check_frame(df)
    confidence = check_confidence(confidence)
    metric_names = as_name_list(metrics, "metrics")
    if not metric_names:
        raise ValueError("metrics is empty; name at least one metric column")
    family = as_name_list(primary, "primary") or metric_names[:1]
    unknown = [name for name in family if name not in metric_names]
    if unknown:
        raise ValueError(f"primary == {unknown!r}, not among metrics {metric_names!r}")
    cov_map = _covariate_map(covariates, metric_names)
    cov_columns = list(dict.fromkeys(name for names in cov_map.values() for name in names))
    check_columns(
        df,
        {
            "arm": [arm],
            "unit": [unit],
            "metric": metric_names,
            "covariate": cov_columns,
            "look": [look] if look else [],
        },
    )
    data = aggregate(df, arm, unit, metric_names, cov_columns, look=look if sequential else None)
    arms = treatment_arms(data.arm_levels, arm, control)
    counts = data.counts()
    for level in [control, *arms]:
        if counts[level] < 2:
            raise ValueError(
                f"arm {level!r} of column {arm!r} has {counts[level]} unit(s); need at least two"
            )
    split = srm_from_counts(counts, expected)

    rows = [
        _effect_row(data, metric, control, level, confidence, cov_map.get(metric, []))
        for metric in metric_names
        for level in arms
    ]
    table = pd.DataFrame(rows)
    if cov_map:
        cuped_cols = [
            "cuped_abs_effect",
            "cuped_ci_low",
            "cuped_ci_high",
            "cuped_p_value",
            "variance_reduction",
        ]
        others = table.columns.drop(cuped_cols, errors="ignore")
        table = table.reindex(columns=[*others, *cuped_cols])
    if sequential:
        cs = sequence_table(data, control, arms, metric_names, confidence, t_opt)
        last = cs.groupby(["metric", "arm"], sort=False).tail(1)
        table = table.merge(last[["metric", "arm", "cs_low", "cs_high"]], on=["metric", "arm"])
    in_family = table["metric"].isin(family).to_numpy()
    p_used = table["p_value"].to_numpy(dtype=float)
    if "cuped_p_value" in table:
        cuped_p = table["cuped_p_value"].to_numpy(dtype=float)
        p_used = np.where(np.isfinite(cuped_p), cuped_p, p_used)
    table["p_value_holm"] = np.nan
    table.loc[in_family, "p_value_holm"] = holm(p_used[in_family])
    table.attrs.update(
        {"confidence": confidence, "control": control, "srm": split, "primary": family}
    )
    return table
