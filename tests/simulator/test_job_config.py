"""The main job's configuration: defaults, the shipped cartwise.toml, overrides and errors."""

from pathlib import Path

import pytest

from simulator.job.config import QUICK, RunConfig, load_config

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_toml_states_exactly_the_defaults():
    assert load_config(ROOT / "cartwise.toml") == RunConfig()


def test_overrides_win_and_lists_accept_commas():
    cfg = load_config(
        ROOT / "cartwise.toml", {"train.carts": 123, "abtest.arms": "none,vw", "seed": 9}
    )
    assert (cfg.train.carts, cfg.abtest.arms, cfg.seed) == (123, ("none", "vw"), 9)
    assert load_config(None, QUICK).train.carts < RunConfig().train.carts


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"trian.carts": 5}, "unknown key 'trian.carts'"),
        ({"train.kart": 5}, "unknown key 'train.kart'"),
        ({"train.carts": -3}, "train.carts == -3"),
        ({"shop.fatigue": "yes"}, "shop.fatigue == 'yes'"),
        ({"engine.exploration_floor": "high"}, "engine.exploration_floor == 'high'"),
    ],
)
def test_bad_keys_and_values_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, overrides)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\ncarts = 3")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[shopp]\nn_shoppers = 3\n")
    with pytest.raises(ValueError, match=r"unknown key 'shopp\.n_shoppers'"):
        load_config(unknown)


def test_ope_interval_method_is_checked_when_the_config_loads() -> None:
    assert load_config(None).ope.ci == "auto"
    assert load_config(None, {"ope.ci": "analytic"}).ope.ci == "analytic"
    with pytest.raises(ValueError, match=r"config: ope.ci == 'normal', must be one of \['auto'"):
        load_config(None, {"ope.ci": "normal"})
