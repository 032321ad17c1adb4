"""What a ``postgresql://`` store adds to a :class:`~engine.engine.DecisionEngine`.

Kept out of the engine module: the store-wide guardrails (:mod:`engine.shared_guardrails`)
and, with ``follow_models=True``, the model follower (:mod:`engine.model_loop.follower`) that
installs the store's current model after checking it fits the engine (actions, features,
learner class).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.model_file import ModelFileError
from engine.model_loop.follower import ModelFollower
from engine.persistence import SavedModel
from engine.shared_guardrails import SharedGuardrails

if TYPE_CHECKING:
    from engine.engine import DecisionEngine

__all__ = ["attach_to_store"]


def attach_to_store(
    engine: DecisionEngine, url: str, follow: bool, poll_seconds: float, shared: bool
) -> ModelFollower | None:
    """Share ``engine``'s guardrails through the store; if ``follow``, follow its model.

    A following engine does not learn in-process. Returns the follower (None if not following).
    """
    config = engine.guardrails.config
    if shared and (config.daily_coupon_budget is not None or config.max_contacts is not None):
        engine.guardrails.shared = SharedGuardrails(
            url,
            daily_coupon_budget=config.daily_coupon_budget,
            max_contacts=config.max_contacts,
            contact_window_days=config.contact_window_days,
        )
    if not follow:
        return None
    engine.online_learning = False

    def install(saved: SavedModel, version: int) -> None:
        name = f"registry version {version}"
        serving = type(engine.learner).__name__
        if saved.meta["learner_class"] != serving:
            raise ModelFileError(
                f"model {name!r} holds a {saved.meta['learner_class']}, this engine serves a "
                f"{serving}"
            )
        engine.install_model(saved, name)

    return ModelFollower(url, install, poll_seconds=poll_seconds)
