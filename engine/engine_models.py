"""The model side of :class:`~engine.engine.DecisionEngine`: what is served, saving, hot swaps.

:class:`ModelsMixin` reads and replaces the served model (learner, feature builder, version) as
one :class:`Served` value, so a decision never mixes two models; it saves the model, swaps in a
saved or retrained one, and retrains from the decision log.
"""

from __future__ import annotations

import os
import threading
from typing import Any, NamedTuple

from engine.decision_log import DecisionLog
from engine.features import FeatureBuilder
from engine.learners import Learner
from engine.persistence import SavedModel, check_model_fits, read_saved_model, write_saved_model
from engine.sampling import UniformStream

__all__ = ["ModelsMixin", "Served"]


class Served(NamedTuple):
    """The model being served: replaced as one attribute, so a reader never mixes two models."""

    learner: Learner
    features: FeatureBuilder
    version: str


class ModelsMixin:
    """Model serving for :class:`~engine.engine.DecisionEngine`, which sets the attributes."""

    action_names: tuple[str, ...]
    learner_name: str
    propensity_floor: float | None
    seed: int
    log: DecisionLog | None
    _model: Served
    _uniforms: UniformStream
    _swap_lock: threading.Lock
    _state_lock: threading.Lock
    _counts: dict[str, int]

    def _count_swap(self) -> None:
        with self._state_lock:
            self._counts["swaps"] += 1

    @property
    def learner(self) -> Learner:
        """The learner being served."""
        return self._model.learner

    @property
    def features(self) -> FeatureBuilder:
        """The feature builder of the learner being served."""
        return self._model.features

    @property
    def model_version(self) -> str:
        """The version of the model being served (logged with each decision)."""
        return self._model.version

    @model_version.setter
    def model_version(self, version: str) -> None:
        with self._swap_lock:
            self._model = self._model._replace(version=version)

    def save(self, path: str | os.PathLike[str]) -> str:
        """Atomically save the model; return its version.

        The model is the learner, CF, risk model, settings and sampling state.

        The file format is :mod:`engine.persistence`'s.
        """
        rng_state, pending_uniforms = self._uniforms.state()
        served = self._model
        version = write_saved_model(
            path,
            served.learner,
            served.features,
            learner_name=self.learner_name,
            action_names=self.action_names,
            propensity_floor=self.propensity_floor,
            rng_state=rng_state,
            pending_uniforms=pending_uniforms,
        )
        self.model_version = version
        return version

    def load_model(self, path: str | os.PathLike[str]) -> str:
        """Hot swap: load a saved model and serve it from the next decision on.

        A damaged file raises :class:`~engine.model_file.ModelFileError` and the engine keeps
        serving the current model. Returns the new model version.
        """
        return self.install_model(read_saved_model(path), path)

    def install_model(self, saved: SavedModel, source: str | os.PathLike[str]) -> str:
        """Hot swap a model already read (``source`` names it in errors); return its version.

        Raises :class:`~engine.model_file.ModelFileError` when it does not fit the engine's
        actions; the current model keeps serving.
        """
        features = check_model_fits(source, saved, self.action_names)
        with self._swap_lock:
            self._model = Served(saved.learner, features, saved.version)
            self.propensity_floor = saved.meta.get("propensity_floor", self.propensity_floor)
            self.learner_name = saved.meta["learner_name"]
            self._count_swap()
        return saved.version

    def swap_learner(self, learner: Learner, version: str) -> None:
        """Hot swap an in-memory learner (e.g. one retrained from the log)."""
        with self._swap_lock:
            features = self._model.features
            if (
                tuple(learner.feature_names) != features.feature_names
                or tuple(learner.action_names) != self.action_names
            ):
                raise ValueError("learner does not match the engine's actions and features")
            self._model = Served(learner, features, version)
            self._count_swap()

    def retrain_from_log(
        self, learner: str | None = None, since: float | None = None, **options: Any
    ) -> str:
        """Batch retraining: fit a fresh learner on this engine's decision log and hot-swap it.

        ``learner`` defaults to the engine's (named) learner; ``options`` are learner options.
        Returns the new model version.
        """
        if self.log is None:
            raise ValueError(
                "retrain_from_log() needs a decision log: create the engine with log_path=..."
            )
        from engine.decision_log import read_log
        from engine.retrain import retrain_from_log

        name = learner or self.learner_name
        self.log.flush()
        model = retrain_from_log(
            read_log(self.log.path),
            self.action_names,
            self.features.feature_names,
            name,
            seed=self.seed,
            learner_options=options or None,
            since=since,
            reward_divisor=self.features.reward_divisor,
        )
        version = f"{name}-retrained-{model.n_updates}"
        self.swap_learner(model, version)
        return version
