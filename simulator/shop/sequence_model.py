"""The multi-touch response model and its exact solution by dynamic programming.

A recovery *flow* sends up to ``K`` touches to one abandoned cart, at ``tau_1 < ... < tau_K``
minutes after abandonment. The episode starts at the first touch (the moment checkout calls
``decide``, as in ``CartRecovery-v0``); between touch ``k`` and ``k + 1`` (after the last touch:
for good) the shopper, still undecided,

* buys unprompted with the hazard ``h_k = 1 - (1 - p0_k) ** w_k`` (:func:`unprompted_hazard`):
  ``p0_k`` is the single-step model's unprompted purchase probability
  (:func:`simulator.shop.response.base_probability`, with the expectation of touch ``k``) and
  ``w_k`` the share of unprompted returns that fall in the interval (the purchase-delay
  distribution of the single-step model: 72% within 12 h, the rest exponential, mean ~5 days);
* is converted by touch ``k``'s message with the single-step lift ``l_k(a)``
  (:func:`simulator.shop.response.cart_response` at delay ``tau_k``, with the fatigue and coupon
  expectation accumulated by the earlier touches: urgency decays, contacts tire, coupons teach
  the shopper to wait for the next one) and buys before the next touch;
* if neither, and touch ``k`` was a contact, unsubscribes from its channel with probability
  ``u_k = base[channel] * (contacts before it in the flow) * (1 + 2 exp(-gap / 12 h))`` (capped
  at 0.5): the first message of a flow carries no risk, each further one more, sooner ones more.
  Unsubscribing ends the flow: the shopper may still return unprompted (the rest of the
  unprompted mass), and the shop loses ``unsubscribe_cost`` USD of future contacts.

A purchase pays the margin minus the most generous incentive held (the best coupon received in
the flow, or the current time-limited offer) minus the contact costs. With one touch every
quantity is the single-step one, so ``q(a)`` equals ``CartRecovery-v0``'s ``expected_reward``.

The state that matters at touch ``k`` is the cart and the actions sent so far (their *prefix*):
fatigue, expectation, coupon held and unsubscribe risk are functions of it. Opens and clicks are
noisy signals of the hidden type and do not change the dynamics given the type, so the per-cart
DP over the ``7 ** (k - 1)`` prefixes of every touch is exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.validation import check_non_negative, check_positive, check_probability
from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_CHANNELS, ACTION_NAMES, CHANNELS, DAY
from simulator.shop.response import (
    CONDITIONING_STEP,
    DISCOUNT,
    EXPECTATION_DAYS,
    FATIGUE_DAYS,
    base_probability,
    cart_response,
)

N_ACTIONS = len(ACTION_NAMES)
MAX_TOUCHES = 4
_CONTACT = np.array([bool(ACTION_CHANNELS[a]) for a in ACTION_NAMES])
_COUPON = DISCOUNT > 0
_MINUTE = 60.0
# Delay of purchases after the decision (hours), as in the single-step model (ShopWorld.draw_batch).
_FAST_SHARE, _FAST_LOW, _FAST_HIGH, _SLOW_START, _SLOW_MEAN = 0.72, 0.2, 12.0, 12.0, 110.0


@dataclass(frozen=True)
class SequenceConfig:
    """Settings of the multi-touch flow (validated at construction).

    Attributes:
        touch_minutes: minutes after abandonment of each touch (1 to :data:`MAX_TOUCHES`,
            increasing).
        first_touch_from_cart: the first touch happens at the cart's own decision delay (as in
            ``CartRecovery-v0``) instead of ``touch_minutes[0]``; later touches keep their times
            (at least a minute after the previous one).
        unsubscribe_base: per channel, the unsubscribe probability per earlier contact in the flow.
        unsubscribe_gap_hours: time scale of the frequency effect (risk x
            ``1 + 2 exp(-gap/scale)``).
        unsubscribe_cost: USD lost when a shopper unsubscribes (future contacts).
    """

    touch_minutes: tuple[float, ...] = (60.0, 720.0, 1440.0)
    first_touch_from_cart: bool = False
    unsubscribe_base: Mapping[str, float] = field(
        default_factory=lambda: {"email": 0.006, "sms": 0.02, "push": 0.01}
    )
    unsubscribe_gap_hours: float = 12.0
    unsubscribe_cost: float = 4.0

    def __post_init__(self) -> None:
        touches = self.touch_minutes
        if (
            isinstance(touches, (str, bytes))
            or not hasattr(touches, "__len__")
            or not 1 <= len(touches) <= MAX_TOUCHES
        ):
            raise ValueError(
                f"touch_minutes == {touches!r}, must be 1 to {MAX_TOUCHES} numbers of minutes"
            )
        values = tuple(
            float(check_positive(t, f"touch_minutes[{i}]")) for i, t in enumerate(touches)
        )
        for i in range(1, len(values)):
            if values[i] <= values[i - 1]:
                raise ValueError(
                    f"touch_minutes[{i}] == {values[i]}, must be > touch_minutes[{i - 1}] == "
                    f"{values[i - 1]}"
                )
        object.__setattr__(self, "touch_minutes", values)
        if not isinstance(self.first_touch_from_cart, bool):
            raise ValueError(
                f"first_touch_from_cart == {self.first_touch_from_cart!r}, must be a bool"
            )
        base = dict(self.unsubscribe_base)
        unknown = set(base) - set(CHANNELS)
        if unknown:
            raise ValueError(
                f"unsubscribe_base has unknown channel {sorted(unknown)[0]!r}; known: {CHANNELS}"
            )
        object.__setattr__(
            self,
            "unsubscribe_base",
            {c: check_probability(base.get(c, 0.0), f"unsubscribe_base[{c!r}]") for c in CHANNELS},
        )
        check_positive(self.unsubscribe_gap_hours, "unsubscribe_gap_hours")
        check_non_negative(self.unsubscribe_cost, "unsubscribe_cost")

    @property
    def n_touches(self) -> int:
        """Touches per flow, ``K``."""
        return len(self.touch_minutes)

    @classmethod
    def from_value(cls, value: SequenceConfig | Mapping[str, Any] | None) -> SequenceConfig:
        """A config from an instance, a mapping of its fields, or None (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, SequenceConfig):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"sequence == {value!r}, must be a SequenceConfig, a mapping or None")
        known = set(cls.__dataclass_fields__)
        for key in value:
            if key not in known:
                raise ValueError(
                    f"SequenceConfig: unknown key {key!r}; known keys: {', '.join(sorted(known))}"
                )
        return cls(**value)


