"""Every docstring example in the library and in the tests' support modules runs and passes.

Modules are found by scanning the sources for ``>>>``, so a new example is tested without being
registered anywhere; each found module must really run examples (``attempted > 0``).
"""

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules_with_examples():
    for package in ("engine", "simulator", "policies"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>> " in path.read_text():
                parts = path.relative_to(ROOT).with_suffix("").parts
                yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    for path in sorted((ROOT / "tests" / "support").glob("*.py")):  # on pytest's pythonpath
        if ">>> " in path.read_text():
            yield path.stem


@pytest.mark.parametrize("name", list(_modules_with_examples()))
def test_docstring_examples_pass(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
