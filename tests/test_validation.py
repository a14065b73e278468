"""Validation metrics and report: checked against scikit-learn, brute force and simulation with a known truth."""

from __future__ import annotations

import base64
import json
import os
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from validation import metrics as vm
from validation.report import (
    Report,
    calibration_figure,
    calibration_over_time_figure,
    decile_table,
    roc_figure,
    score_distribution_figure,
)


def logistic_sample(n, seed, shift=-2.0, ties=False):
    """Predictions p and outcomes drawn from them: a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    p = 1.0 / (1.0 + np.exp(-(shift + rng.normal(0, 1.2, n))))
    if ties:
        p = np.round(p, 2)
    y = (rng.random(n) < p).astype(int)
    return y, p


def duplicated_binormal(n_groups, rows_per_group, mu, seed, bad_share=0.3):
    """One (label, score) per account, repeated on each of its rows. True AUC = Phi(mu / sqrt 2)."""
    rng = np.random.default_rng(seed)
    y_g = (rng.random(n_groups) < bad_share).astype(int)
    s_g = rng.normal(mu * y_g, 1.0)
    groups = np.repeat(np.arange(n_groups), rows_per_group)
    return y_g[groups], s_g[groups], groups


# --------------------------------------------------------------------------------------- discrimination


@pytest.mark.parametrize("ties", [False, True])
def test_scalar_metrics_equal_scikit_learn(ties):
    y, p = logistic_sample(5_000, seed=1, ties=ties)
    assert vm.auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert vm.gini(y, p) == pytest.approx(2 * skm.roc_auc_score(y, p) - 1, abs=1e-12)
    assert vm.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p), abs=1e-12)
    assert vm.log_loss(y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    fpr, tpr = vm.roc_points(y, p)
    assert np.trapezoid(tpr, fpr) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_auc_accepts_pandas_and_booleans_and_orientation_matters():
    y, p = logistic_sample(2_000, seed=2)
    assert vm.auc(pd.Series(y.astype(bool)), pd.Series(p, dtype="Float64")) == pytest.approx(vm.auc(y, p))
    assert vm.auc(y, -p) == pytest.approx(1 - vm.auc(y, p))  # a safer-is-higher score must be negated


@pytest.mark.parametrize("ties", [False, True])
def test_ks_equals_brute_force_over_every_threshold(ties):
    y, p = logistic_sample(1_500, seed=3, ties=ties)
    bad, good = p[y == 1], p[y == 0]
    brute = max(abs((bad <= t).mean() - (good <= t).mean()) for t in np.unique(p))
    assert vm.ks(y, p) == pytest.approx(brute, abs=1e-12)
    assert vm.ks(y, p) == pytest.approx(stats.ks_2samp(bad, good).statistic, abs=1e-12)


# ------------------------------------------------------------------------------------------ calibration


def test_equal_frequency_bins_are_equal_and_keep_ties_together_whatever_the_row_order():
    rng = np.random.default_rng(4)
    assert np.bincount(vm.equal_frequency_bins(rng.random(1_000), 10)).tolist() == [100] * 10
    p = rng.integers(0, 7, 1_000).astype(float)
    b = vm.equal_frequency_bins(p, 10)
    assert pd.Series(b).groupby(p).nunique().max() == 1  # one bin per tied value
    perm = rng.permutation(len(p))
    assert np.array_equal(vm.equal_frequency_bins(p[perm], 10), b[perm])


def test_ece_is_zero_when_every_bin_is_exactly_calibrated():
    # 10 bins of 100 rows; bin k predicts (k+1)/20 for every row and holds exactly 5(k+1) bads
    p = np.repeat(np.arange(1, 11) / 20, 100)
    y = np.concatenate([np.r_[np.ones(5 * k), np.zeros(100 - 5 * k)] for k in range(1, 11)])
    assert vm.ece(y, p) == pytest.approx(0.0, abs=1e-12)
    assert vm.calibration_table(y, p)["inside"].all()


def test_ece_is_the_weighted_gap_when_predictions_are_off():
    y, p = logistic_sample(20_000, seed=5)
    q = np.clip(p * 1.5, 0, 1)
    table = vm.calibration_table(y, q)
    expected = np.sum(table["n"] / len(y) * np.abs(table["observed"] - table["predicted"]))
    assert vm.ece(y, q) == pytest.approx(expected, abs=1e-12)
    assert vm.ece(y, q) > 3 * vm.ece(y, p) > 0


@pytest.mark.parametrize("method", ["binomial", "normal"])
def test_calibration_table_passes_calibrated_and_fails_biased_predictions(method):
    passes, inside_calibrated, inside_biased = 0, [], []
    for seed in range(20):
        y, p = logistic_sample(20_000, seed=100 + seed, shift=-3.0)  # bad rate ~7 %, low deciles expect few bads
        t = vm.calibration_table(y, p, method=method)
        assert len(t) == 10 and t["n"].sum() == len(y)
        assert (t["lo"] <= t["predicted"]).all() and (t["predicted"] <= t["hi"]).all()
        passes += int(t["inside"].sum() >= 9)
        inside_calibrated.append(t["inside"].mean())
        inside_biased.append(vm.calibration_table(y, np.minimum(p * 1.2, 1), method=method)["inside"].mean())
    assert 0.92 <= np.mean(inside_calibrated) <= 0.995  # ~95 % of bins: neither too narrow nor too wide
    assert passes >= 17  # the "9 of 10 deciles" acceptance test passes for nearly every calibrated model
    assert max(inside_biased) < 0.9  # 20 % too high fails it every time


def test_calibration_by_period_equals_the_decile_table_when_the_periods_are_the_deciles():
    y, p = logistic_sample(30_000, seed=21, shift=-3.0)
    deciles = vm.calibration_table(y, p)
    by = vm.calibration_by_period(y, p, vm.equal_frequency_bins(p, 10))
    for col in ("n", "bads", "predicted", "observed", "lo", "hi", "inside"):
        np.testing.assert_allclose(by[col].to_numpy(np.float64), deciles[col].to_numpy(np.float64), err_msg=col)
    np.testing.assert_allclose(by["oe_ratio"], by["observed"] / by["predicted"])


def test_calibration_by_period_shows_a_level_drift_that_starts_in_one_period():
    rng = np.random.default_rng(22)
    months = np.repeat(pd.date_range("2024-01-31", periods=12, freq="ME").to_numpy(), 20_000)
    p = rng.uniform(0.02, 0.10, len(months))
    late = months >= np.datetime64("2024-07-31")
    y = (rng.random(len(p)) < np.where(late, 0.8 * p, p)).astype(float)  # the level falls 20 % from July
    t = vm.calibration_by_period(y, p, months)
    assert list(t["period"]) == sorted(set(months)) and t["n"].sum() == len(y)
    grouped = pd.DataFrame({"m": months, "y": y, "p": p}).groupby("m").mean()
    np.testing.assert_allclose(t["observed"], grouped["y"]) and np.testing.assert_allclose(t["predicted"], grouped["p"])
    before, after = t[t["period"] < np.datetime64("2024-07-31")], t[t["period"] >= np.datetime64("2024-07-31")]
    assert before["inside"].sum() >= 5 and not after["inside"].any()
    assert (abs(before["oe_ratio"] - 1) < 0.1).all() and (abs(after["oe_ratio"] - 0.8) < 0.1).all()  # 4 sd: 1,200 bads
    with pytest.raises(vm.MetricError, match=r"period is missing in 1 row\(s\), e.g. rows \[3\]"):
        vm.calibration_by_period(y[:5], p[:5], np.array([1.0, 2.0, 1.0, np.nan, 2.0]))
    with pytest.raises(vm.MetricError, match="period has shape"):
        vm.calibration_by_period(y, p, months[:-1])


def test_calibration_by_segment_finds_the_band_a_level_miss_sits_in():
    rng = np.random.default_rng(23)
    n = 120_000
    record = rng.uniform(0, 36, n)  # months of clean record: the model over-predicts the longest fifth by half
    product = rng.integers(0, 2, n).astype(float)
    product[:1000] = np.nan  # rows without a product: their own segment
    p = rng.uniform(0.02, 0.10, n)
    y = (rng.random(n) < np.where(record >= np.quantile(record, 0.8), 0.5 * p, p)).astype(float)
    oracle = np.where(np.arange(n) % 2 == 0, p / 2, np.nan)  # known on half of the rows
    t = vm.calibration_by_segment(y, p, pd.DataFrame({"record": record, "product": product}), oracle=oracle)
    rec, prod = t[t["feature"] == "record"], t[t["feature"] == "product"]
    assert len(rec) == 5 and rec["n"].sum() == n and (rec["n"] == n // 5).all()
    assert rec["inside"].tolist() == [True, True, True, True, False]  # 5 sd: ~1,400 bads in the last band
    assert abs(rec["oe_ratio"].iloc[-1] - 0.5) < 0.05 and rec["segment"].iloc[0].startswith("0")
    assert prod["segment"].tolist() == ["0", "1", "missing"] and prod["n"].tolist() == [
        int((product == 0).sum()), int((product == 1).sum()), 1000]
    frame = pd.DataFrame({"y": y, "p": p, "o": oracle, "prod": np.nan_to_num(product, nan=9)})
    by = frame.groupby("prod").agg(y=("y", "mean"), p=("p", "mean"), o=("o", "mean"))
    np.testing.assert_allclose(prod["observed"], by["y"]) and np.testing.assert_allclose(prod["predicted"], by["p"])
    np.testing.assert_allclose(prod["oracle"], by["o"])  # the mean over the rows where it is known
    assert vm.calibration_by_segment(y, p, pd.DataFrame(index=range(n))).columns[0] == "feature"
    with pytest.raises(vm.MetricError, match=r"feature 'grade' is not numeric in 1 of 3 rows \(positions 1\)"):
        vm.calibration_by_segment([0, 1, 0], [0.1, 0.2, 0.3], pd.DataFrame({"grade": [1, "B", None]}))
    with pytest.raises(vm.MetricError, match="features has 2 rows, expected 3"):
        vm.calibration_by_segment([0, 1, 0], [0.1, 0.2, 0.3], pd.DataFrame({"x": [1.0, 2.0]}))


# ------------------------------------------------------------------------------------------- bootstrap


def test_weighted_auc_of_a_resample_equals_scikit_learn_with_sample_weights():
    y, p = logistic_sample(3_000, seed=6, ties=True)  # ties and long runs of goods (merged blocks)
    groups = np.random.default_rng(6).integers(0, 400, len(y))
    codes, n_groups = vm._group_codes(groups, len(y))
    for scale in (1, 300):  # times drawn held in a byte each, and beyond a byte
        weights = scale * np.random.default_rng(7).poisson(1.0, size=(n_groups, 70)).astype(float)
        got = vm._AucBlocks(y, p, codes, n_groups).aucs(weights)  # 70 resamples: more than one pass's 64
        want = [skm.roc_auc_score(y, p, sample_weight=weights[codes, j]) for j in range(70)]
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_cluster_bootstrap_covers_the_true_auc_where_a_row_bootstrap_does_not():
    mu = 1.0
    true_auc = stats.norm.cdf(mu / np.sqrt(2))
    cluster_hits, row_hits = 0, 0
    runs = 60
    for seed in range(runs):
        y, s, groups = duplicated_binormal(150, 4, mu, seed)
        lo, hi = vm.bootstrap_auc_ci(y, s, groups, n_boot=200, seed=seed)
        cluster_hits += lo <= true_auc <= hi
        lo, hi = vm.bootstrap_auc_ci(y, s, None, n_boot=200, seed=seed)
        row_hits += lo <= true_auc <= hi
    assert cluster_hits / runs >= 0.85
    assert row_hits / runs <= 0.8  # treating 4 copies of an account as 4 accounts: about 2x too narrow


def test_cluster_interval_is_wider_than_row_interval_when_rows_repeat_within_accounts():
    y, s, groups = duplicated_binormal(300, 9, 1.0, seed=8)
    lo_c, hi_c = vm.bootstrap_auc_ci(y, s, groups)
    lo_r, hi_r = vm.bootstrap_auc_ci(y, s)
    assert 2.0 < (hi_c - lo_c) / (hi_r - lo_r) < 4.5  # ~ sqrt(9)
    # with one row per account the two agree
    y1, s1, g1 = duplicated_binormal(2_700, 1, 1.0, seed=8)
    w_c = np.subtract(*vm.bootstrap_auc_ci(y1, s1, g1)[::-1])
    w_r = np.subtract(*vm.bootstrap_auc_ci(y1, s1)[::-1])
    assert w_c == pytest.approx(w_r, rel=0.3)


def test_interval_widens_as_the_same_rows_come_from_fewer_accounts():
    widths = []
    for n_groups in (3_000, 300, 60):
        y, s, groups = duplicated_binormal(n_groups, 3_000 // n_groups, 1.0, seed=9)
        lo, hi = vm.bootstrap_auc_ci(y, s, groups)
        assert lo <= vm.auc(y, s) <= hi
        widths.append(hi - lo)
    assert widths[0] < widths[1] < widths[2]


def test_bootstrap_is_reproducible_and_uses_string_account_ids():
    y, s, groups = duplicated_binormal(200, 3, 1.0, seed=10)
    ids = np.char.add("acc-", groups.astype(str))
    assert vm.bootstrap_auc_ci(y, s, ids, seed=3) == vm.bootstrap_auc_ci(y, s, groups, seed=3)
    assert vm.bootstrap_auc_ci(y, s, groups, seed=3) != vm.bootstrap_auc_ci(y, s, groups, seed=4)


def test_paired_difference_interval():
    rng = np.random.default_rng(11)
    y, s, groups = duplicated_binormal(1_000, 2, 1.2, seed=11)
    assert vm.bootstrap_auc_diff_ci(y, s, s, groups) == (0.0, 0.0)
    weaker = s + rng.normal(0, 1.0, len(s))  # same model plus noise ranks worse
    lo, hi = vm.bootstrap_auc_diff_ci(y, s, weaker, groups)
    assert 0 < lo < vm.auc(y, s) - vm.auc(y, weaker) < hi
    # pairing: the difference is known more precisely than either AUC alone
    a_lo, a_hi = vm.bootstrap_auc_ci(y, s, groups)
    assert hi - lo < a_hi - a_lo


def test_bootstrap_with_one_class_in_most_resamples_is_refused():
    y = np.zeros(400, dtype=int)
    y[:2] = 1
    groups = np.repeat(np.arange(200), 2)  # both bads sit in one account out of 200
    with pytest.raises(vm.MetricError, match="too few accounts with bads"):
        vm.bootstrap_auc_ci(y, np.random.default_rng(0).random(400), groups)


# ----------------------------------------------------------------------------------------------- drift


def test_psi_is_near_zero_on_the_same_distribution_and_alerts_on_a_shift():
    rng = np.random.default_rng(12)
    x_ref = rng.normal(600, 50, 50_000)
    ref = json.loads(json.dumps(vm.reference_distribution(x_ref)))  # stored as JSON with the model
    assert len(ref["edges"]) == 9 and sum(ref["shares"]) == pytest.approx(1.0)
    same = vm.psi(ref, rng.normal(600, 50, 50_000))
    shifted = vm.psi(ref, rng.normal(640, 50, 50_000))
    assert same < 0.01 and vm.drift_level(same) == "stable"
    assert shifted > 0.25 and vm.drift_level(shifted) == "alert"


def test_psi_counts_missing_values_and_unseen_categories_as_their_own_bins():
    rng = np.random.default_rng(13)
    x = rng.integers(0, 4, 20_000).astype(float)  # a count feature: many ties, fewer than 10 bins
    ref = vm.reference_distribution(x)
    assert len(ref["shares"]) == len(ref["edges"]) + 1 <= 5 and ref["missing"] == 0
    assert vm.psi(ref, x) == 0.0
    x_missing = x.copy()
    x_missing[:5_000] = np.nan
    assert vm.psi(ref, x_missing) > 0.25  # a feed losing a quarter of its values is an alert
    cats = pd.Series(rng.choice(["revolving", "installment"], 10_000))
    cref = vm.reference_distribution(cats)
    assert vm.psi(cref, cats) == 0.0
    assert vm.psi(cref, pd.Series(["revolving", "bnpl"] * 5_000)) > 0.25


def test_drift_levels_follow_the_conventional_thresholds():
    assert [vm.drift_level(v) for v in (0.0, 0.099, 0.1, 0.25, 0.2501)] == [
        "stable", "stable", "warning", "warning", "alert"
    ]
    with pytest.raises(vm.MetricError):
        vm.drift_level(float("nan"))


def test_a_value_is_judged_against_the_training_range_with_a_margin_of_a_share_of_its_width():
    training = [0.0, 0.4]  # margin: RANGE_MARGIN x 0.4
    edge = vm.RANGE_MARGIN * 0.4
    levels = [vm.range_level(v, training) for v in (0.0, 0.2, 0.4, 0.4 + edge / 2, -edge / 2, 0.4 + 1.01 * edge,
                                                     -1.01 * edge, 2.0)]
    assert levels == ["stable", "stable", "stable", "warning", "warning", "alert", "alert", "alert"]
    assert vm.range_level(0.41, training, margin=0.0) == "alert"
    assert vm.range_level(0.7, [0.7, 0.7]) == "stable" and vm.range_level(0.7001, [0.7, 0.7]) == "alert"
    assert vm.outside(0.5, training) == pytest.approx(0.1) and vm.outside(-0.3, training) == pytest.approx(0.3)
    with pytest.raises(vm.MetricError, match="a finite number"):
        vm.range_level(float("nan"), training)
    with pytest.raises(vm.MetricError, match=r"\[lowest, highest\]"):
        vm.range_level(0.1, [0.4, 0.0])


def test_the_training_range_ignores_missing_values_and_is_none_when_all_are():
    assert vm.training_range(np.array([0.3, np.nan, -0.1, 0.2])) == [-0.1, 0.3]
    assert vm.training_range(pd.Series([np.nan, np.nan])) is None
    assert json.loads(json.dumps(vm.training_range([1, 2]))) == [1.0, 2.0]  # stored as JSON with the model
    with pytest.raises(vm.MetricError, match="infinite values"):
        vm.training_range(np.array([0.1, np.inf]))


# ---------------------------------------------------------------------------------------------- errors


def test_errors_say_what_is_wrong():
    y, p = logistic_sample(100, seed=14)
    with pytest.raises(vm.MetricError, match=r"p has 99 values but y has 100"):
        vm.auc(y, p[:-1])
    with pytest.raises(vm.MetricError, match=r"only one class in y \(all 0\): AUC needs both goods and bads"):
        vm.auc(np.zeros(10), np.linspace(0, 1, 10))
    with pytest.raises(vm.MetricError, match=r"only one class in y \(all 1\)"):
        vm.bootstrap_auc_ci(np.ones(10), np.linspace(0, 1, 10))
    p_nan = p.copy()
    p_nan[[3, 7]] = np.nan
    with pytest.raises(vm.MetricError, match=r"p is NaN in 2 of 100 rows \(positions 3, 7\)"):
        vm.metric_set(y, p_nan)
    y_nan = y.astype(float)
    y_nan[5] = np.nan
    with pytest.raises(vm.MetricError, match="outside a target's population"):
        vm.ks(y_nan, p)
    with pytest.raises(vm.MetricError, match=r"0 \(good\) or 1 \(bad\); found 2"):
        vm.auc(np.r_[y[:-1], 2], p)
    with pytest.raises(vm.MetricError, match="probability in"):
        vm.brier(y, p * 900)  # a score, not a probability
    with pytest.raises(vm.MetricError, match="groups has shape"):
        vm.bootstrap_auc_ci(y, p, np.arange(50))


def test_metric_set_holds_every_scalar_metric():
    y, s, groups = duplicated_binormal(500, 2, 1.0, seed=15)
    p = stats.norm.cdf(s - 1.5)
    out = vm.metric_set(y, p, groups, n_boot=100)
    assert set(out) == {"n", "bad_rate", "mean_p", "oe_ratio", "auc", "gini", "ks", "brier", "log_loss", "ece",
                        "n_groups", "auc_lo", "auc_hi", "gini_lo", "gini_hi"}
    assert out["mean_p"] == pytest.approx(p.mean()) and out["oe_ratio"] == pytest.approx(y.mean() / p.mean())
    assert out["auc_lo"] < out["auc"] < out["auc_hi"] and out["n_groups"] == 500 and out["n"] == 1_000
    assert all(isinstance(v, float) for v in out.values())
    assert "auc_lo" not in vm.metric_set(y, p)


# ---------------------------------------------------------------------------------------------- report


class TagChecker(HTMLParser):
    VOID = frozenset({"meta", "img", "br", "hr", "link", "input"})

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.imgs, self.tables = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.imgs.append(dict(attrs))
        self.tables += tag == "table"
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def build_report():
    y, p = logistic_sample(5_000, seed=16)
    scores = 600 - 50 * np.log(p / (1 - p))
    r = Report("Default model <validation>")
    r.add_section("Summary").add_text("Out-of-time sample; **AUC** with `account` bootstrap & more.\n\n- one\n- two")
    r.add_table("Metrics", pd.DataFrame([vm.metric_set(y, p)]), fmt={"auc": ".3f"})
    r.add_table("Deciles", decile_table(y, p, scores))
    r.add_figure("ROC", roc_figure({"model": (y, p), "noisy": (y, p + np.random.default_rng(0).random(len(p)))}))
    r.add_figure("Calibration", calibration_figure({"model": (y, p)}))
    r.add_figure("Scores", score_distribution_figure(scores, y))
    months = np.repeat(np.array(["2024-01-31", "2024-02-29"], dtype="datetime64[ns]"), len(y) // 2)
    r.add_figure("Over time", calibration_over_time_figure(vm.calibration_by_period(y, p, months).assign(slice="test")))
    return r, y, p


def test_report_writes_one_valid_self_contained_html_file(tmp_path):
    r, y, p = build_report()
    path = r.write(tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    checker = TagChecker()
    checker.feed(text)
    assert text.startswith("<!DOCTYPE html>") and not checker.errors and checker.stack == []
    assert checker.tables == 2 and len(checker.imgs) == 4 == r.n_figures
    for img in checker.imgs:
        assert base64.b64decode(img["src"].removeprefix("data:image/png;base64,"))[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Default model &lt;validation&gt;" in text and "<strong>AUC</strong>" in text and "&amp; more" in text
    assert f"<td class=num>{vm.auc(y, p):.3f}</td>" in text
    assert "http://" not in text and "https://" not in text  # nothing fetched
    assert os.listdir(tmp_path / "out") == ["report.html"]


def test_figures_are_closed_after_embedding():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    before = len(plt.get_fignums())
    Report("t").add_figure("line", fig)
    assert len(plt.get_fignums()) == before - 1


def test_interrupted_write_leaves_no_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    r = Report("small").add_table("t", pd.DataFrame({"a": [1, 2]}))

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        r.write(tmp_path / "report.html")
    assert os.listdir(tmp_path) == []
    (tmp_path / "report.html").write_text("previous")
    with pytest.raises(KeyboardInterrupt):
        r.write(tmp_path / "report.html")
    assert os.listdir(tmp_path) == ["report.html"] and (tmp_path / "report.html").read_text() == "previous"


def test_decile_table_is_the_gains_table_riskiest_first():
    y, p = logistic_sample(10_000, seed=17)
    scores = 600 - 50 * np.log(p / (1 - p))  # higher = safer
    by_p, by_score = decile_table(y, p), decile_table(y, p, scores)
    pd.testing.assert_frame_equal(by_p.drop(columns=["p_min", "p_max"]),
                                  by_score.drop(columns=["score_min", "score_max"]))
    assert by_score["score_max"].is_monotonic_increasing and by_p["p_min"].is_monotonic_decreasing
    assert by_p["n"].tolist() == [1_000] * 10 and by_p["bads"].sum() == y.sum()
    assert by_p["bad_rate"].iloc[0] > 3 * by_p["bad_rate"].iloc[-1]
    assert by_p["cum_bads"].iloc[-1] == pytest.approx(1.0) and by_p["cum_goods"].iloc[-1] == pytest.approx(1.0)
    assert by_p["ks"].max() <= vm.ks(y, p) + 1e-12  # KS at decile cuts can only miss the exact maximum
    assert by_p["ks"].max() > vm.ks(y, p) - 0.05


def _accounts_seen_three_times(seed: int = 3, n: int = 20_000):
    """Rows of accounts each seen at three dates with the same outcome: rows move together by account."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.01, 0.3, n)
    y = (rng.uniform(size=n) < p).astype(float)
    return np.repeat(y, 3), np.repeat(p, 3), np.repeat(np.arange(n), 3)


