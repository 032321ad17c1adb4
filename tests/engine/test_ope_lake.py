"""Off-policy evaluation of a decision-log lake: the Parquet layout, and one answer from the
memory, stream and Spark backends (to 1e-9 relative, overall and by stratum)."""

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from engine import ope
from engine.decision_log import read_log
from engine.decision_log.lake import lake_schema, read_chunks
from engine.ope import evaluate_log
from engine.ope.lake.reward import RewardStats, fold_of
from engine.ope.lake.stats import histogram_quantile, weight_histogram
from engine.ope.logs import read_log_dataset, target_probabilities
from policies import make_policy

BY = ("model_version", "day")
ESTIMATORS = ("ipw", "snipw", "dr")
COMPARED = [
    "value",
    "ci_low",
    "ci_high",
    "se",
    "n",
    "ess",
    "max_weight",
    "mean_weight",
    "w_p50",
    "w_p90",
    "w_p99",
]
RTOL = 1e-9


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Same index, same figures to RTOL; returns the largest relative difference."""
    assert list(a.index) == list(b.index)
    x, y = a[COMPARED].to_numpy(dtype=float), b[COMPARED].to_numpy(dtype=float)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    ok = ~np.isnan(x)
    np.testing.assert_allclose(y[ok], x[ok], rtol=RTOL, atol=0)
    return float(np.max(np.abs(y[ok] - x[ok]) / np.maximum(np.abs(x[ok]), 1e-300)))


# ---------------------------------------------------------------- the layout
def test_export_writes_one_hive_dataset_with_an_explicit_schema(lake):
    log_path, _, out = lake
    days = sorted(p.name for p in out.iterdir())
    assert days == ["day=2026-01-01", "day=2026-01-02", "day=2026-01-03"]
    expected = lake_schema(
        ope_actions := tuple(read_log(log_path).filter(like="p_").columns.str[2:]), ["x"]
    ).remove(2)  # no `day` column inside hive files
    for file in out.rglob("*.parquet"):
        schema = pq.read_schema(file)
        assert not any(pa.types.is_null(f.type) for f in schema)
        assert schema.field("order_id").type == pa.string()  # all null here, still a string column
        assert schema.names[:15] == expected.names[:15]
        assert [f"p_{a}" for a in ope_actions] == [n for n in schema.names if n.startswith("p_")]
    table = ds.dataset(out, format="parquet", partitioning="hive").to_table().to_pandas()
    frame = read_log(log_path)
    assert len(table) == len(frame)
    table = table.set_index("decision_id").loc[frame["decision_id"]]
    np.testing.assert_array_equal(table["reward"].to_numpy(), frame["reward"].to_numpy())
    np.testing.assert_array_equal(table["p_coupon_10"].to_numpy(), frame["p_coupon_10"].to_numpy())
    np.testing.assert_array_equal(
        table["f_cart_value_log"].to_numpy(np.float64), frame["f_cart_value_log"].to_numpy()
    )  # float32, exactly
    assert table["model_version"].tolist() == frame["model_version"].tolist()
    eligible = [[a for a in ope_actions if row[f"e_{a}"]] for _, row in table.iterrows()]
    assert eligible == [list(e) for e in frame["eligible"]]


def test_store_is_read_in_bounded_chunks(lake):
    log_path = lake[0]
    chunks = list(read_chunks(log_path, chunk_rows=1000))
    assert [len(c) for c in chunks] == [1000, 1000, 1000, 1]
    whole = read_log(log_path)
    joined = pd.concat(chunks, ignore_index=True).set_index("decision_id").loc[whole["decision_id"]]
    numeric = [c for c in whole.columns if c.startswith(("p_", "f_"))] + [
        "timestamp",
        "reward",
        "probability",
    ]
    np.testing.assert_array_equal(joined[numeric].to_numpy(float), whole[numeric].to_numpy(float))
    assert joined["action"].tolist() == whole["action"].tolist()


# ---------------------------------------------------------------- one answer
def test_memory_backend_equals_the_estimators_on_the_same_arrays(lake):
    """Ground truth: the memory backend's IPW/SNIPW are engine.ope.evaluate on the log's arrays,
    and its DR is evaluate() with the cross-fitted ridge predictions."""
    log_path, _, out = lake
    rule = make_policy("rule")
    table = evaluate_log(out, policy="rule", estimators=ESTIMATORS, backend="memory")
    data = read_log_dataset(log_path)
    pi = target_probabilities(data, rule)
    direct = ope.evaluate(
        data.rewards, data.actions, data.logged_probs, pi, estimators=["ipw", "snipw"]
    )
    for est in ("ipw", "snipw", "on-policy"):
        np.testing.assert_allclose(
            table.loc[est, ["value", "se"]].to_numpy(float),
            direct.loc[est, ["value", "se"]].to_numpy(float),
            rtol=1e-12,
        )
    assert table.loc["ipw", "n"] == data.n and table.attrs["n_fallback"] == 1
    # Intervals: the default (auto) is Hall's for IPW/SNIPW, as in engine.ope.evaluate.
    cols = ["ci_low", "ci_high"]
    assert table.attrs["ci"] == "auto" and direct.attrs["ci"] == "auto"
    assert table.attrs["ci_methods"] == {
        "ipw": "skew",
        "snipw": "skew",
        "dr": "analytic",
        "on-policy": "analytic",
    }
    for ci in ("auto", "analytic"):
        lake = evaluate_log(
            out, policy="rule", estimators=("ipw", "snipw"), backend="memory", ci=ci
        )
        ref = ope.evaluate(
            data.rewards, data.actions, data.logged_probs, pi, estimators=["ipw", "snipw"], ci=ci
        )
        np.testing.assert_allclose(
            lake.loc[["ipw", "snipw"], cols].to_numpy(float),
            ref.loc[["ipw", "snipw"], cols].to_numpy(float),
            rtol=1e-12,
        )
    normal = evaluate_log(
        out, policy="rule", estimators=ESTIMATORS, backend="memory", ci="analytic"
    )
    assert not np.allclose(
        normal.loc["ipw", cols].to_numpy(float), table.loc["ipw", cols].to_numpy(float)
    )
    np.testing.assert_allclose(
        normal.loc["dr", cols].to_numpy(float), table.loc["dr", cols].to_numpy(float), rtol=1e-12
    )


def test_ridge_reward_model_matches_scikit_learn_on_the_other_fold():
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    n, d = 3000, 4
    x = rng.normal(size=(n, d)) * [1.0, 3.0, 0.1, 1.0] + 2.0
    actions = rng.integers(0, 2, n)
    rewards = x @ [1.0, -0.5, 4.0, 0.0] + actions + rng.normal(size=n)
    ts = 1_767_225_600.0 + np.arange(n) * 7.3
    halves = RewardStats.of(
        x[:1700], actions[:1700], rewards[:1700], ts[:1700], 2, 2
    ) + RewardStats.of(x[1700:], actions[1700:], rewards[1700:], ts[1700:], 2, 2)
    q = halves.fit().predict(x, ts)
    folds = fold_of(ts, 2)
    assert 0.45 < folds.mean() < 0.55
    for k in range(2):
        for a in range(2):
            train = (folds != k) & (actions == a)
            model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x[train], rewards[train])
            np.testing.assert_allclose(
                q[folds == k, a], model.predict(x[folds == k]), rtol=1e-9, atol=1e-9
            )


@pytest.mark.parametrize("policy", ["model", "rule", "static:coupon_10", "uniform"])
def test_memory_and_stream_agree_overall_and_by_stratum(lake, policy):
    log_path, model_path, out = lake
    target = str(model_path) if policy == "model" else policy
    memory = evaluate_log(out, policy=target, estimators=ESTIMATORS, backend="memory", by=BY)
    stream = evaluate_log(
        out, policy=target, estimators=ESTIMATORS, backend="stream", by=BY, batch_rows=333
    )
    assert_same(memory, stream)
    from_store = evaluate_log(
        log_path, policy=target, estimators=ESTIMATORS, backend="stream", by=BY, batch_rows=500
    )
    assert_same(memory, from_store)
    # Hall's interval for every estimator: the third co-moments merge exactly across batches.
    skew = {"estimators": ESTIMATORS, "by": BY, "ci": "skew"}
    assert_same(
        evaluate_log(out, policy=target, backend="memory", **skew),
        evaluate_log(out, policy=target, backend="stream", batch_rows=333, **skew),
    )
    strata = memory.index.droplevel("estimator").unique()
    assert len(strata) >= 4  # 3 days x versions, plus the total
    totals = memory.xs(("(all)", "(all)"), level=list(BY))
    per = memory.drop(index="(all)", level="model_version").xs("ipw", level="estimator")
    assert per["n"].sum() == totals.loc["ipw", "n"]
    assert math.isclose(
        (per["value"] * per["n"]).sum() / per["n"].sum(), totals.loc["ipw", "value"], rel_tol=1e-12
    )


def test_stream_workers_fold_in_row_group_order_whatever_their_number(lake, tmp_path):
    """Row groups are folded by a pool of threads but merged in file order: 1, 2 or 3 workers
    give the same table bit for bit (the sequential reader too), and each row group is read
    with its hive ``day`` and with nulls for a feature column one file lacks."""
    out = lake[2]
    files = sorted(out.rglob("*.parquet"))
    copy = tmp_path / "logs"
    for k, file in enumerate(files):
        dest = copy / file.relative_to(out)
        dest.parent.mkdir(parents=True, exist_ok=True)
        table = pq.read_table(file)
        if k == 1:  # an older engine's file: one feature column fewer
            table = table.drop_columns(["f_hour_sin"])
        pq.write_table(table, dest, row_group_size=256)
    runs = [
        evaluate_log(copy, policy="rule", backend="stream", by=BY, workers=w) for w in (1, 2, 3)
    ]
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)
    memory = evaluate_log(copy, policy="rule", backend="memory", by=BY)
    assert_same(memory, runs[1])
    assert runs[1].attrs["n_batches"] > len(files)  # several row groups per file
    with pytest.raises(ValueError, match="workers == 0"):
        evaluate_log(copy, policy="rule", backend="stream", workers=0)


@pytest.mark.parametrize("backend, workers", [("memory", None), ("stream", 1), ("stream", 2)])
def test_backends_fold_with_one_blas_thread_and_restore_the_limit(lake, backend, workers):
    """The fold runs with BLAS limited to one thread (the backend's threads already fill the
    cores); the caller's limit is back afterwards."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from engine.ope.lake.backends import RUNNERS
    from engine.ope.lake.source import open_source

    def blas_threads() -> set[int]:
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    seen: list[set[int]] = []

    def fold(batch, plan) -> int:
        seen.append(blas_threads())
        return batch.num_rows

    source = open_source(lake[2])
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        rows = RUNNERS[backend](source, ["decision_id"], fold, None, workers=workers)
        after = blas_threads()
    assert before == after == {2}
    assert seen and all(s == {1} for s in seen)
    assert rows == pq.ParquetDataset(lake[2]).read(columns=["decision_id"]).num_rows


