"""Run the docstring examples of the policy modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["policies", "policies.base", "policies.static", "policies.uniform", "policies.rule", "policies.oracle",
           "policies.learner_policy", "policies.full_information", "policies.registry"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
