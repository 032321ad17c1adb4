"""Behaviour -> response: the probability that an abandoned cart is bought back, per action.

The model, for one cart of value ``V`` and margin ``M`` (both USD):

``p(a) = p0 + (1 - p0) * lift(type, a)``, where

* ``p0`` — the shopper returns and buys with no prompt: the cart's **purchase intent**. Its logit
  (:func:`intent_logit`) is the sum of a base per type, loyalty (past orders), cart value, and the
  intent shift of :func:`intent_shift`: what checkout observes of the cart (the furthest checkout
  step reached, the sessions with this cart, time spent in the session, visitor tenure, cart value
  against the shopper's usual basket, device, hour) plus noise no observer sees. ``p0`` spans about
  1% to 40% (1st to 99th percentile) and averages ~8% of abandoners (SeeWhy, "~8% return and buy
  with no prompt"). It falls with **coupon conditioning**: a shopper who keeps receiving coupons
  learns to wait for one (``p0 * (1 - 0.6 e)`` for coupon expectation ``e``). Callers that pass no
  intent (``intent=None``) get the earlier law without it: a base rate per type, a little higher
  with past orders, lower for dear carts.
* ``lift`` — the share of non-returners an action converts, by type (docs/architecture.md), times
  the cart's **persuadability** (:func:`persuadability`, from the intent logit; with intent only),
  which follows the uplift-modelling segments and depends on what the action does:

  - "lost causes" (intent under ~2%) barely respond to anything;
  - a *nudge* (``recall_message``, ``recommendation``) reaches a shopper who was interrupted or
    missing information, so it works better the nearer the shopper was to buying: its multiplier
    rises with intent to ~1.25 and stays there; on a "sure thing" it converts part of the few who
    would not have come back (``1 - p0`` is small already);
  - a *price incentive* (the coupons, ``time_limited_offer``) moves "persuadables", shoppers on
    the fence whom the price tips over: its multiplier peaks (~1.3) near 5% intent and falls away
    above ~15%, where the shopper has decided already; there a coupon mostly gives margin away.

  The two scales (``PERSUADE_SCALE_PRICE``, ``PERSUADE_SCALE_MESSAGE``) keep the population-average
  figures below where they were (coupon_10 ~1.9x the unprompted rate, reminder ~3.1%); the shape
  only moves each action's lift between intent levels. Per action and type:

  - *recall_message*: forgetful 10%, others 1-2.5%. The population-average incremental recovery of a
    plain reminder is ~3.1% of carts, the "3-5% of carts recovered" of abandoned-cart e-mails
    (Klaviyo, 9.3M sends: open ~41%, click ~9.5%, i.e. roughly a third of clickers buy).
  - *coupon_k*: dose-response ``c_max (1 - exp(-k / s))`` per type. Price-sensitive shoppers have
    ``c_max = 0.24``, scaled by cart value (high-value carts respond more), which roughly doubles
    their purchase rate at 10%-20% off; the population-average purchase rate at 10% off goes from
    ~8% to ~16%, in line with the coupon field experiment of Gopalakrishnan & Park (2021: 4.24% ->
    6.64% / 9.34% for high-value carts with a base / better coupon). For forgetful shoppers a coupon
    is just a reminder (lift ~10%) that costs margin.
  - *time_limited_offer*: impulsive shoppers respond to urgency, ``0.24 exp(-delay / 90 min)`` +
    2%, so the offer must come soon after abandonment; for the others it is a message with a small
    offer (2-8%; the single published countdown test saw +8.6% relative conversion).
  - *recommendation*: hesitant shoppers need information: ``2% + 14% * match``, where ``match`` is
    how well taste-based recommendations fit the shopper (concentrated tastes fit better); others
    treat it as a reminder.
  - Every contact's lift is damped by **fatigue** ``exp(-0.35 L)``, ``L`` the exponentially decayed
    (7-day time constant) count of past contacts, and non-coupon lifts by ``(1 - 0.5 e)``.

Realised profit of a cart: ``M - coupon (k% of V) - offer cost (7% of V, capped at $8) - contact
cost`` if bought, ``- contact cost`` if not (``none`` has no contact cost). The expected reward of
each action is ``p(a) (M - cost_a) - contact_a``: what ``info["expected_reward"]`` reports. An
action the shopper cannot receive (no opted-in channel it can go through) is not delivered: it has
the outcome, costs and expected reward of ``none``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_CHANNELS, ACTION_NAMES, COUPON_PERCENT, SHOPPER_TYPES

# Per-type parameters, in SHOPPER_TYPES order: hesitant, price_sensitive, impulsive, forgetful.
P0_BASE = np.array([0.07, 0.05, 0.06, 0.10])
REC_BASE = np.array([0.02, 0.01, 0.01, 0.06])
REC_MATCH = np.array([0.14, 0.02, 0.02, 0.01])
COUPON_MAX = np.array([0.05, 0.24, 0.05, 0.0])
COUPON_SCALE = np.array([8.0, 9.0, 10.0, 10.0])
COUPON_REMINDER = np.array([0.0, 0.0, 0.0, 0.10])
TLO_URGENT = np.array([0.0, 0.0, 0.24, 0.0])
TLO_BASE = np.array([0.02, 0.06, 0.02, 0.08])
RECALL_URGENT = np.array([0.0, 0.0, 0.02, 0.0])
RECALL_BASE = np.array([0.03, 0.02, 0.01, 0.12])
URGENCY_MINUTES = 90.0
FATIGUE_RATE = 0.35
FATIGUE_DAYS = 7.0
EXPECTATION_DAYS = 45.0
CONDITIONING_STEP = np.array([0.15, 0.35, 0.15, 0.15])  # expectation gained per coupon received
REFERENCE_VALUE = 80.0
# Purchase intent (the logit of p0): base per type, loyalty, cart value, and the intent shift.
P0_LOGIT = np.log(P0_BASE / (1.0 - P0_BASE))
LOYALTY = 0.35  # per log1p(past orders, at most 10): returning customers come back more
VALUE_ELASTICITY = -0.2  # per log(value / REFERENCE_VALUE), clipped to [log 0.7, log 1.3]
INTENT_OFFSET = -1.86  # keeps the population mean of p0 at ~8% once the shift spreads the logits
INTENT_STEP = np.array([0.0, 0.7, 1.4])  # furthest checkout step reached: cart, shipping, payment
INTENT_CART_SESSIONS = 0.7  # per log(sessions in which the shopper came back to this cart)
INTENT_SESSION_TIME = 0.35  # per log(session minutes / 5), clipped to [-2, 2]
INTENT_TENURE = 0.15  # per log1p(days since first seen / 30)
INTENT_BASKET = -0.3  # per log(cart value / the shopper's mean order value), clipped to [-1.5, 2]
INTENT_DEVICE = np.array([-0.3, 0.25, 0.0])  # mobile, desktop, tablet
INTENT_HOUR = 0.25  # times cos(2 pi (hour - 20) / 24): evening carts are likelier to return
INTENT_HOUR_PEAK = 20.0
INTENT_NOISE_SD = 0.5  # what no observer sees: the shopper's own circumstances
# Persuadability (uplift segments), on the intent logit z: every action's lift is scaled by
# sigmoid(s (z - LOST)), so lost causes barely respond; price incentives (coupons, the offer) also
# by sigmoid(-s (z - SURE)), so they move persuadables and not sure things, who buy anyway. The
# scales keep the population-average coupon_10 and reminder figures (docs/architecture.md).
PERSUADE_LOST = np.log(0.02 / 0.98)  # intent below ~2%: a lost cause, barely moved
PERSUADE_SURE = np.log(0.15 / 0.85)  # intent above ~15%: decided already, price does not move it
PERSUADE_SLOPE = 1.5
PERSUADE_SCALE_PRICE = 1.85  # coupons and the time-limited offer
PERSUADE_SCALE_MESSAGE = 1.26  # reminder and recommendation
P0_CAP = 0.6  # with intent; 0.5 without

# Per-action arrays, in ACTION_NAMES order.
COUPON_ACTIONS = np.array([a in COUPON_PERCENT for a in ACTION_NAMES])
PRICE_ACTIONS = COUPON_ACTIONS | (np.array(ACTION_NAMES) == "time_limited_offer")
CONTACT_ACTIONS = np.array(
    [bool(ACTION_CHANNELS[a]) for a in ACTION_NAMES]
)  # every action sent to the shopper
DISCOUNT = np.array([COUPON_PERCENT.get(a, 0) / 100 for a in ACTION_NAMES])
_COLUMN = {a: k for k, a in enumerate(ACTION_NAMES)}


def _runs(flags: np.ndarray) -> list[tuple[slice, bool]]:
    """``(columns, flag)`` of the runs of equal consecutive flags."""
    edges = [0, *(j for j in range(1, len(flags)) if flags[j] != flags[j - 1]), len(flags)]
    return [(slice(a, b), bool(flags[a])) for a, b in pairwise(edges)]


COUPON_RUNS = _runs(COUPON_ACTIONS)  # (columns, coupon?) runs of consecutive actions
_NONE = _COLUMN["none"]
_MODELLED = {"none", "recommendation", "time_limited_offer", "recall_message", *COUPON_PERCENT}
if set(ACTION_NAMES) != _MODELLED:
    raise ImportError(
        f"the response model covers the actions {sorted(_MODELLED)}, "
        f"engine.actions.ACTION_NAMES has {sorted(ACTION_NAMES)}"
    )
_PRICE_SENSITIVE = SHOPPER_TYPES.index("price_sensitive")


@dataclass
class CartResponse:
    """Per-cart, per-action quantities: arrays (n_carts, n_actions), in ``ACTION_NAMES`` order."""

    purchase_probability: np.ndarray
    cost_if_bought: np.ndarray  # coupon + offer cost, paid only if the cart is bought
    contact_cost: np.ndarray
    expected_reward: np.ndarray
    base_probability: np.ndarray | None = None  # (n_carts,) p0: the shopper returns unprompted
    lift: np.ndarray | None = (
        None  # (n_carts, n_actions): share of non-returners each action converts
    )


def intent_shift(
    checkout_step: np.ndarray,
    cart_sessions: np.ndarray,
    session_minutes: np.ndarray,
    tenure_days: np.ndarray,
    basket_ratio: np.ndarray,
    device: np.ndarray,
    hour: np.ndarray,
    noise: np.ndarray,
) -> np.ndarray:
    """The part of each cart's intent logit that comes from the session and the visitor.

    Args:
        checkout_step: furthest checkout step reached (0 cart, 1 shipping, 2 payment).
        cart_sessions: sessions in which the shopper had this cart (>= 1).
        session_minutes: length of the abandoning session.
        tenure_days: days since the shopper was first seen.
        basket_ratio: cart value over the shopper's mean order value (1 for a first order).
        device: index into ``DEVICES``.
        hour: local hour 0..23.
        noise: standard normal draws, scaled by ``INTENT_NOISE_SD`` (unobservable).

    Returns:
        The shift, to be added to the logit of the per-type base (:func:`intent_logit`).

    >>> one = np.ones(2)
    >>> shift = intent_shift(np.array([0, 2]), np.array([1, 3]), np.array([5.0, 12.0]),
    ...                      30 * one, one, np.array([1, 1]), np.array([20, 20]), 0 * one)
    >>> bool(shift[1] - shift[0] > 2.0)  # reached payment, came back three times, lingered
    True
    """
    hour_term = np.cos((hour - INTENT_HOUR_PEAK) * (2.0 * np.pi / 24.0))
    minutes = np.maximum(session_minutes, 1e-3) / 5.0
    return (
        INTENT_OFFSET
        + INTENT_STEP[checkout_step]
        + INTENT_CART_SESSIONS * np.log(cart_sessions)
        + INTENT_SESSION_TIME * np.clip(np.log(minutes), -2.0, 2.0)
        + INTENT_TENURE * np.log1p(np.maximum(tenure_days, 0.0) / 30.0)
        + INTENT_BASKET * np.clip(np.log(basket_ratio), -1.5, 2.0)
        + INTENT_DEVICE[device]
        + INTENT_HOUR * hour_term
        + INTENT_NOISE_SD * noise
    )


def intent_logit(
    type_index: np.ndarray, value: np.ndarray, n_orders: np.ndarray, intent: np.ndarray
) -> np.ndarray:
    """Logit of ``p0`` before coupon conditioning.

    The sum of the type's base, loyalty, the cart value's term and ``intent``
    (:func:`intent_shift`).
    """
    value_term = np.clip(
        VALUE_ELASTICITY * np.log(value / REFERENCE_VALUE), np.log(0.7), np.log(1.3)
    )
    loyalty = LOYALTY * np.log1p(np.minimum(n_orders, 10))
    return P0_LOGIT[type_index] + loyalty + value_term + intent


def persuadability(intent_logit: np.ndarray) -> np.ndarray:
    """Multiplier of each action's lift, (n_carts, n_actions) in ``ACTION_NAMES`` order.

    Lost causes (intent below ~2%) barely respond; reminders and recommendations work better
    the nearer the shopper was to buying (up to ~1.25x); price incentives peak on persuadables
    (~5% intent, ~1.3x) and fall away for sure things, who buy anyway.

    >>> z = np.log(np.array([0.005, 0.05, 0.4]) / np.array([0.995, 0.95, 0.6]))
    >>> m = persuadability(z)
    >>> coupon, reminder = ACTION_NAMES.index("coupon_10"), ACTION_NAMES.index("recall_message")
    >>> bool(m[0, coupon] < 0.3 and m[2, coupon] < 0.3 < 1.0 < m[1, coupon])
    True
    >>> bool(m[0, reminder] < 0.3 < m[1, reminder] < m[2, reminder])
    True
    """
    z = np.asarray(intent_logit, dtype=np.float64)[:, None]
    engaged = 1.0 / (1.0 + np.exp(-PERSUADE_SLOPE * (z - PERSUADE_LOST)))
    undecided = 1.0 / (1.0 + np.exp(PERSUADE_SLOPE * (z - PERSUADE_SURE)))
    price = PERSUADE_SCALE_PRICE * engaged * undecided
    message = PERSUADE_SCALE_MESSAGE * engaged
    return np.where(PRICE_ACTIONS[None, :], price, message)


def base_probability(
    type_index: np.ndarray,
    value: np.ndarray,
    n_orders: np.ndarray,
    expectation: np.ndarray,
    intent: np.ndarray | None = None,
) -> np.ndarray:
    """``p0``: the probability that the shopper returns and buys with no prompt (module notes).

    ``intent``: each cart's :func:`intent_shift`; None gives the law without purchase intent.
    """
    return UnpromptedLaw.of(type_index, value, n_orders, intent).at(expectation)


@dataclass(frozen=True)
class UnpromptedLaw:
    """``p0`` of carts as a function of their coupon expectation (:func:`base_probability`).

    Built once per cart (:meth:`of`) and evaluated at many expectations (:meth:`at`), as the
    multi-touch dynamic program does for every state of a flow; the same arithmetic either way.
    """

    scale: np.ndarray  # with intent: 1 + exp(-logit); without: p0 before conditioning
    with_intent: bool

    @classmethod
    def of(
        cls,
        type_index: np.ndarray,
        value: np.ndarray,
        n_orders: np.ndarray,
        intent: np.ndarray | None = None,
    ) -> UnpromptedLaw:
        """The law of carts (arrays of one shape, broadcast against later expectations)."""
        if intent is not None:
            return cls.of_logit(intent_logit(type_index, value, n_orders, intent))
        p0 = (
            P0_BASE[type_index]
            * (1.0 + 0.04 * np.minimum(n_orders, 10))
            * np.clip((value / REFERENCE_VALUE) ** -0.2, 0.7, 1.3)
        )
        return cls(p0, False)

    @classmethod
    def of_logit(cls, logit: np.ndarray) -> UnpromptedLaw:
        """The law of carts with purchase intent, from their :func:`intent_logit`."""
        return cls(1.0 + np.exp(-logit), True)

    def at(self, expectation: np.ndarray) -> np.ndarray:
        """``p0`` at coupon expectation ``expectation``."""
        if self.with_intent:
            return np.minimum((1.0 - 0.6 * expectation) / self.scale, P0_CAP)
        return np.minimum(self.scale * (1.0 - 0.6 * expectation), 0.5)


def raw_lift(
    type_index: np.ndarray, value: np.ndarray, match: np.ndarray, delay_minutes: np.ndarray
) -> np.ndarray:
    """``(n, n_actions)`` lift of each action before persuadability, fatigue and expectation."""
    t = type_index
    value_ratio = value / REFERENCE_VALUE
    coupon_value_scale = np.where(t == _PRICE_SENSITIVE, np.clip(value_ratio**0.25, 0.6, 1.5), 1.0)
    lift = np.empty((len(t), len(ACTION_NAMES)))
    lift[:, _COLUMN["none"]] = 0.0
    lift[:, _COLUMN["recommendation"]] = REC_BASE[t] + REC_MATCH[t] * match
    for action, percent in COUPON_PERCENT.items():
        pct = float(percent)
        dose = COUPON_MAX[t] * (1.0 - np.exp(-pct / COUPON_SCALE[t])) * coupon_value_scale
        lift[:, _COLUMN[action]] = dose + COUPON_REMINDER[t] * (1.0 + 0.1 * pct / 20.0)
    return urgent_lift(t, delay_minutes, lift)


def urgent_lift(type_index: np.ndarray, delay_minutes: np.ndarray, lift: np.ndarray) -> np.ndarray:
    """Write the columns of :func:`raw_lift`'s ``lift`` that depend on the delay; return ``lift``.

    The only columns that change between the touches of a flow (the urgent messages).
    """
    t = type_index
    urgency = np.exp(-delay_minutes / URGENCY_MINUTES)
    lift[:, _COLUMN["time_limited_offer"]] = TLO_URGENT[t] * urgency + TLO_BASE[t]
    lift[:, _COLUMN["recall_message"]] = RECALL_URGENT[t] * urgency + RECALL_BASE[t]
    return lift


def lift_damping(fatigue_load: np.ndarray) -> np.ndarray:
    """Multiplier of every lift from fatigue: ``exp(-0.35 L)``.

    Persuadability is per action, so it multiplies the raw lifts instead:
    ``raw_lift(...) * persuadability(...)``.
    """
    return np.exp(-FATIGUE_RATE * fatigue_load)


def damped_lift(
    raw: np.ndarray,
    damp: np.ndarray,
    expectation: np.ndarray,
    out: np.ndarray | None = None,
    action_axis: int = -1,
) -> np.ndarray:
    """Lifts from :func:`raw_lift`, with an action axis inserted in ``damp``'s shape.

    ``damp`` from :func:`lift_damping` (shaped like ``expectation``); coupons are raised and the
    other actions lowered by the coupon expectation. ``raw`` broadcasts against the result;
    written to ``out`` if given.
    """
    e = np.expand_dims(expectation, action_axis)
    coupon, other = 1.0 + 0.3 * e, 1.0 - 0.5 * e
    lift = np.multiply(raw, np.expand_dims(damp, action_axis), out=out)
    index: list[Any] = [slice(None)] * lift.ndim
    for cols, is_coupon in COUPON_RUNS:  # column runs: cheaper than a full-width np.where
        index[action_axis] = cols
        lift[tuple(index)] *= coupon if is_coupon else other
    return np.clip(lift, 0.0, 0.95, out=lift)


def incentive_cost(value: np.ndarray, config: SimConfig) -> np.ndarray:
    """``(n, n_actions)`` cost of each action's incentive if the cart is bought (coupon, offer)."""
    offer = np.minimum(config.offer_cost_share * value, config.offer_cost_cap)
    cost = DISCOUNT[None, :] * value[:, None]
    cost[:, _COLUMN["time_limited_offer"]] = offer
    return cost


