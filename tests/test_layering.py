"""The layering of docs/architecture.md, checked on the source so it cannot drift.

`engine` and `policies` never import `simulator`; the shop (`simulator/shop/`) imports nothing from
`engine` but the action vocabulary and the argument checks (`engine.validation`, which imports only
numpy) and nothing from `policies` or the simulator's applications; no
package imports another package's private (`_`-prefixed) module; library code has no `print` and
no `assert`."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _modules(package):
    return sorted((ROOT / package).rglob("*.py"))


def _imported_modules(path):
    """(dotted module name, line) of every absolute import in ``path``.

    ``from a import b`` is reported as ``a.b``.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", ""))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            yield str(node.args[0].value), node.lineno


def _imported_roots(path):
    for module, line in _imported_modules(path):
        yield module.split(".")[0], line


@pytest.mark.parametrize("package", ["engine", "policies"])
def test_package_never_imports_the_simulator(package):
    offenders = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in _modules(package)
        for root, line in _imported_roots(p)
        if root == "simulator"
    ]
    assert offenders == []


def test_the_shop_imports_only_the_action_vocabulary_and_the_checks_from_the_engine():
    allowed = ("engine.actions", "engine.validation")
    offenders = []
    for path in _modules("simulator/shop"):
        for module, line in _imported_modules(path):
            root = module.split(".")[0]
            if root == "policies" or (root == "engine" and not module.startswith(allowed)):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
            if root == "simulator" and not module.startswith("simulator.shop"):
                offenders.append(
                    f"{path.relative_to(ROOT)}:{line} imports {module} (an application)"
                )
    assert offenders == []


def test_the_layering_rules_can_fail(tmp_path, monkeypatch):
    """The import scan sees ``from engine import x``, ``import engine.y`` and private modules."""
    module = tmp_path / "probe.py"
    module.write_text(
        "from engine import engine\nimport engine.cf\nfrom policies.batch_features import f\n"
    )
    assert [m for m, _ in _imported_modules(module)] == [
        "engine.engine",
        "engine.cf",
        "policies.batch_features.f",
    ]


def _private_part(module):
    """The first ``_private`` segment of a dotted module path (dunders excluded), or None."""
    for part in module.split(".")[1:]:
        if part.startswith("_") and not part.startswith("__"):
            return part
    return None


@pytest.mark.parametrize("package", ["engine", "simulator", "policies"])
def test_no_package_imports_another_packages_private_module(package):
    offenders = []
    for path in _modules(package):
        for module, line in _imported_modules(path):
            root = module.split(".")[0]
            if (
                root in ("engine", "simulator", "policies")
                and root != package
                and _private_part(module)
            ):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
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
    offenders = [
        o for o in offenders if not (o.endswith("print") and Path(o.split(":")[0]).name in allowed)
    ]
    assert offenders == []


def test_no_global_random_state_in_library_code():
    offenders = []
    for package in ("engine", "simulator", "policies"):
        for path in _modules(package):
            text = path.read_text()
            for needle in (
                "np.random.seed(",
                "np.random.rand(",
                "np.random.randn(",
                "np.random.choice(",
                "np.random.randint(",
                "np.random.normal(",
                "np.random.uniform(",
                "random.random()",
            ):
                if needle in text:
                    offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_the_validation_module_is_a_leaf():
    """``engine.validation`` is shared by every package (the shop included).

    It imports no project module but its own array half, ``engine.validation_arrays``, which
    imports none.
    """
    for name in ("validation.py", "validation_arrays.py"):
        project = [
            module
            for module, _ in _imported_modules(ROOT / "engine" / name)
            if module.split(".")[0] in {"engine", "simulator", "policies"}
        ]
        if name == "validation.py":
            project = [m for m in project if not m.startswith("engine.validation_arrays.")]
        assert project == [], name


def test_importing_the_engine_does_not_import_scikit_learn():
    """Checkout processes (``import engine``, deciding, rewarding) never need scikit-learn; it is
    imported where a model is fitted (``RiskModel.fit``, the OPE reward models), so a process that
    only serves does not pay its import time (about 1.4 s of CPU)."""
    code = (
        "import sys, engine, engine.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "[]", out.stdout
