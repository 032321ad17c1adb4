"""Bad input to the A/B analysis raises ValueError naming the column and the value found."""

import numpy as np
import pandas as pd
import pytest

from engine import abtest


@pytest.fixture
def carts():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(40), 2)
    return pd.DataFrame(
        {
            "user_id": users,
            "arm": np.where(users % 2 == 0, "control", "B"),
            "profit": rng.normal(1.0, 1.0, users.size),
            "converted": rng.random(users.size) < 0.3,  # bool metrics are fine
            "day": np.tile([0, 1], 40),
            "pre_profit": np.repeat(rng.normal(size=40), 2),
        }
    )


def with_value(df, column, row, value):
    out = df.copy()
    if isinstance(value, str) and not pd.api.types.is_string_dtype(out[column]):
        out[column] = out[column].astype(object)
    out.loc[row, column] = value
    return out


CASES = [
    ({"metrics": ["profit", "revenue"]}, None, r"column 'revenue' \(metric\) not found"),
    ({"arm": "variant"}, None, r"column 'variant' \(arm\) not found"),
    ({"control": "ctrl"}, None, r"control == 'ctrl' not found in column 'arm'"),
    ({"confidence": 1.5}, None, r"confidence == 1.5, must be a number in \(0, 1\)$"),
    ({"primary": "converted", "metrics": ["profit"]}, None, r"primary == \['converted'\]"),
    (
        {"covariates": {"revenue": "pre_profit"}},
        None,
        r"covariates names metric\(s\) \['revenue'\]",
    ),
    ({"covariates": "pre"}, None, r"column 'pre' \(covariate\) not found"),
    ({"sequential": True, "look": "week"}, None, r"column 'week' \(look\) not found"),
    ({"metrics": []}, None, "metrics is empty"),
    ({}, ("profit", 3, np.nan), r"column 'profit' has 1 missing value\(s\), first at row 3"),
    ({}, ("profit", 5, np.inf), r"column 'profit' has 1 non-finite value\(s\), first inf at row 5"),
    ({}, ("profit", 0, "12.5"), r"column 'profit' must be numeric, found dtype object"),
    ({}, ("user_id", 2, None), r"column 'user_id' has 1 missing value"),
    ({}, ("arm", 7, np.nan), r"column 'arm' has 1 missing value"),
    (
        {},
        ("arm", 1, "B"),
        r"column 'user_id': 1 unit\(s\) appear in more than one arm.*user_id == 0",
    ),
    ({"covariates": "pre_profit"}, ("pre_profit", 4, np.nan), r"column 'pre_profit' has 1 missing"),
    ({"sequential": True, "look": "day"}, ("day", 6, np.nan), r"column 'day' has 1 missing"),
]


@pytest.mark.parametrize("kwargs, change, message", CASES)
def test_compare_bad_input(carts, kwargs, change, message):
    df = with_value(carts, *change) if change else carts
    args = {"metrics": ["profit", "converted"], **kwargs}
    with pytest.raises(ValueError, match=message):
        abtest.compare(df, **args)


def test_single_arm_and_tiny_arm(carts):
    only_control = carts[carts["arm"] == "control"]
    with pytest.raises(ValueError, match=r"column 'arm' has a single arm 'control'"):
        abtest.compare(only_control, metrics="profit")
    tiny = pd.concat([only_control, carts[carts["user_id"] == 1]])
    with pytest.raises(ValueError, match=r"arm 'B' of column 'arm' has 1 unit\(s\)"):
        abtest.compare(tiny, metrics="profit")


def test_not_a_frame_or_empty(carts):
    with pytest.raises(ValueError, match="df must be a pandas DataFrame, found dict"):
        abtest.compare({"profit": [1.0]})
    with pytest.raises(ValueError, match="df has no rows"):
        abtest.compare(carts.iloc[:0], metrics="profit")


def test_constant_covariate_is_named(carts):
    with pytest.raises(
        ValueError, match=r"covariate column 'flat' is constant within arms 'B' and 'control'"
    ):
        abtest.compare(carts.assign(flat=1.0), metrics="profit", covariates="flat")


def test_confidence_sequence_bad_input(carts):
    with pytest.raises(ValueError, match=r"column 'week' \(look\) not found"):
        abtest.confidence_sequence(carts, look="week")
    with pytest.raises(ValueError, match=r"confidence == 0, must be a number in \(0, 1\)$"):
        abtest.confidence_sequence(carts, look="day", confidence=0)
    with pytest.raises(ValueError, match=r"t_opt == -5"):
        abtest.confidence_sequence(carts, look="day", t_opt=-5)


def test_valid_input_gives_contract_columns(carts):
    table = abtest.compare(
        carts, metrics=["profit", "converted"], covariates="pre_profit", sequential=True, look="day"
    )
    expected = [
        "metric",
        "arm",
        "n_units",
        "control_mean",
        "treatment_mean",
        "abs_effect",
        "rel_effect",
        "ci_low",
        "ci_high",
        "rel_ci_low",
        "rel_ci_high",
        "p_value",
        "cuped_abs_effect",
        "cuped_ci_low",
        "cuped_ci_high",
        "cuped_p_value",
        "variance_reduction",
        "cs_low",
        "cs_high",
        "p_value_holm",
    ]
    assert set(expected) <= set(table.columns)
    assert table[["metric", "arm"]].values.tolist() == [["profit", "B"], ["converted", "B"]]
    assert (table["n_units"] == 20).all()
    # Converted is a per-cart rate: control mean equals the share of converted control carts.
    control = carts[carts["arm"] == "control"]
    assert table.loc[1, "control_mean"] == pytest.approx(control["converted"].mean())
