"""Run the docstring examples of the learner modules."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "engine.learners",
    "engine.learners._checks",
    "engine.learners.linucb",
    "engine.learners.lints",
    "engine.learners.vw",
    "engine.learners.registry",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_pass(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
