"""``DecisionEngine``: what a checkout service embeds to decide, log and learn.

Example:
    >>> eng = DecisionEngine(seed=0, learner="linucb")        # no log_path: logging off
    >>> ctx = {"user_id": "u1", "timestamp": 1767225600.0,
    ...        "cart": [{"item_id": "i1", "price": 40.0, "quantity": 1}],
    ...        "channels": {"email": True, "sms": False, "push": False}}
    >>> d = eng.decide(ctx)
    >>> d.action in d.probabilities and abs(sum(d.probabilities.values()) - 1) < 1e-9
    True
    >>> eng.reward(d.decision_id, 12.5)
    True
    >>> eng.decide({"user_id": "u1"}).fallback                # bad input never raises
    True
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from engine.cf import CFModel
from engine.context import ContextError, ContextLimits, validate_context
from engine.decision import Decision
from engine.decision_log import DecisionLog, user_hasher
from engine.decision_log.engine_decision import new_engine_decision
from engine.decision_log.hashing import DEV_SALT
from engine.engine_fallback import FallbackMixin
from engine.engine_models import ModelsMixin, Served
from engine.engine_outcomes import OutcomesMixin
from engine.engine_setup import (
    attach_model_loop,
    build_learner,
    check_learner_fits,
    open_log,
    resolve_salt,
)
from engine.features import FeatureBuilder
from engine.guardrails import GuardrailConfig, Guardrails
from engine.learners import Learner
from engine.parsed import ParsedContext
from engine.payload import action_payload
from engine.pending_rewards import PendingRewards, new_pending_decision
from engine.persistence import read_saved_model
from engine.risk import RiskModel
from engine.sampling import UniformStream, hashed_uniform, sample_index
from engine.validation import (
    check_choice,
    check_integer,
    check_non_negative,
    check_positive,
    check_probability,
)

if TYPE_CHECKING:
    from engine.model_loop.follower import ModelFollower

__all__ = ["COUNTERS", "DEV_SALT", "DecisionEngine"]

logger = logging.getLogger(__name__)

COUNTERS = (
    "decisions",
    "fallbacks",
    "errors",
    "rewards",
    "rewards_learned",
    "duplicate_rewards",
    "unknown_rewards",
    "late_rewards",
    "invalid_rewards",
    "defaulted",
    "evicted",
    "swaps",
    "retries",
)
MAX_NAMED_DECISIONS = 100_000  # caller-named decisions remembered for idempotent retries


class DecisionEngine(OutcomesMixin, ModelsMixin, FallbackMixin):
    """Decide recovery actions for abandoned carts, log them, and learn from outcomes.

    This module holds construction and the decide path; the outcome side (``reward``,
    ``outcome``, ``close_expired``) is in :mod:`engine.engine_outcomes`, the served model
    (``save``, ``load_model``, hot swaps, retraining) in :mod:`engine.engine_models`, and the
    fallback for bad input in :mod:`engine.engine_fallback`.

    Args:
        log_path: SQLite decision log (created if missing); ``None`` turns logging off. Same as
            ``store``.
        store: the decision log: a SQLite file, or a ``postgresql://`` URL of a store shared by
            many processes (see :class:`~engine.decision_log.DecisionLog`).
        seed: seeds the action sampling and the learner.
        learner: a name for :func:`engine.learners.make_learner` (``"vw"``, ``"linucb"``,
            ``"lints"``, ``"vw-squarecb"``...) or a ready :class:`~engine.learners.Learner`. Named
            learners start from the settings tuned on the simulator
            (:mod:`engine.learners.tuned`).
        learner_options: constructor arguments for a named learner (override the tuned ones).
        propensity_floor: the probability reported to the learner with each outcome is raised to
            at least this (``1.0`` = unweighted updates; default: the tuned setting of the named
            learner, else the true probability). The log always keeps the true propensity.
        cf, risk: fitted collaborative-filtering and abandonment-risk models (optional features;
            the CF model also ranks the items of the ``recommendation`` payload).
        guardrails: :class:`~engine.guardrails.GuardrailConfig` (channels, coupon budget,
            frequency caps, exploration floor).
        strict: raise ``ValueError`` on bad input instead of returning a fallback decision.
        fallback_action: the safe action returned on bad input (default ``"none"``).
        durability: ``"batch"`` (a background commit starts once the oldest buffered decision is
            10 ms old with SQLite, 25 ms with PostgreSQL, or at 1,000 events; a crash loses about
            the last 20 or 50 ms plus any time the OS kept the writer thread waiting) or
            ``"sync"`` (acknowledged = committed).
        salt: salt for hashing user ids (default: ``$CARTWISE_SALT``, else the published
            development salt :data:`DEV_SALT`; ``health()["salt"]`` says which). Opening a
            decision log with the development salt logs a WARNING, and raises ``ValueError`` when
            ``$CARTWISE_ENV`` is ``production``.
        attribution_window: seconds an outcome may take to arrive (default 72 h).
        contact_cost: cost of one message; a decision with no outcome when its window closes
            gets reward ``-contact_cost`` (``0`` for ``none``), unless ``default_reward`` is given.
        online_learning: update the learner from rewards as they arrive.
        limits: :class:`~engine.context.ContextLimits` for input validation.
        recommend_k: items in a recommendation payload.
        max_pending: decisions awaiting an outcome kept in memory for learning (oldest dropped
            and counted beyond it).
        log: a ready :class:`~engine.decision_log.DecisionLog` to use instead of ``log_path``.
        reward_per_value: the learner regresses on profit per 74 USD of cart value (see
            :class:`~engine.features.FeatureBuilder`; saved with the model); False: on profit.
        follow_models: with a ``postgresql://`` store: serve the store's current model (see
            :mod:`engine.model_loop.follower`; trained by ``cartwise learn``) instead of learning
            in-process (``online_learning`` is then off).
        model_poll_seconds: how often a following engine checks the current model.
        shared_guardrails: with a ``postgresql://`` store, the coupon budget and the contact cap
            hold across every process of the store (:mod:`engine.shared_guardrails`); False:
            per process.
    """

    def __init__(
        self,
        log_path: str | os.PathLike[str] | None = None,
        *,
        store: str | os.PathLike[str] | None = None,
        seed: int = 0,
        learner: str | Learner = "vw",
        learner_options: Mapping[str, Any] | None = None,
        propensity_floor: float | None = None,
        cf: CFModel | None = None,
        risk: RiskModel | None = None,
        guardrails: GuardrailConfig | None = None,
        strict: bool = False,
        fallback_action: str = "none",
        durability: str = "batch",
        salt: str | None = None,
        attribution_window: float = 72 * 3600.0,
        contact_cost: float = 0.25,
        default_reward: float | Callable[[str], float] | None = None,
        online_learning: bool = True,
        limits: ContextLimits | None = None,
        recommend_k: int = 5,
        max_pending: int = 1_000_000,
        log: DecisionLog | None = None,
        reward_per_value: bool = True,
        follow_models: bool = False,
        model_poll_seconds: float = 10.0,
        shared_guardrails: bool = True,
    ) -> None:
        self.guardrails = Guardrails(guardrails or GuardrailConfig())
        self.action_names: tuple[str, ...] = self.guardrails.action_names
        self.fallback_action = check_choice(fallback_action, "fallback_action", self.action_names)
        self.attribution_window = check_positive(attribution_window, "attribution_window")
        self.contact_cost = check_non_negative(contact_cost, "contact_cost")
        recommend_k = check_integer(recommend_k, "recommend_k", low=1)
        self.strict = bool(strict)
        self.seed = seed
        self.default_reward = (
            default_reward if default_reward is not None else self._contact_default
        )
        self.online_learning = online_learning
        self.limits = limits or ContextLimits()
        self.recommend_k = recommend_k
        self.max_pending = max_pending
        stores = log is not None or log_path is not None or store is not None
        self._salt = resolve_salt(salt, stores=stores)
        self._hash_user = user_hasher(self._salt)
        features = FeatureBuilder(cf=cf, risk=risk, reward_per_value=reward_per_value)
        model, self.learner_name, tuned_floor = build_learner(
            learner, learner_options, self.action_names, features.feature_names, seed
        )
        floor = tuned_floor if propensity_floor is None else propensity_floor
        if floor is not None:
            check_probability(floor, "propensity_floor", positive=True)
        self.propensity_floor = floor
        check_learner_fits(model, self.action_names, features.feature_names)
        # the served model: learner, feature builder and version replaced together (hot swaps)
        self._model = Served(model, features, f"{self.learner_name}-init")
        self._uniforms = UniformStream(seed)  # for sampling actions; saved with the model
        self._state_lock = threading.Lock()
        self._swap_lock = threading.Lock()
        self._pending = PendingRewards(max_pending)  # guarded by _state_lock
        self._named: OrderedDict[str, Decision] = (
            OrderedDict()
        )  # caller-named decisions, for retries
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._fallback_reasons: dict[str, int] = {}
        self._fallback_probs = {fallback_action: 1.0}
        self.log: DecisionLog | None = open_log(
            log_path,
            store,
            log,
            durability=durability,
            attribution_window=self.attribution_window,
            default_reward=self.default_reward,
            salt=self._salt,
        )
        self._follower: ModelFollower | None = attach_model_loop(
            self,
            self.log,
            follow_models=follow_models,
            model_poll_seconds=model_poll_seconds,
            shared_guardrails=shared_guardrails,
        )

    # ------------------------------------------------------------------ decide
    def decide(self, context: Mapping[str, Any], decision_id: str | None = None) -> Decision:
        """Choose a recovery action for one abandoned cart. Never raises unless ``strict``.

        ``decision_id`` (the caller's request id) makes the call idempotent: the action is
        sampled from a seeded hash of the id, so a retry gets the same action in any process
        running the same model; a retry in this process returns the same decision, and the
        log stores the id once.
        """
        if decision_id is not None:
            if not isinstance(decision_id, str) or not 0 < len(decision_id) <= 128:
                if self.strict:
                    raise ValueError("decision_id must be a non-empty str of at most 128 chars")
                return self._fallback(
                    context,
                    "decision_id must be a non-empty str of at most 128 chars",
                    "decision_id",
                    "decision_id: not a non-empty str of at most 128 chars",
                )
            with self._state_lock:
                earlier = self._named.get(decision_id)
                if earlier is not None:
                    self._counts["retries"] += 1
                    return earlier
        decision = self._decide_checked(context, decision_id)
        if decision_id is not None:
            with self._state_lock:
                decision = self._named.setdefault(decision_id, decision)
                if len(self._named) > MAX_NAMED_DECISIONS:
                    self._named.popitem(last=False)
        return decision

    def _decide_checked(self, context: Mapping[str, Any], decision_id: str | None) -> Decision:
        try:
            parsed = validate_context(context, self.limits)
        except ContextError as exc:
            if self.strict:
                raise
            return self._fallback(context, str(exc), exc.field_path, exc.reason, decision_id)
        except Exception as exc:  # a hostile value broke the check itself (e.g. a raising __eq__)
            error = ContextError(
                "context",
                None,
                f"context could not be read: {type(exc).__name__}",
                "an unreadable record",
            )
            if self.strict:
                raise error from exc
            logger.warning(
                "decide: the context could not be read (%s)", type(exc).__name__, exc_info=True
            )
            return self._fallback(context, str(error), error.field_path, error.reason, decision_id)
        try:
            return self._decide(parsed, decision_id)
        except Exception as exc:  # checkout must never see an engine failure
            if self.strict:
                raise
            logger.exception("decide failed; returning the fallback action")
            self._bump("errors")
            return self._fallback(
                context,
                f"internal error: {type(exc).__name__}: {exc}",
                "internal error",
                f"internal error: {type(exc).__name__}",
                decision_id,
            )

    def _decide(self, ctx: ParsedContext, decision_id: str | None = None) -> Decision:
        user_hash = self._hash_user(ctx.user_id)
        mask = self.guardrails.eligible(ctx, user_hash)
        served = self._model  # one snapshot for the whole decision (hot swaps replace it at once)
        features = served.features
        cf = features.cf
        cf_items = (
            cf.shopper_items(ctx) if cf is not None else None
        )  # features and payload share it
        x = features.transform(ctx, cf_items)
        learner = served.learner
        version = served.version
        # 7-entry vectors (mask, probs): plain Python lists are faster than numpy
        probs = self.guardrails.apply_floor(learner.decision_probabilities(x, mask), mask)
        u = self._uniforms.next() if decision_id is None else hashed_uniform(self.seed, decision_id)
        a = sample_index(probs, mask, u)
        action = self.action_names[a]
        p = probs[a]
        payload = action_payload(action, ctx, self.guardrails, cf, cf_items, self.recommend_k)
        decision_id = decision_id or os.urandom(16).hex()
        names = self.action_names
        probabilities = dict(
            itertools.compress(zip(names, probs, strict=True), mask)
        )  # eligible actions only
        log = self.log
        if log is not None:  # the writer thread builds and checks the record
            log.append_engine_decision(
                new_engine_decision(
                    (
                        decision_id,
                        ctx.timestamp,
                        user_hash,
                        version,
                        names,
                        probs,
                        mask,
                        a,
                        features.feature_names,
                        x,
                        payload,
                    )
                )
            )
        self.guardrails.commit(ctx, user_hash, action)
        entry = new_pending_decision((x, a, p, ctx.timestamp, learner))
        with self._state_lock:
            self._counts["decisions"] += 1
            if self._pending.add(decision_id, entry):
                self._counts["evicted"] += 1
        return Decision(decision_id, action, p, probabilities, payload, version, False, None)

    @classmethod
    def load(cls, path: str | os.PathLike[str], **kwargs: Any) -> DecisionEngine:
        """A new engine from a saved model; ``kwargs`` as for the constructor (log_path, strict...).

        Raises :class:`~engine.model_file.ModelFileError` (a ``ValueError``) for a damaged file.
        The sampling state is restored unless ``seed`` is given.
        """
        saved = read_saved_model(path)
        meta = saved.meta
        reseed = "seed" in kwargs
        kwargs.setdefault("propensity_floor", meta.get("propensity_floor"))
        kwargs.setdefault(
            "reward_per_value", meta.get("reward_per_value", False)
        )  # older files: plain rewards
        engine = cls(learner=saved.learner, cf=saved.cf, risk=saved.risk, **kwargs)
        engine.learner_name = meta["learner_name"]
        engine.model_version = saved.version
        if not reseed:
            engine._uniforms.restore(meta["rng_state"], meta.get("rng_pending_uniforms", []))
        return engine

    def health(self) -> dict[str, Any]:
        """Counters for monitoring.

        Decisions, fallbacks (by field), rewards, and the log's and guardrails' state.
        """
        with self._state_lock:
            out: dict[str, Any] = dict(self._counts)
            out["fallback_reasons"] = dict(self._fallback_reasons)
            out["pending"] = len(self._pending)
        out["model_version"] = self.model_version
        out["salt"] = "development" if self._salt == DEV_SALT else "configured"
        out["guardrails"] = self.guardrails.state()
        out["log"] = self.log.health() if self.log is not None else None
        if self._follower is not None:
            out["models"] = self._follower.stats()
        return out

    def flush(self) -> None:
        """Write the decision log's buffered events to its store now (no-op without a log)."""
        if self.log is not None:
            self.log.flush()

    def close(self) -> None:
        """Flush and close the decision log (and the store-wide model follower and guardrails)."""
        if self._follower is not None:
            self._follower.close()
        if self.guardrails.shared is not None:
            self.guardrails.shared.close()
        if self.log is not None:
            self.log.close()

    def __enter__(self) -> DecisionEngine:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
