"""DeLong's AUC variance (plain, clustered, paired), the ECB AUC decline test, CAP and gains: checked against
O(n^2) brute force, closed forms, scikit-learn / scipy and the account-level bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn import metrics as skm

from validation import discrimination as vd
from validation import metrics as vm
from validation.grouped_auc import Ranked, grouped_auc
from validation.metrics import MetricError
from validation.report import decile_table


def tied_sample(n, seed, shift=-1.0):
    rng = np.random.default_rng(seed)
    p = np.round(1 / (1 + np.exp(-(shift + rng.normal(0, 1.2, n)))), 1)  # few distinct values: many ties
    return (rng.random(n) < p).astype(int), p


def accounts(n_groups, rows_per_group, mu, seed, bad_share=0.3):
    """One (label, two scores) per account, repeated on each of its rows. True AUC of s = Phi(mu / sqrt 2)."""
    rng = np.random.default_rng(seed)
    y_g = (rng.random(n_groups) < bad_share).astype(int)
    s_g = rng.normal(mu * y_g, 1.0)
    t_g = s_g + rng.normal(0, 1.0, n_groups)  # a weaker second model, correlated with the first
    groups = np.repeat(np.arange(n_groups), rows_per_group)
    return y_g[groups], s_g[groups], t_g[groups], groups


def psi_matrix(y, p):
    """Kernel of every (bad, good) pair: 1 if the bad ranks higher, 1/2 on a tie."""
    bad, good = p[y == 1][:, None], p[y == 0][None, :]
    return (bad > good) + 0.5 * (bad == good)


def brute_delong_cov(y, ps, groups):
    """Obuchowski (1997) clustered covariance, cluster by cluster in plain Python (O(n^2) kernels)."""
    kernels = [psi_matrix(y, p) for p in ps]
    thetas = [k.mean() for k in kernels]
    m, n = int(y.sum()), int((1 - y).sum())
    g_bad, g_good = groups[y == 1], groups[y == 0]
    ids = np.unique(groups)
    pairs = list(zip(kernels, thetas, strict=True))
    a = np.array([[k.mean(axis=1)[g_bad == g].sum() - (g_bad == g).sum() * t for k, t in pairs] for g in ids])
    b = np.array([[k.mean(axis=0)[g_good == g].sum() - (g_good == g).sum() * t for k, t in pairs] for g in ids])
    i10, i01, i = len(np.unique(g_bad)), len(np.unique(g_good)), len(ids)
    cov = np.zeros((len(ps), len(ps)))
    for r in range(len(ps)):
        for s in range(len(ps)):
            s10 = i10 / ((i10 - 1) * m) * sum(a[:, r] * a[:, s])
            s01 = i01 / ((i01 - 1) * n) * sum(b[:, r] * b[:, s])
            s11 = i / (i - 1) * (sum(a[:, r] * b[:, s]) + sum(a[:, s] * b[:, r]))
            cov[r, s] = s10 / m + s01 / n + s11 / (m * n)
    return np.array(thetas), cov


# ---------------------------------------------------------------------------------------------- DeLong


def test_delong_equals_the_brute_force_placement_variance_with_ties():
    """DeLong, DeLong & Clarke-Pearson (1988): var = S10 / m + S01 / n, the sample variances of the bads' and
    the goods' placement values, here from the full bad x good kernel matrix."""
    y, p = tied_sample(300, seed=1)
    k = psi_matrix(y, p)
    m, n = k.shape
    want = np.var(k.mean(axis=1), ddof=1) / m + np.var(k.mean(axis=0), ddof=1) / n
    got = vd.delong(y, p)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert got["variance"] == pytest.approx(want, rel=1e-10)
    assert got["se"] == pytest.approx(np.sqrt(want), rel=1e-10)


def test_clustered_delong_with_one_account_per_row_equals_plain_delong():
    y, p = tied_sample(500, seed=2)
    ids = np.char.add("acc-", np.random.default_rng(2).permutation(len(y)).astype(str))  # one id per row
    plain, clustered = vd.delong(y, p), vd.delong(y, p, ids)
    assert clustered["auc"] == plain["auc"]
    assert clustered["variance"] == pytest.approx(plain["variance"], rel=1e-12)


def test_clustered_delong_equals_obuchowski_computed_cluster_by_cluster():
    y, s, _, groups = accounts(60, 3, 1.0, seed=3)
    rng = np.random.default_rng(3)
    y = np.where(rng.random(len(y)) < 0.15, 1 - y, y)  # some accounts hold both bads and goods
    thetas, cov = brute_delong_cov(y, [s], groups)
    got = vd.delong(y, s, groups)
    assert got["auc"] == pytest.approx(thetas[0], abs=1e-12)
    assert got["variance"] == pytest.approx(cov[0, 0], rel=1e-10)


