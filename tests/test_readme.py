"""Every command in the README's code blocks that is meant to run does run (at small sizes).

Python blocks are executed as they are. In bash blocks, each line that starts with ``cartwise`` is
run through the CLI with size flags shrunk (``--carts``, ``--users``, ``--days``, ``--seeds``)
and ``--out`` pointed at a temporary folder. ``make`` lines are the two top-level commands
themselves (``make test`` runs this very test) and are checked to exist in the Makefile instead.
"""

import re
import shlex
from pathlib import Path

import pytest

from engine.cli import main as cartwise

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)
SMALL = {"--carts": "2000", "--users": "1500", "--days": "3", "--seeds": "1"}


def _commands():
    for lang, body in BLOCKS:
        if lang != "bash":
            continue
        for line in body.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("cartwise "):
                yield line


def _shrunk(line, out):
    args = shlex.split(line)[1:]
    for i, arg in enumerate(args[:-1]):
        if arg in SMALL:
            args[i + 1] = SMALL[arg]
        if arg == "--out":
            args[i + 1] = str(out)
    if args[0] in ("run", "abtest", "compare", "evaluate") and "--out" not in args:
        args += ["--out", str(out)]
    return args


def test_readme_names_the_two_commands_and_the_makefile_has_them():
    assert "make demo" in README and "make test" in README
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = [body for lang, body in BLOCKS if lang == "python"]
    assert blocks
    for body in blocks:
        exec(compile(body, "README.md", "exec"), {})
    assert (tmp_path / "decisions.db").exists()


@pytest.mark.parametrize("line", list(_commands()))
def test_cli_commands_run(line, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert cartwise(_shrunk(line, tmp_path / "out")) == 0
    assert capsys.readouterr().out.strip()


def test_evaluate_command_from_the_text_runs_on_an_engine_log(tmp_path, monkeypatch, capsys):
    import gymnasium as gym

    import simulator
    from engine import DecisionEngine
    from engine.guardrails import GuardrailConfig

    assert "cartwise evaluate --log decisions.db --policy rule" in README
    monkeypatch.chdir(tmp_path)
    env = gym.make("CartRecovery-v0", n_shoppers=1000, n_items=100)
    _, info = env.reset(seed=0)
    with DecisionEngine(
        "decisions.db", seed=0, learner="linucb", guardrails=GuardrailConfig(exploration_floor=0.5)
    ) as eng:
        for _ in range(600):
            d = eng.decide(info["context"])
            _, reward, _, _, _ = env.step(simulator.ACTION_NAMES.index(d.action))
            eng.reward(d.decision_id, reward)
            _, info = env.reset()
    assert (
        cartwise(
            ["evaluate", "--log", "decisions.db", "--policy", "rule", "--out", str(tmp_path / "ev")]
        )
        == 0
    )
    assert "dr" in capsys.readouterr().out
    assert list((tmp_path / "ev").glob("*.png"))
