"""The flow model's exact solution over merged states: what both sequence envs read.

:func:`simulator.shop.sequence_model.solve` runs the dynamic program over every *prefix* of
actions (``7 ** k`` at touch ``k``). Many prefixes leave the shopper in the same state: the flow's
dynamics depend on the earlier touches only through which of them were contacts (fatigue,
unsubscribe risk, time of the last contact), which were coupons (expectation) and the best
coupon held. So ``recommendation``, ``time_limited_offer`` and ``recall_message`` lead to the
same state, and so do two coupons in either order. :class:`StateGraph` merges them (1, 5 and 19
states at touches 1 to 3 instead of 1, 7 and 49 prefixes), and :func:`solve_states` solves all
carts of a block at once over these states, with the per-cart quantities that no state changes
(the raw lifts, the ``p0`` law, persuadability, incentive costs) computed once per cart. Every
state's quantities are computed with the same arithmetic as the prefix solver, so the tables
equal :func:`~simulator.shop.sequence_model.solve`'s at every prefix (tested to 1e-12).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simulator.shop.config import SimConfig
from simulator.shop.constants import CHANNELS, DAY
from simulator.shop.response import (
    CONDITIONING_STEP,
    CONTACT_ACTIONS,
    COUPON_ACTIONS,
    COUPON_RUNS,
    DISCOUNT,
    EXPECTATION_DAYS,
    FATIGUE_DAYS,
    UnpromptedLaw,
    damped_lift,
    incentive_cost,
    intent_logit,
    lift_damping,
    persuadability,
    raw_lift,
    urgent_lift,
)
from simulator.shop.sequence_model import (
    _MINUTE,
    N_ACTIONS,
    CartParams,
    SequenceConfig,
    unprompted_cdf,
    unprompted_hazard,
)

NONE = 0


@dataclass(frozen=True)
class StateGraph:
    """The distinct states of a ``K``-touch flow and how actions move between them.

    States are numbered across touches: touch ``k`` holds ``offsets[k]`` to
    ``offsets[k + 1] - 1``; ``child[s, a]`` is the state after sending ``a`` in state ``s``
    (-1 after the last touch). ``held``, ``contacts``: the best coupon held and the contacts
    sent before the state's touch; ``last_contact``: the touch of the latest contact (-1: none).
    ``parent``/``via``: one prefix's way into each state (state 0: -1).
    """

    n_touches: int
    offsets: np.ndarray
    child: np.ndarray
    held: np.ndarray
    contacts: np.ndarray
    last_contact: np.ndarray
    parent: np.ndarray
    via: np.ndarray
    held_levels: np.ndarray
    held_level: np.ndarray

    @property
    def n_states(self) -> int:
        """States over all touches."""
        return int(self.offsets[-1])

    def touch_states(self, k: int) -> slice:
        """The states of touch ``k`` (0-based)."""
        return slice(int(self.offsets[k]), int(self.offsets[k + 1]))

    def state_of_prefixes(self, k: int) -> np.ndarray:
        """``(7 ** k,)`` state of every prefix of ``k`` actions (prefix ``p * 7 + a``)."""
        states = np.zeros(1, dtype=np.int64)
        for _ in range(k):
            states = self.child[states].reshape(-1)
        return states


@lru_cache(maxsize=8)
def state_graph(n_touches: int) -> StateGraph:
    """The :class:`StateGraph` of a flow of ``n_touches`` touches (built once per length)."""
    keys: list[tuple] = [((), 0.0)]
    offsets = [0, 1]
    child = np.full((0, N_ACTIONS), -1, dtype=np.int64)
    parent, via = [-1], [-1]
    for k in range(n_touches):
        start, stop = offsets[k], offsets[k + 1]
        rows = np.full((stop - start, N_ACTIONS), -1, dtype=np.int64)
        if k + 1 < n_touches:
            index: dict[tuple, int] = {}
            for s in range(start, stop):
                marks, held = keys[s]
                for a in range(N_ACTIONS):
                    key = (
                        (*marks, (bool(CONTACT_ACTIONS[a]), bool(COUPON_ACTIONS[a]))),
                        max(held, float(DISCOUNT[a])),
                    )
                    if key not in index:
                        index[key] = len(keys)
                        keys.append(key)
                        parent.append(s)
                        via.append(a)
                    rows[s - start, a] = index[key]
            offsets.append(len(keys))
        child = np.concatenate([child, rows])
    last = [max((j for j, (c, _) in enumerate(m) if c), default=-1) for m, _ in keys]
    held = np.array([h for _, h in keys])
    levels, level = np.unique(held, return_inverse=True)
    return StateGraph(
        n_touches,
        np.array(offsets[: n_touches + 1]),
        child,
        held,
        np.array([sum(c for c, _ in m) for m, _ in keys], dtype=np.float64),
        np.array(last, dtype=np.int64),
        np.array(parent, dtype=np.int64),
        np.array(via, dtype=np.int64),
        levels,
        level.astype(np.int64),
    )


@dataclass(frozen=True)
class TouchClasses:
    """States of one touch grouped by what a per-state quantity depends on.

    Each grouping is ``(first, of)``: the states (0-based within the touch) that stand for each
    group, and each state's group; ``x[first]`` computed then taken at ``of`` equals ``x`` of every
    state. ``coupons``: the touches that were coupons (the coupon expectation depends on no more);
    ``contacts``: the touches that were contacts (the fatigue load); ``last``: the latest contact.
    """

    coupons: tuple[np.ndarray, np.ndarray]
    contacts: tuple[np.ndarray, np.ndarray]
    last: tuple[np.ndarray, np.ndarray]


@lru_cache(maxsize=8)
def touch_classes(n_touches: int) -> tuple[TouchClasses, ...]:
    """The :class:`TouchClasses` of each touch of :func:`state_graph` ``(n_touches)``."""
    graph = state_graph(n_touches)
    marks: list[tuple[tuple[bool, ...], tuple[bool, ...]]] = [((), ())]
    for s in range(1, graph.n_states):  # parents come first: extend the parent's marks
        coupons, contacts = marks[graph.parent[s]]
        a = graph.via[s]
        marks.append(((*coupons, bool(COUPON_ACTIONS[a])), (*contacts, bool(CONTACT_ACTIONS[a]))))

    def grouping(keys: list) -> tuple[np.ndarray, np.ndarray]:
        index: dict = {}
        of = np.array([index.setdefault(key, len(index)) for key in keys], dtype=np.int64)
        first = np.array([keys.index(key) for key in index], dtype=np.int64)
        return first, of

    out = []
    for k in range(n_touches):
        sl = graph.touch_states(k)
        out.append(
            TouchClasses(
                grouping([marks[s][0] for s in range(sl.start, sl.stop)]),
                grouping([marks[s][1] for s in range(sl.start, sl.stop)]),
                grouping(graph.last_contact[sl].tolist()),
            )
        )
    return tuple(out)


def _by_class(f, x: np.ndarray, grouping: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``f(x)`` for ``x`` (states, ...) whose rows are equal within each group of ``grouping``.

    ``f`` runs on one row per group and its rows are taken back to every state: the same numbers
    for less work where ``f`` is costly (``exp``, ``**``) and only a few groups are distinct.
    """
    first, of = grouping
    return np.take(f(x[first]), of, axis=0)


@dataclass
class StateTables:
    """The solved flows of ``n`` carts over the states of ``graph``.

    Per-action fields are ``(n_states, 7, n)`` arrays over (state, action, cart), so that the
    solver's operations run over long contiguous rows: ``q`` (expected return to the end with
    optimal play afterwards), ``immediate`` (the touch's expected reward), ``buy`` (purchase
    before the next touch), ``prompted`` (the message's lift), ``profit`` (margin net of the
    incentive held if bought; contact cost not included), ``unsubscribe`` and ``tail`` (an
    unprompted purchase after unsubscribing). Per-state fields are ``(n_states, n)``:
    ``natural`` (the interval's unprompted hazard) and ``fatigue`` (the fatigue load at the
    touch). An action outside a cart's mask has ``none``'s ``q`` and ``immediate``; its other
    fields are the action's as if delivered (readers play ``none``).
    """

    graph: StateGraph
    q: np.ndarray
    immediate: np.ndarray
    buy: np.ndarray
    prompted: np.ndarray
    profit: np.ndarray
    unsubscribe: np.ndarray
    tail: np.ndarray
    natural: np.ndarray
    fatigue: np.ndarray

    def by_prefix(self, name: str, k: int) -> np.ndarray:
        """Field ``name`` at touch ``k`` for every prefix: ``(n, 7 ** k, 7)`` or ``(n, 7 ** k)``.

        The layout of :func:`simulator.shop.sequence_model.solve`'s tables.
        """
        x = getattr(self, name)[self.graph.state_of_prefixes(k)]
        return np.moveaxis(x, -1, 0)

    @classmethod
    def empty(cls, graph: StateGraph, n: int) -> StateTables:
        """Unfilled tables for ``n`` carts (memory for :func:`solve_states` to reuse)."""
        S = graph.n_states
        return cls(
            graph,
            *(np.empty((S, N_ACTIONS, n)) for _ in _FIELDS),
            np.empty((S, n)),
            np.empty((S, n)),
        )

    def __len__(self) -> int:
        return self.q.shape[-1]