def test_clustered_variance_of_an_account_copied_k_times_is_the_plain_variance_of_one_copy():
    """Closed form: copying every row k times leaves the placement values unchanged and multiplies each
    cluster sum by k, so Obuchowski's variance equals DeLong's on the single copy; DeLong's on the copies
    shrinks about k-fold, as if the copies were new evidence."""
    y, s, _, groups = accounts(400, 5, 1.0, seed=4)
    single = vd.delong(y[::5], s[::5])["variance"]
    assert vd.delong(y, s, groups)["variance"] == pytest.approx(single, rel=1e-10)
    assert vd.delong(y, s)["variance"] < single / 4


def test_clustered_interval_covers_the_true_auc_where_the_row_interval_does_not():
    mu, runs = 1.0, 200
    true_auc = stats.norm.cdf(mu / np.sqrt(2))
    hits_clustered = hits_rows = 0
    for seed in range(runs):
        y, s, _, groups = accounts(150, 4, mu, seed)
        lo, hi = vd.delong_interval(y, s, groups)
        hits_clustered += lo <= true_auc <= hi
        lo, hi = vd.delong_interval(y, s)
        hits_rows += lo <= true_auc <= hi
    # 95 % intended: a binomial(200, 0.95) count stays above 180 with probability > 0.999
    assert hits_clustered >= stats.binom.ppf(0.001, runs, 0.95)
    assert hits_rows / runs < 0.8  # 4 copies of an account taken for 4 accounts: about half as wide


def test_delong_interval_is_the_wald_interval_kept_inside_0_1():
    y, p = tied_sample(400, seed=5)
    d = vd.delong(y, p)
    z = stats.norm.ppf(0.95)
    assert vd.delong_interval(y, p, level=0.9) == pytest.approx((d["auc"] - z * d["se"], d["auc"] + z * d["se"]))
    perfect = vd.delong_interval([0, 0, 1, 1, 0, 1], [0.1, 0.2, 0.8, 0.9, 0.3, 0.7])
    assert perfect == (1.0, 1.0)


# ------------------------------------------------------------------------------------------- paired


def test_paired_delong_equals_the_brute_force_covariance():
    y, s, t, _ = accounts(250, 1, 1.0, seed=6)
    t = np.round(t, 1)  # ties in one model
    thetas, cov = brute_delong_cov(y, [s, t], np.arange(len(y)))
    got = vd.delong_paired(y, s, t, level=0.9)
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = thetas[0] - thetas[1]
    assert got["diff"] == pytest.approx(diff, abs=1e-12)
    assert got["se"] == pytest.approx(se, rel=1e-10)
    assert got["z"] == pytest.approx(diff / se, rel=1e-10)
    assert got["p_value"] == pytest.approx(2 * stats.norm.sf(abs(diff / se)), rel=1e-10)
    assert (got["lo"], got["hi"]) == pytest.approx((diff - 1.6449 * se, diff + 1.6449 * se), abs=1e-4)


def test_clustered_paired_delong_equals_the_brute_force_and_a_model_against_itself_is_no_difference():
    y, s, t, groups = accounts(50, 3, 1.0, seed=7)
    y = np.where(np.random.default_rng(7).random(len(y)) < 0.15, 1 - y, y)
    _, cov = brute_delong_cov(y, [s, t], groups)
    got = vd.delong_paired(y, s, t, groups)
    assert got["se"] == pytest.approx(np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]), rel=1e-10)
    same = vd.delong_paired(y, s, s, groups)
    assert (same["diff"], same["se"], same["z"], same["p_value"]) == (0.0, 0.0, 0.0, 1.0)


def test_clustered_paired_se_agrees_with_the_account_bootstrap():
    y, s, t, groups = accounts(1_500, 4, 1.0, seed=8)
    got = vd.delong_paired(y, s, t, groups)
    lo, hi = vm.bootstrap_auc_diff_ci(y, s, t, groups, n_boot=1_000, seed=8)
    boot_se = (hi - lo) / (2 * stats.norm.ppf(0.975))
    assert got["se"] == pytest.approx(boot_se, rel=0.2)
    assert got["lo"] > 0  # the first model is the better one, as built
    assert vd.delong_paired(y, s, t)["se"] < got["se"] / 1.5  # rows taken as independent: too sure