def test_spark_agrees_with_memory_and_stream(lake, spark):
    _, model_path, out = lake
    memory = evaluate_log(
        out, policy=str(model_path), estimators=ESTIMATORS, backend="memory", by=BY
    )
    on_spark = evaluate_log(
        out, policy=str(model_path), estimators=ESTIMATORS, backend="spark", by=BY, spark=spark
    )
    assert_same(memory, on_spark)
    # Hall's interval for every estimator: third co-moments merged across partitions.
    skew = {"estimators": ESTIMATORS, "ci": "skew"}
    rule_memory = evaluate_log(out, policy="rule", backend="memory", **skew)
    rule_spark = evaluate_log(out, policy="rule", backend="spark", spark=spark, **skew)
    assert rule_spark.attrs["ci_methods"]["dr"] == "skew"
    assert_same(rule_memory, rule_spark)


# ---------------------------------------------------------------- diagnostics and errors
def test_weight_quantiles_come_from_an_exact_histogram():
    w = np.array([0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 20.0, 20.0, 20.0, 100.0])
    counts = weight_histogram(w)
    assert counts.sum() == w.size and counts[0] == 2
    assert histogram_quantile(counts, 0.1) == 0.0
    assert 1.0 <= histogram_quantile(counts, 0.5) <= 1.0 * 10**0.01
    assert 20.0 <= histogram_quantile(counts, 0.9) <= 20.0 * 10**0.01
    assert np.array_equal(weight_histogram(w[:4]) + weight_histogram(w[4:]), counts)


