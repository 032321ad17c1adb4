"""engine.validation: every validator accepts, converts and rejects as documented.

Each row of a table gives the call, the argument and either the value returned (with its exact
type) or the exact message of the ValueError raised.
"""

import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from engine.validation import (
    MISSING,
    check_bool,
    check_choice,
    check_confidence,
    check_integer,
    check_non_negative,
    check_number,
    check_positive,
    check_probability,
    check_probability_matrix,
    fail,
    show,
)

HUGE = 10**400
HUGE_SHOWN = "1" + "0" * 59 + "..."  # repr cut to 60 characters, no type for an int

# (call, value, expected return) -- the return is compared by value and by exact type
ACCEPT = [
    (lambda v: check_number(v, "x"), 1.5, 1.5),
    (lambda v: check_number(v, "x"), 2, 2.0),
    (lambda v: check_number(v, "x"), -0.0, -0.0),
    (lambda v: check_number(v, "x"), 1e308, 1e308),
    (lambda v: check_number(v, "x"), np.float32(0.5), 0.5),
    (lambda v: check_number(v, "x"), np.float64(-3.25), -3.25),
    (lambda v: check_number(v, "x"), np.int64(3), 3.0),
    (lambda v: check_number(v, "x"), np.uint8(255), 255.0),
    (lambda v: check_number(v, "x", low=0), 0, 0.0),
    (lambda v: check_number(v, "x", high=1), 1.0, 1.0),
    (lambda v: check_number(v, "x", low=0, high=1, high_open=True), 0.999, 0.999),
    (lambda v: check_positive(v, "x"), 1e-300, 1e-300),
    (lambda v: check_positive(v, "x", high=60), 60, 60.0),
    (lambda v: check_non_negative(v, "x"), 0, 0.0),
    (lambda v: check_probability(v, "x"), 0, 0.0),
    (lambda v: check_probability(v, "x"), 1, 1.0),
    (lambda v: check_probability(v, "x", positive=True), 1.0, 1.0),
    (lambda v: check_confidence(v), 0.95, 0.95),
    (lambda v: check_confidence(v), np.float64(0.5), 0.5),
    (lambda v: check_integer(v, "n"), 3, 3),
    (lambda v: check_integer(v, "n"), -7, -7),
    (lambda v: check_integer(v, "n"), np.int64(3), 3),
    (lambda v: check_integer(v, "n"), np.uint64(2**64 - 1), 2**64 - 1),
    (lambda v: check_integer(v, "n"), HUGE, HUGE),  # ints are unbounded unless told otherwise
    (lambda v: check_integer(v, "n", low=1, high=30), 30, 30),
    (lambda v: check_bool(v, "flag"), True, True),
    (lambda v: check_bool(v, "flag"), np.False_, False),
    (lambda v: check_choice(v, "mode", ("a", "b")), "b", "b"),
    (lambda v: check_choice(v, "k", (1, 2)), 2, 2),
]


@pytest.mark.parametrize(("call", "value", "expected"), ACCEPT, ids=lambda v: repr(v)[:20])
def test_accepts_and_converts(call, value, expected):
    out = call(value)
    assert out == expected
    assert type(out) is type(expected)
    if isinstance(expected, float):
        assert math.copysign(1.0, out) == math.copysign(1.0, expected)


