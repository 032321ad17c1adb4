"""One flow at a time, with Python scalars: the single ``CartRecoverySequence-v0`` env's fast path.

:class:`OneFlow` plays the flows of the carts of a :class:`FlowSimulator`'s blocks one after the
other, reading the solved block in place (no copy per cart) and computing each touch with
scalars, as :meth:`FlowSimulator.step` does for a batch: same block, same uniforms, same
outcomes. Ended flows are written to the shop in batches of distinct shoppers
(:meth:`OneFlow.flush`: before the next block is drawn, the only later reader of the shoppers'
state, and before a second flow of a queued shopper), which equals writing them one by one;
unsubscribes at once, as the next cart's channels show them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simulator.shop.carts import OBS_NAMES
from simulator.shop.response import DISCOUNT
from simulator.shop.sequence_blocks import Block
from simulator.shop.sequence_records import (
    _SINCE,
    SEQ_OBS_HIGH,
    SEQ_OBS_LOW,
    SEQ_OBS_NAMES,
    flow_context,
    write_flows,
)
from simulator.shop.sequence_sim import _CHANNEL_OPEN, _OPEN_RATE, FlowSimulator
from simulator.shop.shoppers import NONE

_BASE = len(OBS_NAMES)
_DISCOUNT = DISCOUNT.tolist()
_OPEN = _OPEN_RATE.tolist()
_CHANNEL = _CHANNEL_OPEN.tolist()
_FLUSH_EVERY = 256


class OneFlow:
    """The flow of one cart at a time on ``sim``'s blocks (``sim`` has no slots of its own)."""

    def __init__(self, sim: FlowSimulator) -> None:
        self.sim = sim
        self.K = sim.K
        self._pending: list[tuple[Any, ...]] = []
        self._queued: set[int] = set()
        self.block: Block
        self.row = 0
        self.start()
        self._child = sim.child.tolist()  # the state graph's moves (set by the first block)
        self._contact = sim.contact_cost.tolist()

    # ------------------------------------------------------------------ carts
    def start(self) -> None:
        """Start the flow of the next cart."""
        sim = self.sim
        if sim._block is None or sim._block.next_row >= len(sim._block.batch):
            self.flush()
            if sim._block is not None:  # its last flow has ended
                sim.recycle(sim._block)
            sim._block = sim._new_block()
        block = sim._block
        self.block, self.row = block, block.next_row
        block.next_row += 1
        a, r = block.arrays, self.row
        self.mask = a["mask"][r]
        self.tau = a["tau"][r].tolist()
        self.type_index = int(a["type_index"][r])
        self.touch = 0
        self.state = 0
        self.actions: list[int] = []
        self.opened: list[bool] = []
        self.clicked: list[bool] = []
        self.episode_return = 0.0

    # ------------------------------------------------------------------ what is seen
    def truth(self) -> tuple[np.ndarray, np.ndarray]:
        """``(q_optimal, immediate expected reward)`` of the current touch (views, 7 each)."""
        a, r = self.block.arrays, self.row
        return a["q"][self.state, :, r], a["immediate"][self.state, :, r]

    def observe(self) -> np.ndarray:
        """The observation (float32, :data:`SEQ_OBS_NAMES`) of the current touch."""
        k = self.touch
        obs = np.empty(len(SEQ_OBS_NAMES), dtype=np.float32)
        obs[:_BASE] = self.block.arrays["obs"][self.row]
        obs[_SINCE] = math.log1p(self.tau[k])
        obs[_BASE] = k
        obs[_BASE + 1] = sum(1 for x in self.actions if x != NONE)
        obs[_BASE + 2] = k > 0 and self.opened[-1]
        obs[_BASE + 3] = k > 0 and self.clicked[-1]
        obs[_BASE + 4] = max([_DISCOUNT[x] for x in self.actions], default=0.0) * 5.0
        return np.clip(obs, SEQ_OBS_LOW, SEQ_OBS_HIGH, out=obs)

    def context(self) -> dict[str, Any]:
        """The record checkout would send at the current touch (docs/context-schema.md)."""
        block = self.block
        return flow_context(
            self.sim.world.context(block.batch, self.row),
            float(block.arrays["abandon_time"][self.row]),
            self.tau,
            self.actions,
            self.opened,
            self.clicked,
        )

    # ------------------------------------------------------------------ dynamics
    def step(self, action: int) -> dict[str, Any]:
        """Send ``action`` (played as ``none`` when undeliverable) and realise the interval.

        Returns the outcomes of :meth:`FlowSimulator.step` for one slot, as Python scalars.
        """
        a_arr, r, k = self.block.arrays, self.row, self.touch
        g = self.state
        delivered = bool(self.mask[action])
        a = action if delivered else NONE
        u = a_arr["u"][r, k].tolist()
        natural = u[0] < a_arr["natural"][g, r]
        p_prompt = float(a_arr["prompted"][g, a, r])
        prompted = u[1] < p_prompt
        bought = natural or prompted
        profit = float(a_arr["profit"][g, a, r])
        reward = (profit if bought else 0.0) - self._contact[a]
        unsub = not bought and u[2] < a_arr["unsubscribe"][g, a, r]
        tail_bought = unsub and u[3] < a_arr["tail"][g, a, r]
        if tail_bought:
            reward += profit
        if unsub:
            reward -= self.sim.seq.unsubscribe_cost
        terminated = bought or unsub or k == self.K - 1
        opened = clicked = False
        if a != NONE:
            chan = int(a_arr["opt_channel"][r, a])
            open_p = (
                _OPEN[self.type_index]
                * _CHANNEL[max(chan, 0)]
                * math.exp(-0.15 * float(a_arr["fatigue"][g, r]))
            )
            opened = bought or u[4] < open_p
            clicked = opened and ((bought and prompted) or u[5] < min(0.05 + 2.0 * p_prompt, 0.8))
        self.actions.append(a)
        self.opened.append(bool(opened))
        self.clicked.append(bool(clicked))
        self.episode_return += reward
        converted = bool(bought or tail_bought)
        out: dict[str, Any] = {
            "reward": reward,
            "terminated": bool(terminated),
            "expected_reward": float(a_arr["immediate"][g, a, r]),
            "converted": converted,
            "prompted": bool(prompted and not natural),
            "unsubscribed": bool(unsub),
            "delivered": delivered,
            "touch": k + 1,
            "episode_return": self.episode_return,
            "purchase_hours_after_abandon": None,
        }
        if terminated:
            delay = float(a_arr["delay_hours"][r])
            gap = float(a_arr["interval"][r, k])
            if not delay < gap:
                delay = u[6] * (gap if math.isfinite(gap) else 72.0)
            if converted:
                out["purchase_hours_after_abandon"] = self.tau[k] / 60.0 + delay
            self._end(k, converted, bool(prompted and not natural), bool(unsub), a, delay)
        else:
            self.state = self._child[g][a]
            self.touch += 1
        held = max(_DISCOUNT[x] for x in self.actions)
        out["coupon_cost"] = held * float(a_arr["value"][r]) if converted else 0.0
        return out

    def _end(
        self, k: int, converted: bool, prompted: bool, unsub: bool, action: int, delay: float
    ) -> None:
        a, r = self.block.arrays, self.row
        shopper = int(a["shopper"][r])
        if shopper in self._queued:  # a shopper's flows are written in order, one batch each
            self.flush()
        self._queued.add(shopper)
        actions = self.actions + [NONE] * (self.K - len(self.actions))
        items = self.block.batch.items[r] if converted else None
        self._pending.append(
            (a["shopper"][r], r, actions, k, converted, prompted, delay, items, self.block)
        )
        if unsub:
            self.sim.world.opt_out(
                a["shopper"][r : r + 1], a["opt_channel"][r, action : action + 1]
            )
        if len(self._pending) >= _FLUSH_EVERY:
            self.flush()

    def flush(self) -> None:
        """Write the ended flows queued so far to the shop (one vectorised call)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        self._queued.clear()
        rows = np.array([p[1] for p in pending])
        arrays = [p[8].arrays for p in pending]

        def gather(name: str) -> np.ndarray:
            return np.stack(
                [arr[name][row] for arr, row in zip(arrays, rows.tolist(), strict=True)]
            )

        converted = np.array([p[4] for p in pending])
        items = [p[7] for p in pending if p[4]]
        write_flows(
            self.sim.world,
            np.array([p[0] for p in pending]),
            gather("type_index"),
            gather("abandon_time"),
            gather("tau"),
            gather("value"),
            np.array([p[2] for p in pending], dtype=np.int64),
            np.array([p[3] for p in pending], dtype=np.int64),
            converted,
            np.array([p[5] for p in pending]),
            np.array([p[6] for p in pending]),
            np.stack(items) if items else None,
        )