def _rewrite(out, tmp_path, change, **write_options):
    target = tmp_path / "bad"
    for file in sorted(out.rglob("*.parquet")):
        dest = target / file.relative_to(out)
        dest.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(change(pq.read_table(file)), dest, **write_options)
    return target


def test_a_missing_column_is_named(lake, tmp_path):
    bad = _rewrite(lake[2], tmp_path, lambda t: t.drop_columns(["reward"]))
    with pytest.raises(ValueError, match="has no column 'reward'"):
        evaluate_log(bad, policy="rule", backend="stream")


def test_probabilities_that_do_not_sum_to_one_name_the_row_and_the_sum(lake, tmp_path):
    def halve(t):
        col = t.column("p_none").to_numpy() * 0.5
        return t.set_column(t.schema.get_field_index("p_none"), "p_none", pa.array(col))

    bad = _rewrite(lake[2], tmp_path, halve)
    with pytest.raises(
        ValueError, match=r"columns p_<action> sum to 0\.\d+ in row \d+ \(decision_id \S+"
    ):
        evaluate_log(bad, policy="rule", backend="stream")


def test_bad_arguments_are_named(lake):
    out = lake[2]
    with pytest.raises(ValueError, match="backend == 'gpu'"):
        evaluate_log(out, policy="rule", backend="gpu")
    with pytest.raises(ValueError, match="policy name == 'nope'"):
        evaluate_log(out, policy="nope", backend="memory")
    with pytest.raises(ValueError, match="has no column 'region'"):
        evaluate_log(out, policy="rule", backend="memory", by=("region",))
    with pytest.raises(ValueError, match=r"ci == 'bootstrap', must be one of \['auto', 'analytic'"):
        evaluate_log(out, policy="rule", backend="memory", ci="bootstrap")