NUMBER = "must be a finite number"
REJECT = [
    # bool is not a number, numpy's bool neither
    (lambda v: check_number(v, "x"), True, f"x == True, {NUMBER}"),
    (lambda v: check_number(v, "x"), np.True_, f"x == np.True_ (bool), {NUMBER}"),
    # non-finite values, and an int beyond the float range (not an OverflowError)
    (lambda v: check_number(v, "x"), math.nan, f"x == nan, {NUMBER}"),
    (lambda v: check_number(v, "x"), math.inf, f"x == inf, {NUMBER}"),
    (lambda v: check_number(v, "x"), -math.inf, f"x == -inf, {NUMBER}"),
    (
        lambda v: check_number(v, "x"),
        np.float32(np.nan),
        f"x == np.float32(nan) (float32), {NUMBER}",
    ),
    (lambda v: check_number(v, "x"), HUGE, f"x == {HUGE_SHOWN}, {NUMBER}"),
    (lambda v: check_number(v, "x"), -HUGE, f"x == -{HUGE_SHOWN[:59]}..., {NUMBER}"),
    # other types
    (lambda v: check_number(v, "x"), "1.5", f"x == '1.5', {NUMBER}"),
    (lambda v: check_number(v, "x"), None, f"x == None (NoneType), {NUMBER}"),
    (lambda v: check_number(v, "x"), [1.0], f"x == [1.0] (list), {NUMBER}"),
    (lambda v: check_number(v, "x"), np.array(1.0), f"x == array(1.) (ndarray), {NUMBER}"),
    (lambda v: check_number(v, "x"), Fraction(1, 2), f"x == Fraction(1, 2) (Fraction), {NUMBER}"),
    (lambda v: check_number(v, "x"), Decimal("0.5"), f"x == Decimal('0.5') (Decimal), {NUMBER}"),
    (lambda v: check_number(v, "x"), 1 + 0j, f"x == (1+0j) (complex), {NUMBER}"),
    # bounds: one side, both sides, open and closed ends, how bounds are written
    (lambda v: check_number(v, "x", low=0), -0.5, "x == -0.5, must be a finite number >= 0"),
    (
        lambda v: check_number(v, "x", low=0, low_open=True),
        0.0,
        "x == 0.0, must be a finite number > 0",
    ),
    (lambda v: check_number(v, "x", high=1), 1.5, "x == 1.5, must be a finite number <= 1"),
    (
        lambda v: check_number(v, "x", high=1, high_open=True),
        1,
        "x == 1, must be a finite number < 1",
    ),
    (
        lambda v: check_number(v, "epsilon", low=0, high=1),
        1.5,
        "epsilon == 1.5, must be a number in [0, 1]",
    ),
    (
        lambda v: check_number(v, "x", low=0, high=0.25, high_open=True),
        0.25,
        "x == 0.25, must be a number in [0, 0.25)",
    ),
    (
        lambda v: check_number(v, "x", low=-1e300, high=1e300),
        HUGE,
        f"x == {HUGE_SHOWN}, must be a number in [-1e+300, 1e+300]",
    ),
    (
        lambda v: check_number(v, "x", low=0, high=1),
        math.nan,
        "x == nan, must be a number in [0, 1]",
    ),
    (
        lambda v: check_number(v, "x", low=np.float64(0.5)),
        0,
        "x == 0, must be a finite number >= 0.5",
    ),
    (lambda v: check_positive(v, "sd"), 0, "sd == 0, must be a finite number > 0"),
    (lambda v: check_positive(v, "sd"), math.inf, "sd == inf, must be a finite number > 0"),
    (
        lambda v: check_positive(v, "flush_interval", high=60),
        61,
        "flush_interval == 61, must be a number in (0, 60]",
    ),
    (
        lambda v: check_non_negative(v, "alpha"),
        -1e-9,
        "alpha == -1e-09, must be a finite number >= 0",
    ),
    (
        lambda v: check_non_negative(v, "alpha"),
        False,
        "alpha == False, must be a finite number >= 0",
    ),
    (lambda v: check_probability(v, "p"), 1.01, "p == 1.01, must be a number in [0, 1]"),
    (lambda v: check_probability(v, "p", positive=True), 0, "p == 0, must be a number in (0, 1]"),
    (lambda v: check_confidence(v), 1.0, "confidence == 1.0, must be a number in (0, 1)"),
    (lambda v: check_confidence(v, "alpha"), 0, "alpha == 0, must be a number in (0, 1)"),
    (lambda v: check_confidence(v), "0.95", "confidence == '0.95', must be a number in (0, 1)"),
    # integers: no bool, no integral float, no string; huge ints meet their bound
    (lambda v: check_integer(v, "n", low=1), 0, "n == 0, must be an int >= 1"),
    (lambda v: check_integer(v, "n", low=1), True, "n == True, must be an int >= 1"),
    (lambda v: check_integer(v, "n", low=1), 2.0, "n == 2.0, must be an int >= 1"),
    (lambda v: check_integer(v, "n", low=1), "2", "n == '2', must be an int >= 1"),
    (
        lambda v: check_integer(v, "n", low=1),
        np.int64(0),
        "n == np.int64(0) (int64), must be an int >= 1",
    ),
    (lambda v: check_integer(v, "n"), np.float64(2.0), "n == np.float64(2.0), must be an int"),
    (lambda v: check_integer(v, "n", high=5), 6, "n == 6, must be an int <= 5"),
    (
        lambda v: check_integer(v, "bits", low=1, high=30),
        HUGE,
        f"bits == {HUGE_SHOWN}, must be an int in [1, 30]",
    ),
    (
        lambda v: check_integer(v, "n", low=0),
        -HUGE,
        f"n == -{HUGE_SHOWN[:59]}..., must be an int >= 0",
    ),
    (lambda v: check_bool(v, "flag"), 1, "flag == 1, must be a bool"),
    (lambda v: check_bool(v, "flag"), "true", "flag == 'true', must be a bool"),
    (lambda v: check_bool(v, "flag"), None, "flag == None (NoneType), must be a bool"),
    (lambda v: check_choice(v, "mode", ("a", "b")), "c", "mode == 'c', must be one of ['a', 'b']"),
    (
        lambda v: check_choice(v, "mode", ("a", "b")),
        ["a"],
        "mode == ['a'] (list), must be one of ['a', 'b']",
    ),
    (
        lambda v: check_choice(v, "mode", ("a", "b")),
        np.array(["a", "b"]),
        "mode == array(['a', 'b'], dtype='<U1') (ndarray), must be one of ['a', 'b']",
    ),
    # long strings are cut in messages
    (
        lambda v: check_choice(v, "mode", ("a",)),
        "x" * 50,
        "mode == 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' (50 chars), must be one of ['a']",
    ),
]