# --------------------------------------------------------------------------------------- ECB decline


def test_auc_decline_test_is_the_ecb_one_sided_statistic():
    """ECB (2019) instructions: S = (AUC_init - AUC_curr) / s_curr, p-value = 1 - Phi(S)."""
    y, p = tied_sample(2_000, seed=9)
    d = vd.delong(y, p)
    same = vd.auc_decline_test(d["auc"], y, p)
    assert same["statistic"] == pytest.approx(0.0, abs=1e-12)
    assert same["p_value"] == pytest.approx(0.5)
    assert not same["rejected"]
    higher = vd.auc_decline_test(d["auc"] + 3 * d["se"], y, p)
    assert higher["statistic"] == pytest.approx(3.0)
    assert higher["p_value"] == pytest.approx(1 - stats.norm.cdf(3.0))
    assert higher["rejected"]
    lower = vd.auc_decline_test(d["auc"] - 3 * d["se"], y, p)  # an AUC that rose is never a decline
    assert lower["p_value"] == pytest.approx(stats.norm.cdf(3.0))
    assert not lower["rejected"]
    borderline = vd.auc_decline_test(d["auc"] + 1.7 * d["se"], y, p)  # p = 0.0446
    assert borderline["rejected"] and not vd.auc_decline_test(d["auc"] + 1.7 * d["se"], y, p, level=0.99)["rejected"]


def test_auc_decline_test_uses_the_clustered_standard_error():
    y, s, _, groups = accounts(300, 5, 1.0, seed=10)
    rows = vd.auc_decline_test(0.80, y, s)
    clustered = vd.auc_decline_test(0.80, y, s, groups)
    assert clustered["se"] == pytest.approx(vd.delong(y, s, groups)["se"])
    assert clustered["se"] > 1.8 * rows["se"]


# ------------------------------------------------------------------------------------------ CAP, gains


def test_accuracy_ratio_from_the_cap_is_2_auc_minus_1_with_ties():
    y, p = tied_sample(3_000, seed=11)
    assert len(np.unique(p)) < 12
    assert vd.accuracy_ratio(y, p) == pytest.approx(2 * skm.roc_auc_score(y, p) - 1, abs=1e-12)
    x, c = vd.cap_points(y, p)
    assert (x[0], c[0], x[-1], c[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(x) > 0) and np.all(np.diff(c) >= 0)
    assert len(x) == len(np.unique(p)) + 1


def test_cap_of_a_perfect_model_reaches_every_bad_at_the_bad_rate():
    y = np.array([0, 1, 0, 0, 1, 0, 0, 0])
    x, c = vd.cap_points(y, y + 0.0)
    assert c[np.searchsorted(x, y.mean())] == 1.0
    assert vd.accuracy_ratio(y, y + 0.0) == pytest.approx(1.0)
    assert vd.accuracy_ratio(y, np.zeros(len(y))) == pytest.approx(0.0)


def test_gains_table_agrees_with_the_report_decile_table():
    y, p = tied_sample(5_000, seed=12)
    p = 0.99 * p + 0.01 * np.random.default_rng(12).random(len(p))  # break the ties: ten full deciles
    g = vd.gains_table(y, p)
    d = decile_table(y, p)
    assert g["rows"].tolist() == d["n"].tolist()
    assert g["bads"].tolist() == d["bads"].tolist()
    np.testing.assert_allclose(g[["bad_rate", "cum_bads", "lift"]], d[["bad_rate", "cum_bads", "lift"]])
    assert g["rows"].sum() == len(y) and g["cum_bads"].iloc[-1] == pytest.approx(1.0)
    assert g["bad_rate"].is_monotonic_decreasing  # riskiest first


def test_gains_table_keeps_ties_in_one_bin_and_leaves_empty_bins_out():
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0])
    p = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1])
    g = vd.gains_table(y, p, bins=4)
    assert g["rows"].tolist() == [6, 4]
    assert g["bads"].tolist() == [2, 1]
    assert g["lift"].tolist() == pytest.approx([(2 / 6) / 0.3, (1 / 4) / 0.3])


# -------------------------------------------------------------------------------- existing metrics


def test_ks_equals_scipy_two_sample_statistic_when_scores_tie():
    y, p = tied_sample(4_000, seed=13)
    want = stats.ks_2samp(p[y == 1], p[y == 0]).statistic
    assert vm.ks(y, p) == pytest.approx(want, abs=1e-12)


