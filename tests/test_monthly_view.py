"""The monthly view of a world: a bureau-style file whose statuses the adapter reads back exactly."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.adapters import from_monthly
from features.builders import Prepared
from simulation.__main__ import main
from simulation.monthly_view import CAP, latest_snapshot, monthly_view, snapshot_labels


def _months_past_due(status: pd.Series) -> np.ndarray:
    return pd.to_numeric(status.where(status.str.isdigit()), errors="coerce").fillna(0).to_numpy(int)


@pytest.fixture(scope="module")
def world(baseline_tables):
    prep = Prepared(baseline_tables)
    snapshot = latest_snapshot(prep)
    return prep, snapshot, monthly_view(prep, snapshot, 6)


def test_the_view_adapted_reads_back_to_its_statuses_wherever_its_months_explain_them(world):
    """Adapted onto the contract and viewed again, every account and month shows the months past due the view
    reported, where the account's reported months reach back to its oldest unpaid bill; elsewhere (arrears
    older than the first report) never more. Closing and charge-off months come back as such."""
    _, snapshot, view = world
    again = monthly_view(Prepared(from_monthly(view)), snapshot, 6)
    both = view.merge(again, on=["account_id", "month"], suffixes=("", "_again"), validate="one_to_one")
    assert len(both) == len(view) == len(again)
    first = both.groupby("account_id")["month"].transform("min")
    reported = (both["month"].dt.year - first.dt.year) * 12 + both["month"].dt.month - first.dt.month + 1
    want, got = _months_past_due(both["status"]), _months_past_due(both["status_again"])
    explained = want <= reported.to_numpy()
    assert (want > 0).sum() > 500 and (want == CAP).any()  # the world's delinquency is there to read back
    assert np.array_equal(got[explained], want[explained])
    assert (got <= want).all()
    for code in ("L", "W"):
        assert ((both["status"] == code) == (both["status_again"] == code)).all()


def test_the_view_reports_each_account_once_a_month_until_it_leaves(world):
    _, snapshot, view = world
    assert not view.duplicated(["account_id", "month"]).any()
    assert view["month"].dt.day.eq(1).all() and view["month"].max() == snapshot.to_period("M").to_timestamp()
    exits = view[view["status"].isin(["L", "W"])].groupby("account_id")["month"].min()
    later = view.merge(exits.rename("exit"), left_on="account_id", right_index=True)
    assert (later["month"] <= later["exit"]).all()  # nothing reported after the month an account left
    assert (view[["bill_amount", "paid_amount"]] >= 0).all().all()


def test_the_labels_are_the_default_after_the_snapshot_as_train_reads_them(world):
    prep, snapshot, _ = world
    labels = snapshot_labels(prep, snapshot)
    assert list(labels.columns) == ["account_id", "as_of", "target", "label"]
    assert (labels["as_of"] == snapshot).all() and set(labels["label"]) <= {0.0, 1.0}
    assert 0 < labels["label"].mean() < 0.2


def test_the_command_writes_the_view_and_refuses_a_folder_in_use(baseline_dir, tmp_path, capsys):
    data, _ = baseline_dir
    assert main(["monthly", str(data), "--months", "3", "--out", str(tmp_path / "view")]) == 0
    view = pd.read_parquet(tmp_path / "view" / "monthly.parquet")
    assert view["month"].nunique() == 3 and len(pd.read_parquet(tmp_path / "view" / "labels.parquet")) > 0
    assert main(["monthly", str(data), "--out", str(tmp_path / "view")]) == 1
    assert "exists and is not empty" in capsys.readouterr().err
