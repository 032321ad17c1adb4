"""``CartRecoverySequence-v0``: one abandoned cart per episode, recovered by a flow of touches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_NAMES, SHOPPER_TYPES
from simulator.shop.env import _check_action, make_config
from simulator.shop.sequence_model import SequenceConfig
from simulator.shop.sequence_sim import SEQ_OBS_HIGH, SEQ_OBS_LOW, SEQ_OBS_NAMES, FlowSimulator
from simulator.shop.world import ShopWorld

_ONE = np.zeros(1, dtype=np.int64)


class CartRecoverySequenceEnv(gym.Env):
    """Recover an abandoned cart with up to ``K`` touches (default at 60, 720 and 1440 minutes).

    ## Description
    The shop of ``CartRecovery-v0``; each episode is one abandoned cart and each step one touch of
    its recovery flow. Between touches the shopper may buy unprompted, be converted by the last
    message, open or click it (observed at the next touch) or unsubscribe; the model and its
    exact dynamic-programming solution are in :mod:`simulator.shop.sequence_model`.

    ## Action Space
    ``Discrete(7)``, the actions of ``CartRecovery-v0`` (``env.action_names``).

    ## Observation Space
    ``Box(29,)`` float32: the 24 cart features of ``CartRecovery-v0`` (minutes since abandonment
    at this touch) and ``touch`` (0-based), ``previous_contacts``, ``last_opened``,
    ``last_clicked``, ``coupon_held`` (best coupon percent received / 20).

    ## Rewards
    Profit realised in the interval after the touch (USD): the margin net of the best incentive
    held if the shopper buys, minus the contact cost, minus ``unsubscribe_cost`` if the shopper
    unsubscribes (plus an unprompted purchase that may still follow).

    ## Episode End
    Terminates on purchase, unsubscribe or after the last touch; never truncated.

    ## Info
    ``context`` (the record checkout sends, with ``context["recovery"]``: ``touch`` (1-based) and
    ``previous`` touches with ``action``, ``minutes_after_abandon``, ``opened``, ``clicked``),
    ``q_optimal`` (per action, expected return to the end of the episode if the rest is played
    optimally), ``optimal_value`` (its max over eligible actions), ``expected_reward`` (per action,
    expected reward of this touch alone), ``action_mask``, ``shopper_type``, ``touch``. An action
    outside ``action_mask`` cannot be delivered: it has the outcome of ``none`` (its
    ``q_optimal`` and ``expected_reward`` are none's, and the flow's history records ``none``),
    as in ``CartRecovery-v0``.
    On step also ``converted``, ``prompted``, ``unsubscribed``, ``delivered``, ``coupon_cost``,
    ``episode_return``, ``purchase_hours_after_abandon``, ``expected_reward_taken`` (of the touch
    just played); after the last step only these and ``shopper_type``.

    ## Arguments
    ``config`` / keyword overrides as for ``CartRecovery-v0``; ``sequence``: a
    :class:`SequenceConfig` or mapping (``touch_minutes``, ``first_touch_from_cart``,
    ``unsubscribe_base``, ``unsubscribe_gap_hours``, ``unsubscribe_cost``); ``block_size``: carts
    drawn and solved together.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    action_names: tuple[str, ...] = ACTION_NAMES
    observation_names: tuple[str, ...] = SEQ_OBS_NAMES

    def __init__(
        self,
        config: SimConfig | Mapping[str, Any] | None = None,
        sequence: SequenceConfig | Mapping[str, Any] | None = None,
        block_size: int = 256,
        **overrides: Any,
    ) -> None:
        self.config = make_config(config, overrides)
        self.sequence = SequenceConfig.from_value(sequence)
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
            raise ValueError(
                f"CartRecoverySequenceEnv: block_size == {block_size!r}, must be an integer >= 1"
            )
        self.block_size = block_size
        self.action_space = spaces.Discrete(len(ACTION_NAMES))
        self.observation_space = spaces.Box(SEQ_OBS_LOW, SEQ_OBS_HIGH, dtype=np.float32)
        self.world: ShopWorld | None = None
        self.sim: FlowSimulator | None = None
        self._active = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a flow on the next cart; ``seed`` builds a fresh shop."""
        super().reset(seed=seed)
        if seed is not None or self.world is None:
            self.world = ShopWorld(self.config, self.np_random)
            self.sim = FlowSimulator(self.world, self.config, self.sequence, 1, self.block_size)
        else:
            self.sim.refill(_ONE)
        self._active = True
        return self.sim.observe(_ONE)[0], self._info()

    def _info(self) -> dict[str, Any]:
        sim = self.sim
        q, immediate, mask = sim.truth(_ONE)
        q, mask = q[0].copy(), mask[0].astype(np.int8)
        return {
            "context": sim.context(0),
            "q_optimal": q,
            "optimal_value": float(np.where(mask.astype(bool), q, -np.inf).max()),
            "expected_reward": immediate[0].copy(),
            "action_mask": mask,
            "shopper_type": SHOPPER_TYPES[int(sim.slot["type_index"][0])],
            "touch": int(sim.touch[0]) + 1,
        }

    def step(self, action: Any):
        """Send ``action`` at the current touch and realise the interval until the next one."""
        if not self._active:
            raise RuntimeError(
                "CartRecoverySequenceEnv: call reset() before step() (the episode has ended)"
            )
        a = _check_action(action)
        out = self.sim.step(_ONE, np.array([a], dtype=np.int64))
        terminated = bool(out["terminated"][0])
        extra = {
            name: (v[0].item() if isinstance(v[0], np.generic) else v[0])
            for name, v in out.items()
            if name not in ("reward", "terminated")
        }
        extra["expected_reward_taken"] = extra.pop(
            "expected_reward"
        )  # info["expected_reward"]: the next touch's
        hours = extra["purchase_hours_after_abandon"]
        extra["purchase_hours_after_abandon"] = (
            None if hours != hours else hours
        )  # None: no purchase
        if terminated:
            self._active = False
            obs = self.sim.observe(_ONE)[0]  # the last touch's state, updated with what was sent
            info = {"shopper_type": SHOPPER_TYPES[int(self.sim.slot["type_index"][0])], **extra}
        else:
            obs = self.sim.observe(_ONE)[0]
            info = {**self._info(), **extra}
        return obs, float(out["reward"][0]), terminated, False, info
