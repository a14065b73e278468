"""Features for short monthly records: a bureau file of a few months gets real values, not day-exact gaps.

The hand-made lines with their expected values, checked on the builder and the slow reference alike, are in
tests/test_features_pit.py (a short record's shares, three late months in a row, overpayments); here a
bureau-style monthly file goes through features.adapters.from_monthly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.adapters import from_monthly
from features.builders import build_features
from features.catalog import default_catalog

SHORT_RECORD = ("late_run", "worst_dpd_n36", "late_share_n36", "late3_share_n36", "revolving_share_n36",
                "paid_share_n1", "paid_share_n3", "paid_share_n6", "paid_share_min_n6", "paid_prev_n1",
                "paid_prev_n3", "growth_n1", "growth_n3", "util_n6", "util_change_n1", "util_slope_n6")


@pytest.fixture(scope="module")
def bureau() -> pd.DataFrame:
    """Seven months of one card: paid in full, overpaid, then three months in arrears (status 1, 2, 3) that
    June's payment clears, the minimums of the arrears imputed on June's due date."""
    months = ["2024-01", "2024-02", "2024-03", "2024-04", "2024-05", "2024-06", "2024-07"]
    monthly = pd.DataFrame({
        "account_id": 1, "month": months, "status": ["0", "0", "1", "2", "3", "0", "0"],
        "bill_amount": [400.0, 600.0, 500.0, 550.0, 300.0, 450.0, 200.0],
        "paid_amount": [400.0, 900.0, 0.0, 0.0, 0.0, 1200.0, 100.0], "credit_limit": 1000.0,
    })
    return build_features(from_monthly(monthly), ["2024-05-31", "2024-06-30"]).set_index("as_of")


def test_the_short_record_features_need_no_day_exact_dates():
    catalog = default_catalog()
    assert not [name for name in SHORT_RECORD if catalog[name].day_precision]


def test_a_month_precision_account_gets_values_for_the_short_record_features(bureau):
    june = bureau.loc[pd.Timestamp("2024-06-30")]
    assert np.isfinite(june[list(SHORT_RECORD)].to_numpy(np.float64)).all()
    expected = {"late_run": 0, "late_share_n36": 3 / 6, "late3_share_n36": 3 / 6, "revolving_share_n36": 3 / 6,
                "worst_dpd_n36": 92, "paid_share_n1": 1200 / 450, "paid_prev_n1": 1200 / 300,
                "growth_n1": 450 / 300 - 1, "util_change_n1": 0.45 - 0.30,
                "util_n6": (0.4 + 0.6 + 0.5 + 0.55 + 0.3 + 0.45) / 6}
    for name, value in expected.items():
        assert june[name] == pytest.approx(value, abs=1e-12), name


def test_three_months_in_arrears_read_as_three_late_months_in_a_row(bureau):
    may = bureau.loc[pd.Timestamp("2024-05-31")]
    assert may["late_run"] == 3 and may["late_share_n36"] == pytest.approx(3 / 5)
    assert may["worst_dpd_n36"] == 67  # March's bill, due on the 25th, unpaid at the end of May
    assert may["paid_share_n1"] == 0 and may["paid_share_min_n6"] == 0
    assert may["paid_share_n6"] == pytest.approx((1.0 + 1.5 + 0 + 0 + 0) / 5)  # February's overpayment shows