class Workspace:
    """The solver's temporary arrays, kept between calls (fresh memory costs page faults)."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """An array of ``shape`` (contents undefined) under ``name``."""
        key = (name, shape)
        if key not in self._arrays:
            self._arrays[key] = np.empty(shape)
        return self._arrays[key]


_FIELDS = ("q", "immediate", "buy", "prompted", "profit", "unsubscribe", "tail")


def solve_states(
    params: CartParams,
    mask: np.ndarray,
    config: SimConfig,
    seq: SequenceConfig,
    restrict_touches: int | None = None,
    out: StateTables | None = None,
    work: Workspace | None = None,
) -> StateTables:
    """Exact optimal Q and the touch quantities of every state and action for ``n`` carts.

    The same model and conventions as :func:`simulator.shop.sequence_model.solve` (``mask``:
    deliverable actions, the others have ``none``'s outcome; ``restrict_touches``: ``none``
    forced from that touch on), over the merged states of :func:`state_graph`. ``out``:
    tables of ``n`` carts to write (every entry is written); ``work``: temporary arrays to
    reuse. All carts are solved together (numpy's cost per call is spread over more of them).

    Each state's quantities follow :func:`~simulator.shop.sequence_model.solve` operation by
    operation (so the results are the same numbers); the profit, which depends on the state
    only through the best coupon held, is computed once per coupon level. Arrays are (state,
    action, cart) or (state, cart): per-cart quantities broadcast along the last axis.
    """
    graph = state_graph(seq.n_touches)
    n = len(params)
    if out is None or out.graph is not graph or len(out) != n:
        out = StateTables.empty(graph, n)
    _solve(params, np.asarray(mask, dtype=bool), config, seq, restrict_touches, out, work)
    return out


def _solve(
    params: CartParams,
    mask: np.ndarray,
    config: SimConfig,
    seq: SequenceConfig,
    restrict_touches: int | None,
    tables: StateTables,
    work: Workspace | None,
) -> None:
    """The body of :func:`solve_states`, writing ``tables``."""
    work = Workspace() if work is None else work
    n, K = len(params), seq.n_touches
    graph = tables.graph
    tau = params.touch_minutes
    # (touch, cart) and (action, cart) arrays are made C-contiguous: a transposed view would make
    # every operation that broadcasts them over the states step through memory with a stride
    tau_t = np.ascontiguousarray(tau.T)
    cdf = unprompted_cdf((tau - tau[:, :1]) / _MINUTE)
    share = np.ascontiguousarray(np.diff(np.concatenate([cdf, np.ones((n, 1))], axis=1), axis=1).T)
    rest = np.ascontiguousarray((1.0 - cdf).T)
    base = np.array([seq.unsubscribe_base[c] for c in CHANNELS])
    chan = params.channel.T
    unsub_rate = np.ascontiguousarray(np.where(chan >= 0, base[np.maximum(chan, 0)], 0.0))
    t = params.type_index
    step = CONDITIONING_STEP[t]
    if params.intent is None:
        law, persuade = UnpromptedLaw.of(t, params.value, params.n_orders), None
    else:  # the intent logit once, for both
        z = intent_logit(t, params.value, params.n_orders, params.intent)
        law, persuade = UnpromptedLaw.of_logit(z), persuadability(z)
    # profit if bought: margin net of the best incentive, per coupon level held before the touch
    held_after = np.maximum(graph.held_levels[:, None], DISCOUNT[None, :])[:, :, None]
    profit_at = params.margin - np.maximum(
        incentive_cost(params.value, config).T, held_after * params.value
    )  # (level, 7, cart)
    contact = np.where(CONTACT_ACTIONS, config.contact_cost, 0.0)[:, None]
    widest = int(np.diff(graph.offsets).max())
    scratch = work.get("scratch", (3, widest, N_ACTIONS, n))
    cont = work.get("cont", (graph.n_states, N_ACTIONS, n))  # P(the flow goes on to next touch)

    e = work.get("expectation", (graph.n_states, n))
    load = tables.fatigue
    e[0], load[0] = params.expectation, params.fatigue
    classes = touch_classes(K)
    raw_k = raw_lift(t, params.value, params.match, tau[:, 0])
    for k in range(K):
        sl = graph.touch_states(k)
        cl = classes[k]  # the costly per-state quantities are computed once per distinct state
        w = sl.stop - sl.start
        t1, t2, t3 = scratch[0, :w], scratch[1, :w], scratch[2, :w]
        ek, lk = e[sl], load[sl]
        e_eff = ek if config.coupon_conditioning else np.zeros_like(ek)
        if k:  # only the urgent messages' lifts change from touch to touch
            urgent_lift(t, tau[:, k], raw_k)
        raw = np.ascontiguousarray((raw_k if persuade is None else raw_k * persuade).T)
        damp = _by_class(lift_damping, lk if config.fatigue else np.zeros_like(lk), cl.contacts)
        lift = damped_lift(raw, damp, e_eff, out=tables.prompted[sl], action_axis=1)
        h = tables.natural[sl]
        h[...] = _by_class(lambda x, k=k: unprompted_hazard(law.at(x), share[k]), e_eff, cl.coupons)
        buy = np.multiply((1.0 - h)[:, None, :], lift, out=tables.buy[sl])
        buy += h[:, None, :]
        profit = tables.profit[sl]
        np.take(profit_at, graph.held_level[sl], axis=0, out=profit)
        first, of = cl.last
        last = graph.last_contact[sl][first]
        sent_at = np.where((last >= 0)[:, None], tau_t[np.maximum(last, 0)], -np.inf)
        gap_hours = (tau_t[k] - sent_at) / _MINUTE
        freq = np.take(1.0 + 2.0 * np.exp(-gap_hours / seq.unsubscribe_gap_hours), of, axis=0)
        u = tables.unsubscribe[sl]
        np.multiply(unsub_rate, (graph.contacts[sl, None] * freq)[:, None, :], out=u)
        np.minimum(u, 0.5, out=u)  # none's rate is 0: no contact, no risk
        e_coupon = 1.0 - (1.0 - ek) * (1.0 - step)
        tail = tables.tail[sl]
        # immediate = buy * profit - contact + (1 - buy) * u * (tail * profit - unsubscribe_cost)
        stay = np.subtract(1.0, buy, out=t2)
        np.multiply(stay, u, out=t3)
        if k + 1 < K:
            first, of = cl.coupons
            after = np.stack([ek[first], e_coupon[first]])  # (no coupon / coupon, class, cart)
            p0_after = law.at(after if config.coupon_conditioning else np.zeros_like(after))
            tail2 = np.take(unprompted_hazard(p0_after, rest[k + 1]), of, axis=1)
            for cols, is_coupon in COUPON_RUNS:
                tail[:, cols] = tail2[int(is_coupon), :, None, :]
            np.multiply(tail, profit, out=t1)
            t1 -= seq.unsubscribe_cost
            t3 *= t1
            np.subtract(1.0, u, out=t1)
            np.multiply(stay, t1, out=cont[sl])
        else:  # no next touch: no purchase after unsubscribing
            tail[...] = 0.0
            t3 *= -seq.unsubscribe_cost  # = 0 * profit - unsubscribe_cost
        imm = np.multiply(buy, profit, out=tables.immediate[sl])
        imm -= contact
        imm += t3
        if k + 1 < K:  # the next touch's states, each from one prefix that reaches it
            nxt = graph.touch_states(k + 1)
            par, a = graph.parent[nxt] - sl.start, graph.via[nxt]
            dt = (tau[:, k + 1] - tau[:, k]) * _MINUTE
            e_from = np.where(COUPON_ACTIONS[a][:, None], e_coupon[par], ek[par])
            e[nxt] = e_from * np.exp(-dt / (EXPECTATION_DAYS * DAY))
            load[nxt] = (lk[par] + CONTACT_ACTIONS[a][:, None]) * np.exp(-dt / (FATIGUE_DAYS * DAY))

    # an undeliverable action is none: its q and immediate are none's (the other fields are not
    # read for it), and the optimum picks among the deliverable actions only
    blocked = ~mask.T  # (7, cart)
    carts_blocked = [(a, np.flatnonzero(blocked[a])) for a in range(N_ACTIONS) if blocked[a].any()]
    imm = tables.immediate
    _as_none(imm, carts_blocked)
    only = None if mask[:, 0].all() else blocked
    v = work.get("value", (graph.n_states, n))  # optimal value of each state (filled backwards)
    for k in reversed(range(K)):
        sl = graph.touch_states(k)
        q = tables.q[sl]
        if k + 1 < K:
            t1 = scratch[0, : sl.stop - sl.start]
            np.take(v, graph.child[sl], axis=0, out=t1)
            t1 *= cont[sl]
            np.add(imm[sl], t1, out=q)
            _as_none(q, carts_blocked)
        else:
            q[...] = imm[sl]
        if restrict_touches is not None and k >= restrict_touches:
            q[...] = q[:, :1]
        v[sl] = _best(q, only)


def _as_none(x: np.ndarray, carts_blocked: list[tuple[int, np.ndarray]]) -> None:
    """Give the blocked ``(action, carts)`` of ``x`` (state, action, cart) none's entries."""
    for a, carts in carts_blocked:
        x[:, a, carts] = x[:, NONE, carts]


def _best(q: np.ndarray, blocked: np.ndarray | None) -> np.ndarray:
    """Max of ``q`` (state, action, cart) over actions, skipping ``blocked`` ones if given.

    Undeliverable entries hold none's value, so while ``none`` is deliverable the plain max is
    the max over the deliverable actions. Action by action: much faster than a reduction.
    """
    if blocked is not None:
        q = np.where(blocked, -np.inf, q)
    best = np.maximum(q[:, 0], q[:, 1])
    for a in range(2, q.shape[1]):
        np.maximum(best, q[:, a], out=best)
    return best


def best_eligible(q: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``(m,)`` max of each row of ``q`` (m, 7) over its ``mask``-ed actions, column by column."""
    x = np.where(mask, q, -np.inf)
    best = x[:, 0].copy()
    for a in range(1, x.shape[1]):
        np.maximum(best, x[:, a], out=best)
    return best


def fixed_flow_value(tables: StateTables, flow: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Exact expected return per cart of the fixed flow ``flow`` (n, K) (``none`` if blocked)."""
    graph, n = tables.graph, len(flow)
    rows = np.arange(n)
    state = np.zeros(n, dtype=np.int64)
    alive = np.ones(n)
    value = np.zeros(n)
    for k in range(graph.n_touches):
        a = np.where(mask[rows, flow[:, k]], flow[:, k], NONE)
        value += alive * tables.immediate[state, a, rows]
        alive = (
            alive * (1.0 - tables.buy[state, a, rows]) * (1.0 - tables.unsubscribe[state, a, rows])
        )
        state = graph.child[state, a]
    return value
