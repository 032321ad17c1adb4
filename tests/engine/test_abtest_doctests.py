"""Run the docstring examples of the A/B analysis modules."""

import doctest
import importlib

import pytest

MODULES = [
    "engine.abtest.delta",
    "engine.abtest.srm",
    "engine.abtest.sequential",
    "engine.abtest.multiple",
    "engine.abtest.power",
    "engine.abtest.decision",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