def unprompted_hazard(p0: np.ndarray, share: np.ndarray | float) -> np.ndarray:
    """Probability of an unprompted purchase in an interval.

    The interval holds ``share`` of the unprompted returns of a shopper whose total unprompted
    purchase probability is ``p0``.

    The one place the purchase-intent model enters the flow: ``(1 - p0) ** share`` composes over
    intervals, so the shares of all intervals together give back ``p0``.
    """
    return 1.0 - (1.0 - p0) ** share


def unprompted_cdf(hours: np.ndarray | float) -> np.ndarray:
    """Share of unprompted returns within ``hours`` of the first touch.

    The single-step model's purchase-delay law.
    """
    h = np.asarray(hours, dtype=np.float64)
    fast = _FAST_SHARE * np.clip((h - _FAST_LOW) / (_FAST_HIGH - _FAST_LOW), 0.0, 1.0)
    slow = (1.0 - _FAST_SHARE) * np.where(
        h > _SLOW_START, -np.expm1(-(h - _SLOW_START) / _SLOW_MEAN), 0.0
    )
    return fast + slow


@dataclass
class CartParams:
    """What the flow model needs of ``n`` carts (arrays of length ``n`` unless noted)."""

    type_index: np.ndarray
    value: np.ndarray
    margin: np.ndarray
    match: np.ndarray
    expectation: np.ndarray  # at the first touch
    fatigue: np.ndarray  # at the first touch
    n_orders: np.ndarray
    channel: np.ndarray  # (n, n_actions): channel index each action is sent on (-1 for none)
    touch_minutes: np.ndarray  # (n, K)
    intent: np.ndarray | None = None  # purchase-intent shift (CartBatch.intent); None: no intent

    def __len__(self) -> int:
        return len(self.value)


def channel_of_actions(opt_in: np.ndarray) -> np.ndarray:
    """``(n, n_actions)`` channel index each action is sent on (-1 for none).

    Its first channel the shopper opted into, else its first channel (unused: an undeliverable
    action has none's outcome in :func:`solve`).
    """
    opt_in = np.asarray(opt_in, dtype=bool)
    out = np.full((len(opt_in), N_ACTIONS), -1, dtype=np.int64)
    for a, name in enumerate(ACTION_NAMES):
        chans = [CHANNELS.index(c) for c in ACTION_CHANNELS[name]]
        if not chans:
            continue
        col = np.full(len(opt_in), chans[0])
        for c in reversed(chans):
            col = np.where(opt_in[:, c], c, col)
        out[:, a] = col
    return out


