"""``evaluate_lake``: off-policy evaluation of a decision-log lake, in memory, streamed or on Spark.

Example (``engine.ope.evaluate_log`` with a ``backend`` calls it)::

    from engine.ope import evaluate_log
    evaluate_log("logs/", policy="model.cw", estimators=("ipw", "snipw", "dr"),
                 backend="stream", by=("model_version", "day"))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import pandas as pd

from engine.ope.estimators import DEFAULT_DROS_LAMBDA, DEFAULT_SWITCH_THRESHOLD, ESTIMATORS, resolve
from engine.ope.lake.backends import BACKENDS, RUNNERS
from engine.ope.lake.batch import REQUIRED, check_columns, required_columns, reward_columns
from engine.ope.lake.reward import SAMPLE_ROWS
from engine.ope.lake.source import BATCH_ROWS, Source, open_source
from engine.ope.lake.stats import Plan, batch_stats, reward_batch_stats, table
from engine.ope.lake.target import target_spec
from engine.ope.merge import DEFAULT_CI
from engine.validation import check_choice, check_confidence, check_integer

logger = logging.getLogger(__name__)

LAKE_DEFAULT_ESTIMATORS = ("ipw", "snipw", "dr")
LAKE_CI_METHODS = ("auto", "analytic", "skew")
"""Interval methods of the lake (the bootstrap is not offered: its replicates would differ by
backend)."""


def _progress(enabled: bool, source: Source, backend: str, what: str) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    if backend == "spark":
        return tqdm(desc=f"{what} (Spark partitions)", unit="partition")
    total = source.dataset().count_rows() if source.kind == "parquet" else None
    return tqdm(desc=what, total=total, unit="row", unit_scale=True)


def _run(
    backend: str,
    source: Source,
    columns: list[str],
    fn,
    plan: Plan,
    progress: bool,
    what: str,
    **options: Any,
):
    bar = _progress(progress and backend != "memory", source, backend, what)
    try:
        return RUNNERS[backend](source, columns, fn, plan, progress=bar, **options)
    finally:
        if bar is not None:
            bar.close()


def _target_order(target: Any, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` in the order of the target's feature builder when it uses exactly them."""
    order = getattr(getattr(target, "features", None), "names", None)
    if order is not None and sorted(order) == sorted(names):
        return tuple(order)
    return names


