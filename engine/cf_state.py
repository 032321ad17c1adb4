"""A fitted :class:`~engine.cf.CFModel` as a flat dict of numpy arrays, and back."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from engine.cf import CFModel

__all__ = ["model_from_arrays", "model_to_arrays"]

# the constructor's parameters, in the order they are stored, with the type each is read as
_PARAMETERS: dict[str, Callable[[Any], Any]] = {
    "n_factors": int,
    "n_neighbors": int,
    "factorization": str,
    "regularization": float,
    "alpha": float,
    "n_iter": int,
    "recommend_method": str,
    "seed": int,
}


def model_to_arrays(model: CFModel) -> dict[str, np.ndarray]:
    """The parameters and fitted state of ``model`` (fitted) as named arrays."""
    return {
        **{name: np.asarray(getattr(model, name)) for name in _PARAMETERS},
        "item_ids": model.item_ids_.copy(),
        "popularity": model.popularity_.copy(),
        "item_factors": model.item_factors_.copy(),
        "projection": model.projection_.copy(),
        "neighbors_indptr": model.neighbors_.indptr.copy(),
        "neighbors_indices": model.neighbors_.indices.copy(),
        "neighbors_data": model.neighbors_.data.copy(),
    }


def model_from_arrays(cls: type[CFModel], state: Mapping[str, Any]) -> CFModel:
    """A fitted ``cls`` rebuilt from :func:`model_to_arrays` output (or an ``np.load`` of it)."""
    try:
        model = cls(**{name: kind(state[name]) for name, kind in _PARAMETERS.items()})
        item_ids = np.asarray(state["item_ids"]).astype(str)
        n = item_ids.size
        neighbors = sp.csr_matrix(
            (
                np.asarray(state["neighbors_data"], dtype=np.float64),
                np.asarray(state["neighbors_indices"]),
                np.asarray(state["neighbors_indptr"]),
            ),
            shape=(n, n),
        )
        model._set_state(
            item_ids,
            np.asarray(state["popularity"]),
            np.asarray(state["item_factors"]),
            np.asarray(state["projection"]),
            neighbors,
        )
    except KeyError as err:
        raise ValueError(f"state is missing key {err.args[0]!r}") from None
    return model
