"""`cartwise run --quick`: every step runs, the report has every section and its figures."""

import re

from engine.cli import main as cartwise


def test_quick_run_writes_a_complete_report(tmp_path, capsys):
    code = cartwise(
        [
            "run",
            "--quick",
            "--no-progress",
            "--out",
            str(tmp_path),
            "--set",
            "train.carts=3000",
            "--set",
            "train.learners=linucb",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "Cartwise run: report in" in out and "Scoreboard" in out and "Off-policy" in out
    reports = list(tmp_path.glob("*/report.html"))
    assert len(reports) == 1
    html = reports[0].read_text()
    for heading in (
        "1. Before Cartwise",
        "2. The embedded engine",
        "3. Scoreboard",
        "4. Off-policy evaluation",
        "5. Simulated A/B test",
    ):
        assert heading in html
    # the OPE section names the interval each estimator got (DR and SNDR: the floored one)
    note = re.search(r"Intervals: auto intervals \((.*?)\)", html)
    assert note is not None
    assert "variance-floored normal for dr, sndr" in note.group(1)
    assert "skewness-corrected for ipw, snipw" in note.group(1)
    assert "none for dm" in note.group(1)  # DM's error is model bias: no interval
    images = re.findall(r"<img [^>]*src=\"data:image/png;base64,", html)
    assert len(images) == 7  # with the risk model's reliability plot
    folder = reports[0].parent
    for name in (
        "decisions.db",
        "model.cw",
        "abtest/abtest.html",
        "engine_learning_curve.png",
        "ope_forest.png",
        "profit_by_policy.png",
        "profit_by_type.png",
        "risk_reliability.png",
    ):
        assert (folder / name).exists(), name


def test_run_rejects_unknown_config_keys(tmp_path, capsys):
    try:
        cartwise(["run", "--quick", "--out", str(tmp_path), "--set", "trian.carts=5"])
    except SystemExit as exit_:
        assert exit_.code == 2
    assert "unknown key 'trian.carts'" in capsys.readouterr().err


def test_jobs_started_in_the_same_second_get_their_own_folders(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from simulator.job.job import new_run_folder

    with ThreadPoolExecutor(8) as pool:
        folders = list(
            pool.map(lambda _: new_run_folder(tmp_path / "reports", "20261122-120000"), range(8))
        )
    assert len(set(folders)) == 8
    assert sorted(f.name for f in folders)[:2] == ["20261122-120000", "20261122-120000-2"]
    assert all(f.is_dir() and not any(f.iterdir()) for f in folders)
