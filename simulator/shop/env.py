"""``CartRecovery-v0``: one abandoned shopping cart per episode."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_NAMES, SHOPPER_TYPES
from simulator.shop.render import RENDER_MODES, check_render_mode, render_cart
from simulator.shop.world import OBS_HIGH, OBS_LOW, OBS_NAMES, CartBatch, ShopWorld


def make_config(
    config: SimConfig | Mapping[str, Any] | None, overrides: Mapping[str, Any]
) -> SimConfig:
    """Merge a config (object or mapping) with keyword overrides; unknown keys raise ValueError."""
    if isinstance(config, SimConfig):
        base = dataclasses.asdict(config)
    elif config is None:
        base = {}
    elif isinstance(config, Mapping):
        base = dict(config)
    else:
        raise ValueError(f"config == {config!r}, must be a SimConfig, a mapping or None")
    return SimConfig.from_dict({**base, **overrides})


class CartRecoveryEnv(gym.Env):
    """Recover an abandoned shopping cart.

    ## Description
    Each episode is one abandoned cart in a persistent simulated shop. A shopper of a hidden
    behaviour type (``hesitant``, ``price_sensitive``, ``impulsive``, ``forgetful``) abandons a
    cart; the agent picks one recovery action; the episode ends with the realised profit of that
    cart. Shoppers come back across episodes, and their history (sessions, orders, coupons, past
    recovery contacts) grows, with contact fatigue and coupon conditioning (see
    :mod:`simulator.shop.response`). ``reset(seed=s)`` builds a fresh shop from ``s``; ``reset()``
    without a seed continues the same shop with the next abandoned cart.

    ## Action Space
    ``Discrete(7)``, in the order of ``env.action_names``: ``none``, ``recommendation``,
    ``coupon_5``, ``coupon_10``, ``coupon_20``, ``time_limited_offer``, ``recall_message``.
    Actions the shopper cannot receive (no opt-in on a suitable channel) are 0 in
    ``info["action_mask"]``. Such an action is not delivered: it has the outcome of ``none`` (no
    contact cost, no fatigue or coupon conditioning) and ``info["delivered"]`` is False.

    ## Observation Space
    ``Box(24,)`` float32 with finite bounds (names in ``env.observation_names``): cart value and
    size, session behaviour, device, lifetime activity, purchase and coupon history, past contacts,
    channel opt-ins. Noisy evidence of the hidden type, never the type itself.

    ## Rewards
    Realised profit of the cart in USD: margin on the recovered order minus coupon and offer cost
    minus contact cost if the shopper buys, minus the contact cost otherwise.

    ## Episode End
    Always terminates after one step (``terminated=True``); never truncated.

    ## Info
    On reset and step: ``context`` (the raw record checkout sends, docs/context-schema.md; its
    history lists are shared, treat them as read-only), ``shopper_type``, ``expected_reward``
    (true expected profit of every action, aligned with ``action_names``; an undeliverable action's
    is ``none``'s, so its argmax is the best action the shopper can receive), ``action_mask``,
    ``p_return`` (the cart's true probability of returning to buy with no action: its purchase
    intent, ``p0`` of :mod:`simulator.shop.response`).
    On step also: ``converted``, ``revenue``, ``coupon_cost``, ``profit``, ``contact_cost``,
    ``purchase_delay_hours``, ``purchase_probability`` (true probability the chosen action
    converts), ``delivered`` (False when the chosen action could not reach the shopper).

    ## Arguments
    ``config`` (:class:`SimConfig` or mapping) and keyword overrides of its fields, e.g.
    ``gym.make("CartRecovery-v0", n_shoppers=2000, coupon_conditioning=False)``;
    ``block_size``: carts drawn per vectorised block (internal batching, does not change behaviour
    beyond the simultaneity of carts within a block); ``render_mode``: None, ``"ansi"`` (a text
    summary of the cart) or ``"rgb_array"`` (a bar chart of the expected profit per action).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": list(RENDER_MODES), "render_fps": 4}
    action_names: tuple[str, ...] = ACTION_NAMES
    observation_names: tuple[str, ...] = OBS_NAMES

    def __init__(
        self,
        config: SimConfig | Mapping[str, Any] | None = None,
        block_size: int = 256,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        self.render_mode = check_render_mode(render_mode)
        self.config = make_config(config, overrides)
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(
                f"CartRecoveryEnv: block_size == {block_size!r}, must be an integer >= 1"
            )
        self.block_size = block_size
        self.action_space = spaces.Discrete(len(ACTION_NAMES))
        self.observation_space = spaces.Box(OBS_LOW, OBS_HIGH, dtype=np.float32)
        self.world: ShopWorld | None = None
        self._batch: CartBatch | None = None
        self._row = -1
        self._dirty: set[int] = set()  # shoppers changed since the block's evaluation
        self._shoppers: list[int] = []
        self._types: list[str] = []
        self._info: dict[str, Any] | None = None
        self._outcome: dict[str, Any] | None = None  # the current cart's, once resolved

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start the next episode: the next abandoned cart, ``(observation, info)``.

        With ``seed`` (or on the first call) a fresh shop is built from the seeded generator;
        without, the same shop continues. ``options`` is accepted and ignored.
        """
        super().reset(seed=seed)
        if seed is not None or self.world is None:
            self.world = ShopWorld(self.config, self.np_random)
            self._batch = None
        self._row += 1
        if self._batch is None or self._row >= len(self._batch):
            self._new_block()
        batch, i = self._batch, self._row
        if self._shoppers[i] in self._dirty:
            # Re-evaluate every later cart whose shopper changed since the block was evaluated,
            # in one vectorised call (they are usually few).
            rows = [j for j in range(i, len(self._shoppers)) if self._shoppers[j] in self._dirty]
            self.world.evaluate(batch, np.array(rows))
            self._dirty.clear()
        self._info = {
            "context": self.world.context(batch, i),
            "shopper_type": self._types[i],
            "expected_reward": batch.expected_reward[i].copy(),
            "action_mask": batch.action_mask[i].copy(),
            "p_return": float(batch.purchase_probability[i, 0]),
        }
        self._outcome = None
        return batch.observation[i].copy(), dict(self._info)

    def _new_block(self) -> None:
        size = self.block_size
        until_shift = self.world.episodes_until_shift()
        if until_shift:  # end the block exactly where the type mixture shifts
            size = min(size, until_shift)
        batch = self.world.draw_batch(size)
        self.world.arrive(batch)
        self.world.evaluate(batch)
        self.world.build_new_records()
        self._batch, self._row = batch, 0
        self._shoppers = batch.shopper.tolist()
        self._types = [SHOPPER_TYPES[t] for t in batch.type_index.tolist()]
        self._dirty.clear()

    def step(self, action: Any):
        """Apply ``action`` to the cart: ``(observation, profit, True, False, info)``."""
        if self._info is None:
            raise RuntimeError(
                "CartRecoveryEnv: call reset() before step(); each episode has one step"
            )
        a = _check_action(action)
        batch, i = self._batch, self._row
        outcome = self.world.resolve_one(batch, i, a)
        outcome["purchase_probability"] = float(batch.purchase_probability[i, a])
        self._dirty.add(self._shoppers[i])
        reset_info = self._info
        self._info = None
        self._outcome = {"action": a, **outcome}
        info = {  # fresh objects: the reset info the caller holds must not change
            "context": _copy_context(reset_info["context"]),
            "shopper_type": reset_info["shopper_type"],
            "expected_reward": reset_info["expected_reward"].copy(),
            "action_mask": reset_info["action_mask"].copy(),
            "p_return": reset_info["p_return"],
            **outcome,
        }
        return batch.observation[i].copy(), outcome["profit"], True, False, info

    def render(self) -> str | np.ndarray | None:
        """The current cart in ``render_mode``, with the chosen action and outcome once stepped."""
        if self.render_mode is None:
            gym.logger.warn(
                "CartRecoveryEnv.render() called with render_mode=None: nothing to render"
            )
            return None
        if self._batch is None:
            raise RuntimeError("CartRecoveryEnv: call reset() before render()")
        batch, i = self._batch, self._row
        return render_cart(
            self.render_mode,
            float(batch.value[i]),
            batch.expected_reward[i],
            batch.action_mask[i],
            self._outcome,
        )


def _copy_context(ctx: dict[str, Any]) -> dict[str, Any]:
    """A copy that shares no container with ``ctx`` (history records stay shared and read-only)."""
    history = dict(ctx["history"])
    history["orders"] = list(history["orders"])
    history["contacts"] = list(history["contacts"])
    return {
        **ctx,
        "cart": [dict(line) for line in ctx["cart"]],
        "session": dict(ctx["session"]),
        "channels": dict(ctx["channels"]),
        "history": history,
    }


def _check_action(action: Any) -> int:
    try:
        a = int(action)
    except (TypeError, ValueError):
        raise ValueError(
            f"action == {action!r}, must be an integer in [0, {len(ACTION_NAMES)})"
        ) from None
    if a != action or not 0 <= a < len(ACTION_NAMES):
        raise ValueError(f"action == {action!r}, must be an integer in [0, {len(ACTION_NAMES)})")
    return a
