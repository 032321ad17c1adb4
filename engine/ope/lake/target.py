"""The target policy of a lake evaluation, in a form that travels to Spark executors.

A :class:`TargetSpec` holds a saved engine model's *bytes*, a policy name, or a ready object
(a ``policies.Policy`` or a callable ``(features, feature_names, eligible) -> probabilities``).
Each process builds the policy once (cached by the spec's id) and evaluates it batch by batch
through :func:`engine.ope.logs.target_probabilities`, the check ``cartwise evaluate`` uses.
A model is evaluated as its learner's own probabilities, as ``cartwise evaluate --model`` does.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_CACHE: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()
_SLOT = threading.local()


def set_worker_slot(slot: int) -> None:
    """Give this thread its own copy of every built policy (``slot``: the worker's number).

    A learner serialises its scoring under its own lock, so the stream backend's worker
    threads each score with their own copy (built once per process and slot) to run in
    parallel; the main thread and Spark's single-threaded workers use slot 0.
    """
    _SLOT.slot = int(slot)


@dataclass(frozen=True)
class TargetSpec:
    """The target policy, in a form that travels to Spark executors.

    ``kind`` is ``"model"`` (``payload``: file bytes), ``"name"`` (a policy name) or
    ``"object"``.
    """

    kind: str
    payload: Any
    seed: int = 0
    greedy: bool = False
    label: str = ""
    key: str = field(default="", compare=False)

    def build(self) -> Any:
        """The policy object (built once per process)."""
        if self.kind == "object":
            return self.payload
        key = (self.key, getattr(_SLOT, "slot", 0))
        with _LOCK:
            if key not in _CACHE:
                _CACHE[key] = self._build()
            return _CACHE[key]

    def _build(self) -> Any:
        import importlib

        # imported here, not at module level: engine stays below policies
        policies = importlib.import_module("policies")
        if self.kind == "name":
            return policies.make_policy(self.payload, seed=self.seed)
        from engine import DecisionEngine

        fd, tmp = tempfile.mkstemp(suffix=".cw")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.payload)
            engine = DecisionEngine.load(tmp)
        finally:
            os.unlink(tmp)
        return policies.LearnerPolicy(
            engine.learner,
            features=engine.features,
            greedy=self.greedy,
            action_names=engine.action_names,
        )

    def probabilities(
        self, rows, action_names: Sequence[str], feature_names: Sequence[str]
    ) -> np.ndarray:
        """``(n, A)`` target distribution on a :class:`~engine.ope.lake.batch.LogBatch`."""
        from engine.ope.logs import LogDataset, target_probabilities

        data = LogDataset(
            rewards=rows.rewards,
            actions=rows.actions,
            logged_probs=rows.logged_probs,
            logging_probs=rows.logging_probs,
            eligible=rows.logging_probs > 0.0,
            features=rows.features,
            feature_names=tuple(feature_names),
            action_names=tuple(action_names),
            decision_ids=rows.decision_ids,
        )
        return target_probabilities(data, self.build())


def target_spec(policy: Any, *, seed: int = 0, greedy: bool = False) -> TargetSpec:
    """A spec from a model path, a policy name or an object.

    See :func:`engine.ope.evaluate_log`.
    """
    if isinstance(policy, TargetSpec):
        return policy
    if isinstance(policy, (str, os.PathLike)):
        path = Path(policy)
        if path.is_file():
            data = path.read_bytes()
            key = "model:" + hashlib.sha256(data).hexdigest() + f":{greedy}"
            return TargetSpec("model", data, seed, greedy, f"model {path.name}", key)
        text = os.fspath(policy)
        if greedy:
            raise ValueError("greedy=True applies to a saved model only")
        if text.endswith((".cw", ".npz")) or os.sep in text:
            raise ValueError(f"policy == {text!r}: no such model file")
        return TargetSpec("name", text, seed, False, f"policy {text}", f"name:{text}:{seed}")
    if callable(policy) or hasattr(policy, "feature_probabilities"):
        return TargetSpec("object", policy, seed, greedy, repr(policy), f"object:{id(policy)}")
    raise ValueError(f"policy == {policy!r}, must be a saved model path, a policy name or a Policy")
