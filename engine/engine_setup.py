"""Constructor steps of :class:`~engine.engine.DecisionEngine`: its learner and its decision log."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from engine.decision_log import DecisionLog
from engine.decision_log.hashing import DEV_SALT
from engine.decision_log.store_api import is_postgres_url
from engine.learners import Learner, make_learner
from engine.learners.tuned import tuned_settings

logger = logging.getLogger("engine.engine")  # the engine's logger, as before the split

if TYPE_CHECKING:
    from engine.model_loop.follower import ModelFollower

__all__ = ["build_learner", "check_learner_fits", "open_log"]


def build_learner(
    learner: str | Learner,
    learner_options: Mapping[str, Any] | None,
    action_names: Sequence[str],
    feature_names: Sequence[str],
    seed: int,
) -> tuple[Learner, str, float | None]:
    """The engine's learner, its name, and the tuned propensity floor (None if not tuned).

    A ready :class:`~engine.learners.Learner` is used as given (named by its class); a name
    starts from the settings tuned on the simulator, with ``learner_options`` overriding them.
    """
    if isinstance(learner, Learner):
        return learner, type(learner).__name__, None
    base, options, tuned_floor = tuned_settings(learner)
    options.update(learner_options or {})
    model = make_learner(base, action_names, feature_names, seed=seed, **options)
    return model, learner, tuned_floor


def check_learner_fits(
    model: Learner, action_names: tuple[str, ...], feature_names: tuple[str, ...]
) -> None:
    """Raise ``ValueError`` unless ``model`` has the engine's actions and features, in order."""
    if tuple(model.action_names) != action_names:
        raise ValueError(
            f"learner.action_names == {model.action_names!r}, must be {action_names!r}"
        )
    if tuple(model.feature_names) != feature_names:
        raise ValueError("learner.feature_names do not match the engine's feature builder")


def open_log(
    log_path: str | os.PathLike[str] | None,
    store: str | os.PathLike[str] | None,
    log: DecisionLog | None,
    *,
    durability: str,
    attribution_window: float,
    default_reward: float | Callable[[str], float],
    salt: str,
) -> DecisionLog | None:
    """The engine's decision log: ``log`` as given, one opened at ``store``/``log_path``, or None.

    ``store`` and ``log_path`` are two names for the same thing; giving both, or either with
    ``log``, is a ``ValueError``.
    """
    if store is not None and log_path is not None:
        raise ValueError("give store or log_path (the same thing), not both")
    log_path = store if store is not None else log_path
    if log is not None and log_path is not None:
        raise ValueError("give store or log, not both")
    if log_path is None:
        return log
    return DecisionLog(
        log_path,
        durability=durability,
        attribution_window=attribution_window,
        default_reward=default_reward,
        salt=salt,
    )


def attach_model_loop(
    engine: Any,
    log: DecisionLog | None,
    *,
    follow_models: bool,
    model_poll_seconds: float,
    shared_guardrails: bool,
) -> ModelFollower | None:
    """With a ``postgresql://`` decision log, join the store's model loop and shared guardrails.

    Returns the model follower (None when ``follow_models`` is off or the store is not
    PostgreSQL); ``follow_models=True`` without a PostgreSQL store is a ``ValueError``.
    """
    if log is not None and is_postgres_url(log.path):
        from engine.model_loop.hooks import attach_to_store

        return attach_to_store(
            engine, str(log.path), follow_models, model_poll_seconds, shared_guardrails
        )
    if follow_models:
        raise ValueError("follow_models=True needs a postgresql:// store")
    return None


def resolve_salt(salt: str | None, *, stores: bool) -> str:
    """The user-id hashing salt: ``salt``, else ``$CARTWISE_SALT``, else the development salt.

    With a decision log (``stores``) the development salt is a warning, and a ``ValueError``
    when ``$CARTWISE_ENV`` is ``production``.
    """
    resolved = salt or os.environ.get("CARTWISE_SALT") or DEV_SALT
    if resolved == DEV_SALT and stores:
        if os.environ.get("CARTWISE_ENV", "").strip().lower() == "production":
            raise ValueError(
                "CARTWISE_ENV == 'production' and the salt is the published development salt: "
                "set salt= or $CARTWISE_SALT before opening a decision log"
            )
        logger.warning(
            "DecisionEngine: the decision log hashes user ids with the published development "
            "salt (anyone can recompute them); set salt= or $CARTWISE_SALT in production"
        )
    return resolved
