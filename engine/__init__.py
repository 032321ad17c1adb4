"""Cartwise decision engine: what a checkout service embeds.

>>> from engine import DecisionEngine, read_log
"""

from __future__ import annotations

import importlib
from typing import Any

from engine.actions import ACTION_NAMES
from engine.decision import Decision
from engine.engine import DecisionEngine
from engine.model_file import ModelFileError

__all__ = [
    "ACTION_NAMES",
    "Decision",
    "DecisionEngine",
    "ModelFileError",
    "abtest",
    "ope",
    "read_log",
    "record_order",
    "record_outcome",
]


def read_log(path: str, **kwargs: Any):
    """The decision log at ``path`` as a pandas DataFrame.

    ``path`` is a SQLite file or a ``postgresql://`` URL; see :func:`engine.decision_log.read_log`.
    """
    from engine.decision_log import read_log as _read_log

    return _read_log(path, **kwargs)


def record_outcome(store: str, decision_id: str, **kwargs: Any) -> str:
    """Report a decision's outcome from any process.

    See :func:`engine.decision_log.record_outcome`.
    """
    from engine.decision_log.remote import record_outcome as _record_outcome

    return _record_outcome(store, decision_id, **kwargs)


def record_order(store: str, **kwargs: Any) -> str:
    """Report a user's order from any process (see :func:`engine.decision_log.record_order`)."""
    from engine.decision_log.remote import record_order as _record_order

    return _record_order(store, **kwargs)


def __getattr__(name: str) -> Any:  # lazy sub-packages: `from engine import ope, abtest`
    if name in ("ope", "abtest", "learners", "decision_log"):
        return importlib.import_module(f"engine.{name}")
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
