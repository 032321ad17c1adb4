"""A native numpy-batched vector version of ``CartRecovery-v0``: many carts per call."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_NAMES, SHOPPER_TYPES
from simulator.shop.env import make_config
from simulator.shop.render import RENDER_MODES, check_render_mode, render_cart
from simulator.shop.vector_common import check_actions, check_num_envs, record_index, set_spaces
from simulator.shop.world import OBS_HIGH, OBS_LOW, OBS_NAMES, CartBatch, ShopWorld

_TYPE_NAMES = np.array(SHOPPER_TYPES, dtype=object)


class ContextBatch(Sequence):
    """The context records of one batch, built on access (``contexts[i]`` is a plain dict).

    Building a dict per cart costs more than simulating the cart, so a batch keeps its columns and
    materialises records only when asked; each record is exactly what the single env would put in
    ``info["context"]``.
    """

    def __init__(self, world: ShopWorld, batch: CartBatch) -> None:
        self._world, self._batch = world, batch

    def __len__(self) -> int:
        return len(self._batch)

    @property
    def user_ids(self) -> list[str]:
        """The carts' user ids, without building the records."""
        ids = self._world.population.user_ids
        return [ids[s] for s in self._batch.shopper.tolist()]

    @property
    def timestamps(self) -> np.ndarray:
        """The carts' decision times (unix seconds), without building the records."""
        return self._batch.time.copy()

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self._world.context(self._batch, j) for j in range(*i.indices(len(self)))]
        j = record_index(i, len(self), f"a batch of {len(self)}")
        return self._world.context(self._batch, j)


class CartRecoveryVectorEnv(VectorEnv):
    """``num_envs`` abandoned carts per step, simulated together with numpy.

    Every episode lasts one step, so the env auto-resets in the same step
    (``AutoresetMode.SAME_STEP``): ``step(actions)`` resolves the current carts, returns their
    rewards, and the observations and infos of the *next* carts. The resolved carts' outcomes are in
    ``info["final_info"]`` (``converted``, ``revenue``, ``coupon_cost``, ``profit``,
    ``contact_cost``, ``purchase_delay_hours``, ``delivered``, ``expected_reward``,
    ``purchase_probability`` of the chosen action, ``shopper_type``, ``p_return``) and their
    observations in ``info["final_obs"]``. An action a shopper cannot receive (``action_mask`` 0)
    is not delivered: it has the outcome of ``none`` and ``delivered`` False.

    ``info`` holds ``context`` (a :class:`ContextBatch`), ``shopper_type`` (object array),
    ``expected_reward`` (num_envs, 7), ``action_mask`` (num_envs, 7) and ``p_return`` (num_envs,):
    each cart's true probability of returning to buy with no action. Carts of one step are
    simultaneous: two carts of the same shopper in one batch both see the state before the batch.
    ``render_mode``: None, ``"ansi"`` or ``"rgb_array"``; ``render()`` gives one frame per cart.

    Example:
        >>> import gymnasium as gym, simulator
        >>> envs = gym.make_vec(
        ...     "CartRecovery-v0", num_envs=8, vectorization_mode="vector_entry_point",
        ...     n_shoppers=300,
        ... )
        >>> obs, info = envs.reset(seed=1)
        >>> obs.shape, info["expected_reward"].shape
        ((8, 24), (8, 7))
        >>> best = info["expected_reward"].argmax(axis=1)
        >>> obs, reward, terminated, truncated, info = envs.step(best)
        >>> bool(terminated.all()), reward.shape
        (True, (8,))
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": list(RENDER_MODES),
        "render_fps": 4,
    }
    action_names: tuple[str, ...] = ACTION_NAMES
    observation_names: tuple[str, ...] = OBS_NAMES

    def __init__(
        self,
        num_envs: int = 1,
        config: SimConfig | Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        **overrides: Any,
    ) -> None:
        check_num_envs(num_envs, "CartRecoveryVectorEnv")
        self.render_mode = check_render_mode(render_mode)
        self.config = make_config(config, overrides)
        self.num_envs = num_envs
        set_spaces(self, OBS_LOW, OBS_HIGH)
        self.world: ShopWorld | None = None
        self._batch: CartBatch | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw the next batch of carts: ``(observations, infos)``.

        ``reset(seed=s)`` seeds ``np_random`` (as Gymnasium's vector envs do) and builds a fresh
        shop from it; ``reset()`` continues the same shop (building one from an unseeded generator
        the first time) with the next batch of carts. ``options`` is accepted and ignored.
        """
        super().reset(seed=seed)
        if seed is not None or self.world is None:
            self.world = ShopWorld(self.config, self.np_random)
        self._next_batch()
        return self._batch.observation.copy(), self._infos()

    def _next_batch(self) -> None:
        batch = self.world.draw_batch(self.num_envs)
        self.world.arrive(batch)
        self.world.evaluate(batch)
        self._batch = batch

    def _infos(self) -> dict[str, Any]:
        b = self._batch
        return {
            "context": ContextBatch(self.world, b),
            "shopper_type": _TYPE_NAMES[b.type_index],
            "expected_reward": b.expected_reward.copy(),
            "action_mask": b.action_mask.copy(),
            "p_return": b.purchase_probability[:, 0].copy(),
        }

    def step(self, actions: Any):
        """Resolve the current carts with ``actions`` and draw the next batch (same-step reset).

        Returns ``(observations, rewards, terminated, truncated, infos)``; the resolved carts'
        outcomes and observations are in ``infos["final_info"]`` and ``infos["final_obs"]``.
        """
        if self._batch is None:
            raise RuntimeError("CartRecoveryVectorEnv: call reset() before step()")
        acts = check_actions(actions, self.num_envs)
        old = self._batch
        outcome = self.world.resolve(old, np.arange(self.num_envs), acts)
        outcome["expected_reward"] = old.expected_reward
        outcome["purchase_probability"] = old.purchase_probability[np.arange(self.num_envs), acts]
        outcome["shopper_type"] = _TYPE_NAMES[old.type_index]
        outcome["p_return"] = old.purchase_probability[:, 0].copy()
        final_obs = old.observation
        self._next_batch()
        infos = self._infos()
        everyone = np.ones(self.num_envs, dtype=bool)
        infos.update(
            final_obs=final_obs, _final_obs=everyone, final_info=outcome, _final_info=everyone
        )
        return (
            self._batch.observation.copy(),
            outcome["profit"].astype(np.float64),
            everyone.copy(),
            np.zeros(self.num_envs, dtype=bool),
            infos,
        )

    def render(self) -> tuple[str | np.ndarray, ...] | None:
        """The current carts in ``render_mode``, one frame each (None without a render mode)."""
        if self.render_mode is None:
            return None
        if self._batch is None:
            raise RuntimeError("CartRecoveryVectorEnv: call reset() before render()")
        b = self._batch
        return tuple(
            render_cart(self.render_mode, float(b.value[j]), b.expected_reward[j], b.action_mask[j])
            for j in range(self.num_envs)
        )
