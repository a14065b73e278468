"""Per-grade calibration tests, Hosmer-Lemeshow, Spiegelhalter, concentration and migration: checked against
scipy, closed forms, hand computations and published worked examples (cited in each test)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from validation import supervisory as vs
from validation.metrics import MetricError

# ------------------------------------------------------------------------------------- per-grade tests


def test_jeffreys_is_the_beta_posterior_cdf_at_the_pd():
    n = np.array([1_000, 250, 40, 0, 5_000])
    d = np.array([12, 0, 9, 0, 80])
    pd_ = np.array([0.01, 0.02, 0.15, 0.25, 0.012])
    np.testing.assert_allclose(vs.jeffreys_test(n, d, pd_), stats.beta.cdf(pd_, d + 0.5, n - d + 0.5), rtol=1e-12)


def test_jeffreys_worked_examples():
    """A grade with no obligors leaves the Jeffreys prior Beta(1/2, 1/2), the arcsine law: CDF (2/pi) asin(sqrt x),
    so at pd 1/4 it is (2/pi)(pi/6) = 1/3. Two defaults in four at pd 1/2: the posterior Beta(5/2, 5/2) is
    symmetric about 1/2, so 1/2 (the example of the meliora package's Jeffreys test)."""
    assert vs.jeffreys_test([0], [0], [0.25])[0] == pytest.approx(1 / 3, rel=1e-12)
    assert vs.jeffreys_test([4], [2], [0.5])[0] == pytest.approx(0.5, rel=1e-12)


def test_jeffreys_is_one_sided_a_conservative_pd_is_not_flagged_as_a_two_sided_test_would():
    n, d, pd_ = np.array([1_000, 1_000]), np.array([20, 1]), np.array([0.05, 0.01])
    p = vs.jeffreys_test(n, d, pd_)
    assert p[0] > 0.999  # 20 defaults where 50 were expected: the PD is conservative, not underestimated
    assert 2 * min(p[0], 1 - p[0]) < 0.05  # the two-sided pitfall would reject this grade
    assert p[1] > 0.99
    assert vs.jeffreys_test([1_000], [25], [0.01])[0] < 1e-4  # 25 defaults where 10 were expected: flagged


def test_binomial_test_is_the_upper_tail_counted_by_hand():
    n, d, pd_ = 100, 3, 0.01
    below = sum(math.comb(n, k) * pd_**k * (1 - pd_) ** (n - k) for k in range(d))
    assert vs.binomial_test([n], [d], [pd_])[0] == pytest.approx(1 - below, rel=1e-12)
    assert vs.binomial_test([n], [0], [pd_])[0] == pytest.approx(1.0)


def test_traffic_lights_reproduce_the_basel_backtesting_zones():
    """Basel Committee (1996), "Supervisory framework for the use of backtesting in conjunction with the internal
    models approach", Table 2: 250 days at 1 %: green 0-4 exceptions, yellow 5-9, red 10 or more, the zones
    ending where P(X <= k) reaches 95 % and 99.99 %."""
    k = np.arange(15)
    got = vs.traffic_light(np.full(15, 250), k, np.full(15, 0.01), levels=(0.95, 0.9999))
    assert got.tolist() == ["green"] * 5 + ["yellow"] * 5 + ["red"] * 5


def test_traffic_light_boundaries_are_the_binomial_quantiles():
    n, pd_ = 2_000, 0.02
    q95, q999 = stats.binom.ppf([0.95, 0.999], n, pd_).astype(int)  # smallest k with P(X <= k) >= level
    d = np.array([q95 - 1, q95, q999 - 1, q999])
    got = vs.traffic_light(np.full(4, n), d, np.full(4, pd_))
    assert got.tolist() == ["green", "yellow", "yellow", "red"]


# ------------------------------------------------------------------------------------- Hosmer-Lemeshow


def test_hosmer_lemeshow_equals_a_hand_computation():
    """Three bins of three rows (p 0.1, 0.4, 0.7) with 1, 1 and 3 bads: expected 0.3, 1.2, 2.1, variances
    E (1 - E / 3) = 0.27, 0.72, 0.63, statistic 0.7^2/0.27 + 0.2^2/0.72 + 0.9^2/0.63, 3 - 2 = 1 dof."""
    p = np.repeat([0.1, 0.4, 0.7], 3)
    y = np.array([1, 0, 0, 0, 1, 0, 1, 1, 1])
    got = vs.hosmer_lemeshow(y, p, groups=3)
    want = 0.49 / 0.27 + 0.04 / 0.72 + 0.81 / 0.63
    assert got["statistic"] == pytest.approx(want, rel=1e-12)
    assert got["dof"] == 1
    assert got["p_value"] == pytest.approx(stats.chi2.sf(want, 1), rel=1e-12)
    assert got["table"]["observed"].tolist() == [1, 1, 3]
    np.testing.assert_allclose(got["table"]["expected"], [0.3, 1.2, 2.1])


def test_hosmer_lemeshow_keeps_ties_together_and_counts_only_non_empty_bins():
    p = np.repeat([0.05, 0.1, 0.2, 0.3], [10, 10, 10, 10])  # four distinct values: at most four bins
    y = np.tile([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], 4)
    got = vs.hosmer_lemeshow(y, p, groups=10)
    assert got["table"]["rows"].tolist() == [10, 10, 10, 10]
    assert got["dof"] == 2


def test_hosmer_lemeshow_rejects_a_miscalibrated_model_and_not_a_calibrated_one():
    rng = np.random.default_rng(1)
    p = 1 / (1 + np.exp(-rng.normal(-2, 1, 20_000)))
    y = (rng.random(len(p)) < p).astype(int)
    assert vs.hosmer_lemeshow(y, p)["p_value"] > 0.01
    assert vs.hosmer_lemeshow(y, np.clip(p * 1.3, 0, 0.99))["p_value"] < 1e-6


# --------------------------------------------------------------------------------------- Spiegelhalter


def test_spiegelhalter_equals_a_hand_computation():
    """y 1, 0, 0, 1 at p 0.2, 0.4, 0.6, 0.9: numerator 0.8*0.6 - 0.4*0.2 + 0.6*0.2 - 0.1*0.8 = 0.44, variance
    0.36*0.16 + 0.04*0.24 + 0.04*0.24 + 0.64*0.09 = 0.1344."""
    got = vs.spiegelhalter([1, 0, 0, 1], [0.2, 0.4, 0.6, 0.9])
    z = 0.44 / math.sqrt(0.1344)
    assert got["z"] == pytest.approx(z, rel=1e-12)
    assert got["p_value"] == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)


