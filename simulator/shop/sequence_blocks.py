"""Blocks of carts for the sequence envs: drawn from the shop, solved, read in place.

A :class:`Block` is a batch of carts drawn, arrived and evaluated together, with its flows solved
exactly (:func:`simulator.shop.sequence_dp.solve_states`) and the uniforms of its flows drawn at
once. :func:`draw_block` makes one; :func:`group_slots` and :class:`Picker` read the solved
tables of carts spread over several blocks without copying them per slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.shop.carts import CartBatch
from simulator.shop.sequence_dp import StateTables, Workspace, fixed_flow_value, solve_states
from simulator.shop.sequence_model import (
    N_ACTIONS,
    CartParams,
    SequenceConfig,
    channel_of_actions,
    interval_hours,
)
from simulator.shop.world import ShopWorld

TABLE_FIELDS = (  # StateTables fields a block holds, read in place
    "q",
    "immediate",
    "buy",
    "prompted",
    "profit",
    "unsubscribe",
    "tail",
    "natural",
    "fatigue",
)
Groups = list[tuple[dict[str, np.ndarray], Any, np.ndarray]]
_ACTIONS = np.arange(N_ACTIONS)


@dataclass
class Block:
    """A solved block of carts (arrays over its carts)."""

    batch: CartBatch
    arrays: dict[str, np.ndarray]
    params: CartParams  # the flow model's inputs the block was solved with
    tables: StateTables
    serial: int = 0
    next_row: int = 0


def draw_block(
    world: ShopWorld,
    seq: SequenceConfig,
    size: int,
    serial: int,
    build_records: bool,
    spare: StateTables | None,
    work: Workspace,
) -> Block:
    """Draw ``size`` carts from ``world`` and solve their flows (into ``spare`` if given).

    ``build_records``: build the history records of new events now (for a caller that builds a
    context at every touch); otherwise contexts build them on access.
    """
    K = seq.n_touches
    batch = world.draw_batch(size)
    world.arrive(batch)
    world.evaluate(batch)
    if build_records:
        world.build_new_records()
    m = len(batch)
    tau = np.tile(np.asarray(seq.touch_minutes), (m, 1))
    if seq.first_touch_from_cart:
        tau[:, 0] = batch.minutes_since_abandon
        for k in range(1, K):
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
    tables = solve_states(params, mask, world.config, seq, out=spare, work=work)
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
        "u": world.rng.random((m, K, 7)),
        "none_value": fixed_flow_value(tables, np.zeros((m, K), dtype=np.int64), mask),
    }
    for name in TABLE_FIELDS:
        arrays[name] = getattr(tables, name)
    return Block(batch, arrays, params, tables, serial)


def group_slots(
    blocks: dict[int, Block], block_of: np.ndarray, row_of: np.ndarray, slots: np.ndarray
) -> Groups:
    """The slots' carts by block: ``(block arrays, positions in slots, rows in the block)``."""
    ids = block_of[slots]
    rows = row_of[slots]
    if len(ids) == 0 or ids.min() == ids.max():
        serial = int(ids[0]) if len(ids) else next(iter(blocks))
        return [(blocks[serial].arrays, slice(None), rows)]
    out = []
    for serial in np.unique(ids).tolist():
        pos = np.flatnonzero(ids == serial)
        out.append((blocks[serial].arrays, pos, rows[pos]))
    return out


class Picker:
    """Reads of the grouped carts' tables at states ``g`` (and actions ``a``), by flat index.

    The flat indices into each block's (C-ordered) tables are computed once for all the tables
    read, and each read is one ``np.take``.
    """

    def __init__(self, groups: Groups, g: np.ndarray, a: np.ndarray | None = None) -> None:
        self.m = len(g)
        self._groups = groups
        self._g = g
        self._index: dict[int, list[np.ndarray]] = {}  # by table rank (1: rows of 7)
        self._a = a

    def state(self, name: str) -> np.ndarray:
        """``(m,)`` entries of a per-state table (``natural``, ``fatigue``) at ``g``."""
        return self._read(name, 2)

    def action(self, name: str) -> np.ndarray:
        """``(m,)`` entries of a per-action table at ``(g, a)``."""
        return self._read(name, 3)

    def rows(self, name: str) -> np.ndarray:
        """``(m, 7)`` rows of a per-action table at ``g`` (every action)."""
        return self._read(name, 1)

    def _indices(self, kind: int) -> list[np.ndarray]:
        if kind not in self._index:
            out = []
            for arrays, pos, rows in self._groups:
                whole = isinstance(pos, slice)
                g = self._g if whole else self._g[pos]
                n = arrays["natural"].shape[-1]  # the block's carts
                if kind == 2:
                    out.append(g * n + rows)
                elif kind == 3:
                    if self._a is None:
                        raise ValueError("Picker: no actions given")
                    a = self._a if whole else self._a[pos]
                    out.append((g * N_ACTIONS + a) * n + rows)
                else:
                    out.append((g[:, None] * N_ACTIONS + _ACTIONS) * n + rows[:, None])
            self._index[kind] = out
        return self._index[kind]

    def _read(self, name: str, kind: int) -> np.ndarray:
        groups, index = self._groups, self._indices(kind)
        if len(groups) == 1:
            return np.take(groups[0][0][name], index[0])
        shape = (self.m, N_ACTIONS) if kind == 1 else (self.m,)
        out = np.empty(shape, dtype=groups[0][0][name].dtype)
        for (arrays, pos, _), at in zip(groups, index, strict=True):
            out[pos] = np.take(arrays[name], at)
        return out
