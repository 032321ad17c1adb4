"""Guardrails: which actions may be taken for a cart, and an exploration floor.

* **Channels**: an action needs an opt-in on one of its channels (``none`` is always allowed).
* **Coupon budget**: a daily budget (USD, UTC days by the context's timestamp) for the face value
  of coupons offered (percent x cart value); once spent, coupon actions are ineligible until the
  next day.
* **Contact frequency cap**: at most ``max_contacts`` recovery messages per shopper within
  ``contact_window_days``, counting both the context's history and the engine's own recent
  decisions (which checkout's history may not show yet).
* **Exploration floor**: every eligible action keeps at least ``exploration_floor / |eligible|``
  probability, so logs always support off-policy evaluation.

With a ``postgresql://`` store the engine sets :attr:`Guardrails.shared`, and the budget and the
cap hold across every process of the store (:mod:`engine.shared_guardrails`).

Example:
    >>> g = Guardrails(GuardrailConfig(max_contacts=1))
    >>> ctx = {"user_id": "u1", "timestamp": 0.0,
    ...        "cart": [{"item_id": "i", "price": 50.0, "quantity": 1}],
    ...        "channels": {"email": True, "sms": False, "push": False}}
    >>> [a for a, ok in zip(g.action_names, g.eligible(ctx, "u1")) if ok]
    ['none', 'recommendation', 'coupon_5', 'coupon_10', 'coupon_20', 'recall_message']
    >>> g.commit(ctx, "u1", "recall_message")
    >>> [a for a, ok in zip(g.action_names, g.eligible(ctx, "u1")) if ok]
    ['none']
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from engine.actions import ACTION_CHANNELS, ACTION_NAMES, CHANNELS, COUPON_PERCENT, DAY
from engine.parsed import EMPTY, ParsedContext, parse_context

if TYPE_CHECKING:
    from engine.shared_guardrails import SharedGuardrails

_TIMESTAMP = itemgetter("timestamp")
_KNOWN_CHANNELS = frozenset(CHANNELS)


@dataclass(frozen=True)
class GuardrailConfig:
    """Guardrail settings, validated at construction."""

    action_names: tuple[str, ...] = ACTION_NAMES
    action_channels: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(ACTION_CHANNELS)
    )
    daily_coupon_budget: float | None = None
    max_contacts: int | None = 3
    contact_window_days: float = 7.0
    exploration_floor: float = 0.02
    remembered_shoppers: int = 100_000

    def __post_init__(self) -> None:
        if "none" not in self.action_names:
            raise ValueError(
                f"GuardrailConfig: action_names == {self.action_names!r}, must include 'none'"
            )
        missing = [a for a in self.action_names if a not in self.action_channels]
        if missing:
            raise ValueError(f"GuardrailConfig: action_channels has no entry for {missing[0]!r}")
        budget = self.daily_coupon_budget
        if budget is not None and (
            isinstance(budget, bool)
            or not isinstance(budget, (int, float))
            or not math.isfinite(budget)
            or budget < 0
        ):
            raise ValueError(
                f"GuardrailConfig: daily_coupon_budget == {budget!r}, must be a number >= 0 or None"
            )
        if self.max_contacts is not None and (
            not isinstance(self.max_contacts, int) or self.max_contacts < 0
        ):
            raise ValueError(
                f"GuardrailConfig: max_contacts == {self.max_contacts!r}, "
                "must be an integer >= 0 or None"
            )
        if not (
            isinstance(self.contact_window_days, (int, float)) and self.contact_window_days > 0
        ):
            raise ValueError(
                f"GuardrailConfig: contact_window_days == {self.contact_window_days!r}, must be > 0"
            )
        floor = self.exploration_floor
        if not (isinstance(floor, (int, float)) and 0.0 <= floor < 1.0):
            raise ValueError(f"GuardrailConfig: exploration_floor == {floor!r}, must be in [0, 1)")


class Guardrails:
    """Eligibility and exploration floor, with thread-safe budget and contact bookkeeping."""

    def __init__(self, config: GuardrailConfig | None = None) -> None:
        self.config = config or GuardrailConfig()
        self.action_names = self.config.action_names
        names = self.action_names
        self._channels = [tuple(self.config.action_channels[a]) for a in names]
        self._is_contact = [a != "none" for a in names]
        self._coupons = [
            (j, COUPON_PERCENT[a] / 100.0) for j, a in enumerate(names) if a in COUPON_PERCENT
        ]
        self._lock = threading.Lock()
        self._budget_day = -1
        self._budget_spent = 0.0
        self._recent: OrderedDict[str, deque[float]] = OrderedDict()
        self._channel_masks: dict[tuple[bool | None, ...], tuple[bool, ...]] = {}
        self.blocked = {"budget": 0, "frequency": 0}
        #: store-wide budget and caps (:mod:`engine.shared_guardrails`), set by the engine
        self.shared: SharedGuardrails | None = None

    def eligible(self, ctx: ParsedContext | Mapping[str, Any], user_key: str) -> list[bool]:
        """Which of ``action_names`` may be taken for this context, as a list of bools.

        A list because one decision's 7 entries are faster in plain Python than in numpy.

        ``ctx``: the :class:`~engine.parsed.ParsedContext` that
        :func:`~engine.context.validate_context` returned, or a valid record (parsed here).
        """
        if not isinstance(ctx, ParsedContext):
            ctx = parse_context(ctx)
        key = ctx.channel_key  # True/False/None (numpy bools hash as bools)
        allowed = self._channel_masks.get(key)
        if allowed is None:
            opt_in = ctx.channels
            allowed = self._channel_mask(opt_in)
            if _KNOWN_CHANNELS.issuperset(opt_in):
                self._channel_masks[key] = allowed
        mask = list(allowed)
        cfg = self.config
        now = ctx.timestamp
        if (
            cfg.max_contacts is not None
            and self._contacts_in_window(ctx.contacts, user_key, now) >= cfg.max_contacts
        ):
            if any(ok and contact for ok, contact in zip(mask, self._is_contact, strict=True)):
                self._count_block("frequency")
            mask = [ok and not contact for ok, contact in zip(mask, self._is_contact, strict=True)]
        elif self.shared is not None:
            mask = self._shared_caps(ctx, user_key, mask)
        if self.shared is not None and cfg.daily_coupon_budget is not None:
            offered = [(j, share * ctx.cart_value) for j, share in self._coupons if mask[j]]
            if offered:
                costs = [cost for _, cost in offered]
                paid = self.shared.coupons_allowed(user_key, now, costs)
                for (j, _), ok in zip(offered, paid, strict=True):
                    if not ok:
                        mask[j] = False
                        self._count_block("budget")
        elif cfg.daily_coupon_budget is not None and any(mask[j] for j, _ in self._coupons):
            with self._lock:
                day = int(now // DAY)
                spent = self._budget_spent if day == self._budget_day else 0.0
            value = ctx.cart_value
            for j, share in self._coupons:
                if mask[j] and spent + share * value > cfg.daily_coupon_budget:
                    mask[j] = False
                    self._count_block("budget")
        return mask

    def _shared_caps(self, ctx: ParsedContext, user_key: str, mask: list[bool]) -> list[bool]:
        """Claim a store-wide contact slot when a contact action is eligible (or drop them)."""
        if self.shared is None or not any(
            ok and c for ok, c in zip(mask, self._is_contact, strict=True)
        ):
            return mask
        now = ctx.timestamp
        since = now - self.config.contact_window_days * DAY
        seen = [t for t in map(_TIMESTAMP, ctx.contacts) if since <= t <= now]
        if self.shared.claim_contact(user_key, now, seen) is False:
            self._count_block("frequency")
            return [ok and not c for ok, c in zip(mask, self._is_contact, strict=True)]
        return mask

    def _count_block(self, reason: str) -> None:
        with self._lock:  # decide runs on many threads: an unguarded += can lose counts
            self.blocked[reason] += 1

    def _channel_mask(self, opt_in: Mapping[str, Any]) -> tuple[bool, ...]:
        return tuple(
            name == "none" or not chans or any(opt_in.get(c, False) for c in chans)
            for name, chans in zip(self.action_names, self._channels, strict=True)
        )

    def _contacts_in_window(
        self, contacts: Sequence[Mapping[str, Any]], user_key: str, now: float
    ) -> int:
        since = now - self.config.contact_window_days * DAY
        # validated timestamps are finite ints or floats (equal values hash alike in the set below)
        seen = [t for t in map(_TIMESTAMP, contacts) if since <= t <= now] if contacts else []
        mine = self._recent.get(
            user_key
        )  # a dict read is atomic; the deque is copied under the lock
        if not mine:
            return len(seen)
        with self._lock:
            own = [t for t in mine if t >= since]
        if not own:
            return len(seen)
        # The engine's own sends may already be in checkout's history: count each instant once.
        return len(set(seen) | set(own))

    def apply_floor(self, probabilities: list[float], eligible: list[bool]) -> list[float]:
        """Mix with uniform over eligible actions so each keeps ``floor / |eligible|``.

        Works on plain lists: one decision's 7 entries are faster in Python than in numpy.

        >>> guardrails = Guardrails(GuardrailConfig(exploration_floor=0.2))
        >>> guardrails.apply_floor([0.0, 1.0, 0.0], [True, True, False])
        [0.1, 0.9, 0.0]
        """
        floor = self.config.exploration_floor
        k = sum(eligible)
        if floor == 0.0 or k <= 1:
            return probabilities
        keep, share = 1.0 - floor, floor / k
        if k == len(eligible):
            return [keep * p + share for p in probabilities]
        return [
            keep * p + (share if ok else 0.0) for p, ok in zip(probabilities, eligible, strict=True)
        ]

    def commit(self, ctx: ParsedContext | Mapping[str, Any], user_key: str, action: str) -> None:
        """Record a decision that was taken: contact memory and coupon budget."""
        if self.shared is not None:
            if not isinstance(ctx, ParsedContext):
                ctx = parse_context(ctx)
            coupon = COUPON_PERCENT.get(action, 0) / 100.0 * ctx.cart_value
            self.shared.decided(user_key, ctx.timestamp, action != "none", coupon)
        if action == "none":
            return
        if not isinstance(ctx, ParsedContext):
            ctx = parse_context(ctx)
        now = ctx.timestamp
        with self._lock:
            recent = self._recent.get(user_key)
            if recent is None:
                recent = self._recent[user_key] = deque(
                    maxlen=max(self.config.max_contacts or 0, 1) + 4
                )
                if len(self._recent) > self.config.remembered_shoppers:
                    self._recent.popitem(last=False)
            else:
                self._recent.move_to_end(user_key)
            recent.append(now)
            if action in COUPON_PERCENT and self.config.daily_coupon_budget is not None:
                day = int(now // DAY)
                if day != self._budget_day:
                    self._budget_day, self._budget_spent = day, 0.0
                self._budget_spent += COUPON_PERCENT[action] / 100.0 * ctx.cart_value

    def channel_for(self, action: str, ctx: ParsedContext | Mapping[str, Any]) -> str | None:
        """The first opted-in channel for ``action`` (None for ``none``)."""
        opt_in = ctx.channels if isinstance(ctx, ParsedContext) else (ctx.get("channels") or EMPTY)
        for channel in self.config.action_channels[action]:
            if opt_in.get(channel, False):
                return channel
        return None

    def state(self) -> dict[str, Any]:
        """Monitoring snapshot: today's coupon budget use, blocks by rule, shoppers remembered."""
        with self._lock:
            out = {
                "budget_day": self._budget_day,
                "budget_spent": self._budget_spent,
                "blocked": dict(self.blocked),
                "remembered_shoppers": len(self._recent),
            }
        if self.shared is not None:
            out["shared"] = self.shared.state()
        return out
