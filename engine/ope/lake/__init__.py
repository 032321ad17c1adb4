"""Off-policy evaluation at data-lake scale: memory, stream and Spark backends, one answer.

:func:`evaluate_log` is the public entry point (also ``engine.ope.evaluate_log``). With
``backend=`` it evaluates a Parquet lake or a decision-log store through
:func:`~engine.ope.lake.api.evaluate_lake`; without it, it is today's in-memory evaluation of a
log frame or :class:`engine.ope.logs.LogDataset` (:func:`engine.ope.logs.evaluate_decision_log`).
"""

from __future__ import annotations

from typing import Any

from engine.ope.lake.api import LAKE_DEFAULT_ESTIMATORS, evaluate_lake


def evaluate_log(source: Any, policy: Any = None, *, backend: str | None = None, **kwargs: Any):
    """Evaluate ``policy`` on a decision log.

    ``backend="memory" | "stream" | "spark"``: ``source`` is a Parquet folder/file or a SQLite
    log and ``kwargs`` are those of :func:`evaluate_lake` (``estimators``, ``by``, ...).
    ``backend=None``: :func:`engine.ope.logs.evaluate_decision_log` (``source`` a frame, path or
    ``LogDataset``; ``policy`` a callable or Policy; ``kwargs`` go to :func:`engine.ope.evaluate`).
    """
    if policy is None and "target" in kwargs:
        policy = kwargs.pop("target")
    if policy is None:
        raise ValueError("policy is None, pass a saved model path, a policy name or a Policy")
    if backend is None:
        from engine.ope.logs import evaluate_decision_log

        return evaluate_decision_log(source, policy, **kwargs)
    return evaluate_lake(source, policy, backend=backend, **kwargs)


__all__ = ["LAKE_DEFAULT_ESTIMATORS", "evaluate_lake", "evaluate_log"]