def test_clustered_calibration_widens_with_accounts_seen_often_and_still_catches_a_wrong_level():
    y, p, acc = _accounts_seen_three_times()
    clustered = vm.calibration_table(y, p, method="clustered", groups=acc)
    normal = vm.calibration_table(y, p, method="normal")
    width = (clustered["hi"] - clustered["lo"]) / (normal["hi"] - normal["lo"])
    assert width.between(1.5, 2.0).all()  # about sqrt(3): three rows of one account are one draw
    assert clustered["inside"].sum() >= 9
    assert vm.calibration_table(y, 1.3 * p, method="clustered", groups=acc)["inside"].sum() <= 3
    with pytest.raises(vm.MetricError, match="needs groups"):
        vm.calibration_table(y, p, method="clustered")


def test_observed_over_predicted_is_judged_against_its_own_interval():
    y, p, acc = _accounts_seen_three_times()
    right = vm.observed_over_predicted(y, p, groups=acc)
    assert right["inside"] and right["lo"] < right["ratio"] < right["hi"] and right["lo"] < 1 < right["hi"]
    rows_alone = vm.observed_over_predicted(y, p)
    assert (right["hi"] - right["lo"]) > 1.5 * (rows_alone["hi"] - rows_alone["lo"])
    high = vm.observed_over_predicted(y, 1.1 * p, groups=acc)
    assert high["ratio"] == pytest.approx(right["ratio"] / 1.1) and not high["inside"]


def test_auc_ratio_interval_is_paired_and_holds_the_ratio():
    y, p, acc = _accounts_seen_three_times(n=4_000)
    noisy = p + np.random.default_rng(1).normal(0, 0.1, len(p))
    assert vm.bootstrap_auc_ratio_ci(y, p, p, groups=acc, n_boot=50) == (1.0, 1.0)
    lo, hi = vm.bootstrap_auc_ratio_ci(y, noisy, p, groups=acc, n_boot=200)
    assert lo < vm.auc(y, noisy) / vm.auc(y, p) < hi < 1.0
