"""Saving and loading a :class:`~engine.engine.DecisionEngine`'s model.

A saved model is one file (:mod:`engine.model_file`: atomic, checksummed, numpy arrays only):
the learner's bytes (:meth:`Learner.to_bytes <engine.learners.Learner.to_bytes>`, which names its
class, so :meth:`Learner.from_bytes <engine.learners.Learner.from_bytes>` rebuilds it), the CF and
risk models' arrays, and JSON metadata (names, settings, the sampling generator's state). The
engine's :meth:`~engine.engine.DecisionEngine.save`, :meth:`~engine.engine.DecisionEngine.load`
and :meth:`~engine.engine.DecisionEngine.load_model` are the public entry points.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from engine.cf import CFModel
from engine.features import FeatureBuilder
from engine.learners import Learner
from engine.model_file import ModelFileError, decode_model, encode_model, read_model, write_model
from engine.risk import RiskModel

__all__ = [
    "SavedModel",
    "check_model_fits",
    "decode_saved_model",
    "encode_saved_model",
    "model_version",
    "read_saved_model",
    "write_saved_model",
]


class SavedModel(NamedTuple):
    """A model file, rebuilt.

    Attributes:
        learner: the learner.
        cf: the CF model, if one was saved.
        risk: the risk model, if one was saved.
        meta: the metadata (``learner_name``, ``action_names``, ``feature_names``,
            ``propensity_floor``, ``reward_per_value``, ``rng_state``, ``rng_pending_uniforms``...).
        version: the model version (``<learner name>-<updates>-<checksum prefix>``).
    """

    learner: Learner
    cf: CFModel | None
    risk: RiskModel | None
    meta: dict[str, Any]
    version: str


def model_version(learner_name: str, n_updates: int, digest: str) -> str:
    """The version string of a saved model."""
    return f"{learner_name}-{n_updates}-{digest[:8]}"


def _contents(
    learner: Learner,
    features: FeatureBuilder,
    *,
    learner_name: str,
    action_names: Sequence[str],
    propensity_floor: float | None,
    rng_state: dict[str, Any],
    pending_uniforms: list[float],
    saved_at: float | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    arrays: dict[str, np.ndarray] = {"learner": np.frombuffer(learner.to_bytes(), dtype=np.uint8)}
    if features.cf is not None:
        arrays.update({f"cf.{k}": np.asarray(v) for k, v in features.cf.to_dict().items()})
    if features.risk is not None:
        arrays.update({f"risk.{k}": np.asarray(v) for k, v in features.risk.to_dict().items()})
    meta = {
        "learner_class": type(learner).__name__,
        "learner_name": learner_name,
        "action_names": list(action_names),
        "feature_names": list(features.feature_names),
        "n_updates": learner.n_updates,
        "rng_state": _jsonable(rng_state),
        "rng_pending_uniforms": pending_uniforms,
        "saved_at": time.time() if saved_at is None else float(saved_at),
        "propensity_floor": propensity_floor,
        "reward_per_value": features.reward_per_value,
    }
    return arrays, meta


def write_saved_model(
    path: str | os.PathLike[str],
    learner: Learner,
    features: FeatureBuilder,
    *,
    learner_name: str,
    action_names: Sequence[str],
    propensity_floor: float | None,
    rng_state: dict[str, Any],
    pending_uniforms: list[float],
) -> str:
    """Atomically write a model file; return its version.

    Args:
        path: the file to write.
        learner: the learner to save.
        features: the feature builder (its CF and risk models are saved, and its
            ``reward_per_value`` setting).
        learner_name: the engine's name of the learner.
        action_names: the engine's actions.
        propensity_floor: the engine's update setting.
        rng_state: the state of the sampling generator's bit generator.
        pending_uniforms: uniforms drawn but not used yet.
    """
    arrays, meta = _contents(
        learner,
        features,
        learner_name=learner_name,
        action_names=action_names,
        propensity_floor=propensity_floor,
        rng_state=rng_state,
        pending_uniforms=pending_uniforms,
    )
    digest = write_model(path, arrays, meta)
    return model_version(learner_name, learner.n_updates, digest)


def encode_saved_model(
    learner: Learner,
    features: FeatureBuilder,
    *,
    learner_name: str,
    action_names: Sequence[str],
    propensity_floor: float | None,
    rng_state: dict[str, Any],
    saved_at: float,
) -> tuple[bytes, str]:
    """The bytes of a model file (as :func:`write_saved_model` writes) and its version.

    ``saved_at`` is given, not read from the clock, so the same learner gives the same bytes
    (the trainer's published models are reproducible).
    """
    arrays, meta = _contents(
        learner,
        features,
        learner_name=learner_name,
        action_names=action_names,
        propensity_floor=propensity_floor,
        rng_state=rng_state,
        pending_uniforms=[],
        saved_at=saved_at,
    )
    data, digest = encode_model(arrays, meta)
    return data, model_version(learner_name, learner.n_updates, digest)


def read_saved_model(path: str | os.PathLike[str]) -> SavedModel:
    """Read and rebuild a model file (the learner's class is the one its bytes name).

    Raises:
        ModelFileError: (a ``ValueError``) for a missing, damaged or unknown file, naming it.
    """
    return _rebuild(*read_model(path), repr(str(path)))


def decode_saved_model(data: bytes | memoryview, name: str = "<bytes>") -> SavedModel:
    """Rebuild a model from the bytes of a model file (e.g. a registry row).

    ``name`` is used in errors. Raises :class:`~engine.model_file.ModelFileError` for damaged
    bytes.
    """
    return _rebuild(*decode_model(data, name), name)


def _rebuild(
    arrays: dict[str, np.ndarray], meta: dict[str, Any], digest: str, name: str
) -> SavedModel:
    try:
        learner = Learner.from_bytes(arrays["learner"].tobytes())
        cf_state = {k[3:]: v for k, v in arrays.items() if k.startswith("cf.")}
        risk_state = {k[5:]: v for k, v in arrays.items() if k.startswith("risk.")}
        cf = CFModel.from_dict(cf_state) if cf_state else None
        risk = RiskModel.from_dict(risk_state) if risk_state else None
    except (
        Exception
    ) as exc:  # the file is checksummed and schema-checked: any failure means a bad model
        reason = exc if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise ModelFileError(f"model file {name} cannot be rebuilt: {reason}") from None
    if meta.get("learner_class") != type(learner).__name__:
        raise ModelFileError(
            f"model file {name} names learner class {meta.get('learner_class')!r}, "
            f"its learner bytes hold a {type(learner).__name__}"
        )
    if (list(learner.action_names), list(learner.feature_names)) != (
        meta["action_names"],
        meta["feature_names"],
    ):
        raise ModelFileError(
            f"model file {name}: learner and metadata disagree on actions or features"
        )
    return SavedModel(
        learner, cf, risk, meta, model_version(meta["learner_name"], meta["n_updates"], digest)
    )


def check_model_fits(
    path: str | os.PathLike[str], saved: SavedModel, action_names: Sequence[str]
) -> FeatureBuilder:
    """The feature builder of ``saved`` for an engine with ``action_names``.

    Raises:
        ModelFileError: when the model decides other actions, or its learner's features are not
            those of its CF and risk models.
    """
    if tuple(saved.meta["action_names"]) != tuple(action_names):
        raise ModelFileError(
            f"model file {str(path)!r} has actions {saved.meta['action_names']}, "
            f"engine has {list(action_names)}"
        )
    try:
        features = FeatureBuilder(
            cf=saved.cf, risk=saved.risk, reward_per_value=saved.meta.get("reward_per_value", False)
        )
    except Exception as exc:  # a checksummed file whose CF/risk models cannot build features
        raise ModelFileError(
            f"model file {str(path)!r}: its CF/risk models cannot build features: {exc}"
        ) from None
    if features.feature_names != tuple(saved.learner.feature_names):
        raise ModelFileError(
            f"model file {str(path)!r}: learner features do not match its CF/risk models"
        )
    return features


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.integer,)):
        return int(value)
    return value