@dataclass
class TouchTables:
    """The quantities the env realises and the DP combines, per touch ``k`` (0-based).

    Arrays of shape ``(n, 7**k, 7)`` over (cart, prefix, action) unless noted.
    """

    buy: list[np.ndarray]  # probability of a purchase before the next touch
    prompted: list[np.ndarray]  # probability the message converts (lift)
    natural: list[np.ndarray]  # (n, 7**k) unprompted hazard in the interval
    profit_if_bought: list[np.ndarray]  # margin - incentive held (contact cost not included)
    contact: list[np.ndarray]  # (n, 7**k... broadcast) contact cost
    unsubscribe: list[np.ndarray]
    tail: list[np.ndarray]  # probability of an unprompted purchase after unsubscribing
    fatigue: list[np.ndarray]  # (n, 7**k) fatigue load at the touch
    immediate: list[np.ndarray]  # expected reward of the touch itself
    q: list[np.ndarray]  # expected return to the end with optimal play afterwards


def solve(
    params: CartParams,
    mask: np.ndarray,
    config: SimConfig,
    seq: SequenceConfig,
    restrict_touches: int | None = None,
) -> TouchTables:
    """Touch tables and the exact optimal Q of every (touch, prefix, action) for ``n`` carts.

    ``mask`` (n, 7) is the eligibility (deliverable actions): an action outside it has the
    outcome of ``none`` at every touch (its tables and ``q`` are none's, and the flow continues
    as after ``none``), as in ``CartRecovery-v0``. ``restrict_touches`` forces ``none`` from
    that many touches on (the optimum of a shorter flow, same timing).
    """
    n, K = len(params), seq.n_touches
    tau = params.touch_minutes
    hours_from_first = (tau - tau[:, :1]) / _MINUTE
    cdf = unprompted_cdf(hours_from_first)
    share = np.diff(np.concatenate([cdf, np.ones((n, 1))], axis=1), axis=1)  # (n, K)
    rest = 1.0 - cdf  # (n, K): share from touch k on
    base = np.array([seq.unsubscribe_base[c] for c in CHANNELS])
    chan = params.channel
    unsub_rate = np.where(chan >= 0, base[np.maximum(chan, 0)], 0.0)  # (n, 7)
    step = CONDITIONING_STEP[params.type_index]
    t = params.type_index

    # forward: state of every prefix at every touch
    e = params.expectation[:, None].copy()
    load = params.fatigue[:, None].copy()
    held = np.zeros((n, 1))
    contacts = np.zeros((n, 1))
    last = np.full((n, 1), -np.inf)
    tables = TouchTables(*([] for _ in range(10)))
    states = []
    for k in range(K):
        P = e.shape[1]
        states.append((e, load, held, contacts, last))
        resp = cart_response(
            np.repeat(t, P),
            np.repeat(params.value, P),
            np.repeat(params.margin, P),
            np.repeat(tau[:, k], P),
            np.repeat(params.match, P),
            e.reshape(-1),
            load.reshape(-1),
            np.repeat(params.n_orders, P),
            config,
            intent=None if params.intent is None else np.repeat(params.intent, P),
        )
        p0 = resp.base_probability.reshape(n, P)
        lift = resp.lift.reshape(n, P, N_ACTIONS)
        h = unprompted_hazard(p0, share[:, k : k + 1])
        buy = h[:, :, None] + (1.0 - h[:, :, None]) * lift
        held_after = np.maximum(held[:, :, None], DISCOUNT[None, None, :])
        cost = np.maximum(
            resp.cost_if_bought.reshape(n, P, N_ACTIONS), held_after * params.value[:, None, None]
        )
        profit = params.margin[:, None, None] - cost
        contact = resp.contact_cost.reshape(n, P, N_ACTIONS)
        gap_hours = (tau[:, k : k + 1] - last) / _MINUTE
        freq = 1.0 + 2.0 * np.exp(-gap_hours / seq.unsubscribe_gap_hours)
        u = np.minimum(unsub_rate[:, None, :] * (contacts * freq)[:, :, None], 0.5) * _CONTACT
        e_after = np.where(
            _COUPON[None, None, :],
            1.0 - (1.0 - e[:, :, None]) * (1.0 - step[:, None, None]),
            e[:, :, None],
        )
        e_eff = e_after if config.coupon_conditioning else np.zeros_like(e_after)
        if k + 1 < K:
            p0_after = base_probability(
                t[:, None, None],
                params.value[:, None, None],
                params.n_orders[:, None, None],
                e_eff,
                None if params.intent is None else params.intent[:, None, None],
            )
            tail = unprompted_hazard(p0_after, rest[:, k + 1, None, None])
        else:
            tail = np.zeros_like(buy)
        immediate = (
            buy * profit - contact + (1.0 - buy) * u * (tail * profit - seq.unsubscribe_cost)
        )
        for name, value in (
            ("buy", buy),
            ("prompted", lift),
            ("natural", h),
            ("profit_if_bought", profit),
            ("contact", contact),
            ("unsubscribe", u),
            ("tail", tail),
            ("fatigue", load),
            ("immediate", immediate),
        ):
            getattr(tables, name).append(value)
        if k + 1 < K:  # children: prefix p * 7 + a
            dt = (tau[:, k + 1] - tau[:, k])[:, None, None] * _MINUTE
            e = (e_after * np.exp(-dt / (EXPECTATION_DAYS * DAY))).reshape(n, -1)
            load = ((load[:, :, None] + _CONTACT) * np.exp(-dt / (FATIGUE_DAYS * DAY))).reshape(
                n, -1
            )
            held = held_after.reshape(n, -1)
            contacts = (contacts[:, :, None] + _CONTACT).reshape(n, -1)
            last = np.where(_CONTACT, tau[:, k, None, None], last[:, :, None]).reshape(n, -1)

    # an action the shopper cannot receive has the outcome of `none` (as in CartRecovery-v0):
    # its touch quantities are none's, and the flow continues from the prefix that sent none
    eligible = np.asarray(mask, dtype=bool)
    blocked = ~eligible[:, None, :]
    for name in ("buy", "prompted", "profit_if_bought", "contact", "unsubscribe", "tail"):
        for k, x in enumerate(getattr(tables, name)):
            getattr(tables, name)[k] = np.where(blocked, x[:, :, :1], x)
    for k, x in enumerate(tables.immediate):
        tables.immediate[k] = np.where(blocked, x[:, :, :1], x)

    # backward: Q_k(p, a) = immediate + P(continue) * V_{k+1}(p * 7 + a)
    q_next = None
    qs: list[np.ndarray] = [None] * K  # type: ignore[list-item]
    for k in reversed(range(K)):
        q = tables.immediate[k].copy()
        if k + 1 < K:
            v = np.where(eligible[:, None, :], q_next, -np.inf).max(axis=2).reshape(q.shape)
            q += (1.0 - tables.buy[k]) * (1.0 - tables.unsubscribe[k]) * v
        q = np.where(blocked, q[:, :, :1], q)
        if restrict_touches is not None and k >= restrict_touches:
            q[:, :, :] = q[:, :, :1]  # only 'none' is possible from here on
        qs[k] = q
        q_next = q
    tables.q = qs
    return tables


