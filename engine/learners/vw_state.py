"""Saving and restoring :class:`~engine.learners.vw.VWLearner`'s state.

VW writes and reads its model through files, so the workspace goes through a private temporary
folder; the whitening map or the warm-up updates saved beside it are checked before use.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping

import numpy as np
import vowpalwabbit

from .whitening import Whitening

__all__ = ["Warmup", "saved_whitening", "workspace_bytes", "workspace_from_bytes"]

Warmup = tuple[np.ndarray, int, float, float]  # a kept update: x, action, probability, reward


def workspace_bytes(ws: vowpalwabbit.Workspace) -> bytes:
    """The model file VW writes for ``ws``."""
    with tempfile.TemporaryDirectory(prefix="cartwise-vw-") as folder:
        path = os.path.join(folder, "model.vw")
        ws.save(path)
        with open(path, "rb") as handle:
            return handle.read()


def workspace_from_bytes(model: bytes, args: list[str]) -> vowpalwabbit.Workspace:
    """A workspace that loads ``model`` (already checked) with the options ``args``."""
    with tempfile.TemporaryDirectory(prefix="cartwise-vw-") as folder:
        path = os.path.join(folder, "model.vw")
        with open(path, "wb") as handle:
            handle.write(model)
        return vowpalwabbit.Workspace(arg_list=["-i", path, *args])


def saved_whitening(
    arrays: Mapping[str, np.ndarray],
    n_features: int,
    n_actions: int,
    check_X: Callable[[np.ndarray], np.ndarray],
) -> tuple[Whitening | None, list[Warmup] | None]:
    """The saved whitening map, or the saved warm-up updates, checked against the learner.

    ``check_X`` is the learner's check of a feature matrix.
    """
    if "whiten_matrix" in arrays:
        if "whiten_offset" not in arrays:
            raise ValueError("whiten_matrix is saved without whiten_offset")
        whitening = Whitening(arrays["whiten_matrix"], arrays["whiten_offset"])
        if whitening.n_features != n_features:
            raise ValueError(
                f"whiten_matrix is for {whitening.n_features} features, must be {n_features}"
            )
        return whitening, None
    if "warmup_x" not in arrays:
        return None, None
    X, labels = arrays["warmup_x"], arrays.get("warmup_labels")
    n = X.shape[0] if X.ndim == 2 else -1
    if X.shape != (n, n_features) or labels is None or labels.shape != (n, 3):
        raise ValueError(
            f"warmup_x/warmup_labels have shapes {X.shape}/"
            f"{None if labels is None else labels.shape}, must be (n, {n_features})/(n, 3)"
        )
    X = check_X(X)
    actions, probabilities, rewards = np.asarray(labels, dtype=np.float64).T
    if not (
        np.isin(actions, np.arange(n_actions)).all()
        and ((probabilities > 0) & (probabilities <= 1)).all()
        and np.isfinite(rewards).all()
    ):
        raise ValueError("warmup_labels hold an invalid action, probability or reward")
    return None, [(x, int(a), p, r) for x, (a, p, r) in zip(X, labels.tolist(), strict=True)]