@pytest.mark.parametrize(("call", "value", "message"), REJECT, ids=lambda v: repr(v)[:20])
def test_rejects_with_exact_message(call, value, message):
    with pytest.raises(ValueError) as info:
        call(value)
    assert type(info.value) is ValueError
    assert str(info.value) == message


ODD_VALUES = [
    True,
    np.True_,
    None,
    "1",
    b"1",
    [],
    {},
    (1,),
    object(),
    math.nan,
    math.inf,
    -math.inf,
    HUGE,
    -HUGE,
    1 + 1j,
    np.array([1.0]),
    np.float64(np.inf),
    Fraction(1, 3),
    Decimal("nan"),
]
SCALAR_CHECKS = [
    lambda v: check_number(v, "x", low=-1, high=1),
    lambda v: check_positive(v, "x"),
    lambda v: check_non_negative(v, "x"),
    lambda v: check_probability(v, "x"),
    lambda v: check_confidence(v, "x"),
    lambda v: check_integer(v, "x", low=0, high=10),
    lambda v: check_bool(v, "x"),
    lambda v: check_choice(v, "x", ("a", "b")),
]


@pytest.mark.parametrize("check", SCALAR_CHECKS)
def test_every_rejection_is_a_value_error_naming_the_field(check):
    """Wrong types included: never TypeError or OverflowError (the module's one rule)."""
    accepted = {True, False}  # check_bool takes the bools
    for value in ODD_VALUES:
        try:
            out = check(value)
        except ValueError as err:
            assert str(err).startswith("x == ") and ", must be " in str(err), str(err)
        else:
            assert out in accepted and check is SCALAR_CHECKS[6], (value, out)


def test_missing_field_and_shown_values():
    assert str(fail(MISSING, "cart[0].price", "a finite number >= 0")) == (
        "cart[0].price is missing, must be a finite number >= 0"
    )
    assert str(fail(3, "n", "an int >= 5")) == "n == 3, must be an int >= 5"
    assert show(1.5) == "1.5" and show(7) == "7" and show("a") == "'a'"
    assert show(np.float64(1.5)) == "np.float64(1.5)"  # a float subclass: no type name
    assert show(list(range(40))).endswith("... (list)")


# ----------------------------------------------------------------------------------------------
# Probability matrices

GOOD = [[0.2, 0.8, 0.0], [1.0, 0.0, 0.0]]
MASK = np.array([[True, True, False], [True, False, True]])


