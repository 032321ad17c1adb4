"""The forest plot PNG and the doctest examples of engine.ope."""

import doctest
import importlib

import numpy as np
import pytest

from engine import ope
from engine.ope.synthetic import SyntheticWorld


def test_forest_plot_writes_png(tmp_path):
    log = SyntheticWorld.make(seed=2).sample(5_000, np.random.default_rng(0))
    table = ope.evaluate(
        log.rewards,
        log.actions,
        log.logged_probs,
        log.target_probs,
        estimated_rewards=log.expected_rewards,
    )
    path = ope.forest_plot(
        table, tmp_path / "forest.png", title="Synthetic", true_value=log.true_value
    )
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError, match="no 'ci_low' column"):
        ope.forest_plot(table.drop(columns="ci_low"), tmp_path / "x.png")


@pytest.mark.parametrize(
    "module",
    [
        "engine.ope",
        "engine.ope.api",
        "engine.ope.validation",
        "engine.ope.intervals",
        "engine.ope.readers",
        "engine.ope.synthetic",
    ],
)
def test_doctests(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
