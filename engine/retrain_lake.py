"""Retraining from a decision-log lake in bounded memory: ``stream`` and ``spark`` backends.

LinUCB and linear Thompson sampling are per-action ridge regressions, so their model is a sum:
per action ``Z^T Z``, ``Z^T r``, the count and ``sum r^2`` (``Z`` the design rows). Each batch
(a record batch, or a Spark partition in ``mapInArrow``) contributes its sums; the merged sums
become the learner's state exactly as :meth:`update_batch` on the whole log would build it.
Vowpal Wabbit learns sequentially: it is fed the log in :func:`engine.decision_log.read_log`'s
order (timestamp, then insertion), one day partition (or one store chunk) at a time.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.learners import Learner, make_learner
from engine.learners.tuned import tuned_settings

if TYPE_CHECKING:
    from engine.learners._ridge import RidgeStats

logger = logging.getLogger(__name__)

BACKENDS = ("stream", "spark")


@dataclass(frozen=True)
class RetrainPlan:
    """What each batch needs (pickled to Spark executors)."""

    action_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    fit_intercept: bool
    reward_scale: float
    since: float | None
    reward_divisor: Callable[[np.ndarray], np.ndarray | np.float64] | None


@dataclass(eq=False)
class RidgeSums:
    """Per-action sums of a ridge learner's sufficient statistics (merge with ``+``)."""

    gram: np.ndarray  # (A, p, p)
    xty: np.ndarray  # (A, p)
    counts: np.ndarray  # (A,)
    sum_sq: np.ndarray  # (A,)

    def __add__(self, other: RidgeSums) -> RidgeSums:
        return RidgeSums(
            self.gram + other.gram,
            self.xty + other.xty,
            self.counts + other.counts,
            self.sum_sq + other.sum_sq,
        )


