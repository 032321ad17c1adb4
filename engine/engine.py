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
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.actions import COUPON_PERCENT, OFFER_HOURS
from engine.cf import CFModel, ShopperItems
from engine.context import ContextError, ContextLimits, describe, validate_context
from engine.decision import Decision
from engine.decision_log import DecisionLog, DecisionRecord, hash_user_id, user_hasher
from engine.decision_log.hashing import DEV_SALT
from engine.decision_log.store_api import is_postgres_url
from engine.features import FeatureBuilder
from engine.guardrails import GuardrailConfig, Guardrails
from engine.learners import Learner, make_learner
from engine.learners.tuned import tuned_settings
from engine.parsed import ParsedContext
from engine.pending_rewards import PendingDecision, PendingRewards, new_pending_decision
from engine.persistence import SavedModel, check_model_fits, read_saved_model, write_saved_model
from engine.risk import RiskModel
from engine.sampling import UniformStream, hashed_uniform, sample_index
from engine.update_rule import teach
from engine.validation import (
    check_choice,
    check_integer,
    check_non_negative,
    check_number,
    check_positive,
    check_probability,
    fail,
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


_MAX_FLOAT = sys.float_info.max
_MAX_DECISION_ID = 256


def _reward_error(decision_id: Any, value: Any, timestamp: Any) -> tuple[ValueError, str] | None:
    """None if ``reward``'s arguments are valid, else the error to raise and a value-free reason."""
    if (
        type(decision_id) is not str
        or not 0 < len(decision_id) <= _MAX_DECISION_ID
        or not (decision_id.isascii() or _utf8(decision_id))
    ):
        return (
            fail(
                decision_id,
                "decision_id",
                f"a string of 1..{_MAX_DECISION_ID} characters of valid Unicode",
            ),
            f"decision_id: {describe(decision_id)} found, must be a string of 1..{_MAX_DECISION_ID} characters",
        )
    for name, number in (("value", value), ("timestamp", timestamp)):
        if number is None and name == "timestamp":
            continue
        try:
            check_number(number, name)
        except ValueError as exc:
            return exc, f"{name}: {describe(number)} found, must be a finite number"
    return None


class _Served(NamedTuple):
    """The model being served: replaced as one attribute, so a reader never mixes two models."""

    learner: Learner
    features: FeatureBuilder
    version: str


def _utf8(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeError:
        return False
    return True


class DecisionEngine:
    """Decide recovery actions for abandoned carts, log them, and learn from outcomes.

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
            25 ms old, or at 1,000 events; a crash loses about the last 50 ms plus any time the
            OS kept the writer thread waiting) or ``"sync"`` (acknowledged = committed).
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
        self._salt = salt or os.environ.get("CARTWISE_SALT") or DEV_SALT
        self._hash_user = user_hasher(self._salt)
        stores = log is not None or log_path is not None
        if self._salt == DEV_SALT and stores:
            if os.environ.get("CARTWISE_ENV", "").strip().lower() == "production":
                raise ValueError(
                    "CARTWISE_ENV == 'production' and the salt is the published development salt: "
                    "set salt= or $CARTWISE_SALT before opening a decision log"
                )
            logger.warning(
                "DecisionEngine: the decision log hashes user ids with the published development "
                "salt (anyone can recompute them); set salt= or $CARTWISE_SALT in production"
            )
        features = FeatureBuilder(cf=cf, risk=risk, reward_per_value=reward_per_value)
        tuned_floor = None
        if isinstance(learner, Learner):
            model = learner
            self.learner_name = type(learner).__name__
        else:
            self.learner_name = learner
            base, options, tuned_floor = tuned_settings(learner)
            options.update(learner_options or {})
            model = make_learner(
                base, self.action_names, features.feature_names, seed=seed, **options
            )
        floor = tuned_floor if propensity_floor is None else propensity_floor
        if floor is not None:
            check_probability(floor, "propensity_floor", positive=True)
        self.propensity_floor = floor
        if tuple(model.action_names) != self.action_names:
            raise ValueError(
                f"learner.action_names == {model.action_names!r}, must be {self.action_names!r}"
            )
        if tuple(model.feature_names) != features.feature_names:
            raise ValueError("learner.feature_names do not match the engine's feature builder")
        # the served model: learner, feature builder and version replaced together (hot swaps)
        self._model = _Served(model, features, f"{self.learner_name}-init")
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
        if store is not None and log_path is not None:
            raise ValueError("give store or log_path (the same thing), not both")
        log_path = store if store is not None else log_path
        if log is not None and log_path is not None:
            raise ValueError("give store or log, not both")
        self.log: DecisionLog | None = log
        if log_path is not None:
            self.log = DecisionLog(
                log_path,
                durability=durability,
                attribution_window=self.attribution_window,
                default_reward=self.default_reward,
                salt=self._salt,
            )
        self._follower: ModelFollower | None = None
        if log_path is not None and is_postgres_url(log_path):
            from engine.model_loop.hooks import attach_to_store

            self._follower = attach_to_store(
                self, str(log_path), follow_models, model_poll_seconds, shared_guardrails
            )
        elif follow_models:
            raise ValueError("follow_models=True needs a postgresql:// store")

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
        payload = self._payload(action, ctx, cf, cf_items)
        decision_id = decision_id or os.urandom(16).hex()
        names = self.action_names
        probabilities = dict(itertools.compress(zip(names, probs), mask))  # eligible actions only
        if self.log is not None:
            self.log.append_decision(
                DecisionRecord(
                    decision_id=decision_id,
                    timestamp=ctx.timestamp,
                    user_hash=user_hash,
                    model_version=version,
                    actions=names,
                    probabilities=tuple(probs),
                    eligible=tuple(probabilities),
                    action=action,
                    features=dict(zip(features.feature_names, x.tolist())),
                    payload=payload,
                )
            )
        self.guardrails.commit(ctx, user_hash, action)
        entry = new_pending_decision((x, a, p, ctx.timestamp, learner))
        with self._state_lock:
            self._counts["decisions"] += 1
            if self._pending.add(decision_id, entry):
                self._counts["evicted"] += 1
        return Decision(decision_id, action, p, probabilities, payload, version, False, None)

    def _payload(
        self, action: str, ctx: ParsedContext, cf: CFModel | None, cf_items: ShopperItems | None
    ) -> dict[str, Any]:
        if action == "none":
            return {}
        payload: dict[str, Any] = {"channel": self.guardrails.channel_for(action, ctx)}
        if action in COUPON_PERCENT:
            payload["coupon_percent"] = COUPON_PERCENT[action]
        elif action == "time_limited_offer":
            payload["offer"] = "free_shipping"
            payload["expires_at"] = ctx.timestamp + OFFER_HOURS * 3600.0
        elif action == "recommendation":
            payload["items"] = (
                cf.recommend(ctx, self.recommend_k, cf_items) if cf is not None else []
            )
        return payload

    def _fallback(
        self, context: Any, message: str, key: str, reason: str, decision_id: str | None = None
    ) -> Decision:
        """The fallback decision: counted under ``key`` (a field path without indices) and
        logged with ``reason`` (value-free: it may be stored); ``message`` goes to the caller.
        """
        logger.warning("decide fell back to %r: %s", self.fallback_action, reason)
        decision_id = decision_id or os.urandom(16).hex()
        with self._state_lock:
            self._counts["fallbacks"] += 1
            self._fallback_reasons[key] = self._fallback_reasons.get(key, 0) + 1
        if self.log is not None:
            try:
                ts = context.get("timestamp") if type(context) is dict else None
                ts = (
                    float(ts) if type(ts) in (int, float) and 0 <= ts <= _MAX_FLOAT else time.time()
                )
                uid = context.get("user_id") if type(context) is dict else None
                user_hash = (
                    self._hash_user(uid)
                    if type(uid) is str
                    and 0 < len(uid) <= self.limits.max_string
                    and (uid.isascii() or _utf8(uid))
                    else "invalid"
                )
                probs = tuple(1.0 if a == self.fallback_action else 0.0 for a in self.action_names)
                self.log.append_decision(
                    DecisionRecord(
                        decision_id=decision_id,
                        timestamp=ts,
                        user_hash=user_hash,
                        model_version=self.model_version,
                        actions=self.action_names,
                        probabilities=probs,
                        eligible=(self.fallback_action,),
                        action=self.fallback_action,
                        fallback=True,
                        payload={"reason": reason[:200]},
                    )
                )
            except Exception:  # the fallback path itself must never raise
                logger.exception("could not log a fallback decision")
        return Decision(
            decision_id,
            self.fallback_action,
            1.0,
            dict(self._fallback_probs),
            {},
            self.model_version,
            True,
            message,
        )

    # ------------------------------------------------------------------ outcomes
    def reward(self, decision_id: str, value: float, timestamp: float | None = None) -> bool:
        """Report the realised profit of a decision; True when it was new and inside its window.

        Never raises (unless ``strict`` and an argument is invalid: ``ValueError``). Invalid
        arguments (an id that is not a string of at most 256 characters, a value or timestamp that
        is not a finite number...) are counted as ``invalid_rewards`` and change nothing, so a
        corrected retry is accepted. Duplicates (first wins), unknown ids and late rewards are
        counted. If recording the outcome fails, the decision stays pending (``errors`` counts it).
        """
        try:
            error = _reward_error(decision_id, value, timestamp)
        except Exception as exc:  # a hostile argument broke the check itself
            error = (
                ValueError(f"reward arguments could not be read: {type(exc).__name__}"),
                f"unreadable arguments ({type(exc).__name__})",
            )
        if error is not None:
            if self.strict:
                raise error[0]
            logger.warning("reward ignored: %s", error[1])
            self._bump("invalid_rewards")
            return False
        try:
            return self._reward(
                decision_id, float(value), None if timestamp is None else float(timestamp)
            )
        except Exception:  # the caller must never see an engine failure
            logger.exception("reward failed; the decision stays pending")
            self._bump("errors")
            return False

    def _reward(self, decision_id: str, value: float, timestamp: float | None) -> bool:
        with self._state_lock:
            self._counts["rewards"] += 1
            entry = self._pending.settle(decision_id)
            if entry is None:
                self._counts[
                    "duplicate_rewards"
                    if self._pending.was_settled(decision_id)
                    else "unknown_rewards"
                ] += 1
        if (
            entry is not None
            and timestamp is not None
            and timestamp - entry.timestamp > self.attribution_window
        ):
            self._bump("late_rewards")
            entry = None
        if self.log is not None:
            ts = time.time() if timestamp is None else timestamp
            try:
                receipt = self.log.append_outcome(
                    decision_id, value, ts if entry is None else max(ts, entry.timestamp)
                )
            except Exception:
                if entry is not None:  # not recorded: a retry must find it pending
                    with self._state_lock:
                        self._pending.restore(decision_id, entry)
                raise
            if entry is not None and not receipt.accepted:
                entry = None
        if entry is None:
            return False
        self._learn(entry, value)
        return True

    def outcome(
        self, user_id: str, value: float, timestamp: float, order_id: str | None = None
    ) -> str | None:
        """An order event keyed by user: attributed to the user's latest decision in its window.

        Returns the decision id it was joined to, or None. Requires a decision log.
        """
        if self.log is None:
            raise ValueError("outcome() needs a decision log: create the engine with log_path=...")
        receipt = self.log.outcome_for_user(
            hash_user_id(user_id, self._salt), float(value), float(timestamp), order_id, hashed=True
        )
        if not receipt.accepted:
            return None
        with self._state_lock:
            entry = self._pending.settle(receipt.decision_id)
            self._pending.mark_settled(receipt.decision_id)
        if entry is not None:
            self._learn(entry, float(value))
        return receipt.decision_id

    def close_expired(self, now: float) -> int:
        """Give the default reward to decisions whose attribution window closed by ``now``."""
        with self._state_lock:
            expired = self._pending.expire(now, self.attribution_window)
        if self.log is not None:
            self.log.close_expired(now)
        for _, entry in expired:
            self._learn(entry, self._default_for(self.action_names[entry.action]))
        self._bump("defaulted", len(expired))
        return len(expired)

    def _learn(self, entry: PendingDecision, value: float) -> None:
        self._bump("rewards_learned")
        learner = entry.learner
        served = self._model  # the learner and its feature builder, from one snapshot
        if self.online_learning and learner is served.learner:
            teach(
                learner,
                entry.features,
                entry.action,
                entry.probability,
                value,
                propensity_floor=self.propensity_floor,
                reward_divisor=served.features.reward_divisor,
            )

    def _contact_default(self, action: str) -> float:
        return 0.0 if action == "none" else -self.contact_cost

    def _default_for(self, action: str) -> float:
        d = self.default_reward
        return float(d(action)) if callable(d) else float(d)

    def _bump(self, key: str, n: int = 1) -> None:
        with self._state_lock:
            self._counts[key] += n

    # ------------------------------------------------------------------ lifecycle
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
        """Atomically save the model (learner, CF, risk, settings, sampling state); return its version.

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
            self._model = _Served(saved.learner, features, saved.version)
            self.propensity_floor = saved.meta.get("propensity_floor", self.propensity_floor)
            self.learner_name = saved.meta["learner_name"]
            self._bump("swaps")
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
            self._model = _Served(learner, features, version)
            self._bump("swaps")

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

    def health(self) -> dict[str, Any]:
        """Counters for monitoring: decisions, fallbacks (by field), rewards, log and guardrail state."""
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
