"""The A/B figures are written as readable PNGs of the expected size."""

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from engine import abtest


@pytest.fixture(scope="module")
def experiment():
    rng = np.random.default_rng(4)
    users = np.repeat(np.arange(3000), 2)
    arm = np.array(["control", "B", "C"])[users % 3]
    return pd.DataFrame(
        {
            "user_id": users,
            "arm": arm,
            "day": rng.integers(0, 10, users.size),
            "profit": rng.normal(1.0, 1.0, users.size) + 0.2 * (arm == "B"),
            "converted": rng.random(users.size) < 0.2,
            "pre_profit": np.repeat(rng.normal(size=3000), 2),
        }
    )


def test_effects_plot_writes_png(experiment, tmp_path):
    table = abtest.compare(experiment, metrics=["profit", "converted"], covariates="pre_profit")
    path = abtest.effects_plot(table, tmp_path / "figs" / "effects.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(path)
    assert pixels.shape[1] == round(6.5 * 110) and pixels.shape[0] > 300
    assert pixels[..., :3].std() > 0.05  # not a blank canvas


def test_sequence_plot_writes_one_panel_per_arm(experiment, tmp_path):
    seq = abtest.confidence_sequence(experiment, metrics=["profit", "converted"], look="day")
    path = abtest.sequence_plot(seq, tmp_path / "seq.png", metric="converted")
    pixels = image.imread(path)
    assert pixels.shape[:2] == (round(2 * 2.6 * 110), round(7.0 * 110))
    with pytest.raises(ValueError, match="metric 'revenue' not found"):
        abtest.sequence_plot(seq, tmp_path / "bad.png", metric="revenue")
    with pytest.raises(ValueError, match="column 'cs_low' not found in sequence"):
        abtest.sequence_plot(seq.drop(columns="cs_low"), tmp_path / "bad.png")