def test_probability_matrix_accepts_and_converts():
    out = check_probability_matrix(GOOD, "p", n_rows=2, n_cols=3, eligible=MASK)
    assert out.dtype == np.float64 and out.shape == (2, 3)
    np.testing.assert_array_equal(out, np.array(GOOD))
    same = np.array(GOOD)
    assert check_probability_matrix(same, "p") is same  # float64 input is not copied
    ints = check_probability_matrix([[0, 1], [1, 0]], "p")
    assert ints.dtype == np.float64
    near = [[0.5, 0.5 + 0.9e-6]]
    check_probability_matrix(near, "p")  # within the default tolerance of 1e-6
    with pytest.raises(ValueError, match="sums to 1, must sum to 1"):
        check_probability_matrix(near, "p", atol=1e-9)


MATRIX_REJECT = [
    ({"value": [0.5, 0.5]}, "p has shape (2,), must be 2-dimensional"),
    (
        {"value": [["a", "b"]]},
        "p must be numeric, could not convert: could not convert string to float: 'a'",
    ),
    ({"value": GOOD, "n_rows": 3}, "p has shape (2, 3), must be (3, n_actions)"),
    ({"value": GOOD, "n_cols": 2}, "p has shape (2, 3), must be (n, 2)"),
    ({"value": np.zeros((2, 0))}, "p has shape (2, 0), must be (n, n_actions)"),
    (
        {"value": [[0.5, np.nan], [0.5, 0.5], [np.inf, 0.0]]},
        "p row 0 contains nan, must be finite (and 1 more rows)",
    ),
    ({"value": [[1.0, 0.0], [1.2, -0.2]]}, "p row 1 contains -0.2, must be non-negative"),
    ({"value": [[1.0, 0.0], [0.2, 0.7]]}, "p row 1 sums to 0.9, must sum to 1"),
    ({"value": [[0.5, 0.4], [0.2, 0.7]]}, "p row 0 sums to 0.9, must sum to 1 (and 1 more rows)"),
    ({"value": GOOD, "eligible": MASK[:, :2]}, "p has shape (2, 3), must match eligible (2, 2)"),
    (
        {"value": [[0.2, 0.8, 0.0], [0.5, 0.5, 0.0]], "eligible": MASK},
        "p row 1 puts 0.5 on ineligible column 1, must be 0",
    ),
]


@pytest.mark.parametrize(("kwargs", "message"), MATRIX_REJECT, ids=lambda v: str(v)[:30])
def test_probability_matrix_rejects_with_exact_message(kwargs, message):
    kwargs = dict(kwargs)
    with pytest.raises(ValueError) as info:
        check_probability_matrix(kwargs.pop("value"), "p", **kwargs)
    assert type(info.value) is ValueError
    assert str(info.value) == message


# ----------------------------------------------------------------------------------------------
# The context validator's slow path speaks through these checks


def _context(**cart_line):
    line = {"item_id": "i1", "price": 10.0, "quantity": 1, **cart_line}
    return {"user_id": "u1", "timestamp": 1767225600.0, "cart": [line]}


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        (
            {"price": np.float64(-1.0)},
            "cart[0].price",
            "cart[0].price == np.float64(-1.0), must be a finite number >= 0",
        ),
        (
            {"price": -HUGE},
            "cart[0].price",
            f"cart[0].price == -{HUGE_SHOWN[:59]}..., must be a finite number >= 0",
        ),
        (
            {"quantity": np.int64(0)},
            "cart[0].quantity",
            "cart[0].quantity == np.int64(0) (int64), must be an int in [1, 1000000000]",
        ),
        (
            {"quantity": None},
            "cart[0].quantity",
            "cart[0].quantity == None (NoneType), must be an int in [1, 1000000000]",
        ),
    ],
)
def test_context_slow_path_messages(line, field, message):
    from engine.context import ContextError, validate_context

    with pytest.raises(ContextError) as info:
        validate_context(_context(**line))
    assert isinstance(info.value, ValueError)
    assert (info.value.field, str(info.value)) == (field, message)
    ctx = _context()
    del ctx["cart"][0]["price"]
    with pytest.raises(
        ContextError, match=r"^cart\[0\].price is missing, must be a finite number >= 0$"
    ) as info:
        validate_context(ctx)
    assert info.value.value is None