def test_spiegelhalter_rejects_calibrated_predictions_at_its_nominal_rate():
    rng = np.random.default_rng(2)
    runs, n = 400, 500
    rejected = rejected_off = 0
    for _ in range(runs):
        p = 1 / (1 + np.exp(-rng.normal(-1.5, 1, n)))
        y = (rng.random(n) < p).astype(int)
        rejected += vs.spiegelhalter(y, p)["p_value"] < 0.05
        rejected_off += vs.spiegelhalter(y, p**0.7)["p_value"] < 0.05  # too high everywhere
    lo, hi = stats.binom.ppf([0.0005, 0.9995], runs, 0.05)  # 99.9 % of calibrated runs land in [lo, hi]
    assert lo <= rejected <= hi
    assert rejected_off > runs / 2


# ------------------------------------------------------------------------------------------ concentration


def test_herfindahl_definitions_agree_at_the_extremes():
    for k in (2, 7, 20):
        uniform = vs.herfindahl(np.full(k, 50))
        assert uniform["hhi"] == pytest.approx(1 / k)
        assert uniform["hhi_normalised"] == pytest.approx(0.0, abs=1e-12)
        assert uniform["cv"] == pytest.approx(0.0, abs=1e-12)
        assert uniform["ecb_hi"] == pytest.approx(0.0, abs=1e-12)
        one = vs.herfindahl(np.eye(k)[0] * 300)
        assert one["hhi"] == one["hhi_normalised"] == pytest.approx(1.0)
        assert one["ecb_hi"] == pytest.approx(1.0)
        assert one["cv"] == pytest.approx(math.sqrt(k - 1))


def test_herfindahl_worked_example_and_the_ecb_index_is_log_hhi_in_base_k():
    """Four obligors in grade A and two in B (meliora's herfindahl_test example): shares 2/3, 1/3, HHI 5/9,
    CV 1/3; CV^2 + 1 = K HHI, so the ECB index is 1 + log_K(HHI)."""
    got = vs.herfindahl([4, 2])
    assert got["hhi"] == pytest.approx(5 / 9) and got["cv"] == pytest.approx(1 / 3)
    assert got["hhi_normalised"] == pytest.approx((5 / 9 - 1 / 2) / (1 / 2))
    assert got["ecb_hi"] == pytest.approx(1 + math.log(5 / 9) / math.log(2))
    rising = [vs.herfindahl([40, 30, 20, 10]), vs.herfindahl([70, 20, 5, 5]), vs.herfindahl([97, 1, 1, 1])]
    for key in ("hhi", "hhi_normalised", "cv", "ecb_hi"):
        assert rising[0][key] < rising[1][key] < rising[2][key]


# -------------------------------------------------------------------------------------------- migration

PLANTED = np.array([
    [80, 5, 15, 0],  # grade 0 sends more obligors two grades down than one: a violation at (0, 2)
    [10, 80, 8, 2],
    [3, 10, 80, 7],
    [1, 4, 15, 80],
])


