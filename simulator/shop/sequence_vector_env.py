"""A native numpy-batched vector version of ``CartRecoverySequence-v0``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

from simulator.shop.config import SimConfig
from simulator.shop.constants import ACTION_NAMES
from simulator.shop.env import make_config
from simulator.shop.sequence_dp import best_eligible
from simulator.shop.sequence_model import SequenceConfig
from simulator.shop.sequence_records import SEQ_OBS_HIGH, SEQ_OBS_LOW, SEQ_OBS_NAMES, type_names
from simulator.shop.sequence_sim import FlowSimulator
from simulator.shop.vector_common import check_actions, check_num_envs, record_index, set_spaces
from simulator.shop.world import ShopWorld


class FlowContexts(Sequence):
    """The context records of the slots' current touches, built on access (plain dicts)."""

    def __init__(self, sim: FlowSimulator, records: list[dict[str, Any]] | None = None) -> None:
        self._sim = sim
        self._records = records

    def __len__(self) -> int:
        return self._sim.n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._sim.context(record_index(i, len(self), f"{len(self)} envs"))

    def freeze(self) -> list[dict[str, Any]]:
        """Every record now (they change when the env steps)."""
        return [self._sim.context(j) for j in range(len(self))]


class CartRecoverySequenceVectorEnv(VectorEnv):
    """``num_envs`` recovery flows stepped together with numpy.

    Flows end at different touches; a slot whose flow ends takes the next cart in the same step
    (``AutoresetMode.SAME_STEP``): ``info["final_info"]`` holds the ended step's outcomes
    (``converted``, ``prompted``, ``unsubscribed``, ``delivered``, ``coupon_cost``,
    ``episode_return``, ``expected_reward`` of the action taken, ``touch``) for every slot
    (read it where ``terminated``). ``info`` holds ``context`` (:class:`FlowContexts`, valid
    until the next step), ``q_optimal``, ``optimal_value``, ``expected_reward``, ``action_mask``
    (num_envs, 7), ``touch`` (1-based) and ``shopper_type``.

    Example:
        >>> import gymnasium as gym, simulator
        >>> envs = gym.make_vec("CartRecoverySequence-v0", num_envs=8,
        ...                     vectorization_mode="vector_entry_point", n_shoppers=300)
        >>> obs, info = envs.reset(seed=1)
        >>> obs.shape, info["q_optimal"].shape, int(info["touch"][0])
        ((8, 29), (8, 7), 1)
    """

    metadata: ClassVar[dict[str, Any]] = {
        "autoreset_mode": AutoresetMode.SAME_STEP,
        "render_modes": [],
    }
    action_names: tuple[str, ...] = ACTION_NAMES
    observation_names: tuple[str, ...] = SEQ_OBS_NAMES

    def __init__(
        self,
        num_envs: int = 1,
        config: SimConfig | Mapping[str, Any] | None = None,
        sequence: SequenceConfig | Mapping[str, Any] | None = None,
        block_size: int | None = None,
        **overrides: Any,
    ) -> None:
        check_num_envs(num_envs, "CartRecoverySequenceVectorEnv")
        overrides.pop("render_mode", None)
        self.config = make_config(config, overrides)
        self.sequence = SequenceConfig.from_value(sequence)
        self.num_envs = num_envs
        self.block_size = block_size or max(num_envs, 256)
        set_spaces(self, SEQ_OBS_LOW, SEQ_OBS_HIGH)
        self.world: ShopWorld | None = None
        self.sim: FlowSimulator | None = None
        self._all = np.arange(num_envs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start new flows in every slot.

        ``reset(seed=s)`` builds a fresh shop from ``s``; ``reset()`` keeps the shop.
        """
        super().reset(seed=seed)
        if seed is not None or self.world is None:
            self.world = ShopWorld(self.config, self.np_random)
            self.sim = FlowSimulator(
                self.world, self.config, self.sequence, self.num_envs, self.block_size
            )
        else:
            self.sim.refill(self._all)
        return self.sim.observe(self._all), self._infos()

    def _infos(self) -> dict[str, Any]:
        sim = self.sim
        q, immediate, mask = sim.truth(self._all)
        return {
            "context": FlowContexts(sim),
            "q_optimal": q,  # truth's arrays are new ones
            "optimal_value": best_eligible(q, mask),
            "expected_reward": immediate,
            "action_mask": mask.astype(np.int8),
            "touch": sim.touch + 1,
            "shopper_type": type_names(sim.slot["type_index"]),
        }

    def step(self, actions: Any):
        """Send one touch in every slot; ended flows restart in the same step (see the class)."""
        if self.sim is None:
            raise RuntimeError("CartRecoverySequenceVectorEnv: call reset() before step()")
        out = self.sim.step(self._all, check_actions(actions, self.num_envs))
        terminated = out.pop("terminated")
        reward = out.pop("reward")
        final_obs = None
        ended = np.flatnonzero(terminated)
        obs = self.sim.observe(self._all)
        if len(ended):
            # the ended flows' last state, before the restart; the other slots' flows go on, so
            # their entries are their next observation (observations are computed row by row)
            final_obs = obs
            self.sim.refill(ended)
            obs = obs.copy()
            obs[ended] = self.sim.observe(ended)
        infos = self._infos()
        out["shopper_type"] = infos["shopper_type"].copy()
        infos.update(
            final_obs=final_obs,
            _final_obs=terminated.copy(),
            final_info=out,
            _final_info=terminated.copy(),
        )
        return (
            obs,
            reward,
            terminated,
            np.zeros(self.num_envs, dtype=bool),
            infos,
        )
