"""Flows in progress: ``num_slots`` carts, each somewhere in its recovery flow, stepped together.

Both sequence envs run on :class:`FlowSimulator`. Carts come from the shared :class:`ShopWorld`
in blocks (drawn, arrived and evaluated together, so carts of one block are simultaneous, as in
the vector single-step env); each block is solved exactly over the flow's merged states
(:func:`simulator.shop.sequence_dp.solve_states`) and its uniforms are drawn at once. A slot
that ends its flow takes the next cart of the block; each slot tracks its state, which the
action sent moves along the state graph. Ended flows are written to the shoppers' state
(contacts, fatigue, coupon conditioning, the order, unsubscribes) when they end.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulator.shop.config import SimConfig
from simulator.shop.constants import CHANNELS
from simulator.shop.response import CONTACT_ACTIONS, DISCOUNT
from simulator.shop.sequence_blocks import (
    TABLE_FIELDS,
    Block,
    Groups,
    Picker,
    draw_block,
    group_slots,
)
from simulator.shop.sequence_dp import StateTables, Workspace
from simulator.shop.sequence_model import CartParams, SequenceConfig
from simulator.shop.sequence_records import (
    flow_context,
    flow_observations,
    write_flows,
)
from simulator.shop.shoppers import NONE

__all__ = ["CHANNELS", "FlowSimulator"]
from simulator.shop.world import ShopWorld

# Opens and clicks: noisy signals of the hidden type. Open rate per type (hesitant,
# price_sensitive, impulsive, forgetful) times a channel factor (email, sms, push), damped by
# fatigue; a click follows an open more often the more the message appeals to the shopper.
_OPEN_RATE = np.array([0.45, 0.40, 0.30, 0.50])
_CHANNEL_OPEN = np.array([1.0, 1.6, 0.8])
_FIELDS_CART = (
    "shopper",
    "type_index",
    "value",
    "margin",
    "abandon_time",
    "delay_hours",
    "opt_channel",
)


class FlowSimulator:
    """``num_slots`` flows in progress on one shop; see the module notes.

    Args:
        world: the shop.
        config: its settings.
        seq: the flow's settings.
        num_slots: flows stepped together.
        block_size: carts drawn per block.
        build_records: build the history records of new events with every block (for a caller
            that builds a context at every touch); otherwise contexts build them on access.
    """

    def __init__(
        self,
        world: ShopWorld,
        config: SimConfig,
        seq: SequenceConfig,
        num_slots: int,
        block_size: int,
        build_records: bool = False,
    ) -> None:
        self.world, self.config, self.seq = world, config, seq
        self.rng = world.rng
        self.n = num_slots
        self.K = seq.n_touches
        self.block_size = max(block_size, 1)
        self.build_records = build_records
        self.contact_cost = np.where(CONTACT_ACTIONS, config.contact_cost, 0.0)
        self.child: np.ndarray | None = None  # the state graph's moves, set by the first block
        self._block: Block | None = None
        self._serial = 0
        self.blocks: dict[int, Block] = {}  # the blocks whose carts are in slots
        self._work = Workspace()
        self._spare: list[StateTables] = []  # tables of dropped blocks, for the next ones
        self.slot: dict[str, np.ndarray] = {}  # per-cart arrays of the slots' carts
        self.block_of = np.zeros(num_slots, dtype=np.int64)
        self._every = np.arange(num_slots)
        self._every_groups: Groups | None = None
        self.row_of = np.zeros(num_slots, dtype=np.int64)
        self.touch = np.zeros(num_slots, dtype=np.int64)
        self.state = np.zeros(num_slots, dtype=np.int64)
        self.prev_action = np.zeros((num_slots, self.K), dtype=np.int64)
        self.prev_opened = np.zeros((num_slots, self.K), dtype=bool)
        self.prev_clicked = np.zeros((num_slots, self.K), dtype=bool)
        self.episode_return = np.zeros(num_slots)
        self.refill(np.arange(num_slots))

    # ------------------------------------------------------------------ carts
    def _new_block(self) -> Block:
        spare = self._spare.pop() if self._spare else None
        self._serial += 1
        block = draw_block(
            self.world,
            self.seq,
            self.block_size,
            self._serial,
            self.build_records,
            spare,
            self._work,
        )
        self.child = block.tables.graph.child
        return block

    def recycle(self, block: Block) -> None:
        """``block``'s tables will not be read again: reuse their memory for a later block."""
        for name in TABLE_FIELDS:  # a stray read fails instead of seeing another block's
            block.arrays.pop(name, None)
        if len(self._spare) < 4:
            self._spare.append(block.tables)

    def block_inputs(self) -> tuple[CartParams, np.ndarray]:
        """The current block's flow-model inputs and action mask, as it was solved with."""
        return self._block.params, self._block.arrays["mask"]

    def refill(self, slots: np.ndarray) -> None:
        """Start new flows in ``slots`` with the next carts."""
        slots = np.asarray(slots, dtype=np.int64)
        self._every_groups = None
        done = 0
        while done < len(slots):
            if self._block is None or self._block.next_row >= len(self._block.batch):
                self._block = self._new_block()
            block = self._block
            take = min(len(slots) - done, len(block.batch) - block.next_row)
            rows = np.arange(block.next_row, block.next_row + take)
            taken = slice(block.next_row, block.next_row + take)  # the rows, as a view
            target = slots[done : done + take]
            for name, arr in block.arrays.items():
                if name in TABLE_FIELDS:  # read from the block (see Picker)
                    continue
                if name not in self.slot:
                    self.slot[name] = np.zeros((self.n, *arr.shape[1:]), dtype=arr.dtype)
                self.slot[name][target] = arr[taken]
            self.blocks[block.serial] = block
            self.block_of[target] = block.serial
            self.row_of[target] = rows
            block.next_row += take
            done += take
        if len(self.blocks) > 1:
            live = set(np.unique(self.block_of).tolist())
            live.add(self._block.serial)
            for serial in [b for b in self.blocks if b not in live]:
                self.recycle(self.blocks.pop(serial))
        self.touch[slots] = 0
        self.state[slots] = 0
        self.prev_action[slots] = NONE
        self.prev_opened[slots] = False
        self.prev_clicked[slots] = False
        self.episode_return[slots] = 0.0

    # ------------------------------------------------------------------ the solved tables
    def _groups(self, slots: np.ndarray) -> Groups:
        """The slots' carts by block: ``(block arrays, positions in slots, rows in the block)``.

        Kept for all slots in order until the next refill.
        """
        every = self._is_every(slots)
        if every and self._every_groups is not None:
            return self._every_groups
        groups = group_slots(self.blocks, self.block_of, self.row_of, slots)
        if every:
            self._every_groups = groups
        return groups

    def _is_every(self, slots: np.ndarray) -> bool:
        """Whether ``slots`` are all slots in order."""
        return len(slots) == self.n and np.array_equal(slots, self._every)

    # ------------------------------------------------------------------ what is seen
    def truth(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q_optimal, immediate expected reward, action mask)`` of the current touch.

        Each is ``(m, 7)``, a new array.
        """
        pick = Picker(self._groups(slots), self.state[slots])
        return pick.rows("q"), pick.rows("immediate"), self.slot["mask"][slots]

    def observe(self, slots: np.ndarray) -> np.ndarray:
        """Observations (float32, :data:`SEQ_OBS_NAMES`) of the current touch."""
        if self._is_every(slots):  # read the arrays in place (flow_observations only reads)
            k = self.touch
            return flow_observations(
                self.slot["obs"],
                self.slot["tau"][self._every, k],
                k,
                self.prev_action,
                self.prev_opened,
                self.prev_clicked,
            )
        k = self.touch[slots]
        return flow_observations(
            self.slot["obs"][slots],
            self.slot["tau"][slots, k],
            k,
            self.prev_action[slots],
            self.prev_opened[slots],
            self.prev_clicked[slots],
        )

    def context(self, slot: int) -> dict[str, Any]:
        """The record checkout would send at the slot's current touch (docs/context-schema.md)."""
        k = int(self.touch[slot])
        return flow_context(
            self.world.context(self.blocks[self.block_of[slot]].batch, int(self.row_of[slot])),
            float(self.slot["abandon_time"][slot]),
            self.slot["tau"][slot].tolist(),
            self.prev_action[slot, :k].tolist(),
            self.prev_opened[slot, :k].tolist(),
            self.prev_clicked[slot, :k].tolist(),
        )

    def flow_value(self, slots: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Exact expected return of the flows just started in ``slots`` under a fixed flow.

        The flow sends ``actions[:, k]`` at touch ``k`` (``none`` where ineligible).
        """
        m = len(slots)
        rows = np.arange(m)
        mask = self.slot["mask"][slots]
        groups = self._groups(slots)
        alive = np.ones(m)
        g = np.zeros(m, dtype=np.int64)
        value = np.zeros(m)
        for k in range(self.K):
            a = np.where(mask[rows, actions[:, k]], actions[:, k], NONE)
            pick = Picker(groups, g, a)
            value += alive * pick.action("immediate")
            alive = alive * (1.0 - pick.action("buy"))
            alive = alive * (1.0 - pick.action("unsubscribe"))
            g = self.child[g, a]
        return value

    # ------------------------------------------------------------------ dynamics
    def step(self, slots: np.ndarray, actions: np.ndarray) -> dict[str, np.ndarray]:
        """Send ``actions`` at the current touch of ``slots``; realise the interval that follows.

        An action the shopper cannot receive (outside the cart's action mask) is played as
        ``none``, as in ``CartRecovery-v0``: none's outcome, and ``none`` in the flow's history.
        Returns per slot: ``reward``, ``terminated``, ``expected_reward`` (of the action taken),
        ``converted``, ``prompted``, ``unsubscribed``, ``delivered``; ended flows are written to
        the shop.
        """
        sl = self.slot
        m = len(slots)
        every = self._is_every(slots)

        def of(x: np.ndarray) -> np.ndarray:  # x[slots] (in place when every slot, read-only)
            return x if every else x[slots]

        k = self.touch[slots]
        g = self.state[slots]
        delivered = sl["mask"][slots, actions]
        a = np.where(delivered, actions, NONE)  # an undeliverable action is played as none
        u = sl["u"][slots, k]  # (m, 7) uniforms of this touch
        pick = Picker(self._groups(slots), g, a)
        natural = u[:, 0] < pick.state("natural")
        p_prompt = pick.action("prompted")
        prompted = u[:, 1] < p_prompt
        bought = natural | prompted
        profit = pick.action("profit")
        contact = self.contact_cost[a]
        reward = np.where(bought, profit, 0.0) - contact
        unsub = ~bought & (u[:, 2] < pick.action("unsubscribe"))
        tail_bought = unsub & (u[:, 3] < pick.action("tail"))
        reward += np.where(tail_bought, profit, 0.0) - np.where(
            unsub, self.seq.unsubscribe_cost, 0.0
        )
        last_touch = k == self.K - 1
        terminated = bought | unsub | last_touch
        sent = a != NONE
        chan = sl["opt_channel"][slots, a]
        open_p = (
            _OPEN_RATE[of(sl["type_index"])]
            * _CHANNEL_OPEN[np.maximum(chan, 0)]
            * np.exp(-0.15 * pick.state("fatigue"))
        )
        opened = sent & (bought | (u[:, 4] < open_p))
        clicked = opened & (bought & prompted | (u[:, 5] < np.minimum(0.05 + 2.0 * p_prompt, 0.8)))
        self.prev_action[slots, k] = a
        self.prev_opened[slots, k] = opened
        self.prev_clicked[slots, k] = clicked
        expected = pick.action("immediate")
        if every:
            self.episode_return += reward
        else:
            self.episode_return[slots] += reward
        out = {
            "reward": reward,
            "terminated": terminated,
            "expected_reward": expected,
            "converted": bought | tail_bought,
            "prompted": prompted & ~natural,
            "unsubscribed": unsub,
            "delivered": delivered,
            "touch": k + 1,
            "episode_return": of(self.episode_return).copy(),
        }
        ended = np.flatnonzero(terminated)
        if len(ended):
            delay = sl["delay_hours"][slots[ended]]
            gap = sl["interval"][slots[ended], k[ended]]
            delay = np.where(
                delay < gap, delay, u[ended, 6] * np.where(np.isfinite(gap), gap, 72.0)
            )
            out["purchase_hours_after_abandon"] = np.full(m, np.nan)
            out["purchase_hours_after_abandon"][ended] = np.where(
                out["converted"][ended], sl["tau"][slots[ended], k[ended]] / 60.0 + delay, np.nan
            )
            self._record(
                slots[ended],
                k[ended],
                out["converted"][ended],
                prompted[ended] & ~natural[ended],
                unsub[ended],
                a[ended],
                delay,
            )
        else:
            out["purchase_hours_after_abandon"] = np.full(m, np.nan)
        going = ~terminated
        self.state[slots[going]] = self.child[g[going], a[going]]
        self.touch[slots[going]] += 1
        held = np.where(
            np.arange(self.K)[None, :] <= k[:, None], DISCOUNT[of(self.prev_action)], 0.0
        ).max(axis=1)
        out["coupon_cost"] = np.where(out["converted"], held * of(sl["value"]), 0.0)
        return out

    def _record(
        self,
        slots: np.ndarray,
        last_k: np.ndarray,
        converted: np.ndarray,
        prompted: np.ndarray,
        unsub: np.ndarray,
        last_action: np.ndarray,
        delay_hours: np.ndarray,
    ) -> None:
        """Write ended flows to the shoppers' state and the population's opt-ins."""
        sl = self.slot
        items = None
        if converted.any():  # the orders' items, read from each block at once
            won = slots[converted]
            ids, rows = self.block_of[won], self.row_of[won]
            first = self.blocks[int(ids[0])].batch.items
            if ids.min() == ids.max():
                items = first[rows]
            else:
                items = np.empty((len(won), *first.shape[1:]), dtype=first.dtype)
                for serial in np.unique(ids).tolist():
                    pos = np.flatnonzero(ids == serial)
                    items[pos] = self.blocks[serial].batch.items[rows[pos]]
        write_flows(
            self.world,
            sl["shopper"][slots],
            sl["type_index"][slots],
            sl["abandon_time"][slots],
            sl["tau"][slots],
            sl["value"][slots],
            self.prev_action[slots],
            last_k,
            converted,
            prompted,
            delay_hours,
            items,
        )
        if unsub.any():
            gone = np.flatnonzero(unsub)
            self.world.opt_out(
                sl["shopper"][slots[gone]], sl["opt_channel"][slots[gone], last_action[gone]]
            )