def evaluate_lake(
    source: str | os.PathLike[str],
    policy: Any,
    *,
    estimators: Sequence[str] | None = LAKE_DEFAULT_ESTIMATORS,
    backend: str = "memory",
    by: Sequence[str] = (),
    confidence: float = 0.95,
    ci: str = DEFAULT_CI,
    seed: int = 0,
    greedy: bool = False,
    n_folds: int = 2,
    reward_rows: int | None = SAMPLE_ROWS,
    switch_threshold: float = DEFAULT_SWITCH_THRESHOLD,
    dros_lambda: float = DEFAULT_DROS_LAMBDA,
    batch_rows: int = BATCH_ROWS,
    workers: int | None = None,
    spark: Any = None,
    spark_master: str = "local[2]",
    progress: bool = False,
) -> pd.DataFrame:
    """Estimate ``policy``'s value on a decision-log lake; the same answer on every backend.

    Args:
        source: a Parquet folder (hive-partitioned by day, ``cartwise export``), a ``.parquet``
            file, or a SQLite decision log (``spark`` needs Parquet).
        policy: a saved engine model path (its learner's probabilities; its exploit action with
            ``greedy=True``), a policy name (``"rule"``, ``"static:coupon_10"``, ``"uniform"``),
            a ``policies.Policy`` or a callable ``(features, feature_names, eligible) -> probs``.
        estimators: names among :data:`engine.ope.ESTIMATORS`; ``on-policy`` is appended.
        backend: ``"memory"`` (one table), ``"stream"`` (record batches, bounded memory) or
            ``"spark"`` (per-partition statistics, merged on the driver).
        by: stratum columns, e.g. ``("model_version", "day")``.
        confidence: level of the two-sided intervals.
        ci: ``"auto"`` (default: Hall's skewness-corrected interval for IPW and SNIPW, the
            normal one for the others), ``"analytic"`` (normal) or ``"skew"`` (Hall's for every
            estimator); see :func:`engine.ope.evaluate` and docs/ope-engine-logs.md.
        seed: seed of a named policy.
        greedy: with a saved model, evaluate its exploit action instead of its probabilities.
        n_folds: cross-fitting folds of the DR reward model.
        reward_rows: rows of a Parquet log the reward model is fitted on, a sample spread
            over the log (:meth:`~engine.ope.lake.source.Source.sampled`); None: every row.
            A decision-log store is always read whole.
        switch_threshold: Switch-DR ``tau``.
        dros_lambda: DR-OS ``lambda``.
        batch_rows: rows per batch (stream, and chunks of a SQLite source).
        workers: threads of the stream backend, each folding one Parquet row group at a time
            (default: the machine's cores, at most 4); the answer does not depend on it.
        spark: a SparkSession to use (``backend="spark"``); else one is started.
        spark_master: the master of the session started when ``spark`` is None.
        progress: a tqdm bar over rows (stream) or partitions (spark).

    The DM/DR reward model is a ridge regression per action and fold fitted from sums on a
    first pass over a sample of at most ``reward_rows`` rows (:mod:`engine.ope.lake.reward`;
    it reads only the reward, action, timestamp and feature columns, and keeps fixed-size
    sums, no row); it is cross-fitted by a hash of the timestamp, so no row's prediction uses
    its own reward. Every backend fits it on the same sample; with ``backend="spark"`` a
    sample smaller than the log is read by the driver (the stream backend), not by Spark.
    Intervals come from the merged first, second and third moments of the per-row terms (merged
    exactly across batches and partitions), so backends agree to rounding.

    Returns:
        DataFrame indexed by ``(*by, estimator)``: one row per stratum and estimator, then the
        total (stratum values ``"(all)"``), with the columns of :func:`engine.ope.finalize` and
        the importance-weight quantiles ``w_p50, w_p90, w_p99``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend == {backend!r}, must be one of {BACKENDS}")
    confidence = check_confidence(confidence)
    check_choice(ci, "ci", LAKE_CI_METHODS)
    n_folds = check_integer(n_folds, "n_folds", low=1)
    if reward_rows is not None:
        reward_rows = check_integer(reward_rows, "reward_rows", low=1)
    batch_rows = check_integer(batch_rows, "batch_rows", low=1)
    if workers is not None:
        workers = check_integer(workers, "workers", low=1)
    by = (by,) if isinstance(by, str) else tuple(by)
    src = open_source(source)
    actions, features = src.action_names, src.feature_names
    check_columns(src.names, actions, by, f"the log at {src.location!r}")
    if not actions:
        raise ValueError(f"the log at {src.location!r} has no p_<action> column")
    names = resolve(estimators, have_model=True)
    needs_model = any(ESTIMATORS[n].needs_model for n in names)
    spec = target_spec(policy, seed=seed, greedy=greedy)
    # fail early on the driver (unknown name, damaged model); read the features in the
    # target's own order when it has one, so it gets them without a column shuffle per batch
    features = _target_order(spec.build(), features)
    plan = Plan(
        actions,
        features,
        by,
        names,
        spec,
        n_folds,
        float(switch_threshold),
        float(dros_lambda),
        needs_model,
    )
    columns = required_columns(actions, features, by)
    reward_model_rows = 0
    options = {
        "batch_rows": batch_rows,
        "workers": workers,
        "spark": spark,
        "master": spark_master,
    }
    if needs_model:
        sample = src.sampled(reward_rows)
        stats = _run(
            "stream" if backend == "spark" and sample is not src else backend,
            sample,
            reward_columns(features),  # pass 1 reads no probability and no stratum
            reward_batch_stats,
            plan,
            progress,
            "reward model",
            **options,
        )
        if stats is not None:  # else pass 2 keeps no row either, or names a bad one
            plan = plan.with_model(stats.fit())
            reward_model_rows = stats.n
    merged = _run(backend, src, columns, batch_stats, plan, progress, "evaluating", **options)
    if merged is None:
        raise ValueError(f"the log at {src.location!r} has no row to evaluate")
    out = table(merged, by, confidence, ci)
    out.attrs.update(
        backend=backend,
        policy=spec.label,
        source=src.location,
        reward_model_rows=reward_model_rows,
    )
    logger.info(
        "evaluated %s on %s (%s): %d batches", spec.label, src.location, backend, merged.n_batches
    )
    return out


__all__ = ["LAKE_CI_METHODS", "LAKE_DEFAULT_ESTIMATORS", "REQUIRED", "evaluate_lake"]