def test_without_a_backend_evaluate_log_is_the_in_memory_frame_evaluation(lake):
    log_path = lake[0]
    legacy = ope.logs.evaluate_decision_log(
        log_path, make_policy("rule"), estimators=["ipw"], seed=0
    )
    pd.testing.assert_frame_equal(
        evaluate_log(log_path, make_policy("rule"), estimators=["ipw"], seed=0), legacy
    )


def test_cli_export_then_evaluate_by_stratum(lake, tmp_path, capsys):
    from engine.cli import main

    log_path, model_path, _ = lake
    assert main(["export", "--log", str(log_path), "--to", str(tmp_path / "logs")]) == 0
    assert "exported 3,001 decisions" in capsys.readouterr().out
    assert (
        main(
            [
                "evaluate",
                "--log",
                str(tmp_path / "logs"),
                "--model",
                str(model_path),
                "--backend",
                "stream",
                "--by",
                "model_version",
                "day",
                "--out",
                str(tmp_path / "rep"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "backend stream" in printed and "dropped 1 fallback" in printed
    saved = pd.read_csv(tmp_path / "rep" / "ope_model_model.csv", index_col=[0, 1, 2])
    expected = evaluate_log(tmp_path / "logs", policy=str(model_path), backend="memory", by=BY)
    np.testing.assert_allclose(saved["value"].to_numpy(), expected["value"].to_numpy(), rtol=1e-9)


def test_a_null_stratum_value_is_its_own_stratum(lake, tmp_path):
    def blank_every_third(t):
        values = t.column("model_version").to_pylist()
        col = pa.array([None if i % 3 == 0 else v for i, v in enumerate(values)], pa.string())
        return t.set_column(t.schema.get_field_index("model_version"), "model_version", col)

    path = _rewrite(lake[2], tmp_path, blank_every_third)
    rows = ds.dataset(path, format="parquet", partitioning="hive").to_table().to_pandas()
    kept = rows[~rows["fallback"] & rows["reward"].notna()]
    by = ("model_version",)
    memory = evaluate_log(path, policy="rule", backend="memory", by=by)
    stream = evaluate_log(path, policy="rule", backend="stream", by=by, batch_rows=300)
    assert_same(memory, stream)
    n = memory.xs("ipw", level="estimator")["n"]
    missing = [i for i, v in enumerate(n.index) if pd.isna(v)]  # None, shown as NaN by pandas
    assert len(missing) == 1
    assert n.iloc[missing[0]] == kept["model_version"].isna().sum()
    for version in kept["model_version"].dropna().unique():
        assert n.loc[version] == (kept["model_version"] == version).sum()
    assert n.loc["(all)"] == len(kept)


# ---------------------------------------------------------------- the reward model's sample


def test_a_sample_reads_the_first_rows_of_row_groups_spread_over_every_day(lake, tmp_path):
    from engine.ope.lake.source import MIN_SAMPLE_GROUPS, open_source

    log_path, _, out = lake
    small_groups = _rewrite(out, tmp_path, lambda t: t, row_group_size=64)
    src = open_source(small_groups)
    groups = list(src.pieces())
    total = sum(p.num_rows for p in groups)
    assert len(groups) > 3 * MIN_SAMPLE_GROUPS
    sample = src.sampled(1000)
    assert sample is not src and len(sample.sample) == MIN_SAMPLE_GROUPS
    positions = [
        groups.index(next(g for g in groups if (g.path, g.row_group) == (f, k)))
        for f, k, _ in sample.sample
    ]
    gaps = np.diff(positions)
    assert gaps.min() >= len(groups) // MIN_SAMPLE_GROUPS - 1  # evenly spaced
    table = sample.table(["decision_id", "timestamp", "day"])
    # at most the bound plus one row per group (each group reads ceil(1000 / 16) rows or all
    # of a shorter group)
    assert 800 < table.num_rows == sum(r for *_, r in sample.sample) <= 1000 + len(sample.sample)
    days = ds.dataset(out, partitioning="hive").to_table(columns=["day"])["day"].to_pylist()
    assert set(table["day"].to_pylist()) == set(days)
    expected = []
    for path, group, rows in sample.sample:
        read = pq.ParquetFile(path).read_row_group(group, columns=["decision_id"])
        expected += read["decision_id"].to_pylist()[:rows]
    assert table["decision_id"].to_pylist() == expected
    streamed = [b for b in sample.batches(["decision_id"], batch_rows=20)]
    assert max(b.num_rows for b in streamed) <= 20
    assert [i for b in streamed for i in b["decision_id"].to_pylist()] == expected
    assert src.sampled(None) is src and src.sampled(total) is src
    store = open_source(log_path)
    assert store.sampled(10) is store  # a decision-log store is read whole


def _many_files(out, folder, rows_per_file: int, row_group_size: int):
    """The lake's rows rewritten per day into files of ``rows_per_file`` rows."""
    for day_folder in sorted(p for p in out.iterdir() if p.is_dir()):
        table = pa.concat_tables(pq.read_table(f) for f in sorted(day_folder.glob("*.parquet")))
        (folder / day_folder.name).mkdir(parents=True)
        for k, start in enumerate(range(0, table.num_rows, rows_per_file)):
            pq.write_table(
                table.slice(start, rows_per_file),
                folder / day_folder.name / f"part-{k:04d}.parquet",
                row_group_size=row_group_size,
            )
    return folder


def test_a_sample_of_a_log_of_many_files_reads_only_the_footers_it_needs(
    lake, tmp_path, monkeypatch, spark
):
    from engine.ope.lake import source
    from engine.ope.lake.source import FOOTER_SCAN_FILES, MIN_SAMPLE_GROUPS, open_source

    _, model_path, out = lake
    many = _many_files(out, tmp_path / "many", rows_per_file=30, row_group_size=10)
    files = sorted(str(f) for f in many.rglob("*.parquet"))
    assert len(files) > FOOTER_SCAN_FILES
    src = open_source(many)
    total = sum(p.num_rows for p in src.pieces())
    read: list[str] = []
    real_footer = source.footer
    monkeypatch.setattr(source, "footer", lambda f: read.append(f.path) or real_footer(f))

    sample = src.sampled(300)
    assert len(read) == len(set(read)) < len(files) // 2  # each footer once, few of them
    m = max(MIN_SAMPLE_GROUPS, 300 // 10)
    assert len(set(read)) <= MIN_SAMPLE_GROUPS + m
    picked = [files.index(f) for f, _, _ in sample.sample]
    assert picked == sorted(picked)  # in the dataset's order
    assert picked[0] < len(files) / m + 1 and picked[-1] > len(files) * (1 - 1 / m) - 2  # spread
    assert np.diff(picked).max() <= 2 * len(files) / m + 1  # evenly
    assert 250 < sum(r for *_, r in sample.sample) <= 300 + len(sample.sample)
    table = sample.table(["decision_id", "day"])
    expected = []
    for path, group, rows in sample.sample:
        got = pq.ParquetFile(path).read_row_group(group, columns=["decision_id"])
        expected += got["decision_id"].to_pylist()[:rows]
    assert table["decision_id"].to_pylist() == expected
    days = {p.name.removeprefix("day=") for p in many.iterdir()}
    assert set(table["day"].to_pylist()) == days

    read.clear()  # a bound near the log's size: every footer, and the exact decision
    assert src.sampled(total) is src and len(set(read)) == len(files)
    assert src.sampled(total // 2 + 1).sample is not None

    kw = {"policy": str(model_path), "estimators": ESTIMATORS, "by": BY, "reward_rows": 300}
    monkeypatch.undo()
    tables = [evaluate_log(many, backend=b, **kw) for b in ("memory", "stream")]
    tables.append(evaluate_log(many, backend="spark", spark=spark, **kw))
    fitted = sample.table(["fallback", "reward"]).to_pandas()  # the rows the model learns from
    assert tables[0].attrs["reward_model_rows"] == (~fitted.fallback & fitted.reward.notna()).sum()
    cols = ["value", "ci_low", "ci_high", "se"]
    for other in tables[1:]:
        assert other.attrs["reward_model_rows"] == tables[0].attrs["reward_model_rows"]
        np.testing.assert_allclose(other[cols], tables[0][cols], rtol=1e-9, atol=1e-12)


def test_every_backend_fits_the_reward_model_on_the_same_sample(lake, spark):
    _, model_path, out = lake
    kw = {"policy": str(model_path), "estimators": ESTIMATORS, "by": BY, "reward_rows": 1000}
    memory = evaluate_log(out, backend="memory", **kw)
    stream = evaluate_log(out, backend="stream", batch_rows=333, workers=2, **kw)
    on_spark = evaluate_log(out, backend="spark", spark=spark, **kw)
    assert_same(memory, stream)
    assert_same(memory, on_spark)
    n_sample = memory.attrs["reward_model_rows"]
    # kept rows of the sample: at most the bound plus one per group (the fixture has 8 groups,
    # so 125 rows of each); fallback and unsettled rows are left out
    assert 700 <= n_sample <= 1008
    assert stream.attrs["reward_model_rows"] == on_spark.attrs["reward_model_rows"] == n_sample
    whole = evaluate_log(out, backend="memory", **{**kw, "reward_rows": None})
    assert whole.attrs["reward_model_rows"] == whole.loc[("(all)", "(all)", "dr"), "n"]
    # the sample changes DR (another reward model), not the importance-weighted estimators
    assert not np.isclose(
        whole.loc["(all)", "(all)", "dr"]["value"],
        memory.loc["(all)", "(all)", "dr"]["value"],
        rtol=1e-9,
    )
    assert_same(whole.xs("ipw", level="estimator"), memory.xs("ipw", level="estimator"))
    with pytest.raises(ValueError, match="reward_rows == 0"):
        evaluate_log(out, backend="memory", **{**kw, "reward_rows": 0})


def test_dr_with_a_sampled_reward_model_covers_the_truth(tmp_path):
    """A generated lake whose expected reward is known (0.5 x_0 + 0.2 a, unit noise): DR fitted
    on a tenth of the rows covers the uniform policy's true value, with an interval within 2%
    of DR fitted on every row, narrower than IPW's (measured: 1.45% wider; 10% with 2% of the
    rows, 0.7% with a fifth: the model's own estimation error, 35 features per action)."""
    from lake_generator import write_lake

    from engine.features import FeatureBuilder

    out = write_lake(tmp_path / "gen", 120_000, rows_per_file=20_000, days=3, row_group=5_000)
    table = evaluate_log(
        out, policy="uniform", estimators=("ipw", "dr"), backend="stream", reward_rows=12_000
    )
    assert table.attrs["reward_model_rows"] == 12_000
    data = ds.dataset(out, partitioning="hive").to_table()
    names = [n for n in data.column_names if n.startswith("p_")]
    eligible = np.column_stack([data[n].to_numpy() > 0 for n in names])
    x0 = data[f"f_{FeatureBuilder().feature_names[0]}"].to_numpy()
    index = np.arange(len(names))
    truth = float(np.mean(0.5 * x0 + 0.2 * (eligible @ index) / eligible.sum(axis=1)))
    dr, ipw = table.loc["dr"], table.loc["ipw"]
    assert dr["ci_low"] <= truth <= dr["ci_high"], (truth, dr[["ci_low", "ci_high"]])
    whole = evaluate_log(
        out, policy="uniform", estimators=("dr",), backend="stream", reward_rows=None
    )
    assert whole.attrs["reward_model_rows"] == 120_000
    assert dr["se"] < 0.92 * ipw["se"]
    assert dr["se"] < 1.02 * whole.loc["dr", "se"]


def test_cli_reward_rows_sets_the_reward_models_sample(lake, tmp_path, capsys):
    from engine.cli import main

    _, _, out = lake

    def dr_value(*argv: str) -> float:
        rep = tmp_path / "rep"
        args = ["evaluate", "--log", str(out), "--policy", "rule", "--out", str(rep), *argv]
        assert main(args) == 0
        return float(pd.read_csv(rep / "ope_rule.csv", index_col=0).loc["dr", "value"])

    for argv, rows in ((("--reward-rows", "1000"), 1000), (("--reward-rows", "all"), None)):
        expected = evaluate_log(out, policy="rule", backend="stream", reward_rows=rows)
        assert dr_value(*argv) == pytest.approx(expected.loc["dr", "value"], rel=1e-12)
    assert dr_value() == pytest.approx(dr_value("--reward-rows", "all"), rel=1e-12)  # small log
    for bad in ("0", "many"):
        with pytest.raises(SystemExit):
            main(["evaluate", "--log", str(out), "--reward-rows", bad])
        assert f"--reward-rows == {bad!r}" in capsys.readouterr().err