def test_migration_matrix_counts_and_row_shares():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 5, 2_000)
    b = np.clip(a + rng.integers(-1, 2, 2_000), 0, 4)
    counts, shares = vs.migration_matrix(a, b, 5)
    want = pd.crosstab(a, b).reindex(index=range(5), columns=range(5), fill_value=0).to_numpy()
    np.testing.assert_array_equal(counts, want)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    counts, shares = vs.migration_matrix([0, 0, 2], [0, 1, 2], 3)  # grade 1 empty at the start
    assert np.isnan(shares[1]).all() and counts.sum() == 3


def test_migration_stability_finds_the_planted_violation_with_the_ecb_z():
    """z_02 = (p_01 - p_02) / sqrt((p_02 (1 - p_02) + p_01 (1 - p_01) + 2 p_02 p_01) / N_0)
    = (0.05 - 0.15) / sqrt((0.1275 + 0.0475 + 0.015) / 100) = -2.294, Phi(z) = 0.011 < 0.05."""
    got = vs.migration_stability(PLANTED)
    z = (0.05 - 0.15) / math.sqrt((0.15 * 0.85 + 0.05 * 0.95 + 2 * 0.15 * 0.05) / 100)
    assert got["z"][0, 2] == pytest.approx(z, rel=1e-12)
    assert got["p_value"][0, 2] == pytest.approx(stats.norm.cdf(z), rel=1e-12)
    assert got["violations"] == [(0, 2)]
    assert np.isnan(np.diag(got["z"])).all()
    # the same shift judged on the whole start cohort (defaults and exits included) is less certain
    wider = vs.migration_stability(PLANTED, n_start=[1_000, 100, 100, 100])
    assert abs(wider["z"][0, 2]) < abs(got["z"][0, 2])


def test_migration_stability_worked_example():
    """meliora's example: three grades of four obligors, 2 stay, 1 moves to each other grade. Cell (0, 1)
    compares 1/4 with the diagonal's 2/4: z = (1/2 - 1/4) / sqrt((3/16 + 1/4 + 1/4) / 4) = 2 / sqrt(11); cell
    (0, 2) has equal neighbours, z = 0. Each side of the diagonal moves 4 grade-steps out of at most 5: MWB 0.8."""
    c = np.array([[2, 1, 1], [1, 2, 1], [1, 1, 2]])
    got = vs.migration_stability(c)
    assert got["z"][0, 1] == pytest.approx(2 / math.sqrt(11))
    assert got["z"][0, 2] == pytest.approx(0.0)
    assert got["mwb_upper"] == pytest.approx(0.8) and got["mwb_lower"] == pytest.approx(0.8)
    assert got["violations"] == []


def test_matrix_weighted_bandwidths_match_the_published_example():
    """MathWorks Risk Management Toolbox, risk.validation.matrixWeightedBandwidth, documented example:
    lower MWB 0.3306, upper MWB 0.6066 for this 5 x 5 count matrix."""
    c = np.array([[10, 8, 15, 9, 10], [11, 9, 13, 9, 8], [0, 10, 10, 11, 10], [0, 0, 9, 11, 11],
                  [0, 0, 0, 11, 10]])
    got = vs.migration_stability(c)
    assert got["mwb_lower"] == pytest.approx(0.3306, abs=5e-5)
    assert got["mwb_upper"] == pytest.approx(0.6066, abs=5e-5)
    assert vs.migration_stability(np.diag([5, 5, 5]))["mwb_upper"] == 0.0  # nobody moved


# ---------------------------------------------------------------------------------------------- errors


def test_bad_inputs_are_refused_with_a_message_naming_them():
    with pytest.raises(MetricError, match="pd must lie strictly between 0 and 1"):
        vs.jeffreys_test([10], [1], [0.0])
    with pytest.raises(MetricError, match="defaults exceed the obligors"):
        vs.binomial_test([10, 5], [1, 6], [0.1, 0.1])
    with pytest.raises(MetricError, match="one entry per grade"):
        vs.traffic_light([10, 5], [1], [0.1, 0.1])
    with pytest.raises(MetricError, match="n must be non-negative whole numbers"):
        vs.jeffreys_test([-1], [0], [0.1])
    with pytest.raises(MetricError, match="levels"):
        vs.traffic_light([10], [1], [0.1], levels=(0.999, 0.95))
    with pytest.raises(MetricError, match="p must be a probability"):
        vs.spiegelhalter([0, 1], [0.2, 1.5])
    with pytest.raises(MetricError, match="p has 2 values but y has 3"):
        vs.hosmer_lemeshow([0, 1, 0], [0.2, 0.5])
    with pytest.raises(MetricError, match="counts must be non-negative"):
        vs.herfindahl([3, -1])
    with pytest.raises(MetricError, match="square"):
        vs.migration_stability(np.ones((2, 3)))
    with pytest.raises(MetricError, match=r"grade_to must be whole grades 0 \.\. 2"):
        vs.migration_matrix([0, 1], [1, 3], 3)
    with pytest.raises(MetricError, match="n_start"):
        vs.migration_stability(PLANTED, n_start=[10, 100, 100, 100])
