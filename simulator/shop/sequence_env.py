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
from simulator.shop.sequence_one import OneFlow
from simulator.shop.sequence_records import SEQ_OBS_HIGH, SEQ_OBS_LOW, SEQ_OBS_NAMES
from simulator.shop.sequence_sim import FlowSimulator
from simulator.shop.world import ShopWorld


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
    just played); after the last step only these, ``shopper_type`` and ``touch`` (the touch
    played; before it, ``touch`` is the next touch's, as ``context``).

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
        self.flow: OneFlow | None = None
        self._active = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a flow on the next cart; ``seed`` builds a fresh shop."""
        super().reset(seed=seed)
        if seed is not None or self.world is None or self.flow is None:
            self.world = ShopWorld(self.config, self.np_random)
            self.sim = FlowSimulator(
                self.world, self.config, self.sequence, 0, self.block_size, build_records=True
            )
            self.flow = OneFlow(self.sim)
        else:
            self.flow.start()
        self._active = True
        return self.flow.observe(), self._info()

    def _info(self) -> dict[str, Any]:
        flow = self.flow
        q, immediate = flow.truth()
        mask = flow.mask
        return {
            "context": flow.context(),
            "q_optimal": q.copy(),
            "optimal_value": float(q[mask].max()),
            "expected_reward": immediate.copy(),
            "action_mask": mask.astype(np.int8),
            "shopper_type": SHOPPER_TYPES[flow.type_index],
            "touch": flow.touch + 1,
        }

    def step(self, action: Any):
        """Send ``action`` at the current touch and realise the interval until the next one."""
        if not self._active:
            raise RuntimeError(
                "CartRecoverySequenceEnv: call reset() before step() (the episode has ended)"
            )
        out = self.flow.step(_check_action(action))
        reward, terminated = out.pop("reward"), out.pop("terminated")
        # info["expected_reward"]: the next touch's; the touch just played's is renamed
        out["expected_reward_taken"] = out.pop("expected_reward")
        if terminated:
            self._active = False
            obs = self.flow.observe()  # the last touch's state, updated with what was sent
            info = {"shopper_type": SHOPPER_TYPES[self.flow.type_index], **out}
        else:
            obs = self.flow.observe()
            info = {**out, **self._info()}  # touch: the next one, as the context's
        return obs, reward, terminated, False, info