def cart_response(
    type_index: np.ndarray,
    value: np.ndarray,
    margin: np.ndarray,
    delay_minutes: np.ndarray,
    match: np.ndarray,
    expectation: np.ndarray,
    fatigue_load: np.ndarray,
    n_orders: np.ndarray,
    config: SimConfig,
    deliverable: np.ndarray | None = None,
    intent: np.ndarray | None = None,
) -> CartResponse:
    """Purchase probability, costs and expected profit of every action for a batch of carts.

    ``deliverable`` (n_carts, n_actions), nonzero where the shopper can receive the action: an
    action that cannot be delivered has the outcome of ``none`` (same purchase probability, no
    cost, no contact cost). None: every action can be delivered.

    ``intent`` (n_carts,): each cart's :func:`intent_shift`; it sets ``p0`` and scales every lift
    by :func:`persuadability`. None: the law without purchase intent (module notes).
    ``purchase_probability[:, 0]`` (action ``none``) is the cart's true ``p0``.
    """
    t = type_index
    n = len(t)
    e = expectation if config.coupon_conditioning else np.zeros(n)
    load = fatigue_load if config.fatigue else np.zeros(n)
    p0 = base_probability(t, value, n_orders, e, intent)
    raw = raw_lift(t, value, match, delay_minutes)
    if intent is not None:
        raw = raw * persuadability(intent_logit(t, value, n_orders, intent))
    lift = damped_lift(raw, lift_damping(load), e)
    p = p0[:, None] + (1.0 - p0[:, None]) * lift

    cost = incentive_cost(value, config)
    contact = np.where(CONTACT_ACTIONS, config.contact_cost, 0.0)[None, :].repeat(n, axis=0)
    if deliverable is not None:
        blocked = deliverable == 0
        p = np.where(blocked, p[:, _NONE, None], p)
        cost = np.where(blocked, cost[:, _NONE, None], cost)
        contact = np.where(blocked, contact[:, _NONE, None], contact)
    expected = p * (margin[:, None] - cost) - contact
    return CartResponse(p, cost, contact, expected, p0, lift)