def policy_value(tables: TouchTables, probabilities: list[np.ndarray]) -> np.ndarray:
    """Exact expected return per cart of a policy that decides from the cart and the prefix only.

    ``probabilities[k]``: ``(n, 7**k, 7)`` action probabilities at touch ``k`` for every prefix.
    """
    K = len(tables.q)
    v_next = None
    for k in reversed(range(K)):
        q = tables.immediate[k].copy()
        if k + 1 < K:
            q += (1.0 - tables.buy[k]) * (1.0 - tables.unsubscribe[k]) * v_next.reshape(q.shape)
        v_next = (q * probabilities[k]).sum(axis=2)
    return v_next[:, 0]


def fixed_flow_probabilities(actions: list[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    """Probabilities of a fixed flow, for :func:`policy_value`.

    The flow sends ``actions[k][i]`` at touch ``k`` to cart ``i`` whatever happened before
    (``none`` when ineligible).
    """
    n = len(mask)
    out = []
    rows = np.arange(n)
    for k, a in enumerate(actions):
        a = np.where(mask[rows, a], a, 0)
        p = np.zeros((n, N_ACTIONS**k, N_ACTIONS))
        p[rows, :, a] = 1.0
        out.append(p)
    return out


def interval_hours(touch_minutes: np.ndarray) -> np.ndarray:
    """``(n, K)`` hours from each touch to the next (``inf`` after the last)."""
    gaps = np.diff(touch_minutes, axis=1) / _MINUTE
    return np.concatenate([gaps, np.full((len(touch_minutes), 1), math.inf)], axis=1)