def test_psi_stays_finite_when_a_bin_is_empty():
    rng = np.random.default_rng(14)
    reference = vm.reference_distribution(rng.normal(0, 1, 5_000))
    shifted = rng.normal(3, 0.1, 5_000)  # every value lands in the top bin: the others are empty
    counts = vm.bin_counts(reference, shifted)
    assert (counts[:-2] == 0).all()
    value = vm.psi(reference, shifted)
    assert np.isfinite(value) and value > 0.25


# -------------------------------------------------------------------------------------------- errors


def test_bad_inputs_are_refused_with_a_message_naming_them():
    y, p = tied_sample(200, seed=15)
    with pytest.raises(MetricError, match="p has 199 values but y has 200"):
        vd.delong(y, p[:-1])
    with pytest.raises(MetricError, match="p2 has 199 values"):
        vd.delong_paired(y, p, p[:-1])
    with pytest.raises(MetricError, match="only one class"):
        vd.delong(np.zeros(10), np.arange(10))
    with pytest.raises(MetricError, match="groups has shape"):
        vd.delong(y, p, groups=np.arange(10))
    with pytest.raises(MetricError, match="at least 2 accounts"):
        vd.delong(y, p, groups=np.zeros(len(y)))
    with pytest.raises(MetricError, match="auc_development"):
        vd.auc_decline_test(1.2, y, p)
    with pytest.raises(MetricError, match="level"):
        vd.delong_interval(y, p, level=95)


def test_pre_ranked_scores_give_the_same_auc_variance_and_ks_on_every_subset():
    """Ranks computed once on the pooled rows stand for the scores in any subset (a month, a segment): the
    order within the subset is the pooled order restricted, so counting per tie block needs no new sort."""
    rng = np.random.default_rng(7)
    n = 4_000
    groups = rng.integers(0, 900, n)
    p = np.round(rng.beta(2, 8, n), 3)  # heavy ties
    y = (rng.uniform(size=n) < p).astype(float)
    ranks = vd.tie_ranks(p)
    assert ranks.min() == 0 and ranks.max() == len(np.unique(p)) - 1
    # the pool, large subsets (counted over the pool's blocks) and a small one (its own blocks, sorted)
    for rows in (np.ones(n, bool), rng.uniform(size=n) < 0.3, groups % 3 == 0, np.arange(n) < 60):
        a, b = vd.delong(y[rows], p[rows], groups[rows]), vd.delong(y[rows], ranks[rows], groups[rows])
        assert a["auc"] == pytest.approx(b["auc"], abs=1e-12) and a["se"] == pytest.approx(b["se"], rel=1e-9)
        assert a["auc"] == pytest.approx(skm.roc_auc_score(y[rows], p[rows]), abs=1e-12)
        assert vd.ks_ranked(y[rows], ranks[rows]) == pytest.approx(vm.ks(y[rows], p[rows]), abs=1e-12)


@given(st.integers(0, 2**31), st.integers(1, 6), st.booleans())
@settings(max_examples=40, deadline=None)
def test_every_group_of_a_partition_gets_what_its_subset_gets_alone(seed, n_groups, repeated):
    """The two compiled passes (rank order, account order) give each group the AUC, clustered DeLong variance
    and KS that `delong` and `ks_ranked` give its rows taken alone; a row in no group (-1) counts nowhere."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 1_500))
    accounts = rng.integers(0, n // 3 if repeated else 10 * n, n)  # many rows per account, or about one
    p = np.round(rng.beta(2, 8, n), int(rng.integers(1, 4)))  # ties, from heavy to few
    y = (rng.uniform(size=n) < p).astype(float)
    keys = rng.integers(-1, n_groups, n)
    codes = np.unique(accounts, return_inverse=True)[1].ravel()
    got = grouped_auc(Ranked.of(y, vd.tie_ranks(p), codes), keys, n_groups)
    for k in range(n_groups):
        at = keys == k
        assert got["rows"][k] == at.sum() and got["bads"][k] == y[at].sum()
        if not 0 < y[at].sum() < at.sum():
            assert np.isnan(got["auc"][k])
            continue
        assert got["auc"][k] == pytest.approx(skm.roc_auc_score(y[at], p[at]), abs=1e-12)
        assert got["ks"][k] == pytest.approx(vm.ks(y[at], p[at]), abs=1e-12)
        try:
            want = vd.delong(y[at], p[at], accounts[at])["variance"]
        except MetricError:  # bads or goods of one account only: no variance
            assert np.isnan(got["variance"][k])
            continue
        assert got["variance"][k] == pytest.approx(want, rel=1e-9, abs=1e-15)
