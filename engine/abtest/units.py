"""Aggregate carts to randomisation units (per-unit totals, optionally cumulated over looks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._checks import check_no_missing, numeric_values, plain


@dataclass(frozen=True)
class UnitData:
    """Per-unit arrays. ``carts`` and ``sums[m]`` have shape (looks, units), cumulated over looks.

    ``arm_code[i]`` indexes ``arm_levels`` for unit ``i``.
    """

    arm_code: np.ndarray
    arm_levels: list[object]
    carts: np.ndarray
    sums: dict[str, np.ndarray]
    covariates: dict[str, np.ndarray]
    looks: list[object]

    def in_arm(self, level: object) -> np.ndarray:
        """Boolean mask of the units assigned to ``level``."""
        return self.arm_code == self.arm_levels.index(level)

    def counts(self) -> dict[object, int]:
        """Units per arm."""
        tally = np.bincount(self.arm_code, minlength=len(self.arm_levels))
        return {level: int(count) for level, count in zip(self.arm_levels, tally, strict=True)}


def aggregate(
    df: pd.DataFrame,
    arm: str,
    unit: str,
    metrics: Sequence[str] = (),
    covariates: Sequence[str] = (),
    look: str | None = None,
) -> UnitData:
    """Sum each metric and count carts per unit (and per look, cumulatively, if ``look``).

    Columns must exist. Checks here: no missing arm/unit/look values, each unit in a single
    arm, metrics and covariates numeric and finite, covariates constant per unit.
    """
    for column in (arm, unit) if look is None else (arm, unit, look):
        check_no_missing(df, column)
    unit_codes, _ = pd.factorize(df[unit], sort=False)
    arm_codes, arm_values = pd.factorize(df[arm], sort=False)
    n_units = int(unit_codes.max()) + 1
    _, first_row = np.unique(unit_codes, return_index=True)
    unit_arm = arm_codes[first_row]
    switched = arm_codes != unit_arm[unit_codes]

    def offenders(bad_rows: np.ndarray) -> tuple[int, object]:
        """How many units have a row in ``bad_rows``, and the first such unit's value."""
        bad_units = np.unique(unit_codes[bad_rows])
        return bad_units.size, plain(df[unit].to_numpy()[first_row[bad_units[0]]])

    if switched.any():
        count, example = offenders(switched)
        raise ValueError(
            f"column {unit!r}: {count} unit(s) appear in more than one arm of column "
            f"{arm!r}, e.g. {unit} == {example!r}; randomisation must be by {unit!r}"
        )
    if look is None:
        look_codes = np.zeros(len(df), dtype=np.int64)
        looks: list[object] = [None]
    else:
        look_codes, look_values = pd.factorize(df[look], sort=True)
        looks = [plain(value) for value in look_values]
    n_looks = len(looks)
    flat = unit_codes.astype(np.int64) * n_looks + look_codes

    def cumulated(weights: np.ndarray | None) -> np.ndarray:
        counts = np.bincount(flat, weights=weights, minlength=n_units * n_looks)
        return np.cumsum(counts.reshape(n_units, n_looks), axis=1).T.copy()

    sums = {metric: cumulated(numeric_values(df, metric)) for metric in metrics}
    carts = cumulated(None).astype(float)
    covariate_values = {}
    for name in covariates:
        values = numeric_values(df, name)
        varying = values != values[first_row][unit_codes]
        if varying.any():
            count, example = offenders(varying)
            raise ValueError(
                f"covariate column {name!r} must be constant per unit but varies for "
                f"{count} unit(s), e.g. {unit} == {example!r}"
            )
        covariate_values[name] = values[first_row]
    return UnitData(
        arm_code=unit_arm,
        arm_levels=[plain(value) for value in arm_values],
        carts=carts,
        sums=sums,
        covariates=covariate_values,
        looks=looks,
    )
