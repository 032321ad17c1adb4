"""Flows in progress: ``num_slots`` carts, each somewhere in its recovery flow, stepped together.

Both sequence envs run on :class:`FlowSimulator`. Carts come from the shared :class:`ShopWorld`
in blocks (drawn, arrived and evaluated together, so carts of one block are simultaneous, as in
the vector single-step env); each block is solved exactly
(:func:`simulator.shop.sequence_model.solve`) and its uniforms are drawn at once. A slot that
ends its flow takes the next cart of the block. Ended flows are written to the shoppers' state
(contacts, fatigue, coupon conditioning, the order, unsubscribes) when they end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.shop.carts import CartBatch
from simulator.shop.config import SimConfig
from simulator.shop.constants import CHANNELS
from simulator.shop.response import DISCOUNT
from simulator.shop.sequence_model import (
    N_ACTIONS,
    CartParams,
    SequenceConfig,
    channel_of_actions,
    fixed_flow_probabilities,
    interval_hours,
    policy_value,
    solve,
)
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
_FIELDS_TABLE = (
    "buy",
    "prompted",
    "natural",
    "profit",
    "contact",
    "unsubscribe",
    "tail",
    "fatigue",
    "immediate",
    "q",
)


@dataclass
class _Block:
    """A solved block of carts (arrays over its carts)."""

    batch: CartBatch
    arrays: dict[str, np.ndarray]
    params: CartParams  # the flow model's inputs the block was solved with
    next_row: int = 0


class FlowSimulator:
    """``num_slots`` flows in progress on one shop; see the module notes.

    Args:
        world: the shop.
        config: its settings.
        seq: the flow's settings.
        num_slots: flows stepped together.
        block_size: carts drawn per block.
    """

    def __init__(
        self,
        world: ShopWorld,
        config: SimConfig,
        seq: SequenceConfig,
        num_slots: int,
        block_size: int,
    ) -> None:
        self.world, self.config, self.seq = world, config, seq
        self.rng = world.rng
        self.n = num_slots
        self.K = seq.n_touches
        self.block_size = max(block_size, 1)
        self.offsets = np.concatenate([[0], np.cumsum(N_ACTIONS ** np.arange(self.K))])
        self._block: _Block | None = None
        self.slot: dict[str, np.ndarray] = {}
        self.batch_of: list[CartBatch | None] = [None] * num_slots
        self.row_of = np.zeros(num_slots, dtype=np.int64)
        self.touch = np.zeros(num_slots, dtype=np.int64)
        self.prefix = np.zeros(num_slots, dtype=np.int64)
        self.prev_action = np.zeros((num_slots, self.K), dtype=np.int64)
        self.prev_opened = np.zeros((num_slots, self.K), dtype=bool)
        self.prev_clicked = np.zeros((num_slots, self.K), dtype=bool)
        self.episode_return = np.zeros(num_slots)
        self.refill(np.arange(num_slots))

    # ------------------------------------------------------------------ carts
    def _new_block(self) -> _Block:
        world, seq = self.world, self.seq
        batch = world.draw_batch(self.block_size)
        world.arrive(batch)
        world.evaluate(batch)
        world.build_new_records()
        m = len(batch)
        tau = np.tile(np.asarray(seq.touch_minutes), (m, 1))
        if seq.first_touch_from_cart:
            tau[:, 0] = batch.minutes_since_abandon
            for k in range(1, self.K):
                tau[:, k] = np.maximum(tau[:, k], tau[:, k - 1] + 1.0)
        abandon = batch.time - batch.minutes_since_abandon * 60.0
        t1 = abandon + tau[:, 0] * 60.0
        if seq.first_touch_from_cart:
            t1 = batch.time
        st, s = world.shoppers, batch.shopper
        opt_in = world.population.channels[s]
        params = CartParams(
            batch.type_index,
            batch.value,
            batch.margin,
            world.population.match[s],
            st.expectation_at(s, t1),
            st.fatigue_at(s, t1),
            st.n_orders[s],
            channel_of_actions(opt_in),
            tau,
            batch.intent,
        )
        mask = batch.action_mask.astype(bool)
        tables = solve(params, mask, self.config, seq)
        arrays: dict[str, np.ndarray] = {
            "shopper": s,
            "type_index": batch.type_index,
            "value": batch.value,
            "margin": batch.margin,
            "abandon_time": abandon,
            "delay_hours": batch.purchase_delay_hours,
            "opt_channel": params.channel,
            "tau": tau,
            "interval": interval_hours(tau),
            "mask": mask,
            "obs": batch.observation,
            "u": self.rng.random((m, self.K, 7)),
            "none_value": policy_value(
                tables, fixed_flow_probabilities([np.zeros(m, dtype=np.int64)] * self.K, mask)
            ),
        }
        names = {"profit": "profit_if_bought"}
        for name in _FIELDS_TABLE:
            parts = getattr(tables, names.get(name, name))
            if parts[0].ndim == 2:
                parts = [p[:, :, None] for p in parts]
            arrays[name] = np.concatenate(
                [np.broadcast_to(p, (m, p.shape[1], N_ACTIONS)) for p in parts], axis=1
            )
        return _Block(batch, arrays, params)

    def block_inputs(self) -> tuple[CartParams, np.ndarray]:
        """The current block's flow-model inputs and action mask, as it was solved with."""
        return self._block.params, self._block.arrays["mask"]

    def refill(self, slots: np.ndarray) -> None:
        """Start new flows in ``slots`` with the next carts."""
        slots = np.asarray(slots, dtype=np.int64)
        done = 0
        while done < len(slots):
            if self._block is None or self._block.next_row >= len(self._block.batch):
                self._block = self._new_block()
            block = self._block
            take = min(len(slots) - done, len(block.batch) - block.next_row)
            rows = np.arange(block.next_row, block.next_row + take)
            target = slots[done : done + take]
            for name, arr in block.arrays.items():
                if name not in self.slot:
                    self.slot[name] = np.zeros((self.n, *arr.shape[1:]), dtype=arr.dtype)
                self.slot[name][target] = arr[rows]
            for j in target.tolist():
                self.batch_of[j] = block.batch
            self.row_of[target] = rows
            block.next_row += take
            done += take
        self.touch[slots] = 0
        self.prefix[slots] = 0
        self.prev_action[slots] = NONE
        self.prev_opened[slots] = False
        self.prev_clicked[slots] = False
        self.episode_return[slots] = 0.0

    # ------------------------------------------------------------------ what is seen
    def _g(self, slots: np.ndarray) -> np.ndarray:
        return self.offsets[self.touch[slots]] + self.prefix[slots]

    def truth(self, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(q_optimal, immediate expected reward, action mask)`` of the current touch.

        Each is ``(m, 7)``.
        """
        g = self._g(slots)
        return self.slot["q"][slots, g], self.slot["immediate"][slots, g], self.slot["mask"][slots]

    def observe(self, slots: np.ndarray) -> np.ndarray:
        """Observations (float32, :data:`SEQ_OBS_NAMES`) of the current touch."""
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
            self.world.context(self.batch_of[slot], int(self.row_of[slot])),
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
        sl = self.slot
        m = len(slots)
        rows = np.arange(m)
        mask = sl["mask"][slots]
        alive = np.ones(m)
        prefix = np.zeros(m, dtype=np.int64)
        value = np.zeros(m)
        for k in range(self.K):
            a = np.where(mask[rows, actions[:, k]], actions[:, k], NONE)
            g = self.offsets[k] + prefix
            value += alive * sl["immediate"][slots, g, a]
            alive = alive * (1.0 - sl["buy"][slots, g, a]) * (1.0 - sl["unsubscribe"][slots, g, a])
            prefix = prefix * N_ACTIONS + a
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
        k = self.touch[slots]
        g = self._g(slots)
        delivered = sl["mask"][slots, actions]
        a = np.where(delivered, actions, NONE)  # an undeliverable action is played as none
        u = sl["u"][slots, k]  # (m, 7) uniforms of this touch
        natural = u[:, 0] < sl["natural"][slots, g, 0]
        p_prompt = sl["prompted"][slots, g, a]
        prompted = u[:, 1] < p_prompt
        bought = natural | prompted
        profit = sl["profit"][slots, g, a]
        contact = sl["contact"][slots, g, a]
        reward = np.where(bought, profit, 0.0) - contact
        unsub = ~bought & (u[:, 2] < sl["unsubscribe"][slots, g, a])
        tail_bought = unsub & (u[:, 3] < sl["tail"][slots, g, a])
        reward += np.where(tail_bought, profit, 0.0) - np.where(
            unsub, self.seq.unsubscribe_cost, 0.0
        )
        last_touch = k == self.K - 1
        terminated = bought | unsub | last_touch
        sent = a != NONE
        chan = sl["opt_channel"][slots, a]
        open_p = (
            _OPEN_RATE[sl["type_index"][slots]]
            * _CHANNEL_OPEN[np.maximum(chan, 0)]
            * np.exp(-0.15 * sl["fatigue"][slots, g, 0])
        )
        opened = sent & (bought | (u[:, 4] < open_p))
        clicked = opened & (bought & prompted | (u[:, 5] < np.minimum(0.05 + 2.0 * p_prompt, 0.8)))
        self.prev_action[slots, k] = a
        self.prev_opened[slots, k] = opened
        self.prev_clicked[slots, k] = clicked
        expected = sl["immediate"][slots, g, a]
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
            "episode_return": self.episode_return[slots].copy(),
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
        self.prefix[slots[going]] = self.prefix[slots[going]] * N_ACTIONS + a[going]
        self.touch[slots[going]] += 1
        held = np.where(
            np.arange(self.K)[None, :] <= k[:, None], DISCOUNT[self.prev_action[slots]], 0.0
        ).max(axis=1)
        out["coupon_cost"] = np.where(out["converted"], held * sl["value"][slots], 0.0)
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
        items = (
            np.stack(
                [
                    self.batch_of[s].items[r]
                    for s, r in zip(
                        slots[converted].tolist(),
                        self.row_of[slots[converted]].tolist(),
                        strict=True,
                    )
                ]
            )
            if converted.any()
            else None
        )
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
