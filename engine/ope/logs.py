"""Off-policy evaluation on the engine's decision log.

:func:`read_log_dataset` turns a :func:`engine.decision_log.read_log` frame (or the log file,
or its Parquet export) into arrays: the logged action, its propensity ``probability``, the full
logging distribution ``p_<action>`` and the whitelisted features ``f_<feature>``. Fallback
decisions (bad input, not chosen by the policy) and decisions without a reward yet are dropped
and counted. :func:`evaluate_decision_log` scores a target policy on those rows with
:func:`engine.ope.evaluate`, cross-fitting the DM/DR reward model on the logged features.

A target is either a callable ``(features (n, d), feature_names, eligible (n, A)) -> (n, A)``
probabilities, with columns in the log's action order, or an object with
``feature_probabilities(features, feature_names, eligible)`` (e.g. a ``policies.Policy``);
when the object has ``action_names``, its columns are matched to the log's actions by name.

"Eligible" means what the logging policy could take: ``p_<action> > 0``. With the engine's
default exploration floor (> 0) that is exactly the guardrails' eligibility.

>>> import pandas as pd
>>> log = pd.DataFrame({
...     "decision_id": ["d1", "d2", "d3", "d4"], "action": ["none", "coupon_5", "none", "none"],
...     "probability": [0.5, 0.5, 0.5, 1.0], "reward": [1.0, 3.0, float("nan"), 0.0],
...     "fallback": [False, False, False, True],
...     "p_none": [0.5, 0.5, 0.5, 1.0], "p_coupon_5": [0.5, 0.5, 0.5, 0.0],
... })
>>> data = read_log_dataset(log)
>>> data.n, dict(data.dropped)
(2, {'fallback': 1, 'no_reward': 1})
>>> always_coupon = lambda X, names, eligible: eligible * [0.0, 1.0]
>>> table = evaluate_decision_log(data, always_coupon, estimators=["ipw"])
>>> float(table.loc["ipw", "value"])  # 3.0 / 0.5 on d2, 0 on d1, averaged
3.0
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.ope.api import evaluate
from engine.ope.readers import PROB_TOLERANCE

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("decision_id", "action", "probability", "reward", "fallback")
MASS_TOLERANCE = 1e-9
"""Target probability above this on an action the logger could not take is an error."""
SHOWN_ROWS = 5
"""How many offending rows an error message lists."""

TargetFn = Callable[[np.ndarray, tuple[str, ...], np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LogDataset:
    """Logged bandit feedback read from a decision log (``n`` kept rows, ``A`` actions).

    Carries what the log holds (features, eligibility, ids) and what was dropped;
    :func:`engine.ope.evaluate` validates the arrays it is given from it.
    """

    rewards: np.ndarray  # (n,) float64
    actions: np.ndarray  # (n,) int64, index into action_names
    logged_probs: np.ndarray  # (n,) propensity of the logged action
    logging_probs: np.ndarray  # (n, A) full logging distribution (p_<action>)
    eligible: np.ndarray  # (n, A) bool: logging_probs > 0
    features: np.ndarray  # (n, d) float64, NaN where a row lacks a feature
    feature_names: tuple[str, ...]
    action_names: tuple[str, ...]
    decision_ids: tuple[str, ...]
    n_read: int = 0  # rows in the log before dropping
    dropped: Mapping[str, int] = field(default_factory=dict)  # reason -> rows
    reward_sources: Mapping[str, int] = field(default_factory=dict)  # of the kept rows

    @property
    def n(self) -> int:
        """Number of kept rows."""
        return int(self.rewards.shape[0])

    @property
    def n_actions(self) -> int:
        """Number of actions."""
        return len(self.action_names)

    def __len__(self) -> int:
        return self.n


def _rows_note(rows: np.ndarray, ids: Sequence[str] | None) -> str:
    """``"rows 3, 7 (decision_id a, b) and 12 more"`` for error messages."""
    shown = rows[:SHOWN_ROWS].tolist()
    text = "rows " + ", ".join(str(r) for r in shown)
    if ids is not None:
        text += " (decision_id " + ", ".join(str(ids[r]) for r in shown) + ")"
    if rows.size > SHOWN_ROWS:
        text += f" and {rows.size - SHOWN_ROWS} more"
    return text


def _load(df_or_path: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(df_or_path, pd.DataFrame):
        return df_or_path
    if isinstance(df_or_path, (str, os.PathLike)):
        path = Path(df_or_path)
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        from engine.decision_log import read_log  # lazy: keeps `engine.ope` light

        return read_log(path)
    raise ValueError(
        f"df_or_path is a {type(df_or_path).__name__}, must be a DataFrame from read_log or the "
        "path of a decision log (SQLite) or its Parquet export"
    )


def _action_names(df: pd.DataFrame, action_names: Sequence[str] | None) -> tuple[str, ...]:
    if action_names is None:
        names = tuple(c[2:] for c in df.columns if isinstance(c, str) and c.startswith("p_"))
        if not names:
            raise ValueError("decision log has no p_<action> columns (logging probabilities)")
        return names
    names = tuple(action_names)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"action_names == {names!r}, must be non-empty and without duplicates")
    missing = [f"p_{a}" for a in names if f"p_{a}" not in df.columns]
    if missing:
        raise ValueError(f"decision log has no {missing[0]!r} column (action_names == {names!r})")
    return names


def read_log_dataset(
    df_or_path: pd.DataFrame | str | os.PathLike[str],
    action_names: Sequence[str] | None = None,
) -> LogDataset:
    """Arrays for off-policy evaluation from a decision log.

    Args:
        df_or_path: a :func:`engine.decision_log.read_log` frame, the log's SQLite path, or a
            ``.parquet`` export (:func:`engine.decision_log.to_parquet`).
        action_names: the actions, in the order of the probability columns; default: every
            ``p_<action>`` column in log order. Logged actions outside it are an error.

    Fallback rows and rows whose ``reward`` is still missing are dropped; the counts are on
    ``dropped`` and logged at INFO. Raises ``ValueError`` naming the column or the rows when
    the log lacks what is needed or is inconsistent (propensity not in (0, 1], or different
    from the logged action's ``p_<action>``).
    """
    df = _load(df_or_path)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"decision log has no {missing[0]!r} column, pass the output of read_log")
    names = _action_names(df, action_names)
    n_read = len(df)
    fallback = df["fallback"].eq(True).to_numpy()
    no_reward = ~fallback & df["reward"].isna().to_numpy()
    keep = ~(fallback | no_reward)
    dropped = {"fallback": int(fallback.sum()), "no_reward": int(no_reward.sum())}
    logger.info(
        "decision log: %d rows read, %d kept; dropped %d fallback and %d without reward",
        n_read,
        int(keep.sum()),
        dropped["fallback"],
        dropped["no_reward"],
    )
    if not keep.any():
        raise ValueError(
            f"decision log has no row to evaluate: {n_read} rows, {dropped['fallback']} fallback, "
            f"{dropped['no_reward']} without reward"
        )
    kept = df.loc[keep]
    ids = tuple(str(i) for i in kept["decision_id"])
    index = {a: j for j, a in enumerate(names)}
    logged_names = kept["action"].to_numpy(dtype=object)
    actions = np.fromiter((index.get(a, -1) for a in logged_names), dtype=np.int64, count=len(kept))
    unknown = np.flatnonzero(actions < 0)
    if unknown.size:
        raise ValueError(
            f"decision log column 'action' == {logged_names[unknown[0]]!r} in "
            f"{_rows_note(unknown, ids)}, must be one of {list(names)}"
        )
    probs = kept[[f"p_{a}" for a in names]].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"decision log p_<action> columns hold {probs[rows[0]].tolist()} in "
            f"{_rows_note(rows, ids)}, must be finite and >= 0"
        )
    logged = kept["probability"].to_numpy(dtype=np.float64)
    bad = ~((logged > 0.0) & (logged <= 1.0))
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"decision log column 'probability' == {logged[rows[0]]} in "
            f"{_rows_note(rows, ids)}, must be in (0, 1]"
        )
    at_logged = probs[np.arange(len(kept)), actions]
    bad = np.abs(at_logged - logged) > PROB_TOLERANCE
    if bad.any():
        rows = np.flatnonzero(bad)
        a = names[actions[rows[0]]]
        raise ValueError(
            f"decision log column 'probability' == {logged[rows[0]]} but 'p_{a}' == "
            f"{at_logged[rows[0]]} for the logged action in {_rows_note(rows, ids)}"
        )
    feature_cols = [c for c in df.columns if isinstance(c, str) and c.startswith("f_")]
    features = (
        kept[feature_cols].to_numpy(dtype=np.float64) if feature_cols else np.empty((len(kept), 0))
    )
    present = np.asarray(~np.isnan(features).all(axis=0))
    if not present.all():
        logger.debug(
            "decision log: features absent from every kept row: %s",
            [c for c, ok in zip(feature_cols, present, strict=True) if not ok],
        )
    sources = kept["reward_source"].value_counts().to_dict() if "reward_source" in kept else {}
    return LogDataset(
        rewards=kept["reward"].to_numpy(dtype=np.float64),
        actions=actions,
        logged_probs=logged,
        logging_probs=probs,
        eligible=probs > 0.0,
        features=np.ascontiguousarray(features[:, present]),
        feature_names=tuple(c[2:] for c, ok in zip(feature_cols, present, strict=True) if ok),
        action_names=names,
        decision_ids=ids,
        n_read=n_read,
        dropped=dropped,
        reward_sources={str(k): int(v) for k, v in sources.items()},
    )


def target_probabilities(data: LogDataset, target: TargetFn | Any) -> np.ndarray:
    """The target's ``(n, A)`` distribution on the log's rows, in the log's action order.

    Raises ``ValueError`` when the target is neither callable nor has ``feature_probabilities``,
    returns the wrong shape or invalid numbers, or puts probability on an action the logging
    policy could not take (the rows are named: no estimator can value such an action).
    """
    target_names = getattr(target, "action_names", None)
    names = data.action_names if target_names is None else tuple(target_names)
    col = [names.index(a) if a in names else -1 for a in data.action_names]
    same_order = col == list(range(len(names)))  # the usual case: no column shuffling
    if same_order:
        eligible = np.array(data.eligible, dtype=bool)  # a copy: the target may write to it
    else:
        eligible = np.zeros((data.n, len(names)), dtype=bool)
        for j, k in enumerate(col):
            if k >= 0:
                eligible[:, k] = data.eligible[:, j]
    if hasattr(target, "feature_probabilities"):
        try:
            raw = target.feature_probabilities(data.features, data.feature_names, eligible)
        except NotImplementedError as exc:
            raise ValueError(f"target {target!r} cannot be evaluated on a log: {exc}") from None
    elif callable(target):
        raw = target(data.features, data.feature_names, eligible)
    else:
        raise ValueError(
            f"target == {target!r}, must be a callable (features, feature_names, eligible) -> "
            "probabilities or an object with feature_probabilities"
        )
    probs = np.asarray(raw, dtype=np.float64)
    if probs.shape != eligible.shape:
        raise ValueError(
            f"target returned shape {probs.shape}, must be {eligible.shape} "
            f"(rows x actions {list(names)})"
        )
    _check_target_rows(probs, eligible, names, data.decision_ids)
    if same_order:
        return probs.copy() if probs is raw else probs
    out = np.zeros((data.n, data.n_actions))
    for j, k in enumerate(col):
        if k >= 0:
            out[:, j] = probs[:, k]
    return out


def _check_target_rows(
    probs: np.ndarray, eligible: np.ndarray, names: Sequence[str], ids: Sequence[str]
) -> None:
    """Raise naming the rows where ``probs`` is not finite, negative or outside ``eligible``.

    Whole-array reductions decide whether any row is bad; the per-row scan that names the rows
    runs only then (a row's mass off ``eligible`` cannot exceed ``A`` times the largest entry).
    """
    if not probs.size:
        return
    # NaN makes both comparisons False; +-inf fails one of them
    if not (probs.min() >= 0.0 and probs.max() < np.inf):
        bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1)
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"target returned {probs[rows[0]].tolist()} in {_rows_note(rows, ids)}, "
            "probabilities must be finite and >= 0"
        )
    if eligible.all():
        return
    outside = np.where(eligible, 0.0, probs)
    if outside.max() * probs.shape[1] <= MASS_TOLERANCE:
        return
    bad = outside.sum(axis=1) > MASS_TOLERANCE
    if bad.any():
        rows = np.flatnonzero(bad)
        j = int(np.argmax(outside[rows[0]]))
        raise ValueError(
            f"target puts probability {outside[rows[0], j]:.3g} on {names[j]!r}, which the logging "
            f"policy could not take (p_{names[j]} == 0), in {_rows_note(rows, ids)}"
        )


def reward_model_features(features: np.ndarray) -> np.ndarray:
    """Finite regressors for the reward model.

    NaN becomes 0, plus a 0/1 "missing" column per feature that has any NaN (rows logged by
    engines with different feature sets).
    """
    missing = np.isnan(features)
    partial = missing.any(axis=0)
    if not partial.any():
        return features
    logger.info(
        "reward model: %d features missing in some rows, imputed 0 with indicators",
        int(partial.sum()),
    )
    return np.hstack([np.where(missing, 0.0, features), missing[:, partial].astype(np.float64)])


DEFAULT_REWARD_MODEL = "boosted"
"""Reward model :func:`evaluate_decision_log` cross-fits on the logged features (see
:mod:`engine.ope.reward_model`); on simulated engine logs its DM error is about 0.4 times that
of per-action ridge regression (docs/ope-engine-logs.md)."""


def reward_scale(features: np.ndarray, feature_names: Sequence[str]) -> np.ndarray | None:
    """Per-row reward scale for the reward model, or None.

    The scale is the cart value over the engine's reference value
    (:meth:`engine.features.FeatureBuilder.reward_divisor`, what the learners divide profits
    by), read from the ``cart_value_log`` feature; None when the log has no such feature or a
    row lacks it.
    """
    from engine.features import MIN_REWARD_DIVISOR, PROFILE_SCALING, REWARD_REFERENCE_VALUE

    name = "cart_value_log"
    if name not in feature_names:
        return None
    column = np.asarray(features, dtype=np.float64)[:, list(feature_names).index(name)]
    if not np.isfinite(column).all():
        return None
    centre, scale = PROFILE_SCALING[name]
    value = np.expm1(column * scale + centre)
    return np.maximum(value / REWARD_REFERENCE_VALUE, MIN_REWARD_DIVISOR)


def evaluate_decision_log(
    df_or_path: pd.DataFrame | str | os.PathLike[str] | LogDataset,
    target: TargetFn | Any,
    **evaluate_kwargs: Any,
) -> pd.DataFrame:
    """Estimate ``target``'s value on a decision log (table of :func:`engine.ope.evaluate`).

    ``df_or_path`` is anything :func:`read_log_dataset` reads, or its result (to score
    several targets without reading the log again). ``evaluate_kwargs`` go to
    :func:`engine.ope.evaluate` (``estimators``, ``confidence``, ``ci``, ``seed``...). Unless
    they give ``estimated_rewards`` (optionally with ``estimated_variances``) or ``contexts``,
    the DM/DR reward model (mean and conditional variance, the latter for DR's and SNDR's
    ``"floor"`` interval) is cross-fitted on the logged features (:func:`reward_model_features`),
    by default with the :data:`DEFAULT_REWARD_MODEL` and the cart value as reward scale
    (:func:`reward_scale`); with no feature columns only IPW-type estimators are available.
    The table's ``attrs`` also carry ``n_read``, ``dropped`` and ``diagnostics``
    (:func:`engine.ope.diagnostics.weight_diagnostics` of the target on this log, whose
    warnings are also logged).
    """
    from engine.ope.diagnostics import weight_diagnostics

    data = df_or_path if isinstance(df_or_path, LogDataset) else read_log_dataset(df_or_path)
    target_probs = target_probabilities(data, target)
    kwargs = dict(evaluate_kwargs)
    if "estimated_rewards" not in kwargs and "contexts" not in kwargs and data.features.shape[1]:
        kwargs["contexts"] = reward_model_features(data.features)
        kwargs.setdefault("reward_model", DEFAULT_REWARD_MODEL)
        if kwargs["reward_model"] != "logistic" and "reward_scale" not in kwargs:
            kwargs["reward_scale"] = reward_scale(data.features, data.feature_names)
    table = evaluate(data.rewards, data.actions, data.logged_probs, target_probs, **kwargs)
    diagnostics = weight_diagnostics(
        data.actions, data.logged_probs, target_probs, data.logging_probs, data.action_names
    )
    table.attrs.update(n_read=data.n_read, dropped=dict(data.dropped), diagnostics=diagnostics)
    return table
