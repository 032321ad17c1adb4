"""Batch retraining from the decision log: a fresh learner fitted on every logged outcome.

Online learning updates as rewards arrive; retraining replays the whole log (or a recent window)
into a new learner, e.g. after changing the learner's settings, after a shift in the shoppers,
or to rebuild a model that was lost. The engine can then hot-swap it
(:meth:`engine.DecisionEngine.retrain_from_log`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.learners import Learner, make_learner
from engine.learners.tuned import tuned_settings
from engine.ope.logs import read_log_dataset
from engine.update_rule import teach

logger = logging.getLogger(__name__)


def retrain_from_log(
    log: str | os.PathLike[str] | pd.DataFrame,
    action_names: Sequence[str],
    feature_names: Sequence[str],
    learner: str = "vw",
    *,
    seed: int = 0,
    learner_options: Mapping[str, Any] | None = None,
    propensity_floor: float | None = None,
    since: float | None = None,
    reward_divisor: Callable[[np.ndarray], np.ndarray | np.float64] | None = None,
    backend: str = "memory",
    **lake_options: Any,
) -> Learner:
    """A new ``learner`` trained on the logged decisions that have a reward (fallbacks skipped).

    ``feature_names`` must all be in the log (the engine's whitelisted features); ``since``
    keeps only decisions at or after that unix time. Named learners start from the tuned
    settings, like the engine's (``propensity_floor`` defaults to the tuned one).
    ``reward_divisor`` maps the feature rows to what each reward is divided by (the engine passes
    its :meth:`FeatureBuilder.reward_divisor <engine.features.FeatureBuilder.reward_divisor>`,
    so the new learner regresses on the same target as the online one); None: plain rewards.

    ``backend="stream"`` or ``"spark"`` reads ``log`` (a Parquet lake or a SQLite path) in
    bounded memory with :func:`engine.retrain_lake.retrain_lake` (``lake_options``:
    ``batch_rows``, ``spark``, ``spark_master``); the model equals the in-memory one to rounding.
    """
    if backend != "memory":
        if isinstance(log, pd.DataFrame):
            raise ValueError(
                f"backend == {backend!r} reads a path; a DataFrame is retrained with 'memory'"
            )
        from engine.retrain_lake import retrain_lake

        return retrain_lake(
            log,
            action_names,
            feature_names,
            learner,
            backend=backend,
            seed=seed,
            learner_options=learner_options,
            propensity_floor=propensity_floor,
            since=since,
            reward_divisor=reward_divisor,
            **lake_options,
        )
    if lake_options:
        raise ValueError(
            f"options {sorted(lake_options)} apply to backend 'stream' or 'spark' only"
        )
    if isinstance(log, pd.DataFrame):
        frame = log
    else:
        from engine.decision_log import read_log

        frame = read_log(log)
    if since is not None:
        frame = frame[frame["timestamp"] >= since]
    data = read_log_dataset(frame, tuple(action_names))
    missing = [name for name in feature_names if name not in data.feature_names]
    if missing:
        raise ValueError(
            f"the log has no feature {missing[0]!r}; it holds {list(data.feature_names)[:5]}..."
        )
    columns = [data.feature_names.index(name) for name in feature_names]
    X = np.nan_to_num(data.features[:, columns].astype(np.float64))
    base, options, tuned_floor = tuned_settings(learner)
    options.update(learner_options or {})
    model = make_learner(base, tuple(action_names), tuple(feature_names), seed=seed, **options)
    floor = tuned_floor if propensity_floor is None else propensity_floor
    if data.n:
        teach(
            model,
            X,
            data.actions,
            data.logged_probs,
            data.rewards,
            propensity_floor=floor,
            reward_divisor=reward_divisor,
        )
    logger.info("retrained %s on %d logged decisions (dropped %s)", learner, data.n, data.dropped)
    return model
