"""Run the docstring examples of the decision-log modules."""

import doctest
import importlib

import pytest

MODULES = ["hashing", "records", "schema", "log", "dsjson"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"engine.decision_log.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
