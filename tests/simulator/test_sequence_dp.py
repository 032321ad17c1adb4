"""The merged-state dynamic program (sequence_dp) against the prefix solver (sequence_model)."""

import gymnasium as gym
import numpy as np
import pytest

import simulator  # noqa: F401  (registers the envs)
from simulator.shop.config import SimConfig
from simulator.shop.sequence_dp import (
    StateTables,
    Workspace,
    fixed_flow_value,
    solve_states,
    state_graph,
)
from simulator.shop.sequence_model import (
    CartParams,
    SequenceConfig,
    channel_of_actions,
    fixed_flow_probabilities,
    policy_value,
    solve,
)

PER_ACTION = ("q", "immediate", "buy", "prompted", "profit", "unsubscribe", "tail")
TIMES = (60.0, 720.0, 1440.0, 2880.0)


def _carts(rng, n, K, intent, spread_times):
    if spread_times:  # per-cart touch times, as with first_touch_from_cart
        tau = np.sort(rng.uniform(1.0, 3000.0, (n, K)), axis=1)
    else:
        tau = np.tile(TIMES[:K], (n, 1))
    return CartParams(
        rng.integers(0, 4, n),
        rng.uniform(20, 200, n),
        rng.uniform(5, 60, n),
        rng.uniform(0, 1, n),
        rng.uniform(0, 0.9, n),
        rng.uniform(0, 3, n),
        rng.integers(0, 12, n),
        channel_of_actions(rng.random((n, 3)) < 0.7),
        tau,
        rng.normal(0.0, 1.0, n) if intent else None,
    )


def _assert_same(old, new, mask, K):
    for k in range(K):
        for name in PER_ACTION:
            ref = np.broadcast_to(
                getattr(old, {"profit": "profit_if_bought"}.get(name, name))[k],
                new.by_prefix(name, k).shape,
            )
            got = new.by_prefix(name, k)
            if name not in ("q", "immediate"):  # read only for deliverable actions
                ref = np.where(mask[:, None, :], ref, 0.0)
                got = np.where(mask[:, None, :], got, 0.0)
            np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12, err_msg=f"{name}@{k}")
        for name in ("natural", "fatigue"):
            np.testing.assert_allclose(
                new.by_prefix(name, k), getattr(old, name)[k], rtol=1e-12, atol=1e-12
            )


@pytest.mark.parametrize("K", [1, 2, 3, 4])
@pytest.mark.parametrize("intent", [True, False])
def test_merged_states_give_the_prefix_solvers_tables(K, intent):
    """Every field at every prefix of every touch, on random carts (8 cases of 25 to 400 carts):
    switches of the shop (conditioning, fatigue), undeliverable actions, a forced stop, per-cart
    touch times and high unsubscribe rates."""
    rng = np.random.default_rng([K, intent])
    seq = SequenceConfig(
        touch_minutes=TIMES[:K], unsubscribe_base={"email": 0.2, "sms": 0.1, "push": 0.3}
    )
    work = Workspace()
    n = {1: 400, 2: 400, 3: 150, 4: 25}[K]  # the prefix solver's cost grows as 7 ** K
    for config in (
        SimConfig(n_shoppers=10),
        SimConfig(n_shoppers=10, coupon_conditioning=False, fatigue=False),
    ):
        for restrict in (None, 1):
            for spread in (False, True):
                params = _carts(rng, n, K, intent, spread)
                mask = rng.random((n, 7)) < 0.75
                mask[:, 0] = True
                old = solve(params, mask, config, seq, restrict)
                new = solve_states(params, mask, config, seq, restrict, work=work)
                _assert_same(old, new, mask, K)


def test_reused_tables_are_fully_rewritten():
    """Tables and temporaries reused from an earlier solve give the same numbers as fresh ones."""
    rng = np.random.default_rng(7)
    config, seq = SimConfig(n_shoppers=10), SequenceConfig()
    first, second = _carts(rng, 300, 3, True, False), _carts(rng, 300, 3, True, False)
    mask = rng.random((300, 7)) < 0.8
    mask[:, 0] = True
    work = Workspace()
    used = solve_states(first, mask, config, seq, work=work)
    again = solve_states(second, ~mask | (np.arange(7) == 0), config, seq, out=used, work=work)
    fresh = solve_states(second, ~mask | (np.arange(7) == 0), config, seq)
    assert again is used
    for name in (*PER_ACTION, "natural", "fatigue"):
        np.testing.assert_array_equal(getattr(again, name), getattr(fresh, name))


def test_state_graph_merges_prefixes_that_reach_the_same_state():
    graph = state_graph(3)
    assert np.diff(graph.offsets).tolist() == [1, 5, 19]
    reminder, offer, recommendation, c5, c10 = 6, 5, 1, 2, 3
    one = graph.state_of_prefixes(1)
    assert one[reminder] == one[offer] == one[recommendation] != one[0]
    two = graph.state_of_prefixes(2)
    assert two[c5 * 7 + c10] == two[c10 * 7 + c5] == two[c10 * 7 + c10] != two[c5 * 7 + c5]
    assert two[reminder * 7 + 0] != two[0 * 7 + reminder]  # the time of the last contact differs


def test_fixed_flow_value_equals_the_prefix_policy_value():
    rng = np.random.default_rng(3)
    config, seq = SimConfig(n_shoppers=10), SequenceConfig()
    params = _carts(rng, 300, 3, True, False)
    mask = rng.random((300, 7)) < 0.8
    mask[:, 0] = True
    old, new = solve(params, mask, config, seq), solve_states(params, mask, config, seq)
    for flow in ([6, 6, 3], [0, 0, 0], [5, 2, 4]):
        actions = np.tile(flow, (300, 1))
        ref = policy_value(old, fixed_flow_probabilities([actions[:, k] for k in range(3)], mask))
        np.testing.assert_allclose(fixed_flow_value(new, actions, mask), ref, rtol=1e-12)


def test_vector_env_truth_is_the_prefix_solvers_optimum():
    """The env's q_optimal at the first touch against the prefix solver on the same block."""
    envs = gym.make_vec(
        "CartRecoverySequence-v0",
        num_envs=256,
        vectorization_mode="vector_entry_point",
        n_shoppers=800,
        n_items=100,
    )
    _, info = envs.reset(seed=12)
    sim = envs.unwrapped.sim if hasattr(envs, "unwrapped") else envs.sim
    params, mask = sim.block_inputs()
    ref = solve(params, mask, sim.config, sim.seq).q[0][:, 0]
    np.testing.assert_allclose(info["q_optimal"], ref[sim.row_of], rtol=1e-12, atol=1e-12)
    assert isinstance(sim.blocks[sim.block_of[0]].tables, StateTables)