def _training_rows(
    batch, plan: RetrainPlan
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Design-ready ``X``, actions, logged propensities and rewards of a batch's kept rows."""
    from engine.ope.lake.batch import read_batch

    rows = read_batch(batch, plan.action_names, plan.feature_names, ())
    keep = slice(None) if plan.since is None else rows.timestamps >= plan.since
    X = np.nan_to_num(rows.features[keep])
    rewards = rows.rewards[keep]
    if plan.reward_divisor is not None and X.shape[0]:
        rewards = rewards / np.asarray(plan.reward_divisor(X), dtype=np.float64)
    return X, rows.actions[keep], rows.logged_probs[keep], rewards


def ridge_batch_sums(batch, plan: RetrainPlan) -> RidgeSums:
    """One batch's contribution to the per-action ridge sums."""
    X, actions, _, rewards = _training_rows(batch, plan)
    Z = np.hstack([X, np.ones((X.shape[0], 1))]) if plan.fit_intercept else X
    r = rewards / plan.reward_scale
    n_actions, p = len(plan.action_names), Z.shape[1]
    out = RidgeSums(
        np.zeros((n_actions, p, p)),
        np.zeros((n_actions, p)),
        np.zeros(n_actions, np.int64),
        np.zeros(n_actions),
    )
    for a in np.unique(actions):
        sel = actions == a
        Za, ra = Z[sel], r[sel]
        out.gram[a] = Za.T @ Za
        out.xty[a] = Za.T @ ra
        out.counts[a] = Za.shape[0]
        out.sum_sq[a] = ra @ ra
    return out


def _load_sums(model: Learner, stats: RidgeStats, sums: RidgeSums) -> None:
    """Give a fresh ridge learner (``stats``: its own) the state ``update_batch`` would build."""
    for a in np.flatnonzero(sums.counts):
        stats.precision[a] = stats.precision[a] + sums.gram[a]
        inverse = np.linalg.inv(stats.precision[a])
        stats.covariance[a] = (inverse + inverse.T) * 0.5
        stats.xty[a] = stats.xty[a] + sums.xty[a]
        stats.counts[a] += sums.counts[a]
        stats.sum_sq[a] += sums.sum_sq[a]
        stats.coef[a] = stats.covariance[a] @ stats.xty[a]
    model._n_updates += int(sums.counts.sum())


def _ordered_batches(src: Any, columns: Sequence[str], batch_rows: int):
    """Record batches in read_log order: day partitions in order, each sorted by timestamp."""
    import pyarrow.compute as pc

    if src.kind == "store":
        from engine.decision_log.lake import lake_schema, read_chunks, to_arrow

        schema = lake_schema(src.action_names, src.feature_names)
        for frame in read_chunks(src.location, chunk_rows=batch_rows, order="timestamp"):
            yield to_arrow(frame, schema).select(list(columns))
        return
    dataset = src.dataset()
    if src.hive:
        days = sorted(pc.unique(dataset.to_table(columns=["day"])["day"]).to_pylist())
        parts = [dataset.filter(pc.field("day") == day) for day in days]
    else:
        logger.warning(
            "retraining VW on a Parquet folder without day partitions reads it whole to sort it"
        )
        parts = [dataset]
    for part in parts:
        files_in_order = part.to_table(
            columns=list(columns)
        )  # one day; files come in name (chunk) order
        order = pc.sort_indices(files_in_order, sort_keys=[("timestamp", "ascending")])  # stable
        table = files_in_order.take(order)
        yield from table.to_batches(max_chunksize=batch_rows)


def retrain_lake(
    source: str | os.PathLike[str],
    action_names: Sequence[str],
    feature_names: Sequence[str],
    learner: str = "vw",
    *,
    backend: str = "stream",
    seed: int = 0,
    learner_options: Mapping[str, Any] | None = None,
    propensity_floor: float | None = None,
    since: float | None = None,
    reward_divisor: Callable[[np.ndarray], np.ndarray | np.float64] | None = None,
    batch_rows: int = 65_536,
    spark: Any = None,
    spark_master: str = "local[2]",
) -> Learner:
    """:func:`engine.retrain.retrain_from_log` on a Parquet lake or a store, in bounded memory.

    Ridge learners (``linucb``, ``lints``) are folded as sums on either backend and equal the
    in-memory retrain to rounding; other learners (VW) stream the rows in timestamp order
    (``backend="stream"`` only; memory: one day partition or one store chunk).
    """
    from engine.learners._ridge import RidgeLearnerMixin
    from engine.ope.lake.backends import RUNNERS
    from engine.ope.lake.batch import check_columns, required_columns
    from engine.ope.lake.source import open_source

    if backend not in BACKENDS:
        raise ValueError(f"backend == {backend!r}, must be one of {BACKENDS}")
    src = open_source(source)
    actions, features = tuple(action_names), tuple(feature_names)
    check_columns(src.names, actions, (), f"the log at {src.location!r}")
    missing = [f for f in features if f"f_{f}" not in src.names]
    if missing:
        raise ValueError(f"the log has no feature {missing[0]!r} (column 'f_{missing[0]}')")
    base, options, tuned_floor = tuned_settings(learner)
    options.update(learner_options or {})
    model = make_learner(base, actions, features, seed=seed, **options)
    floor = tuned_floor if propensity_floor is None else propensity_floor
    plan = RetrainPlan(
        actions,
        features,
        bool(getattr(model, "fit_intercept", False)),
        float(model.reward_scale),
        since,
        reward_divisor,
    )
    columns = required_columns(actions, features, ())
    if isinstance(model, RidgeLearnerMixin):
        sums = RUNNERS[backend](
            src,
            columns,
            ridge_batch_sums,
            plan,
            batch_rows=batch_rows,
            spark=spark,
            master=spark_master,
        )
        if sums is not None:
            _load_sums(model, model._stats, sums)
    else:
        if backend != "stream":
            raise ValueError(
                f"learner {learner!r} learns sequentially: retrain it with backend='stream'"
            )
        for batch in _ordered_batches(src, columns, batch_rows):
            X, acts, probs, rewards = _training_rows(batch, plan)
            if X.shape[0]:
                model.update_batch(
                    X, acts, probs if floor is None else np.maximum(probs, floor), rewards
                )
    logger.info(
        "retrained %s on %s (%s): %d updates", learner, src.location, backend, model.n_updates
    )
    return model
