"""DESIGN.md's layering: `engine` never imports `simulator`; `policies` never imports `simulator`;
library code has no `print` and no `assert` (checked on the source, so it cannot drift)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules(package):
    return sorted((ROOT / package).rglob("*.py"))


def _imported_roots(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0], node.lineno
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            yield str(node.args[0].value).split(".")[0], node.lineno


@pytest.mark.parametrize("package", ["engine", "policies"])
def test_package_never_imports_the_simulator(package):
    offenders = [f"{p.relative_to(ROOT)}:{line}" for p in _modules(package)
                 for root, line in _imported_roots(p) if root == "simulator"]
    assert offenders == []


@pytest.mark.parametrize("package", ["engine", "simulator", "policies"])
def test_library_code_has_no_assert_and_no_print(package):
    offenders = []
    for path in _modules(package):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Assert):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} assert")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} print")
    allowed = {"cli.py", "commands.py"}  # command-line front ends write their tables to stdout
    offenders = [o for o in offenders if not (o.endswith("print") and Path(o.split(":")[0]).name in allowed)]
    assert offenders == []


def test_no_global_random_state_in_library_code():
    offenders = []
    for package in ("engine", "simulator", "policies"):
        for path in _modules(package):
            text = path.read_text()
            for needle in ("np.random.seed(", "np.random.rand(", "np.random.randn(", "np.random.choice(",
                           "np.random.randint(", "np.random.normal(", "np.random.uniform(", "random.random()"):
                if needle in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []
