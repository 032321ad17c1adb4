"""Assignment of shoppers to arms by a salted hash: stable, balanced, independent of other salts."""

import doctest
import hashlib
import importlib

import numpy as np
import pytest

from engine.abtest.srm import srm_from_counts
from engine.decision_log.hashing import hash_user_id
from simulator.experiments.assignment import assign, hash_fraction, normalise_weights

USERS = [f"u{i:06d}" for i in range(30_000)]


def counts(arms, names):
    return {name: int(np.sum(arms == name)) for name in names}


def test_hash_fraction_matches_an_independent_blake2b_computation():
    # the documented construction, computed here from hashlib directly
    for uid in ["u000001", "u123456", "shopper-éß"]:
        digest = hashlib.blake2b(
            uid.encode(), key=b"exp-42", digest_size=8, person=b"cartwise-arms"
        ).digest()
        assert hash_fraction([uid], "exp-42")[0] == int.from_bytes(digest, "big") / 2**64


def test_assignment_is_stable_across_calls_orders_and_batches():
    names = ["control", "B", "C"]
    whole = assign(USERS[:5000], names, "exp-1")
    # the same users in another order, or one by one (as they arrive day by day), keep their arm
    order = np.random.default_rng(0).permutation(5000)
    shuffled = assign([USERS[i] for i in order], names, "exp-1")
    np.testing.assert_array_equal(shuffled, whole[order])
    one_by_one = np.concatenate([assign([u], names, "exp-1") for u in USERS[:300]])
    np.testing.assert_array_equal(one_by_one, whole[:300])
    assert set(whole) == set(names)


def test_equal_split_is_balanced_and_passes_the_srm_check():
    names = ["control", "B", "C"]
    arms = assign(USERS, names, "exp-balance")
    split = srm_from_counts(counts(arms, names))
    assert not split["flagged"] and split["p_value"] > 0.01
    # each share within 4 binomial standard deviations of 1/3
    sd = np.sqrt(len(USERS) / 3 * (2 / 3))
    assert all(abs(c - len(USERS) / 3) < 4 * sd for c in counts(arms, names).values())


def test_weighted_split_follows_the_weights():
    names = ["control", "treatment"]
    arms = assign(USERS, names, "exp-weights", weights={"control": 0.8, "treatment": 0.2})
    share = np.mean(arms == "treatment")
    assert abs(share - 0.2) < 4 * np.sqrt(0.2 * 0.8 / len(USERS))
    split = srm_from_counts(counts(arms, names), {"control": 0.8, "treatment": 0.2})
    assert not split["flagged"]
    # sequence weights are aligned with the arms and normalised
    np.testing.assert_array_equal(
        assign(USERS[:2000], names, "exp-weights", weights=[4, 1]), arms[:2000]
    )


def test_other_salts_and_the_decision_log_hash_are_unrelated():
    u1 = hash_fraction(USERS, "exp-A")
    u2 = hash_fraction(USERS, "exp-B")
    # the log hashes the same ids under the same salt string without the assignment's tag
    log = np.array([int(hash_user_id(u, "exp-A")[:16], 16) / 2**64 for u in USERS])
    n = len(USERS)
    for other in (u2, log):
        assert abs(np.corrcoef(u1, other)[0, 1]) < 4 / np.sqrt(n)
        # agreement of a 50/50 split: 1/2 +- 4 sd
        assert abs(np.mean((u1 < 0.5) == (other < 0.5)) - 0.5) < 4 * 0.5 / np.sqrt(n)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"arms": ["a"]}, "at least two"),
        ({"arms": ["a", "a"]}, "duplicates"),
        ({"salt": ""}, "salt has 0 bytes"),
        ({"salt": 7}, "salt == 7"),
        ({"weights": [1.0]}, "one per arm"),
        ({"weights": [1.0, -1.0]}, "weights['b'] == -1.0"),
        ({"weights": {"a": 1.0, "c": 1.0}}, "exactly the arms"),
    ],
)
def test_bad_arguments_raise_naming_the_parameter(kwargs, message):
    args = {"user_ids": ["u1"], "arms": ["a", "b"], "salt": "s", **kwargs}
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        assign(**args)


def test_bad_user_id_raises():
    with pytest.raises(ValueError, match="user_id == 5"):
        assign(["u1", 5], ["a", "b"], "s")


def test_normalise_weights_defaults_to_equal_shares():
    assert normalise_weights(["a", "b", "c", "d"], None) == {n: 0.25 for n in "abcd"}


@pytest.mark.parametrize(
    "name",
    [
        "simulator.experiments.assignment",
        "simulator.experiments.arms",
        "simulator.experiments.analysis",
        "simulator.experiments.experiment",
    ],
)
def test_docstring_examples_pass(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
