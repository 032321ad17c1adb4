"""Readers: VW DSJSON (checked against VW's own parser) and Open Bandit Pipeline dicts."""

import json

import numpy as np
import pytest

from engine import ope


def dsjson_line(cost, chosen, ids, probs, label_action=None, event_id="e"):
    """A cb_adf DSJSON event; ``chosen`` is 0-based, ``ids`` 1-based in the order of ``probs``."""
    n_actions = max(ids)
    return json.dumps(
        {
            "_label_cost": cost,
            "_label_probability": probs[ids.index(chosen + 1)],
            "_label_Action": chosen + 1 if label_action is None else label_action,
            "_labelIndex": chosen,
            "o": [{"v": -cost, "EventId": event_id}],
            "Timestamp": "2024-01-01T00:00:00.0000000Z",
            "Version": "1",
            "EventId": event_id,
            "a": ids,
            "c": {
                "User": {"segment": f"s{chosen}", "age": 30 + chosen},
                "_multi": [{"Action": {"name": f"a{k}"}} for k in range(n_actions)],
            },
            "p": probs,
        }
    )


LINES = [
    dsjson_line(-1.0, 2, [3, 1, 2], [0.7, 0.2, 0.1], event_id="e1"),
    dsjson_line(0.0, 0, [2, 1, 3], [0.6, 0.3, 0.1], event_id="e2"),
    dsjson_line(-2.5, 3, [4, 2, 3, 1], [0.40000000596046448, 0.3, 0.2, 0.1], event_id="e3"),
    dsjson_line(0.5, 1, [1, 2], [0.25, 0.75], event_id="e4"),
]


def test_read_dsjson_arrays(tmp_path):
    path = tmp_path / "log.dsjson"
    unjoined = json.dumps({"EventId": "x", "a": [1], "p": [1.0], "c": {"_multi": [{}]}})
    path.write_text("\n".join([*LINES[:2], "", unjoined, *LINES[2:]]) + "\n")
    log = ope.read_dsjson(path)
    assert len(log) == 4 and log.n_actions == 4
    np.testing.assert_array_equal(log.rewards, [1.0, 0.0, 2.5, -0.5])
    np.testing.assert_array_equal(log.actions, [2, 0, 3, 1])
    np.testing.assert_allclose(log.logged_probs, [0.7, 0.3, 0.40000000596046448, 0.75])
    np.testing.assert_allclose(
        log.logging_probs,
        [
            [0.2, 0.1, 0.7, 0.0],
            [0.3, 0.6, 0.1, 0.0],
            [0.1, 0.3, 0.2, 0.40000000596046448],
            [0.25, 0.75, 0.0, 0.0],
        ],
    )
    assert log.event_ids == ("e1", "e2", "e3", "e4")
    assert log.contexts[2]["User"] == {"segment": "s3", "age": 33}
    assert len(log.contexts[2]["_multi"]) == 4
    # The logged propensity is the logging distribution at the logged action.
    np.testing.assert_allclose(log.logging_probs[np.arange(4), log.actions], log.logged_probs)


def test_dsjson_labels_agree_with_vowpal_wabbit():
    from vowpalwabbit import pyvw

    vw = pyvw.Workspace("--cb_adf --dsjson --quiet")
    try:
        ours = ope.read_dsjson(LINES)
        for i, line in enumerate(LINES):
            examples = vw.parse(line)
            labelled = [
                (j, c) for j, ex in enumerate(examples) for c in ex.get_label().costs if j > 0
            ]  # example 0 is the shared one
            assert len(labelled) == 1
            j, cost = labelled[0]
            assert j - 1 == ours.actions[i]
            assert cost.cost == pytest.approx(-ours.rewards[i])
            assert cost.probability == pytest.approx(ours.logged_probs[i], rel=1e-6)
            vw.finish_example(examples)
    finally:
        vw.finish()


@pytest.mark.parametrize(
    "line,message",
    [
        ("{not json", r"DSJSON line 1 is not valid JSON"),
        ("[1, 2]", r"DSJSON line 1 is a list, must be an object"),
        (
            dsjson_line(0.0, 1, [2, 1], [0.5, 0.5], label_action=1),
            r"_label_Action == 1 but _labelIndex == 1",
        ),
        (
            dsjson_line(0.0, 1, [2, 1], [0.5, 0.5]).replace(
                '"_label_probability": 0.5', '"_label_probability": 0.4'
            ),
            r"_label_probability == 0.4 but 'p' gives 0.5",
        ),
        (
            dsjson_line(0.0, 0, [1, 2], [0.5, 0.5]).replace('"p": [0.5, 0.5]', '"p": [0.5]'),
            r"'a' and 'p' must be non-empty lists of equal length",
        ),
        (
            dsjson_line(0.0, 0, [1, 2], [0.5, 0.5]).replace('"a": [1, 2]', '"a": [0, 2]'),
            r"'a' contains 0, must be 1-based",
        ),
        (
            dsjson_line(0.0, 0, [1, 2], [0.5, 0.5]).replace('"_label_probability": 0.5, ', ""),
            r"DSJSON line 1 has no '_label_probability' field",
        ),
    ],
)
def test_dsjson_errors_name_the_line(line, message):
    with pytest.raises(ValueError, match=message):
        ope.read_dsjson([line])


def test_dsjson_feeds_evaluate():
    log = ope.read_dsjson(LINES)
    target = np.full((len(log), log.n_actions), 1.0 / log.n_actions)
    table = ope.evaluate(log.rewards, log.actions, log.logged_probs, target)
    expected = np.mean(log.rewards * 0.25 / log.logged_probs)
    np.testing.assert_allclose(table.loc["ipw", "value"], expected, rtol=1e-12)


def test_from_obp_and_positions():
    feedback = {
        "n_rounds": 4,
        "n_actions": 3,
        "action": np.array([0, 2, 1, 2]),
        "position": np.array([0, 1, 1, 0]),
        "reward": np.array([1, 0, 0, 1]),
        "pscore": np.array([0.5, 0.25, 0.25, 0.5]),
        "context": np.arange(8.0).reshape(4, 2),
        "action_context": np.eye(3),
    }
    log = ope.from_obp(feedback)
    np.testing.assert_array_equal(log.actions, [0, 2, 1, 2])
    np.testing.assert_array_equal(log.rewards, [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(log.positions, [0, 1, 1, 0])
    assert (
        log.n_actions == 3 and log.contexts.shape == (4, 2) and log.action_context.shape == (3, 3)
    )
    per_row = np.random.default_rng(0).dirichlet(np.ones(3), size=(4, 2)).transpose(0, 2, 1)
    target = ope.target_probs_at_positions(per_row, log.positions)
    for i in range(4):
        np.testing.assert_array_equal(target[i], per_row[i, :, log.positions[i]])
    shared = per_row[0]
    np.testing.assert_array_equal(
        ope.target_probs_at_positions(shared, log.positions), shared[:, log.positions].T
    )
    with pytest.raises(ValueError, match="no 'pscore' key"):
        ope.from_obp({k: v for k, v in feedback.items() if k != "pscore"})
    with pytest.raises(ValueError, match=r"'action'\] row 1 == 5, must be in \[0, 3\)"):
        ope.from_obp({**feedback, "action": np.array([0, 5, 1, 2])})
    with pytest.raises(ValueError, match=r"positions row 2 == 2, must be in \[0, 2\)"):
        ope.target_probs_at_positions(shared, [0, 1, 2, 0])
